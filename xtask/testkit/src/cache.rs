//! Fixtures made once and kept on disk, because nextest runs each test in its own process: a filled
//! registry's storage, a throwaway CA. Each lives in a directory named by everything it is made from, so a
//! change to what it is made from makes a new one instead of reusing a stale one.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

use sha2::{Digest, Sha256};

use crate::tools::Tool;

/// `<target>/tmp/xtask-testkit/<name>`, made by `make` (given an empty directory) if it is not there yet.
/// Two processes may make it at once: each makes its own copy under a unique name and renames it into place;
/// the rename that comes second fails and its copy is removed, so a reader only ever sees a finished
/// directory.
pub fn made_once(name: &str, make: impl FnOnce(&Path)) -> PathBuf {
    let root = root();
    let done = root.join(name);
    if done.is_dir() {
        return done;
    }
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let building = root.join(format!(
        ".{name}.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&building);
    fs::create_dir_all(&building).unwrap();
    make(&building);
    if fs::rename(&building, &done).is_err() {
        let _ = fs::remove_dir_all(&building);
    }
    assert!(done.is_dir(), "{} was not made", done.display());
    done
}

/// Removes the entries of `root` named `<prefix><number>-...` whose number is below `below`.
pub fn remove_older(root: &Path, prefix: &str, below: u64) {
    for entry in fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let number = name
            .to_str()
            .and_then(|name| name.strip_prefix(prefix))
            .and_then(|rest| rest.split('-').next())
            .and_then(|number| number.parse::<u64>().ok());
        if number.is_some_and(|number| number < below) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// A short hex key of everything `parts` names.
pub fn key(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    format!("{:x}", hash.finalize())[..16].to_string()
}

/// What identifies an installed program for a cache key: where PATH finds it, its size and modification time.
pub fn program_identity(program: &Tool) -> String {
    let Ok(path) = program.path() else {
        return format!("{} not found", program.program);
    };
    let path = path.canonicalize().unwrap_or(path);
    let stamp = fs::metadata(&path)
        .and_then(|m| Ok((m.len(), m.modified()?)))
        .map(|(len, modified)| format!("{len} {modified:?}"))
        .unwrap_or_default();
    format!("{} {stamp}", path.display())
}

/// Copies the directory tree `from` to `to` (which must not exist).
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The build's target directory (the one cargo marks with CACHEDIR.TAG, above the running binary), or the
/// system temporary directory for a binary run from elsewhere.
fn root() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(|target| target.join("tmp"))
        .unwrap_or_else(std::env::temp_dir)
        .join("xtask-testkit")
}

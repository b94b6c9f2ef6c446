//! Fixtures made once and kept on disk, because nextest runs each test in its own process: a filled
//! registry's storage, a throwaway CA. Each lives in a directory named by everything it is made from, so a
//! change to what it is made from makes a new one instead of reusing a stale one.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

use sha2::{Digest, Sha256};

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

/// A short hex key of everything `parts` names.
pub fn key(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    format!("{:x}", hash.finalize())[..16].to_string()
}

/// What identifies an installed program for a cache key: its path on PATH, size and modification time.
pub fn program_identity(program: &str) -> String {
    let path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_default();
    let Some(path) = path else {
        return format!("{program} not found");
    };
    let path = path.canonicalize().unwrap_or(path);
    let modified = fs::metadata(&path)
        .and_then(|m| Ok((m.len(), m.modified()?)))
        .map(|(len, modified)| format!("{len} {modified:?}"))
        .unwrap_or_default();
    format!("{} {modified}", path.display())
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

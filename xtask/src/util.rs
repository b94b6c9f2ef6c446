//! Small helpers shared by the tasks.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

/// The repository root: the parent of this crate's directory, fixed at compile time.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the repository root")
        .to_path_buf()
}

/// Cargo's target directory for this repository: CARGO_TARGET_DIR when set, else `target` at the root.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| project_root().join("target"), Into::into)
}

/// The `.nix` files git knows under `root` (tracked, plus new files not ignored), as paths relative to `root`.
/// New files count so that a file being written is checked before it is committed.
pub fn nix_files(sh: &Shell, root: &Path) -> Result<Vec<PathBuf>> {
    known_files(sh, root, &["*.nix"])
}

/// The files matching any of `patterns` (git pathspecs) that git knows under `root`, as `nix_files` does.
pub fn known_files(sh: &Shell, root: &Path, patterns: &[&str]) -> Result<Vec<PathBuf>> {
    crate::tools::GIT.require()?;
    let _dir = sh.push_dir(root);
    let listing = cmd!(
        sh,
        "git ls-files --cached --others --exclude-standard -- {patterns...}"
    )
    .read()
    .with_context(|| format!("list the files git knows in {}", root.display()))?;
    let mut files: Vec<PathBuf> = listing
        .lines()
        .map(PathBuf::from)
        // A tracked file deleted in the work tree is not ours to check.
        .filter(|path| root.join(path).is_file())
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// The `.nix` files directly in `dir`, sorted: the unit-test files, the schema's configs.
pub fn nix_files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("read {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|ext| ext == "nix") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Replace `path`'s content in one step: write a sibling temporary file, flush it to disk, then rename it over
/// the original, so a reader (or a crash) never sees half a file and a failure leaves the original as it was.
/// A symlink stays one: the file it points to is what gets replaced, in its own directory.
pub fn write_atomically(path: &Path, content: &str) -> Result<()> {
    let path = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path)
            .with_context(|| format!("follow the symlink {}", path.display()))?,
        _ => path.to_path_buf(),
    };
    let file_name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let tmp = path.with_file_name(format!(".{}.xtask-tmp", file_name.to_string_lossy()));
    let written = (|| -> Result<()> {
        let mut file =
            fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        std::io::Write::write_all(&mut file, content.as_bytes())
            .with_context(|| format!("write {}", tmp.display()))?;
        if let Ok(meta) = fs::metadata(&path) {
            file.set_permissions(meta.permissions())
                .with_context(|| format!("copy permissions onto {}", tmp.display()))?;
        }
        // The data reaches the disk before the rename makes it the file, or a crash could leave it empty.
        file.sync_all()
            .with_context(|| format!("flush {} to disk", tmp.display()))
    })();
    if let Err(error) = written {
        let _ = fs::remove_file(&tmp);
        return Err(error);
    }
    fs::rename(&tmp, &path).with_context(|| format!("replace {}", path.display()))?;
    // And the rename itself, an entry in the directory.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .with_context(|| format!("flush {} to disk", dir.display()))?;
    }
    Ok(())
}

/// A new, empty directory under the system temporary directory, unique per call (tests run several steps at
/// once in one process). The caller removes it.
pub fn fresh_temp_dir(label: &str) -> Result<PathBuf> {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "powersync-nix-{label}-{}-{}",
        std::process::id(),
        CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use xtask_testkit::Scratch;

    use super::*;

    #[test]
    fn nix_files_lists_tracked_and_new_files_but_not_ignored_ones() {
        let scratch = Scratch::new("nix-files");
        scratch
            .write("a.nix", "1\n")
            .write("sub/b.nix", "2\n")
            .write("ignored/c.nix", "3\n")
            .write("readme.md", "x\n")
            .write(".gitignore", "/ignored\n");
        let sh = Shell::new().unwrap();
        let files = nix_files(&sh, &scratch.root).unwrap();
        assert_eq!(
            files,
            vec![PathBuf::from("a.nix"), PathBuf::from("sub/b.nix")]
        );
    }

    #[test]
    fn write_atomically_replaces_content_and_leaves_no_temporary_file() {
        let scratch = Scratch::new("atomic");
        scratch.write("f.nix", "old\n");
        write_atomically(&scratch.path("f.nix"), "new\n").unwrap();
        assert_eq!(scratch.read("f.nix"), "new\n");
        let leftovers: Vec<_> = fs::read_dir(&scratch.root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().contains("xtask-tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

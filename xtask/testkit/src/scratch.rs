//! A scratch directory or git repository for tests that need files on disk.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

use xshell::{cmd, Shell};

pub struct Scratch {
    pub root: PathBuf,
}

impl Scratch {
    /// A fresh, empty git repository under the system temporary directory.
    pub fn new(label: &str) -> Scratch {
        let scratch = Scratch::plain(label);
        let sh = Shell::new().unwrap();
        let _dir = sh.push_dir(&scratch.root);
        cmd!(sh, "git init --quiet").run().unwrap();
        scratch
    }

    /// A fresh directory that is not a git repository, holding a copy of `xtask/tests/fixtures/<name>`
    /// (Nix would ignore untracked files in a git repository).
    pub fn fixture(name: &str) -> Scratch {
        let scratch = Scratch::plain(&name.replace('/', "-"));
        let source = crate::project_root()
            .join("xtask/tests/fixtures")
            .join(name);
        copy_tree(&source, &scratch.root);
        scratch
    }

    fn plain(label: &str) -> Scratch {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "xtask-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        Scratch { root }
    }

    pub fn write(&self, relative: &str, content: &str) -> &Scratch {
        let path = self.root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
        self
    }

    pub fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.root.join(relative)).unwrap()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Copies the files and folders under `from` into `to`.
fn copy_tree(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            fs::create_dir_all(&target).unwrap();
            copy_tree(&path, &target);
        } else {
            fs::copy(&path, &target).unwrap();
        }
    }
}

//! Where the tests' processes run: their scratch files on tmpfs, the Python checkers without shims and
//! PostgreSQL's programs without Debian's wrapper. Each changes only how fast the same programs run.

use std::{
    fs,
    path::{Path, PathBuf},
};

use xshell::{cmd, Shell};

/// The run's scratch directory, removed when the run ends.
pub struct Scratch(Option<PathBuf>);

impl Scratch {
    /// Points TMPDIR at a fresh directory on `/dev/shm` when that is a tmpfs and TMPDIR is unset. The tests
    /// make PostgreSQL clusters, certificates and stand-in programs in TMPDIR: on a slow virtual disk, copying one
    /// 39 MB cluster costs 0.65 s of system time, on tmpfs 0.06 s. A TMPDIR the caller set wins.
    pub fn on_tmpfs() -> Scratch {
        if std::env::var_os("TMPDIR").is_some() || !is_tmpfs("/dev/shm") {
            return Scratch(None);
        }
        remove_stale(Path::new("/dev/shm"));
        let dir = Path::new("/dev/shm").join(format!("{PREFIX}{}", std::process::id()));
        if fs::create_dir(&dir).is_err() {
            return Scratch(None);
        }
        // Still single-threaded: nothing else reads the environment yet.
        std::env::set_var("TMPDIR", &dir);
        println!("    scratch files in {} (tmpfs)", dir.display());
        Scratch(Some(dir))
    }

    /// Removes the directory now: the run may end in `process::exit`, which runs no `Drop`.
    pub fn remove(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.remove();
    }
}

const PREFIX: &str = "powersync-nix-test-";

/// Scratch directories of runs that were killed: their process is gone.
fn remove_stale(shm: &Path) {
    let Ok(entries) = fs::read_dir(shm) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn is_tmpfs(mount_point: &str) -> bool {
    fs::read_to_string("/proc/self/mounts").is_ok_and(|mounts| mounts_tmpfs(&mounts, mount_point))
}

/// Whether /proc/self/mounts lists `mount_point` as a tmpfs (fields: device, mount point, type, …).
fn mounts_tmpfs(mounts: &str, mount_point: &str) -> bool {
    mounts.lines().any(|line| {
        let mut fields = line.split(' ').skip(1);
        fields.next() == Some(mount_point) && fields.next() == Some("tmpfs")
    })
}

/// Puts the scripts directory of the `python3` that pip installed the checkers into (.ci/run: mypy, ty, ruff,
/// pyflakes) first on PATH. Under pyenv, PATH reaches them only through shims, a bash and pyenv round trip of
/// ~0.3 s per call, and the tests call them dozens of times; the programs run are the same.
pub fn python_scripts_first(sh: &Shell) {
    let Ok(scripts) = cmd!(
        sh,
        "python3 -c 'import sysconfig; print(sysconfig.get_path(\"scripts\"))'"
    )
    .quiet()
    .ignore_stderr()
    .read() else {
        // No python3: the steps that need it say so with the install line.
        return;
    };
    let scripts = PathBuf::from(scripts.trim());
    if !scripts.is_dir() {
        return;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(scripts).chain(std::env::split_paths(&path));
    if let Ok(path) = std::env::join_paths(dirs) {
        // Still single-threaded: nothing else reads the environment yet.
        std::env::set_var("PATH", path);
    }
}

/// Puts the newest PostgreSQL's own programs (`/usr/lib/postgresql/<major>/bin`, Debian's layout) first on PATH.
/// Debian's `psql` on PATH is pg_wrapper, a Perl script that picks a cluster and costs ~45 ms per call; the
/// scripts under test call psql hundreds of times, and on a NixOS host they get the binary itself.
pub fn postgres_programs_first() {
    let Some(bin) = newest_postgres_bin(Path::new("/usr/lib/postgresql")) else {
        // Not Debian's layout, or no PostgreSQL: the tests that need it say how to install it.
        return;
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(bin).chain(std::env::split_paths(&path));
    if let Ok(path) = std::env::join_paths(dirs) {
        // Still single-threaded: nothing else reads the environment yet.
        std::env::set_var("PATH", path);
    }
}

/// `<root>/<major>/bin` of the highest major version that has psql.
fn newest_postgres_bin(root: &Path) -> Option<PathBuf> {
    fs::read_dir(root)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("psql").is_file().then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin)
}

#[cfg(test)]
mod tests {
    use super::{mounts_tmpfs, newest_postgres_bin};

    #[test]
    fn the_newest_postgresql_with_psql_is_chosen_by_number() {
        let root = std::env::temp_dir().join(format!("xtask-pg-layout-{}", std::process::id()));
        for (major, psql) in [("9", true), ("15", true), ("16", false), ("main", true)] {
            let bin = root.join(major).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            if psql {
                std::fs::write(bin.join("psql"), "").unwrap();
            }
        }
        let chosen = newest_postgres_bin(&root);
        let _ = std::fs::remove_dir_all(&root);
        // 15 over 9 (a string order would pick 9); 16 has no psql; "main" is no version.
        assert_eq!(chosen, Some(root.join("15/bin")));
        assert_eq!(newest_postgres_bin(&root.join("absent")), None);
    }

    const MOUNTS: &str = "/dev/vda / ext4 rw,relatime 0 0\n\
                          tmpfs /dev/shm tmpfs rw,relatime,size=24683792k 0 0\n\
                          tmpfs /run tmpfs rw,nosuid 0 0\n";

    #[test]
    fn only_a_tmpfs_mount_point_counts() {
        assert!(mounts_tmpfs(MOUNTS, "/dev/shm"));
        assert!(!mounts_tmpfs(MOUNTS, "/"));
        assert!(!mounts_tmpfs(MOUNTS, "/tmp"));
        assert!(!mounts_tmpfs("none /dev/shm ramfs rw 0 0\n", "/dev/shm"));
    }
}

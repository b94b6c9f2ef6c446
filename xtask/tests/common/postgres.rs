//! A real PostgreSQL (Debian's) for the script tests: its own data directory and Unix socket in a scratch
//! directory, run as the `postgres` OS user (it refuses root), stopped with `pg_ctl` on drop so its shared
//! memory is released.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use super::{free_port, require, text, TempDir};

/// How a test wants its cluster; the socket directory, port and a small, unsynced server are always set.
pub struct Setup<'a> {
    /// Authentication options for initdb, e.g. `--auth-local=trust`.
    pub initdb: &'a [&'a str],
    /// A pg_hba.conf to use instead of initdb's.
    pub hba: Option<&'a str>,
    /// Further server settings, `name=value`.
    pub settings: Vec<String>,
    /// Keep the server's log in `postgres.log` in the scratch directory.
    pub log_file: bool,
    /// `pg_ctl stop -m` mode.
    pub stop_mode: &'static str,
}

pub struct Postgres {
    child: Child,
    pub port: u16,
    pub bin: PathBuf,
    pub dir: TempDir,
    stop_mode: &'static str,
}

impl Postgres {
    pub fn start(setup: Setup) -> Postgres {
        require("psql", "postgresql");
        require("setpriv", "util-linux");
        // The highest major by number, as `cargo xtask test` puts its psql first on PATH (xtask/src/test/env.rs).
        let bin = fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries are missing: apt-get install postgresql")
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let major: u32 = entry.file_name().to_str()?.parse().ok()?;
                let bin = entry.path().join("bin");
                bin.join("postgres").is_file().then_some((major, bin))
            })
            .max_by_key(|(major, _)| *major)
            .map(|(_, bin)| bin)
            .expect("no /usr/lib/postgresql/<major>/bin/postgres: apt-get install postgresql");
        let dir = TempDir::new("pg");
        let status = Command::new("chown")
            .arg("postgres:postgres")
            .arg(&dir.0)
            .status()
            .unwrap();
        assert!(status.success(), "chown to postgres failed (run as root)");
        let data = dir.path("data");
        // A copy of what initdb made for these options: the same files, at a tenth of initdb's CPU time.
        let output = Command::new("cp")
            .arg("-a")
            .arg(template(&bin, setup.initdb))
            .arg(&data)
            .output()
            .unwrap();
        assert!(output.status.success(), "cp: {}", text(&output));
        if let Some(hba) = setup.hba {
            fs::write(data.join("pg_hba.conf"), hba).unwrap();
        }
        let port = free_port();
        // setpriv execs postgres itself (runuser would stay in between), so the child is the postmaster.
        let mut command = as_postgres(&bin, "postgres");
        command.arg("-D").arg(&data);
        let base = [
            format!("port={port}"),
            format!("unix_socket_directories={}", dir.0.display()),
            "shared_buffers=16MB".to_owned(),
            "fsync=off".to_owned(),
        ];
        for setting in base.iter().chain(&setup.settings) {
            command.args(["-c", setting]);
        }
        let stderr = if setup.log_file {
            Stdio::from(fs::File::create(dir.path("postgres.log")).unwrap())
        } else {
            Stdio::null()
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let pg = Postgres {
            child,
            port,
            bin,
            dir,
            stop_mode: setup.stop_mode,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !pg.admin("SELECT 1").status.success() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not accept connections"
            );
            thread::sleep(Duration::from_millis(100));
        }
        pg
    }

    /// psql as the superuser over the Unix socket: the test's admin path, not the path under test.
    pub fn admin(&self, sql: &str) -> Output {
        as_postgres(&self.bin, "psql")
            .arg("-h")
            .arg(&self.dir.0)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap()
    }

    /// `admin`, which must succeed; its output trimmed.
    pub fn sql(&self, sql: &str) -> String {
        let output = self.admin(sql);
        assert!(output.status.success(), "{sql}: {}", text(&output));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    pub fn socket_dir(&self) -> &Path {
        &self.dir.0
    }
}

/// initdb's data directory for these options, made once and shared by every test process: under the target
/// directory, named by the server's version and the options, and renamed into place only when complete.
fn template(bin: &Path, initdb: &[&str]) -> PathBuf {
    let version = bin.parent().and_then(Path::file_name).unwrap();
    let name = format!("pg-{}{}", version.to_string_lossy(), initdb.join(""))
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_");
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let template = cache.join(&name);
    if template.is_dir() {
        return template;
    }
    // initdb runs as `postgres`, which may not reach into the target directory: it writes to a scratch
    // directory, copied beside the template by root and renamed into place (one file system).
    let scratch = TempDir::new("pg-template");
    let status = Command::new("chown")
        .arg("postgres:postgres")
        .arg(&scratch.0)
        .status()
        .unwrap();
    assert!(status.success(), "chown to postgres failed (run as root)");
    // --no-sync: a throwaway cluster (the server runs with fsync=off too); initdb's own sync of the new
    // data directory is most of its time.
    let output = as_postgres(bin, "initdb")
        .args(initdb)
        .args(["--no-sync", "-U", "postgres", "-D"])
        .arg(scratch.path("data"))
        .output()
        .unwrap();
    assert!(output.status.success(), "initdb: {}", text(&output));
    fs::create_dir_all(cache).unwrap();
    let copy = TempDir(cache.join(format!(
        "{name}.{}.{:?}",
        std::process::id(),
        thread::current().id()
    )));
    fs::create_dir_all(&copy.0).unwrap();
    let output = Command::new("cp")
        .arg("-a")
        .arg(scratch.path("data"))
        .arg(copy.path("data"))
        .output()
        .unwrap();
    assert!(output.status.success(), "cp: {}", text(&output));
    // Another process may have finished first; either copy is complete.
    let _ = fs::rename(copy.path("data"), &template);
    assert!(template.is_dir(), "{} was not made", template.display());
    template
}

/// A PostgreSQL program run as the `postgres` OS user.
pub fn as_postgres(bin: &Path, program: &str) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
        .arg(bin.join(program));
    command
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let stopped = as_postgres(&self.bin, "pg_ctl")
            .args(["stop", "-m", self.stop_mode, "-t", "20", "-D"])
            .arg(self.dir.path("data"))
            .output()
            .map(|output| output.status.success())
            .unwrap_or(false);
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

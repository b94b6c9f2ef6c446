//! What the script tests share: scratch directories, stand-in programs, tools that must be there, free
//! ports. Each test crate uses part of it.
#![allow(dead_code)]

pub mod http;
pub mod ops;
pub mod pki;
pub mod postgres;
pub mod script;
pub mod watchdog;

use std::{
    fs,
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::atomic::{AtomicUsize, Ordering},
    thread,
    time::{Duration, Instant},
};

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xtask-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&path, content).unwrap();
        path
    }

    /// An executable bash script: a stand-in for a program the script under test calls.
    pub fn program(&self, name: &str, body: &str) -> PathBuf {
        let path = self.file(name, &format!("#!/bin/bash\n{body}\n"));
        let status = Command::new("chmod").arg("+x").arg(&path).status().unwrap();
        assert!(status.success());
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Fails (never skips) when a tool the test runs is missing, naming the Debian package.
pub fn require(program: &str, package: &str) {
    let found = Path::new(program).is_file()
        || std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
            .unwrap_or(false);
    assert!(found, "`{program}` is missing: apt-get install {package}");
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on 127.0.0.1:{port}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Stdout and stderr together.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn assert_contains(what: &str, part: &str) {
    assert!(what.contains(part), "expected {part:?} in:\n{what}");
}

/// What a Nix expression evaluates to, with real Nix (`nix-instantiate --eval --strict --json`): how the tests
/// read what lib/ and the modules render.
pub fn nix_eval(expr: &str) -> serde_json::Value {
    require("nix-instantiate", "nix-bin");
    let output = std::process::Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--expr", expr])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "nix-instantiate: {}",
        text(&output)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// What `expr` evaluates to with `lib` bound to the repository's builtins-only lib (the flake's `lib`).
pub fn lib_eval(expr: &str) -> serde_json::Value {
    let lib = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../lib");
    nix_eval(&format!("let lib = import {}; in {expr}", lib.display()))
}

/// Runs a command that must succeed (network namespace and nftables set-up), failing with its stderr.
pub fn run_ok(program: &str, args: &[&str]) {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

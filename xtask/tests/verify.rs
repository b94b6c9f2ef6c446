//! The post-deploy checklist, run for real. `host`: modules/powersync/verify/verify.sh (`powersync-verify`)
//! against a real PostgreSQL, real curl, jq, tar and runuser, with `systemctl`, `podman`, `journalctl` and `ss`
//! replaced on PATH by stand-ins that serve a host's state from files. `outside`: `cargo xtask verify` against
//! a local TLS server whose certificates openssl makes at test time, with an SSH stand-in that runs the host
//! script locally. No output of either may contain a password or the client's token.
//!
//! Needs (Debian): bash, curl, jq, tar, openssl, postgresql, util-linux (setpriv, runuser), shellcheck.
//! A missing one fails the test with the package to install. Runs as root (PostgreSQL runs as `postgres`).

#[path = "verify/host.rs"]
mod host;
#[path = "verify/outside.rs"]
mod outside;

mod common;
use common::{
    assert_contains, free_port, http::HttpServer, require, script::assert_shellcheck_clean, text,
    TempDir,
};
use serde_json::{json, Value};

use std::{
    fs,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

/// The source DSN's password: in the service's env file, the container's environment and a journal line.
const PASSWORD: &str = "s3cr3t-Pa55";
/// The storage role's password: in its env file and the container's environment.
const STORAGE_PASSWORD: &str = "Stor4ge-Passw0rd-from-urandom";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn verify_script() -> PathBuf {
    repo().join("modules/powersync/verify/verify.sh")
}

fn assert_no_secret(what: &str) {
    for secret in [PASSWORD, STORAGE_PASSWORD] {
        assert!(!what.contains(secret), "a password leaked:\n{what}");
    }
}

/// The module builds verify.sh with writeShellApplication (lib.shellApplication), its one input the manifest:
/// shellcheck that text and the file itself.
#[test]
fn the_host_script_passes_shellcheck_as_the_module_embeds_it() {
    assert_shellcheck_clean(
        &verify_script(),
        &[("MANIFEST", "/nix/store/x-powersync-verify.json")],
    );
}

/// Every check id either side can report has its section in the runbook, where each failure points.
#[test]
fn every_check_has_its_runbook_anchor() {
    let runbook = fs::read_to_string(repo().join("docs/runbook.md")).unwrap();
    let script = fs::read_to_string(verify_script()).unwrap();
    let rust = fs::read_to_string(repo().join("xtask/src/verify/checks.rs")).unwrap();
    let mut ids: Vec<String> = Vec::new();
    for line in script.lines() {
        let line = line.trim_start();
        for verb in ["pass ", "warn ", "fail "] {
            if let Some(rest) = line.strip_prefix(verb) {
                let id = rest.split_whitespace().next().unwrap();
                if !id.starts_with('"') && !id.starts_with('$') {
                    ids.push(id.to_owned());
                }
            }
        }
        if let Some((_, rest)) = line.split_once("active_unit ") {
            ids.push(rest.split_whitespace().next().unwrap().to_owned());
        }
        if let Some(rest) = line.strip_prefix("for id in ") {
            ids.extend(
                rest.split(';')
                    .next()
                    .unwrap()
                    .split_whitespace()
                    .map(str::to_owned),
            );
        }
    }
    // The outside checks' ids: the IDS list in checks.rs, which Check::new holds every check to.
    let list = rust
        .split("pub const IDS")
        .nth(1)
        .expect("IDS in checks.rs");
    let list = &list[list.find('[').unwrap()..];
    let list = &list[list.find("= [").unwrap()..list.find("];").unwrap()];
    ids.extend(list.split('"').skip(1).step_by(2).map(str::to_owned));
    ids.sort();
    ids.dedup();
    assert!(ids.len() >= 20, "found only {ids:?}");
    for id in &ids {
        assert!(
            runbook.contains(&format!("\n### check: {id}\n")),
            "docs/runbook.md has no `### check: {id}` (anchor #check-{id})"
        );
    }
}

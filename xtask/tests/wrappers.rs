//! The shell entry points around the xtask: `utils/pkgs/powersync-service/update.sh` runs the same code as
//! `cargo xtask bump`, and `scripts/pre-commit` dry-builds exactly the hosts a commit touches.

mod common;
use common::{text, TempDir};

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn update_sh_runs_the_same_bump_as_the_xtask() {
    let dir = TempDir::new("wrappers-update");
    let pin = dir.path("image.nix");
    fs::write(
        &pin,
        fs::read(repo().join("modules/powersync/image.nix")).unwrap(),
    )
    .unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let args = [
        "--dry-run",
        "--registry",
        &format!("http://{closed}"),
        "--pin",
        pin.to_str().unwrap(),
    ];

    let direct = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("bump")
        .args(args)
        .output()
        .unwrap();
    let wrapped = Command::new(repo().join("utils/pkgs/powersync-service/update.sh"))
        .args(args)
        .env("XTASK", env!("CARGO_BIN_EXE_xtask"))
        .current_dir(&dir.0)
        .output()
        .unwrap();

    assert!(!direct.status.success());
    assert_eq!(wrapped.status.code(), direct.status.code());
    assert_eq!(text(&wrapped), text(&direct));
    assert!(
        text(&wrapped).contains("cannot reach the registry"),
        "{}",
        text(&wrapped)
    );
}

/// A git repository with `files` staged, and the pre-commit hook run with a fake xtask that records its
/// arguments (and fails when asked to).
fn pre_commit(label: &str, files: &[&str], fake_exit: i32) -> (Output, String) {
    let dir = TempDir::new(&format!("wrappers-{label}"));
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(args)
            .current_dir(&dir.0)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "--quiet"]);
    for file in files {
        dir.file(file, "x\n");
    }
    git(&["add", "--all"]);
    let log = dir.path("xtask-args");
    let fake = dir.program(
        "fake-xtask",
        &format!("echo \"$@\" >> {}\nexit {fake_exit}", log.display()),
    );
    let output = Command::new(repo().join("scripts/pre-commit"))
        .env("XTASK", &fake)
        .current_dir(&dir.0)
        .output()
        .unwrap();
    let args = fs::read_to_string(&log).unwrap_or_default();
    (output, args)
}

#[test]
fn pre_commit_dry_builds_the_hosts_whose_files_changed() {
    let (output, args) = pre_commit(
        "hosts",
        &[
            "hosts/web-arm/modules/powersync.nix",
            "hosts/web-arm/x.nix",
            "hosts/other/y.nix",
        ],
        0,
    );
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(args, "dry-build other web-arm\n");
}

#[test]
fn pre_commit_dry_builds_every_host_when_shared_code_changed() {
    let (output, args) = pre_commit(
        "shared",
        &["modules/powersync/default.nix", "hosts/web-arm/x.nix"],
        0,
    );
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(args, "dry-build --all\n");
}

#[test]
fn pre_commit_does_nothing_for_docs() {
    let (output, args) = pre_commit("docs", &["README.md", "docs/runbook.md"], 0);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(args, "");
}

#[test]
fn pre_commit_blocks_the_commit_when_a_dry_build_fails() {
    let (output, args) = pre_commit("blocks", &["hosts/web-arm/x.nix"], 1);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(args, "dry-build web-arm\n");
}

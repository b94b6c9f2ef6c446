//! The shell entry points around the xtask: `utils/pkgs/powersync-service/update.sh` runs the same code as
//! `cargo xtask bump`, and `scripts/pre-commit` dry-builds exactly the hosts a commit touches.

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

fn scratch(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-wrappers-{label}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn update_sh_runs_the_same_bump_as_the_xtask() {
    let dir = scratch("update");
    let pin = dir.join("image.nix");
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
        .current_dir(&dir)
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
    let _ = fs::remove_dir_all(dir);
}

/// A git repository with `files` staged, and the pre-commit hook run with a fake xtask that records its
/// arguments (and fails when asked to).
fn pre_commit(label: &str, files: &[&str], fake_exit: i32) -> (Output, String) {
    let dir = scratch(label);
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(args)
            .current_dir(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "--quiet"]);
    for file in files {
        let path = dir.join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "x\n").unwrap();
    }
    git(&["add", "--all"]);
    let log = dir.join("xtask-args");
    let fake = dir.join("fake-xtask");
    fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\nexit {fake_exit}\n",
            log.display()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    let output = Command::new(repo().join("scripts/pre-commit"))
        .env("XTASK", &fake)
        .current_dir(&dir)
        .output()
        .unwrap();
    let args = fs::read_to_string(&log).unwrap_or_default();
    let _ = fs::remove_dir_all(dir);
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

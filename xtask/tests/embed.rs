//! The operations scripts as the module embeds them (lib/script.nix, through common/script.rs): shellcheck on
//! that exact text and on the files, and one inlined source-connection.sh for the preflight and the watchdog.
//!
//! Needs (Debian): bash, shellcheck, nix-bin (nix-instantiate). A missing one fails the test with the package
//! to install.

mod common;
use common::{
    assert_contains,
    ops::{script, PASSWORD},
    require,
    script::{assert_shellcheck_clean, script_text},
    text, TempDir,
};
use std::{fs, process::Command};

/// The text the module gives writeShellApplication for one script (lib.scriptText).
fn embedded_text(name: &str) -> String {
    script_text(&script(&format!("{name}.sh")))
}

/// The module builds each script with writeShellApplication (through lib.shellApplication), which writes
/// its own header and runtimeEnv lines: check that exact text, and each file as it runs from the repository.
#[test]
fn scripts_pass_shellcheck_as_the_module_embeds_them() {
    let env_files = (
        "POWERSYNC_ENV_FILES",
        "/run/secrets/source.env /var/lib/powersync/storage.env",
    );
    let source_keys = [
        ("SOURCE_HOSTNAME", "db.x.supabase.co"),
        ("SOURCE_PORT", "5432"),
    ];
    let watchdog = [
        env_files,
        ("SOURCE_SSLMODE", "verify-full"),
        ("SLOT_PREFIX", "powersync_selfhost_"),
        ("STATE_DIR", "/var/lib/powersync-watchdog"),
        (
            "TEXTFILE",
            "/var/lib/prometheus-node-exporter-text/powersync.prom",
        ),
        ("MAX_INACTIVE_SECONDS", "100"),
        ("MAX_RETAINED_BYTES", "1073741824"),
        ("GROWTH_CHECKS", "18"),
        ("PGCONNECT_TIMEOUT", "10"),
        ("STATEMENT_TIMEOUT_SECONDS", "20"),
        ("MIN_RESTART_INTERVAL_SECONDS", "1800"),
        (
            "RESTART_CMD",
            "systemctl restart --no-block podman-powersync.service",
        ),
        (
            "LIVE_CMD",
            "systemctl is-active --quiet podman-powersync.service",
        ),
        (
            "JWKS_URI",
            "https://x.supabase.co/auth/v1/.well-known/jwks.json",
        ),
        (
            "JWKS_CHECK",
            "/nix/store/x-preflight-jwks/bin/preflight-jwks",
        ),
    ];
    let teardown = [
        (
            "UNITS",
            "podman-powersync.service powersync-compact.service",
        ),
        ("DECOMMISSIONED_FILE", "/var/lib/powersync/decommissioned"),
        (
            "IMAGE",
            "docker.io/journeyapps/powersync-service:1.26.1@sha256:abc",
        ),
        ("NETWORK", "v6egress"),
        ("CONTAINER_USER", "901:901"),
        (
            "CONFIG_MOUNTS",
            "/nix/store/x-service.yaml:/config/service.yaml:ro",
        ),
        (
            "ENV_FILES",
            "/run/secrets/source.env /var/lib/powersync/storage.env",
        ),
    ];
    let cases: [(&str, &[(&str, &str)]); 4] = [
        ("preflight-dsn", &source_keys),
        (
            "preflight-jwks",
            &[("JWKS_CONNECT_TIMEOUT", "5"), ("JWKS_MAX_TIME", "15")],
        ),
        ("slot-watchdog", &watchdog),
        ("teardown", &teardown),
    ];
    for (name, runtime_env) in cases {
        assert_shellcheck_clean(&script(&format!("{name}.sh")), runtime_env);
        assert!(
            !embedded_text(name).contains("#!/usr/bin/env bash"),
            "{name}: shebang"
        );
    }
    require("shellcheck", "shellcheck");
    let output = Command::new("shellcheck")
        .arg(script("source-connection.sh"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "source-connection.sh:\n{}",
        text(&output)
    );
}

/// One reading for both: the preflight and the watchdog carry the same inlined source-connection.sh, and the
/// embedded preflight runs on its own (no file beside it in the store).
#[test]
fn the_preflight_and_the_watchdog_embed_one_reading() {
    let library = fs::read_to_string(script("source-connection.sh")).unwrap();
    let dir = TempDir::new("embedded");
    for name in ["preflight-dsn", "slot-watchdog"] {
        let body = embedded_text(name);
        assert!(
            body.contains(&library),
            "{name} does not inline source-connection.sh"
        );
        assert!(
            !body.contains("/source-connection.sh\""),
            "{name} still sources it"
        );
    }
    let preflight = dir.file("preflight", &embedded_text("preflight-dsn"));
    let env = dir.file(
        "source.env",
        &format!("PS_SOURCE_DSN=postgresql://u:{PASSWORD}@db.x.supabase.co:5432/postgres\n"),
    );
    let output = Command::new("bash")
        .arg(&preflight)
        .arg(&env)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert_contains(&text(&output), "host db.x.supabase.co, port 5432");
}

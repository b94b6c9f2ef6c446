//! Values the module puts on systemd unit lines, held to the real `systemd-analyze verify` (Debian's systemd):
//! lib/systemd.nix's escaping, evaluated with nix-instantiate exactly as the module calls it, for the JWKS
//! preflight's ExecStartPre (`escapeSystemdExecArgs [ <check> auth.jwksUri ]`), and
//! `escapeSystemdEnvironmentValue` for Environment= lines (the flake's public lib; the watchdog once took its
//! values that way, and now takes them through writeShellApplication's runtimeEnv, which systemd never
//! expands). Each case is also written the way the module wrote it before, to show that systemd-analyze sees
//! the difference.
//!
//! Needs (Debian): systemd (systemd-analyze), nix-bin (nix-instantiate). A missing one fails the test.

mod common;
use common::{lib_eval, require, text, TempDir};

use std::{fs, os::unix::fs::PermissionsExt, path::Path, process::Command};

/// URIs an operator can write: percent-encoded octets (specifier syntax to systemd), `%` pairs that are
/// specifiers (`%n`, `%i`), `$`, `;`, `&`, quotes and a space.
const URIS: [&str; 7] = [
    "https://majxbigjafpzayzboxsf.supabase.co/auth/v1/.well-known/jwks.json",
    "https://auth.example.org/jwks%2Ejson",
    "https://auth.example.org/%n/%i/keys",
    "https://auth.example.org/keys?tenant=a;b&x=$HOME",
    "https://auth.example.org/my keys.json",
    "https://auth.example.org/\"q\"/a\\b",
    "https://auth.example.org/;",
];

/// `lib.<function>` applied to each value, evaluated by nix-instantiate with the repository's lib.
fn evaluate(function: &str, values: &[String]) -> Vec<String> {
    serde_json::from_value(lib_eval(&format!(
        "map ({function}) (builtins.fromJSON {})",
        serde_json::to_string(&serde_json::to_string(values).unwrap()).unwrap()
    )))
    .unwrap()
}

/// `systemd-analyze verify` on a oneshot service with these [Service] lines: (loads, what it said).
fn verify(dir: &TempDir, name: &str, lines: &str) -> (bool, String) {
    require("systemd-analyze", "systemd");
    let unit = dir.file(
        &format!("{name}.service"),
        &format!(
            "[Unit]\nDescription=test\n\n[Service]\nType=oneshot\n{lines}\nExecStart=/bin/true\n"
        ),
    );
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no", "--generators=no"])
        .arg(&unit)
        .output()
        .unwrap();
    (output.status.success(), text(&output))
}

fn executable(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, "#!/bin/sh\n").unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// The preflight line loads for every URI, with no specifier error, and fails the way the issue says when
/// the URI is pasted as it was.
#[test]
fn the_jwks_preflight_line_loads_for_any_uri() {
    let dir = TempDir::new("systemd-exec");
    let check = dir.path("bin/preflight-jwks");
    executable(&check);
    let check = check.display().to_string();
    let lines = evaluate(
        &format!(
            "uri: lib.escapeSystemdExecArgs [{} uri]",
            serde_json::to_string(&check).unwrap()
        ),
        &URIS.map(str::to_owned),
    );
    for (i, (uri, line)) in URIS.iter().zip(&lines).enumerate() {
        let (loads, said) = verify(
            &dir,
            &format!("escaped{i}"),
            &format!("ExecStartPre={line}"),
        );
        assert!(
            loads && !said.contains("specifier"),
            "{uri} as {line}:\n{said}"
        );
    }
    // Pasted: `%2E` is no specifier, so the unit does not load; `%n` is one, so the URI silently changes.
    let (loads, said) = verify(&dir, "pasted", &format!("ExecStartPre={check} {}", URIS[1]));
    assert!(
        !loads && said.contains("Failed to resolve unit specifiers"),
        "{said}"
    );
}

/// What systemd makes of an escaped argument is the value itself, byte for byte: written as the
/// executable's path (the one argument `systemd-analyze verify` resolves: it must name an existing
/// file), it names the file whose path is the value. `$$` becomes `$` only when systemd substitutes
/// variables at exec time, from the first argument on (where the URI is), not in the executable's path,
/// and systemd refuses quotes and backslashes in an executable's name, so those URIs are held to loading
/// only (above).
#[test]
fn an_escaped_argument_is_the_value_itself() {
    let dir = TempDir::new("systemd-argv");
    let uris: Vec<&str> = URIS
        .iter()
        .copied()
        .filter(|u| !u.contains(['$', '"', '\\']))
        .collect();
    let paths: Vec<String> = uris
        .iter()
        .map(|uri| format!("{}/{uri}", dir.path("argv").display()))
        .collect();
    let lines = evaluate("lib.escapeSystemdExecArg", &paths);
    for (i, (path, line)) in paths.iter().zip(&lines).enumerate() {
        executable(Path::new(path));
        let (loads, said) = verify(&dir, &format!("exact{i}"), &format!("ExecStartPre={line}"));
        assert!(loads, "{path} as {line}:\n{said}");
    }
    // Pasted, the space splits the path and systemd looks for another file.
    let spaced = paths.iter().find(|p| p.contains(' ')).unwrap();
    let (loads, said) = verify(&dir, "split", &format!("ExecStartPre={spaced}"));
    assert!(!loads && said.contains("is not executable"), "{said}");
}

/// An environment as NixOS writes it (Environment="NAME=value", JSON-quoted by nixos/lib/systemd-lib.nix):
/// escaped, no assignment is dropped; as it was, systemd drops the URI's.
#[test]
fn the_watchdog_environment_keeps_every_uri() {
    let dir = TempDir::new("systemd-env");
    let values = evaluate(
        "lib.escapeSystemdEnvironmentValue",
        &URIS.map(str::to_owned),
    );
    for (i, value) in values.iter().enumerate() {
        let line = format!(
            "Environment={}",
            serde_json::to_string(&format!("JWKS_URI={value}")).unwrap()
        );
        let (loads, said) = verify(&dir, &format!("env{i}"), &line);
        assert!(loads && !said.contains("specifier"), "{line}:\n{said}");
    }
    let line = format!(
        "Environment={}",
        serde_json::to_string(&format!("JWKS_URI={}", URIS[1])).unwrap()
    );
    let (_, said) = verify(&dir, "env-pasted", &line);
    assert!(said.contains("Failed to resolve specifiers"), "{said}");
}

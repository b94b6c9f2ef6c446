//! The JWKS preflight (modules/powersync/operations/preflight-jwks.sh), run for real against a local HTTP server.
//!
//! Needs (Debian): bash, curl, jq. A missing one fails the test with the package to install.

mod common;
use common::{
    assert_contains, free_port,
    http::HttpServer,
    ops::{script, EC_JWKS, EMPTY_JWKS},
    require, text,
};
use std::{
    process::Command,
    time::{Duration, Instant},
};

fn check(uri: &str) -> (Option<i32>, String) {
    require("curl", "curl");
    require("jq", "jq");
    let output = Command::new("bash")
        .arg(script("preflight-jwks.sh"))
        .arg(uri)
        .env("JWKS_CONNECT_TIMEOUT", "2")
        .env("JWKS_MAX_TIME", "2")
        .output()
        .unwrap();
    (output.status.code(), text(&output))
}

fn serving(status: u16, body: &str) -> (Option<i32>, String) {
    let server = HttpServer::start(&[("/jwks.json", status, body)]);
    check(&server.url("/jwks.json"))
}

#[test]
fn a_jwks_with_an_ec_signing_key_passes() {
    let (code, all) = serving(200, EC_JWKS);
    assert_eq!(code, Some(0), "{all}");
    assert_contains(&all, "serves 1 usable key(s)");
    assert!(!all.contains("WARNING"), "{all}");
}

#[test]
fn an_empty_jwks_is_refused_with_the_hs256_explanation() {
    let (code, all) = serving(200, EMPTY_JWKS);
    assert_eq!(code, Some(1), "{all}");
    assert_contains(&all, "HS256");
    assert_contains(&all, "asymmetric JWT signing keys");
}

#[test]
fn symmetric_and_encryption_keys_are_not_usable() {
    let jwks = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"RSA","use":"enc","n":"x","e":"AQAB"},{"kty":"EC","alg":"HS256"}]}"#;
    let (code, all) = serving(200, jwks);
    assert_eq!(code, Some(1), "{all}");
    assert_contains(&all, "HS256");
}

#[test]
fn json_without_keys_is_refused_with_the_hs256_explanation() {
    let (code, all) = serving(200, r#"{"error":"nope"}"#);
    assert_eq!(code, Some(1), "{all}");
    assert_contains(&all, "HS256");
}

#[test]
fn garbage_is_refused() {
    let (code, all) = serving(200, "<html>not a jwks</html>");
    assert_eq!(code, Some(1), "{all}");
    assert_contains(&all, "not with JSON");
}

#[test]
fn a_wrong_path_is_refused() {
    let server = HttpServer::start(&[("/jwks.json", 200, EC_JWKS)]);
    let (code, all) = check(&server.url("/nothing-here.json"));
    assert_eq!(code, Some(1), "{all}");
    assert_contains(&all, "HTTP 404");
}

#[test]
fn a_server_error_only_warns() {
    let (code, all) = serving(503, "unavailable");
    assert_eq!(code, Some(0), "{all}");
    assert_contains(&all, "WARNING");
    assert_contains(&all, "HTTP 503");
}

/// The service ignores a key whose key_ops lacks `verify` (401 PSYNC_S2101 for its tokens).
#[test]
fn a_key_that_may_not_verify_is_not_usable() {
    let key = |ops: &str| {
        format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","key_ops":{ops},"x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}}]}}"#
        )
    };
    for ops in [r#"["sign"]"#, "[]", r#""verify""#] {
        let (code, all) = serving(200, &key(ops));
        assert_eq!(code, Some(1), "{ops}: {all}");
        assert_contains(&all, "no usable signing key");
    }
    let (code, all) = serving(200, &key(r#"["sign","verify"]"#));
    assert_eq!(code, Some(0), "{all}");
    assert_contains(&all, "serves 1 usable key(s)");
}

/// Only a definite answer fails the start; the service itself starts without the JWKS and fetches it later.
#[test]
fn transient_answers_only_warn() {
    for status in [401, 403, 429, 500, 502, 503] {
        let (code, all) = serving(status, "{}");
        assert_eq!(code, Some(0), "{status}: {all}");
        assert_contains(&all, "WARNING");
        assert_contains(&all, &format!("HTTP {status}"));
    }
}

#[test]
fn a_refused_connection_only_warns() {
    let (code, all) = check(&format!("http://127.0.0.1:{}/jwks.json", free_port()));
    assert_eq!(code, Some(0), "{all}");
    assert_contains(&all, "WARNING");
}

#[test]
fn a_timeout_only_warns() {
    let server = HttpServer::start(&[]);
    let started = Instant::now();
    let (code, all) = check(&server.url("/hang"));
    assert_eq!(code, Some(0), "{all}");
    assert_contains(&all, "WARNING");
    assert_contains(&all, "timed out");
    assert!(started.elapsed() < Duration::from_secs(10), "JWKS_MAX_TIME");
}

/// The module passes curl's bounds (lib.defaults.operations.preflight.jwks); the script keeps none of its own.
/// A missing one is this host's configuration (exit 2), never a refused JWKS (exit 1).
#[test]
fn a_missing_bound_is_a_configuration_error() {
    let server = HttpServer::start(&[("/jwks.json", 200, EC_JWKS)]);
    for var in ["JWKS_CONNECT_TIMEOUT", "JWKS_MAX_TIME"] {
        let output = Command::new("bash")
            .arg(script("preflight-jwks.sh"))
            .arg(server.url("/jwks.json"))
            .env("JWKS_CONNECT_TIMEOUT", "2")
            .env("JWKS_MAX_TIME", "2")
            .env_remove(var)
            .output()
            .unwrap();
        let all = text(&output);
        assert_eq!(output.status.code(), Some(2), "{var}: {all}");
        assert_contains(&all, &format!("set {var}"));
    }
}

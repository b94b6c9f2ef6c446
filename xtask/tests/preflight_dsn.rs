//! The DSN preflight (modules/powersync/operations/preflight-dsn.sh), run for real against env files. Every case
//! checks that the DSN's password never shows.
//!
//! Needs (Debian): bash.

mod common;
use common::{
    assert_contains,
    ops::{assert_no_secret, script},
    text, TempDir,
};
use std::{path::PathBuf, process::Command};

const DIRECT: &str = "postgresql://powersync_repl:s3cr3t-Pa55@db.abcdefghijklmnopqrst.supabase.co:5432/postgres?sslmode=require";

/// Runs the preflight on env files with these contents, in order; the password must never show.
fn run(files: &[&str]) -> (Option<i32>, String) {
    let dir = TempDir::new("dsn");
    let paths: Vec<PathBuf> = files
        .iter()
        .enumerate()
        .map(|(i, content)| dir.file(&format!("{i}.env"), content))
        .collect();
    run_on(&paths)
}

fn run_on(paths: &[PathBuf]) -> (Option<i32>, String) {
    run_with(paths, &[])
}

/// The preflight with the connection's own keys (SOURCE_*) in its environment, as the module passes them.
fn run_with(paths: &[PathBuf], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = Command::new("bash")
        .arg(script("preflight-dsn.sh"))
        .args(paths)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let all = text(&output);
    assert_no_secret(&all);
    // Following the advice would break authentication: the service does not percent-decode.
    assert!(!all.contains("percent-encode"), "{all}");
    (output.status.code(), all)
}

fn dsn(value: &str) -> String {
    format!("PS_SOURCE_DSN={value}\n")
}

fn passes(files: &[&str], shown: &str) {
    let (code, all) = run(files);
    assert_eq!(code, Some(0), "{all}");
    assert_contains(&all, shown);
    assert_eq!(all.lines().count(), 1, "one line:\n{all}");
}

fn refused(files: &[&str], reason: &str) {
    let (code, all) = run(files);
    assert_eq!(code, Some(1), "{all}");
    assert_contains(&all, reason);
}

#[test]
fn the_direct_endpoint_passes_naming_only_host_and_port() {
    let (code, all) = run(&[&dsn(DIRECT)]);
    assert_eq!(code, Some(0), "{all}");
    assert_contains(&all, "host db.abcdefghijklmnopqrst.supabase.co, port 5432");
    assert!(!all.contains("powersync_repl"), "the user shows:\n{all}");
}

#[test]
fn ipv6_literals_and_leading_blanks_are_understood() {
    passes(
        &["  PS_SOURCE_DSN=postgresql://u:s3cr3t-Pa55@[fd00::1]:5433/postgres\n"],
        "host [fd00::1], port 5433",
    );
}

/// Podman's --env-file (>= 4.7.1) does not unquote: the container would receive the quotes.
#[test]
fn quoted_values_are_refused_because_the_container_gets_the_quotes() {
    for quoted in [format!("\"{DIRECT}\""), format!("'{DIRECT}'")] {
        refused(
            &[&dsn(&quoted)],
            "podman's --env-file does not remove quotes",
        );
    }
}

/// Podman strips a trailing \r: a file written on Windows is what the container gets without it.
#[test]
fn crlf_files_are_read_as_podman_reads_them() {
    passes(
        &[&format!(
            "# source\r\n\tPS_SOURCE_DSN={DIRECT}\r\nOTHER=1\r\n"
        )],
        "(host db.abcdefghijklmnopqrst.supabase.co, port 5432)",
    );
}

#[test]
fn the_pooler_is_refused_naming_the_direct_endpoint() {
    refused(
        &[&dsn("postgresql://postgres.ref:s3cr3t-Pa55@aws-0-eu-central-1.pooler.supabase.com:5432/postgres")],
        "use the direct endpoint's connection string, postgresql://<user>:<pw>@db.<project>.supabase.co:5432/postgres",
    );
}

#[test]
fn the_pooler_port_on_the_db_host_is_refused() {
    refused(&[&dsn(&DIRECT.replace(":5432", ":6543"))], "port 6543");
}

#[test]
fn replication_database_is_refused() {
    refused(
        &[&dsn(&format!("{DIRECT}&replication=database"))],
        "replication=database",
    );
}

#[test]
fn another_scheme_is_refused() {
    refused(
        &[&dsn("mysql://u:s3cr3t-Pa55@db.x.supabase.co:5432/postgres")],
        "not a postgres:// or postgresql:// URI",
    );
}

#[test]
fn a_missing_variable_is_refused() {
    refused(&["OTHER=1\n#PS_SOURCE_DSN=x\n"], "PS_SOURCE_DSN is not set");
}

#[test]
fn an_empty_file_is_refused() {
    refused(&[""], "PS_SOURCE_DSN is not set");
}

#[test]
fn an_empty_value_is_refused() {
    refused(&["PS_SOURCE_DSN=\n"], "PS_SOURCE_DSN is empty");
}

#[test]
fn a_missing_file_is_refused() {
    let dir = TempDir::new("dsn");
    let good = dir.file("good.env", &dsn(DIRECT));
    let (code, all) = run_on(&[good, dir.path("missing.env")]);
    assert_eq!(code, Some(1), "{all}");
    assert_contains(&all, "cannot read the environment file");
    assert_contains(&all, "missing.env");
}

#[test]
fn a_later_file_overrides_an_earlier_one() {
    let pooler = dsn("postgresql://u:s3cr3t-Pa55@x.pooler.supabase.com:5432/postgres");
    let direct = dsn(DIRECT);
    passes(&[&pooler, &direct], "host db.abcdefghijklmnopqrst");
    refused(&[&direct, &pooler], "Supabase's pooler");
    refused(&[&format!("{direct}{pooler}")], "Supabase's pooler");
}

/// The service takes the userinfo as written (uri-js, split(':')[1], no percent-decoding): every
/// character its parser alters or splits on, and `%`, is refused, encoded or not, without showing it.
#[test]
fn a_password_the_service_reads_differently_is_refused_without_showing_it() {
    for raw in [
        "/x",
        "?x",
        "#x",
        ":x",
        "@x",
        "%2Fx",
        "%41",
        "%7e",
        " x",
        "\"x",
        "<x",
        ">x",
        "[x",
        "\\x",
        "]x",
        "^x",
        "`x",
        "{x",
        "|x",
        "}x",
        "?sslmode=disable&x=",
    ] {
        refused(
            &[&dsn(&format!(
                "postgresql://u:s3cr3t-Pa55{raw}@db.x.supabase.co:5432/postgres"
            ))],
            "Choose a password of letters, digits and - . _ ~ ! $ & ' ( ) * + , ; = only",
        );
    }
}

/// A `%` that starts no %XX octet is a `%` to the service: it reads the password as written.
#[test]
fn a_literal_percent_passes() {
    for raw in ["%", "%zz", "%4", "%%", "%g1x"] {
        passes(
            &[&dsn(&format!(
                "postgresql://u:s3cr3t-Pa55{raw}@db.x.supabase.co:5432/postgres"
            ))],
            "host db.x.supabase.co, port 5432",
        );
    }
}

#[test]
fn a_password_of_the_safe_characters_passes() {
    passes(
        &[&dsn(
            "postgresql://u_1.x~:s3cr3t-Pa55!$&'()*+,;=._~@db.x.supabase.co:5432/postgres",
        )],
        "host db.x.supabase.co, port 5432",
    );
}

/// The service never reads the query: `?password=` makes it exit 150 while psql logs in.
#[test]
fn a_password_in_the_query_is_refused() {
    refused(
        &[&dsn(
            "postgresql://u@db.x.supabase.co:5432/postgres?sslmode=require&password=s3cr3t-Pa55",
        )],
        "PSYNC_S1108",
    );
}

/// libpq obeys these, the service ignores them: the two would connect differently.
#[test]
fn query_parameters_that_redirect_psql_are_refused() {
    for param in [
        "host=x",
        "hostaddr=::1",
        "port=6543",
        "dbname=x",
        "user=x",
        "service=x",
        "passfile=x",
        "HOST=x",
    ] {
        refused(
            &[&dsn(&format!("{DIRECT}&{param}"))],
            "which the service ignores and psql obeys",
        );
    }
    passes(
        &[&dsn(&format!(
            "{DIRECT}&connect_timeout=10&application_name=ps"
        ))],
        "port 5432",
    );
}

/// What the service refuses at start (exit 150) is refused before the container starts.
#[test]
fn what_the_service_refuses_is_refused_first() {
    for (value, reason) in [
        (
            "postgresql://u:s3cr3t-Pa55@db.x.supabase.co:5432/",
            "PSYNC_S1105",
        ),
        (
            "postgresql://u@db.x.supabase.co:5432/postgres",
            "PSYNC_S1108",
        ),
        ("postgresql://db.x.supabase.co:5432/postgres", "PSYNC_S1107"),
        (
            "postgresql://u:s3cr3t-Pa55@db.x.supabase.co:543/postgres",
            "PSYNC_S1110",
        ),
        (
            "postgresql://u:s3cr3t-Pa55@db.x.supabase.co:/postgres",
            "not a number",
        ),
        (
            "postgresql://u:s3cr3t-Pa55@h1,h2:5432/postgres",
            "one host only",
        ),
        (
            "postgresql://u:s3cr3t-Pa55@db.x.supabase.co:5432/postgres#x",
            "#fragment",
        ),
    ] {
        refused(&[&dsn(value)], reason);
    }
}

/// The connection's own keys win over the DSN, as in the service: a rendered `hostname` replaces the
/// DSN's host, and `password: !env PS_…` supplies a password the DSN could not carry.
#[test]
fn the_connections_own_keys_win_over_the_dsn() {
    let dir = TempDir::new("dsn");
    let elsewhere = dir.file(
        "elsewhere.env",
        &dsn("postgresql://u:s3cr3t-Pa55@old.example.com:6000/postgres"),
    );
    let keys = [
        ("SOURCE_HOSTNAME", "db.x.supabase.co"),
        ("SOURCE_PORT", "5432"),
    ];
    let (code, all) = run_with(&[elsewhere], &keys);
    assert_eq!(code, Some(0), "{all}");
    assert_contains(&all, "(host db.x.supabase.co, port 5432)");
    // A pooler string stays wrong under the key: its user is the pooler's.
    let pooler = dir.file(
        "pooler.env",
        &dsn("postgresql://u.ref:s3cr3t-Pa55@x.pooler.supabase.com:5432/postgres"),
    );
    let (code, all) = run_with(&[pooler], &keys);
    assert_eq!(code, Some(1), "{all}");
    assert_contains(&all, "Supabase's pooler");
    let to_pooler = dir.file("to-pooler.env", &dsn(DIRECT));
    let (code, all) = run_with(
        &[to_pooler],
        &[("SOURCE_HOSTNAME", "x.pooler.supabase.com")],
    );
    assert_eq!(code, Some(1), "{all}");
    assert_contains(&all, "Supabase's pooler");

    let key = [("SOURCE_PASSWORD_VAR", "PS_SOURCE_PASSWORD")];
    let split = dir.file(
        "split.env",
        &format!(
            "{}PS_SOURCE_PASSWORD=s3cr3t-Pa55/?#@:%x\n",
            dsn("postgresql://u@db.x.supabase.co:5432/postgres")
        ),
    );
    let (code, all) = run_with(&[split], &key);
    assert_eq!(code, Some(0), "{all}");
    let missing = dir.file(
        "missing.env",
        &dsn("postgresql://u@db.x.supabase.co:5432/postgres"),
    );
    let (code, all) = run_with(&[missing], &key);
    assert_eq!(code, Some(1), "{all}");
    assert_contains(&all, "PS_SOURCE_PASSWORD is not set");
    let quoted = dir.file(
        "quoted.env",
        &format!(
            "{}PS_SOURCE_PASSWORD='s3cr3t-Pa55'\n",
            dsn("postgresql://u@db.x.supabase.co:5432/postgres")
        ),
    );
    // A password may start with a quote: the service takes the key's value as it gets it, so the
    // preflight accepts it too, and notes what podman passes on.
    let (code, all) = run_with(&[quoted], &key);
    assert_eq!(code, Some(0), "{all}");
    assert_contains(
        &all,
        "note: PS_SOURCE_PASSWORD starts with a quote: podman's --env-file does not remove quotes",
    );
}

#[test]
fn no_argument_is_a_usage_error() {
    let (code, all) = run_on(&[]);
    assert_eq!(code, Some(2), "{all}");
    assert_contains(&all, "usage");
}

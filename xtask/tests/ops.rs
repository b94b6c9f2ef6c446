//! The operations scripts of the PowerSync module (modules/powersync/operations), run for real: the DSN preflight
//! against env files, the JWKS preflight against a local HTTP server, the slot watchdog against a real
//! PostgreSQL with logical replication slots, and the teardown with the container runtime injected. Every
//! case that handles a DSN also checks that its password never shows.
//!
//! Needs (Debian): bash, curl, jq, postgresql (server, psql, pg_recvlogical), util-linux (setpriv),
//! prometheus (promtool), shellcheck. A missing one fails the test with the package to install.

mod common;
use common::{
    assert_contains, free_port,
    http::HttpServer,
    require,
    script::{assert_shellcheck_clean, script_text},
    text, TempDir,
};

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

/// Every DSN in these tests carries this password; no output may contain it.
const PASSWORD: &str = "s3cr3t-Pa55";

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../modules/powersync/operations")
        .join(name)
}

fn assert_no_secret(what: &str) {
    assert!(!what.contains(PASSWORD), "the password leaked:\n{what}");
}

const EC_JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","use":"sig","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
const EMPTY_JWKS: &str = r#"{"keys":[]}"#;

mod preflight_dsn {
    use super::*;

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
}

mod preflight_jwks {
    use super::*;

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
}

mod slot_watchdog {
    use super::*;

    /// A real PostgreSQL on 127.0.0.1 with logical decoding on and a plain LOGIN role `watcher` that
    /// authenticates with PASSWORD (scram), plus the pg_recvlogical consumers a test starts.
    pub(super) struct Postgres {
        cluster: common::postgres::Postgres,
        consumers: Vec<Child>,
    }

    impl std::ops::Deref for Postgres {
        type Target = common::postgres::Postgres;
        fn deref(&self) -> &Self::Target {
            &self.cluster
        }
    }

    impl Postgres {
        pub(super) fn start() -> Postgres {
            Self::start_with(&[])
        }

        /// With extra server settings (`name=value`).
        pub(super) fn start_with(extra: &[&str]) -> Postgres {
            Self::start_with_hba(None, extra)
        }

        /// With a pg_hba.conf of the test's instead of initdb's (local trust, host scram).
        pub(super) fn start_with_hba(hba: Option<&str>, extra: &[&str]) -> Postgres {
            let settings: Vec<String> = [
                "listen_addresses=127.0.0.1",
                "wal_level=logical",
                "max_replication_slots=10",
                "max_wal_senders=10",
            ]
            .iter()
            .chain(extra)
            .map(|s| (*s).to_owned())
            .collect();
            let cluster = common::postgres::Postgres::start(common::postgres::Setup {
                initdb: &["--auth-local=trust", "--auth-host=scram-sha-256"],
                hba,
                settings,
                log_file: false,
                stop_mode: "fast",
            });
            cluster.sql(&format!("CREATE ROLE watcher LOGIN PASSWORD '{PASSWORD}'"));
            Postgres {
                cluster,
                consumers: Vec::new(),
            }
        }

        pub(super) fn create_slot(&self, name: &str) {
            self.sql(&format!(
                "SELECT pg_create_logical_replication_slot('{name}', 'test_decoding')"
            ));
        }

        /// Consumes the slot with pg_recvlogical, so it is `active` until the test ends.
        pub(super) fn consume(&mut self, name: &str) {
            let child = Command::new(self.bin.join("pg_recvlogical"))
                .arg("-h")
                .arg(&self.dir.0)
                .args(["-p", &self.port.to_string(), "-U", "postgres"])
                .args([
                    "-d",
                    "postgres",
                    "--slot",
                    name,
                    "--start",
                    "-f",
                    "/dev/null",
                    // Acknowledge within a second, as the service does, so a healthy consumer retains little.
                    "--status-interval=1",
                    "--fsync-interval=1",
                ])
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            self.consumers.push(child);
            let deadline = Instant::now() + Duration::from_secs(20);
            let query = format!(
                "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{name}' AND active"
            );
            while self.sql(&query) != "1" {
                assert!(
                    Instant::now() < deadline,
                    "slot {name} did not become active"
                );
                thread::sleep(Duration::from_millis(100));
            }
        }

        /// Freezes the consumers (SIGSTOP): the connection stays open, nothing is read or acknowledged,
        /// as in a half-open source connection. The source drops them after wal_sender_timeout.
        pub(super) fn freeze_consumers(&self) {
            for child in &self.consumers {
                let status = Command::new("kill")
                    .args(["-STOP", &child.id().to_string()])
                    .status()
                    .unwrap();
                assert!(status.success(), "kill -STOP");
            }
        }

        /// What restarting the service does to its frozen replication: the old consumer dies, a new one
        /// takes the slot.
        pub(super) fn restart_consumer(&mut self, name: &str) {
            for mut child in self.consumers.drain(..) {
                let _ = child.kill();
                let _ = child.wait();
            }
            self.consume(name);
        }

        /// Waits until the slot's consumer has acknowledged everything written so far.
        fn wait_caught_up(&self, name: &str) {
            let deadline = Instant::now() + Duration::from_secs(20);
            let query = format!(
                "SELECT confirmed_flush_lsn >= pg_current_wal_lsn() FROM pg_replication_slots \
                 WHERE slot_name = '{name}'"
            );
            while self.sql(&query) != "t" {
                assert!(Instant::now() < deadline, "slot {name} did not catch up");
                thread::sleep(Duration::from_millis(200));
            }
        }

        /// Ends every consumer, as a crash of the service would, and waits until the source sees it.
        fn end_consumers(&mut self) {
            for mut child in self.consumers.drain(..) {
                let _ = child.kill();
                let _ = child.wait();
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while self.sql("SELECT count(*) FROM pg_replication_slots WHERE active") != "0" {
                assert!(Instant::now() < deadline, "a slot stayed active");
                thread::sleep(Duration::from_millis(100));
            }
        }

        pub(super) fn slot_active(&self, name: &str) -> bool {
            self.sql(&format!(
                "SELECT active FROM pg_replication_slots WHERE slot_name = '{name}'"
            )) == "t"
        }

        /// Writes some WAL and moves to the next segment, so an unconsumed slot retains more.
        fn generate_wal(&self) {
            self.sql("CREATE TABLE IF NOT EXISTS filler (x text)");
            self.sql("INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 500)");
            self.sql("SELECT pg_switch_wal()");
        }

        pub(super) fn dsn(&self, password: &str) -> String {
            format!(
                "postgresql://watcher:{password}@127.0.0.1:{}/postgres?sslmode=disable",
                self.port
            )
        }
    }

    impl Drop for Postgres {
        /// The consumers go first; then the cluster stops (its own Drop, a fast shutdown).
        fn drop(&mut self) {
            for child in &mut self.consumers {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// One watchdog's world: its env file, state, metrics file, and a fake restart that logs to a file.
    pub(super) struct Watchdog {
        dir: TempDir,
        env_file: PathBuf,
    }

    pub(super) struct Run {
        pub(super) code: Option<i32>,
        pub(super) output: String,
        pub(super) restarts: usize,
        metrics: String,
    }

    impl Watchdog {
        pub(super) fn new(dsn: &str) -> Watchdog {
            let dir = TempDir::new("watchdog");
            let env_file = dir.file("source.env", &format!("PS_SOURCE_DSN={dsn}\n"));
            Watchdog { dir, env_file }
        }

        /// One run at `now`, LIVE_CMD answering `live`; `env` adds or overrides variables.
        fn run(&self, now: u64, live: bool, env: &[(&str, &str)]) -> Run {
            self.run_with(Some(now), live, env)
        }

        /// One run on the real clock, the container live.
        pub(super) fn run_now(&self, env: &[(&str, &str)]) -> Run {
            self.run_with(None, true, env)
        }

        fn run_with(&self, now: Option<u64>, live: bool, env: &[(&str, &str)]) -> Run {
            let log = self.dir.path("restarts.log");
            let mut command = Command::new("bash");
            if let Some(now) = now {
                command.env("NOW", now.to_string());
            }
            let output = command
                .arg(script("slot-watchdog.sh"))
                .envs(module_limits())
                .env("POWERSYNC_ENV_FILES", &self.env_file)
                // The test server has no TLS; the module passes the connection's sslmode key.
                .env("SOURCE_SSLMODE", "disable")
                .env("SLOT_PREFIX", "powersync_selfhost_")
                .env("STATE_DIR", self.dir.path("state"))
                .env("TEXTFILE", self.dir.path("powersync.prom"))
                .env("RESTART_CMD", format!("echo restart >> {}", log.display()))
                .env("LIVE_CMD", if live { "true" } else { "false" })
                .env("PGCONNECT_TIMEOUT", "5")
                .envs(env.iter().copied())
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let restarts = fs::read_to_string(&log)
                .map(|log| log.lines().count())
                .unwrap_or(0);
            let metrics = fs::read_to_string(self.dir.path("powersync.prom")).unwrap_or_default();
            let output_text = text(&output);
            assert_no_secret(&output_text);
            assert_no_secret(&metrics);
            Run {
                code: output.status.code(),
                output: output_text,
                restarts,
                metrics,
            }
        }
    }

    impl Run {
        /// The value of one series, e.g. `powersync_slot_active{slot="x"}`.
        pub(super) fn value(&self, series: &str) -> Option<&str> {
            self.metrics
                .lines()
                .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        }

        pub(super) fn assert_value(&self, series: &str, expected: &str) {
            assert_eq!(
                self.value(series),
                Some(expected),
                "{series} in:\n{}\n{}",
                self.metrics,
                self.output
            );
        }
    }

    pub(super) const SLOT: &str = "powersync_selfhost_1_ab12";
    const T0: u64 = 1_800_000_000;

    pub(super) fn series(name: &str) -> String {
        format!("{name}{{slot=\"{SLOT}\"}}")
    }

    /// Psql wrapped so the test sees its argv (and, in psql-env.log, where it was told to connect).
    fn logging_psql(dir: &TempDir) -> (PathBuf, PathBuf) {
        let log = dir.path("psql-argv.log");
        let env_log = dir.path("psql-env.log");
        let psql = dir.program(
            "psql",
            &format!(
                "printf '%s\\n' \"$@\" >> {}\n\
                 echo \"$PGHOST $PGPORT $PGUSER $PGDATABASE $PGSSLMODE $PGOPTIONS\" >> {}\n\
                 exec psql \"$@\"",
                log.display(),
                env_log.display()
            ),
        );
        (psql, log)
    }

    #[test]
    fn a_healthy_active_slot_is_left_alone_and_exported() {
        let mut pg = Postgres::start();
        pg.create_slot(SLOT);
        pg.consume(SLOT);
        // `_` is a LIKE wildcard: these must not pass for our prefix.
        pg.create_slot("powersyncxselfhost_1_ffff");
        pg.create_slot("other_prefix_1_ffff");
        let run = Watchdog::new(&pg.dsn(PASSWORD)).run(T0, true, &[]);
        assert_eq!(run.code, Some(0), "{}", run.output);
        assert_eq!(run.restarts, 0);
        run.assert_value("powersync_watchdog_source_up", "1");
        run.assert_value("powersync_slot_present", "1");
        run.assert_value(&series("powersync_slot_active"), "1");
        run.assert_value(&series("powersync_slot_inactive_seconds"), "0");
        run.assert_value(
            &format!("powersync_slot_wal_status{{slot=\"{SLOT}\",status=\"reserved\"}}"),
            "1",
        );
        let retained = run.value(&series("powersync_slot_retained_wal_bytes"));
        assert!(
            retained.is_some_and(|bytes| bytes.parse::<u64>().is_ok()),
            "{}",
            run.metrics
        );
        run.assert_value("powersync_watchdog_restarts_total", "0");
        run.assert_value(
            "powersync_watchdog_last_run_timestamp_seconds",
            &T0.to_string(),
        );
        assert!(!run.metrics.contains("powersyncx"), "{}", run.metrics);
        assert!(!run.metrics.contains("other_prefix"), "{}", run.metrics);
    }

    #[test]
    fn the_textfile_is_valid_prometheus_text_with_help_and_type() {
        require("promtool", "prometheus");
        let pg = Postgres::start();
        pg.create_slot(SLOT);
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        let run = watchdog.run(T0, true, &[]);
        let families: Vec<&str> = run
            .metrics
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| line.split(['{', ' ']).next().unwrap())
            .collect();
        for expected in [
            "powersync_watchdog_source_up",
            "powersync_slot_present",
            "powersync_slot_active",
            "powersync_slot_retained_wal_bytes",
            "powersync_slot_wal_status",
            "powersync_slot_inactive_seconds",
            "powersync_watchdog_restarts_total",
            "powersync_watchdog_last_run_timestamp_seconds",
        ] {
            assert!(families.contains(&expected), "{expected}:\n{}", run.metrics);
        }
        for family in families {
            assert_contains(&run.metrics, &format!("# HELP {family} "));
            assert_contains(&run.metrics, &format!("# TYPE {family} "));
        }
        let output = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(fs::File::open(watchdog.dir.path("powersync.prom")).unwrap())
            .output()
            .unwrap();
        assert!(output.status.success(), "promtool: {}", text(&output));
        let leftovers: Vec<_> = fs::read_dir(&watchdog.dir.0)
            .unwrap()
            .filter_map(|entry| entry.ok())
            .filter(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".powersync")
            })
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    #[test]
    fn an_inactive_slot_restarts_the_live_container_after_the_limit() {
        let pg = Postgres::start();
        pg.create_slot(SLOT);
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        let limit = [("MAX_INACTIVE_SECONDS", "300")];
        let first = watchdog.run(T0, true, &limit);
        assert_eq!(first.restarts, 0, "first sight starts the clock");
        first.assert_value(&series("powersync_slot_active"), "0");
        assert_eq!(watchdog.run(T0 + 299, true, &limit).restarts, 0);
        let run = watchdog.run(T0 + 300, true, &limit);
        assert_eq!(run.restarts, 1, "{}", run.output);
        assert_eq!(run.code, Some(0), "{}", run.output);
        assert_contains(&run.output, "inactive for 300s");
        run.assert_value(&series("powersync_slot_inactive_seconds"), "300");
        run.assert_value("powersync_watchdog_restarts_total", "1");
    }

    #[test]
    fn a_second_restart_waits_for_the_minimum_interval() {
        let pg = Postgres::start();
        pg.create_slot(SLOT);
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        let limits = [
            ("MAX_INACTIVE_SECONDS", "300"),
            ("MIN_RESTART_INTERVAL_SECONDS", "1800"),
        ];
        watchdog.run(T0, true, &limits);
        assert_eq!(watchdog.run(T0 + 300, true, &limits).restarts, 1);
        let suppressed = watchdog.run(T0 + 900, true, &limits);
        assert_eq!(suppressed.restarts, 1, "{}", suppressed.output);
        assert_contains(&suppressed.output, "restart suppressed");
        suppressed.assert_value("powersync_watchdog_restarts_total", "1");
        assert_eq!(watchdog.run(T0 + 300 + 1799, true, &limits).restarts, 1);
        assert_eq!(watchdog.run(T0 + 300 + 1800, true, &limits).restarts, 2);
    }

    #[test]
    fn a_container_that_is_not_live_is_left_to_systemd() {
        let pg = Postgres::start();
        pg.create_slot(SLOT);
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        watchdog.run(T0, false, &[]);
        let run = watchdog.run(T0 + 3600, false, &[]);
        assert_eq!(run.restarts, 0);
        assert_eq!(run.code, Some(0), "{}", run.output);
        assert_contains(&run.output, "not running");
        run.assert_value(&series("powersync_slot_inactive_seconds"), "3600");
    }

    /// The time a slot spent inactive while the container was down does not count once it is up again.
    #[test]
    fn a_container_that_just_came_back_gets_the_full_time() {
        let pg = Postgres::start();
        pg.create_slot(SLOT);
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        let limit = [("MAX_INACTIVE_SECONDS", "300")];
        watchdog.run(T0, false, &limit);
        assert_eq!(watchdog.run(T0 + 3600, true, &limit).restarts, 0);
        assert_eq!(watchdog.run(T0 + 3600 + 299, true, &limit).restarts, 0);
        assert_eq!(watchdog.run(T0 + 3600 + 300, true, &limit).restarts, 1);
    }

    /// A consumer that holds the slot (active) but acknowledges nothing: the source keeps every byte.
    #[test]
    fn growing_retained_wal_restarts_after_the_growth_checks() {
        let mut pg = Postgres::start();
        pg.create_slot(SLOT);
        pg.consume(SLOT);
        pg.freeze_consumers();
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        let limits = [
            ("MAX_INACTIVE_SECONDS", "1000000"),
            ("MAX_RETAINED_BYTES", "1000"),
            ("GROWTH_CHECKS", "3"),
        ];
        let mut restarts = Vec::new();
        let mut last = None;
        for step in 0..4 {
            pg.generate_wal();
            let run = watchdog.run(T0 + step * 60, true, &limits);
            restarts.push(run.restarts);
            last = Some(run);
        }
        // Run 1 has nothing to compare with; runs 2, 3 and 4 grow: the third growth restarts.
        assert_eq!(restarts, vec![0, 0, 0, 1]);
        assert_contains(&last.unwrap().output, "grown on 3 runs in a row");
    }

    const ORPHAN: &str = "powersync_selfhost_0_dead";

    /// A slot with our prefix that nothing consumes (an earlier instance's), beside the service's own active
    /// one: restarting the healthy service for it would drop every client and change nothing.
    #[test]
    fn an_orphan_slot_is_reported_and_never_restarts_a_replicating_service() {
        let mut pg = Postgres::start();
        pg.create_slot(ORPHAN);
        pg.create_slot(SLOT);
        pg.consume(SLOT);
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        let limits = [
            ("MAX_INACTIVE_SECONDS", "300"),
            ("MAX_RETAINED_BYTES", "100000"),
            ("GROWTH_CHECKS", "2"),
            ("MIN_RESTART_INTERVAL_SECONDS", "1"),
        ];
        pg.sql("CREATE TABLE filler (x text)");
        let mut last = None;
        for step in 0..5 {
            // The orphan's retained WAL grows by ~0.5 MB on every run, past the limit; the service's
            // consumer acknowledges it.
            pg.sql("INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 500)");
            pg.wait_caught_up(SLOT);
            let run = watchdog.run(T0 + step * 3600, true, &limits);
            assert_eq!(run.restarts, 0, "run {step}: {}", run.output);
            assert_eq!(run.code, Some(0), "{}", run.output);
            last = Some(run);
        }
        let run = last.unwrap();
        run.assert_value(
            &format!("powersync_slot_orphaned{{slot=\"{ORPHAN}\"}}"),
            "1",
        );
        run.assert_value(&series("powersync_slot_orphaned"), "0");
        run.assert_value(&format!("powersync_slot_active{{slot=\"{ORPHAN}\"}}"), "0");
        assert_contains(
            &run.output,
            &format!("{ORPHAN} inactive while another slot of ours replicates"),
        );
        assert_contains(&run.output, "Orphan slots");
    }

    /// When the service's slot stops too, replication has stalled: the clock runs from when the last slot
    /// went inactive, not from the orphan's first sighting.
    #[test]
    fn with_every_slot_inactive_the_clock_starts_at_the_last_one() {
        let mut pg = Postgres::start();
        pg.create_slot(ORPHAN);
        pg.create_slot(SLOT);
        pg.consume(SLOT);
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        let limit = [("MAX_INACTIVE_SECONDS", "300")];
        assert_eq!(watchdog.run(T0, true, &limit).restarts, 0);
        assert_eq!(watchdog.run(T0 + 3600, true, &limit).restarts, 0);
        pg.end_consumers();
        let stalled = watchdog.run(T0 + 7200, true, &limit);
        assert_eq!(stalled.restarts, 0, "{}", stalled.output);
        stalled.assert_value(&series("powersync_slot_orphaned"), "0");
        stalled.assert_value(
            &format!("powersync_slot_orphaned{{slot=\"{ORPHAN}\"}}"),
            "0",
        );
        assert_eq!(watchdog.run(T0 + 7200 + 299, true, &limit).restarts, 0);
        let run = watchdog.run(T0 + 7200 + 300, true, &limit);
        assert_eq!(run.restarts, 1, "{}", run.output);
        assert_contains(&run.output, "every slot of ours");
        assert_contains(&run.output, "inactive for 300s");
    }

    #[test]
    fn no_slot_is_reported_but_not_restarted() {
        let pg = Postgres::start();
        let run = Watchdog::new(&pg.dsn(PASSWORD)).run(T0, true, &[("MAX_INACTIVE_SECONDS", "0")]);
        assert_eq!(run.code, Some(0), "{}", run.output);
        assert_eq!(run.restarts, 0);
        run.assert_value("powersync_slot_present", "0");
        run.assert_value("powersync_watchdog_source_up", "1");
        assert_contains(&run.output, "WARNING: no replication slot");
    }

    #[test]
    fn a_wrong_password_is_reported_and_nothing_restarts() {
        let pg = Postgres::start();
        pg.create_slot(SLOT);
        let watchdog = Watchdog::new(&pg.dsn("wrong-Pa55"));
        watchdog.run(T0, true, &[]);
        let run = watchdog.run(T0 + 99_999, true, &[]);
        assert_eq!(run.code, Some(1), "{}", run.output);
        assert_eq!(run.restarts, 0);
        run.assert_value("powersync_watchdog_source_up", "0");
        assert!(
            run.value("powersync_slot_present").is_none(),
            "{}",
            run.metrics
        );
        run.assert_value(
            "powersync_watchdog_last_run_timestamp_seconds",
            &(T0 + 99_999).to_string(),
        );
        assert_contains(&run.output, "password authentication failed");
        assert!(!run.output.contains("wrong-Pa55"), "{}", run.output);
    }

    /// Argv is world-readable in /proc: it holds no URI and no secret, only the query.
    #[test]
    fn the_connection_reaches_psql_only_through_the_environment() {
        let pg = Postgres::start();
        pg.create_slot(SLOT);
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        let (psql, argv) = logging_psql(&watchdog.dir);
        let run = watchdog.run(T0, true, &[("PSQL", psql.to_str().unwrap())]);
        run.assert_value("powersync_watchdog_source_up", "1");
        let argv = fs::read_to_string(argv).unwrap();
        assert_no_secret(&argv);
        for part in ["postgres", "watcher", "127.0.0.1", &pg.port.to_string()] {
            assert!(!argv.contains(part), "{part} in argv:\n{argv}");
        }
        let env = fs::read_to_string(watchdog.dir.path("psql-env.log")).unwrap();
        assert_eq!(
            env.trim(),
            format!(
                "127.0.0.1 {} watcher postgres disable -c statement_timeout=20s",
                pg.port
            )
        );
    }

    /// The rendered `hostname`/`port` keys win over the DSN, as in the service; a password the DSN cannot
    /// carry (`?…=`, `@`, `:`, `%`) comes from a `password: !env` key and never reaches argv.
    #[test]
    fn the_rendered_keys_win_and_a_key_password_stays_off_the_command_line() {
        let pg = Postgres::start();
        pg.create_slot(SLOT);
        let special = format!("{PASSWORD}?sslmode=disable&x=@:%41/#\\ ");
        pg.sql(&format!("CREATE ROLE special LOGIN PASSWORD '{special}'"));
        let watchdog = Watchdog::new("unused");
        fs::write(
            &watchdog.env_file,
            format!(
                "PS_SOURCE_DSN=postgresql://special@db.elsewhere.invalid:6000/postgres\n\
                 PS_SOURCE_PASSWORD={special}\n"
            ),
        )
        .unwrap();
        let (psql, argv) = logging_psql(&watchdog.dir);
        let port = pg.port.to_string();
        let run = watchdog.run(
            T0,
            true,
            &[
                ("PSQL", psql.to_str().unwrap()),
                ("SOURCE_HOSTNAME", "127.0.0.1"),
                ("SOURCE_PORT", &port),
                ("SOURCE_PASSWORD_VAR", "PS_SOURCE_PASSWORD"),
            ],
        );
        assert_eq!(run.code, Some(0), "{}", run.output);
        run.assert_value("powersync_watchdog_source_up", "1");
        let argv = fs::read_to_string(argv).unwrap();
        assert_no_secret(&argv);
        assert!(!argv.contains("sslmode"), "{argv}");
    }

    /// The service does not percent-decode and never reads `?password=`: the watchdog, reading as the
    /// service does, refuses both instead of logging in where the service cannot (and restarting it for
    /// nothing), and psql never runs with them.
    #[test]
    fn an_encoded_or_query_password_is_refused_before_psql() {
        let pg = Postgres::start();
        pg.create_slot(SLOT);
        pg.sql("CREATE ROLE special LOGIN PASSWORD 's3cr3t-Pa55/x'");
        for (dsn, reason) in [
            (
                format!("postgresql://special:s3cr3t-Pa55%2Fx@127.0.0.1:{}/postgres", pg.port),
                "Choose a password of",
            ),
            (
                format!("postgresql://special:s3cr3t-Pa55?x=@127.0.0.1:{}/postgres", pg.port),
                "Choose a password of",
            ),
            (
                format!(
                    "postgresql://special@127.0.0.1:{}/postgres?sslmode=disable&password=s3cr3t-Pa55/x",
                    pg.port
                ),
                "PSYNC_S1108",
            ),
        ] {
            let watchdog = Watchdog::new(&dsn);
            let (psql, argv) = logging_psql(&watchdog.dir);
            // Long after the limit: a watchdog that logged in would restart here.
            watchdog.run(T0, true, &[("PSQL", psql.to_str().unwrap())]);
            let run = watchdog.run(T0 + 99_999, true, &[("PSQL", psql.to_str().unwrap())]);
            assert_eq!(run.code, Some(1), "{}", run.output);
            assert_contains(&run.output, reason);
            run.assert_value("powersync_watchdog_source_up", "0");
            assert_eq!(run.restarts, 0);
            assert!(!argv.exists(), "psql ran for {dsn}");
        }
    }

    /// Podman does not unquote: the container would get the quotes, so the watchdog refuses them too.
    #[test]
    fn a_quoted_dsn_is_refused_as_the_container_would_get_it() {
        let pg = Postgres::start();
        let watchdog = Watchdog::new("unused");
        fs::write(
            &watchdog.env_file,
            format!("  PS_SOURCE_DSN=\"{}\"\n", pg.dsn(PASSWORD)),
        )
        .unwrap();
        let run = watchdog.run(T0, true, &[]);
        assert_eq!(run.code, Some(1), "{}", run.output);
        assert_contains(&run.output, "does not remove quotes");
        run.assert_value("powersync_watchdog_source_up", "0");
    }

    /// A CRLF file (podman strips the \r) is read as the container gets it: the watchdog logs in.
    #[test]
    fn a_crlf_env_file_is_read_as_podman_reads_it() {
        let pg = Postgres::start();
        pg.create_slot(SLOT);
        let watchdog = Watchdog::new("unused");
        fs::write(
            &watchdog.env_file,
            format!(
                "PS_SOURCE_DSN=postgresql://wrong\r\n\t PS_SOURCE_DSN={}\r\n",
                pg.dsn(PASSWORD)
            ),
        )
        .unwrap();
        let run = watchdog.run(T0, true, &[]);
        assert_eq!(run.code, Some(0), "{}", run.output);
        run.assert_value("powersync_watchdog_source_up", "1");
    }

    #[test]
    fn an_unreadable_env_file_or_unsplittable_dsn_never_reaches_psql() {
        let dir = TempDir::new("watchdog-psql");
        let (psql, argv) = logging_psql(&dir);
        let psql = [("PSQL", psql.to_str().unwrap())];
        let missing = Watchdog::new("unused");
        fs::remove_file(&missing.env_file).unwrap();
        let unsplittable =
            Watchdog::new("postgresql://watcher:s3cr3t-Pa55/x@127.0.0.1:5432/postgres");
        for (watchdog, reason) in [
            (missing, "cannot read"),
            (unsplittable, "Choose a password of"),
        ] {
            let run = watchdog.run(T0, true, &psql);
            assert_eq!(run.code, Some(1), "{}", run.output);
            assert_contains(&run.output, reason);
            run.assert_value("powersync_watchdog_source_up", "0");
            assert_eq!(run.restarts, 0);
        }
        assert!(!argv.exists(), "psql ran");
    }

    /// statement_timeout reaches the server through PGOPTIONS: a query that hangs is cancelled.
    #[test]
    fn a_hanging_query_is_cancelled_by_the_statement_timeout() {
        let pg = Postgres::start();
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        // psql with the watchdog's environment, running a query that would take 30 s.
        let psql = watchdog
            .dir
            .program("psql", "exec psql -w -X -q -c 'SELECT pg_sleep(30)'");
        let started = Instant::now();
        let run = watchdog.run(
            T0,
            true,
            &[
                ("PSQL", psql.to_str().unwrap()),
                ("STATEMENT_TIMEOUT_SECONDS", "1"),
            ],
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            run.output
        );
        assert_eq!(run.code, Some(1), "{}", run.output);
        assert_contains(&run.output, "statement timeout");
        run.assert_value("powersync_watchdog_source_up", "0");
    }

    /// The module's restart (lib.watchdogCommands) does not wait for the container (a stuck service ignores
    /// SIGTERM): it only queues the job.
    #[test]
    fn the_default_restart_does_not_wait_for_the_container() {
        let pg = Postgres::start();
        pg.create_slot(SLOT);
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        let log = watchdog.dir.path("systemctl.log");
        watchdog
            .dir
            .program("systemctl", &format!("echo \"$*\" >> {}", log.display()));
        let path = format!(
            "{}:{}",
            watchdog.dir.0.display(),
            std::env::var("PATH").unwrap()
        );
        let output = Command::new("bash")
            .arg(script("slot-watchdog.sh"))
            .envs(module_limits())
            .envs(watchdog_commands("podman-powersync.service"))
            .env("POWERSYNC_ENV_FILES", &watchdog.env_file)
            .env("SOURCE_SSLMODE", "disable")
            .env("SLOT_PREFIX", "powersync_selfhost_")
            .env("STATE_DIR", watchdog.dir.path("state"))
            .env("TEXTFILE", watchdog.dir.path("powersync.prom"))
            .env("MAX_INACTIVE_SECONDS", "0")
            .env("PATH", path)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        let calls = fs::read_to_string(log).unwrap();
        assert_eq!(
            calls.lines().collect::<Vec<_>>(),
            [
                "is-active --quiet podman-powersync.service",
                "restart --no-block podman-powersync.service"
            ]
        );
    }

    /// A restarted container gets the full limit again before the next restart, even without a rate limit:
    /// it stands by on the storage lock for up to a minute before it takes its slot.
    #[test]
    fn a_restart_starts_the_clock_again() {
        let pg = Postgres::start();
        pg.create_slot(SLOT);
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        let limits = [
            ("MAX_INACTIVE_SECONDS", "90"),
            ("MIN_RESTART_INTERVAL_SECONDS", "1"),
        ];
        watchdog.run(T0, true, &limits);
        assert_eq!(watchdog.run(T0 + 90, true, &limits).restarts, 1);
        let quiet = watchdog.run(T0 + 179, true, &limits);
        assert_eq!(quiet.restarts, 1, "{}", quiet.output);
        assert!(!quiet.output.contains("suppressed"), "{}", quiet.output);
        assert_eq!(watchdog.run(T0 + 180, true, &limits).restarts, 2);
    }

    #[test]
    fn the_jwks_result_is_exported_and_never_restarts() {
        let pg = Postgres::start();
        pg.create_slot(SLOT);
        let server = HttpServer::start(&[("/good", 200, EC_JWKS), ("/empty", 200, EMPTY_JWKS)]);
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        let unreachable = format!("http://127.0.0.1:{}/jwks.json", free_port());
        for (uri, up, ok) in [
            (server.url("/good"), "1", Some("1")),
            (server.url("/empty"), "1", Some("0")),
            (unreachable, "0", None),
        ] {
            let jwks_check = script("preflight-jwks.sh").display().to_string();
            let run = watchdog.run(T0, true, &[("JWKS_URI", &uri), ("JWKS_CHECK", &jwks_check)]);
            assert_eq!(run.code, Some(0), "{uri}: {}", run.output);
            assert_eq!(run.restarts, 0);
            run.assert_value("powersync_jwks_check_up", up);
            assert_eq!(
                run.value("powersync_jwks_usable_keys_ok"),
                ok,
                "{uri}: {}",
                run.metrics
            );
        }
    }

    /// The module passes each of these (operations.nix, runtimeEnv) and the watchdog keeps no default for
    /// any: one missing is a configuration error before the source is asked or anything restarts.
    #[test]
    fn every_value_the_module_passes_is_required() {
        let watchdog = Watchdog::new(&format!("postgresql://u:{PASSWORD}@127.0.0.1:1/postgres"));
        for var in [
            "POWERSYNC_ENV_FILES",
            "SOURCE_SSLMODE",
            "SLOT_PREFIX",
            "STATE_DIR",
            "TEXTFILE",
            "MAX_INACTIVE_SECONDS",
            "MAX_RETAINED_BYTES",
            "GROWTH_CHECKS",
            "MIN_RESTART_INTERVAL_SECONDS",
            "RESTART_CMD",
            "LIVE_CMD",
        ] {
            let run = watchdog.run(T0, true, &[(var, "")]);
            assert_eq!(run.code, Some(2), "{var}: {}", run.output);
            assert_contains(&run.output, &format!("set {var}"));
            assert_eq!(run.restarts, 0, "{var}");
        }
        let run = watchdog.run(
            T0,
            true,
            &[("JWKS_URI", "https://auth.example.org/jwks.json")],
        );
        assert_eq!(run.code, Some(2), "{}", run.output);
        assert_contains(&run.output, "set JWKS_CHECK");
    }

    #[test]
    fn a_bad_limit_is_a_configuration_error() {
        let run = Watchdog::new("unused").run(T0, true, &[("MAX_INACTIVE_SECONDS", "5m")]);
        assert_eq!(run.code, Some(2), "{}", run.output);
        assert_contains(&run.output, "MAX_INACTIVE_SECONDS must be a whole number");
    }

    #[test]
    fn a_failing_restart_command_is_an_error_and_not_counted() {
        let pg = Postgres::start();
        pg.create_slot(SLOT);
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        let env = [("MAX_INACTIVE_SECONDS", "0"), ("RESTART_CMD", "exit 3")];
        let run = watchdog.run(T0, true, &env);
        assert_eq!(run.code, Some(1), "{}", run.output);
        assert_contains(&run.output, "the restart command failed (exit 3)");
        run.assert_value("powersync_watchdog_restarts_total", "0");
    }
}

mod teardown {
    use super::*;

    struct Teardown {
        dir: TempDir,
        env_files: [PathBuf; 2],
        /// UNITS as the module sets it: one unified runner unless a test says otherwise.
        units: &'static str,
        /// DECOMMISSIONED_FILE: the mark the units check.
        mark: PathBuf,
    }

    /// What the teardown printed and the calls it made, one line per fake systemctl/podman call; each
    /// call also says whether the mark existed when it was made.
    struct Run {
        code: Option<i32>,
        output: String,
        calls: Vec<String>,
        marked_at_call: Vec<bool>,
    }

    const IMAGE: &str = "docker.io/journeyapps/powersync-service:1.26.1@sha256:abc";
    const MOUNTS: &str = "/nix/store/x-service.yaml:/config/service.yaml:ro /nix/store/y-sync.yaml:/config/sync-config.yaml:ro";

    impl Teardown {
        fn new() -> Teardown {
            let dir = TempDir::new("teardown");
            let env_files = [
                dir.file(
                    "source.env",
                    &format!(
                        "PS_SOURCE_DSN=postgresql://u:{PASSWORD}@db.x.supabase.co:5432/postgres\n"
                    ),
                ),
                dir.file(
                    "storage.env",
                    "PS_STORAGE_URI=postgresql://ps@127.0.0.1/ps\n",
                ),
            ];
            let mark = dir.path("state/decommissioned");
            Teardown {
                dir,
                env_files,
                units: "podman-powersync.service",
                mark,
            }
        }

        fn run(&self, args: &[&str], stdin: &str, systemctl_exit: i32, podman_exit: i32) -> Run {
            let log = self.dir.path("calls.log");
            let marks = self.dir.path("marks.log");
            let fake = |name: &str, exit: i32| {
                self.dir.program(
                    name,
                    &format!(
                        "echo \"{name} $*\" >> {log}\n\
                         if [ -e {mark} ]; then echo y; else echo n; fi >> {marks}\n\
                         exit {exit}",
                        log = log.display(),
                        mark = self.mark.display(),
                        marks = marks.display(),
                    ),
                )
            };
            let env_files = format!(
                "{} {}",
                self.env_files[0].display(),
                self.env_files[1].display()
            );
            let mut child = Command::new("bash")
                .arg(script("teardown.sh"))
                .env("UNITS", self.units)
                .env("DECOMMISSIONED_FILE", &self.mark)
                .env("CONTAINER_USER", "901:901")
                .args(args)
                .env("SYSTEMCTL", fake("systemctl", systemctl_exit))
                .env("PODMAN", fake("podman", podman_exit))
                .env("IMAGE", IMAGE)
                .env("NETWORK", "v6egress")
                .env("CONFIG_MOUNTS", MOUNTS)
                .env("ENV_FILES", env_files)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // The script may exit before reading: a closed pipe is fine.
            let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
            let output = child.wait_with_output().unwrap();
            let calls = fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect();
            let marked_at_call = fs::read_to_string(&marks)
                .unwrap_or_default()
                .lines()
                .map(|line| line == "y")
                .collect();
            let output_text = text(&output);
            assert_no_secret(&output_text);
            Run {
                code: output.status.code(),
                output: output_text,
                calls,
                marked_at_call,
            }
        }
    }

    #[test]
    fn without_confirmation_nothing_happens() {
        let teardown = Teardown::new();
        for answer in ["no\n", "", "teardown\n", "TEARDOWN NOW\n"] {
            let run = teardown.run(&[], answer, 0, 0);
            assert_eq!(run.code, Some(1), "{answer:?}: {}", run.output);
            assert_contains(&run.output, "Type TEARDOWN");
            assert_contains(&run.output, "Aborted: nothing was changed");
            assert!(run.calls.is_empty(), "{answer:?}: {:?}", run.calls);
            assert!(!teardown.mark.exists(), "{answer:?}: aborted, yet marked");
        }
    }

    #[test]
    fn it_marks_the_host_before_it_stops_anything_and_keeps_the_mark() {
        let teardown = Teardown::new();
        let run = teardown.run(&["--yes"], "", 0, 0);
        assert_eq!(run.code, Some(0), "{}", run.output);
        // Marked before the stop, so nothing (the daily compaction, the watchdog) starts a runner in between.
        assert_eq!(run.marked_at_call, vec![true, true], "{:?}", run.calls);
        assert!(teardown.mark.exists());
        assert_contains(
            &run.output,
            &format!(
                "rm -f {} && systemctl start podman-powersync.service",
                teardown.mark.display()
            ),
        );
    }

    #[test]
    fn a_failed_stop_or_teardown_keeps_the_mark_and_says_how_to_undo_it() {
        for (systemctl_exit, podman_exit) in [(1, 0), (0, 125)] {
            let teardown = Teardown::new();
            let run = teardown.run(&["--yes"], "", systemctl_exit, podman_exit);
            assert_eq!(run.code, Some(1), "{}", run.output);
            assert!(teardown.mark.exists(), "{}", run.output);
            assert_contains(
                &run.output,
                &format!(
                    "rm -f {} && systemctl start podman-powersync.service",
                    teardown.mark.display()
                ),
            );
        }
    }

    #[test]
    fn a_mark_it_cannot_write_stops_it_before_anything_changes() {
        let mut teardown = Teardown::new();
        teardown.mark = PathBuf::from("/dev/null/decommissioned");
        let run = teardown.run(&["--yes"], "", 0, 0);
        assert_eq!(run.code, Some(1), "{}", run.output);
        assert_contains(&run.output, "nothing was changed");
        assert!(run.calls.is_empty(), "{:?}", run.calls);
    }

    #[test]
    fn every_value_the_module_passes_is_required() {
        for var in ["UNITS", "DECOMMISSIONED_FILE", "CONTAINER_USER", "IMAGE"] {
            let teardown = Teardown::new();
            let output = Command::new("bash")
                .arg(script("teardown.sh"))
                .arg("--yes")
                .env("UNITS", teardown.units)
                .env("DECOMMISSIONED_FILE", &teardown.mark)
                .env("CONTAINER_USER", "901:901")
                .env("IMAGE", IMAGE)
                .env("NETWORK", "v6egress")
                .env("CONFIG_MOUNTS", MOUNTS)
                .env("ENV_FILES", teardown.env_files[0].as_os_str())
                .env("SYSTEMCTL", "false")
                .env("PODMAN", "false")
                .env_remove(var)
                .output()
                .unwrap();
            let all = text(&output);
            assert_eq!(output.status.code(), Some(2), "{var}: {all}");
            assert_contains(&all, &format!("{var} is not set"));
            assert!(!teardown.mark.exists(), "{var}");
        }
    }

    /// The mark the teardown writes, at the path lib/topology.nix names, makes the condition every guarded
    /// unit carries fail, as systemd itself evaluates it: in a private mount namespace, so the host's own
    /// /var/lib is never touched.
    #[test]
    fn after_a_teardown_systemd_skips_every_guarded_unit() {
        require("unshare", "util-linux");
        require("systemd-analyze", "systemd");
        require("nix-instantiate", "nix-bin");
        let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lib");
        let output = Command::new("nix-instantiate")
            .args(["--eval", "--strict", "--json", "--expr"])
            .arg(format!(
                "let l = import {}; in [l.decommissionedFile l.haltedWhenDecommissioned.ConditionPathExists]",
                lib.display()
            ))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        let [mark, condition]: [String; 2] = serde_json::from_slice(&output.stdout).unwrap();
        assert!(mark.starts_with("/var/lib/"), "{mark}");

        let teardown = Teardown::new();
        let inside = r#"set -u
mount -t tmpfs powersync-test /var/lib || exit 90
systemd-analyze condition "ConditionPathExists=$CONDITION" >/dev/null 2>&1; echo "before=$?"
bash "$TEARDOWN" --yes >/dev/null 2>&1; echo "teardown=$?"
systemd-analyze condition "ConditionPathExists=$CONDITION" >/dev/null 2>&1; echo "after=$?"
"#;
        let output = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "bash", "-c", inside])
            .env("CONDITION", &condition)
            .env("TEARDOWN", script("teardown.sh"))
            .env("UNITS", teardown.units)
            .env("DECOMMISSIONED_FILE", &mark)
            .env("CONTAINER_USER", "901:901")
            .env("IMAGE", IMAGE)
            .env("NETWORK", "v6egress")
            .env("CONFIG_MOUNTS", MOUNTS)
            .env("ENV_FILES", teardown.env_files[0].as_os_str())
            .env("SYSTEMCTL", "true")
            .env("PODMAN", "true")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "before=0\nteardown=0\nafter=1\n",
            "{}",
            text(&output)
        );
    }

    #[test]
    fn on_a_split_host_it_stops_every_runner_before_the_teardown() {
        let mut teardown = Teardown::new();
        teardown.units =
            "podman-powersync-sync.service podman-powersync-api-1.service podman-powersync-api-2.service";
        let run = teardown.run(&["--yes"], "", 0, 0);
        assert_eq!(run.code, Some(0), "{}", run.output);
        assert_eq!(
            run.calls[0],
            "systemctl stop podman-powersync-sync.service podman-powersync-api-1.service podman-powersync-api-2.service"
        );
        assert!(run.calls[1].starts_with("podman run "), "{:?}", run.calls);
    }

    #[test]
    fn the_prompt_explains_what_will_happen() {
        let run = Teardown::new().run(&[], "no\n", 0, 0);
        for part in [
            "stop podman-powersync.service",
            "replication slot",
            "bucket data",
        ] {
            assert_contains(&run.output, part);
        }
    }

    #[test]
    fn confirmed_it_stops_the_unit_first_then_runs_the_images_teardown() {
        let teardown = Teardown::new();
        let run = teardown.run(&[], "TEARDOWN\n", 0, 0);
        assert_eq!(run.code, Some(0), "{}", run.output);
        let expected_podman = format!(
            "podman run --rm --network=v6egress --user=901:901 -e POWERSYNC_CONFIG_PATH=/config/service.yaml \
             --env-file {} --env-file {} \
             -v /nix/store/x-service.yaml:/config/service.yaml:ro -v /nix/store/y-sync.yaml:/config/sync-config.yaml:ro \
             {IMAGE} teardown TEARDOWN",
            teardown.env_files[0].display(),
            teardown.env_files[1].display()
        );
        assert_eq!(
            run.calls,
            vec![
                "systemctl stop podman-powersync.service".to_owned(),
                expected_podman
            ]
        );
        assert_contains(&run.output, "services.powersync.enable = false");
    }

    #[test]
    fn yes_skips_the_prompt() {
        let run = Teardown::new().run(&["--yes"], "", 0, 0);
        assert_eq!(run.code, Some(0), "{}", run.output);
        assert!(!run.output.contains("Type TEARDOWN"), "{}", run.output);
        assert_eq!(run.calls.len(), 2, "{:?}", run.calls);
        assert!(
            run.calls[1].ends_with(" teardown TEARDOWN"),
            "{:?}",
            run.calls
        );
    }

    #[test]
    fn a_failed_teardown_names_the_lock_and_leaves_the_unit_stopped() {
        let run = Teardown::new().run(&["--yes"], "", 0, 125);
        assert_eq!(run.code, Some(1), "{}", run.output);
        assert_contains(&run.output, "PSYNC_S1003");
        assert_contains(&run.output, "wait a minute");
        assert_eq!(run.calls.len(), 2, "{:?}", run.calls);
        assert_eq!(run.calls[0], "systemctl stop podman-powersync.service");
    }

    #[test]
    fn a_unit_that_does_not_stop_skips_the_teardown() {
        let run = Teardown::new().run(&["--yes"], "", 1, 0);
        assert_eq!(run.code, Some(1), "{}", run.output);
        assert_contains(&run.output, "could not stop");
        assert_eq!(run.calls, vec!["systemctl stop podman-powersync.service"]);
    }

    #[test]
    fn an_unreadable_env_file_stops_before_anything_changes() {
        let teardown = Teardown::new();
        fs::remove_file(&teardown.env_files[1]).unwrap();
        let run = teardown.run(&["--yes"], "", 0, 0);
        assert_eq!(run.code, Some(1), "{}", run.output);
        assert_contains(&run.output, "Nothing was changed");
        assert!(run.calls.is_empty(), "{:?}", run.calls);
    }

    #[test]
    fn an_unknown_argument_is_a_usage_error() {
        let run = Teardown::new().run(&["--force"], "TEARDOWN\n", 0, 0);
        assert_eq!(run.code, Some(2), "{}", run.output);
        assert!(run.calls.is_empty(), "{:?}", run.calls);
    }
}

/// How long a half-open stall lasts before the watchdog asks for a restart, at worst: the source drops the
/// stalled walsender after `inactive_after` seconds; the next run sees the slot inactive (up to one interval
/// plus the timer's jitter later); the restart follows when the slot has been inactive for `limit` seconds,
/// counted in whole runs.
fn worst_case_restart(inactive_after: u64, interval: u64, limit: u64, jitter: u64) -> u64 {
    inactive_after + (interval + jitter) + limit.div_ceil(interval) * (interval + jitter)
}

/// The watchdog defaults of lib/instance.nix (what the module's options default to), read with real Nix.
fn watchdog_defaults() -> serde_json::Value {
    require("nix-instantiate", "nix-bin");
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lib");
    let output = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--expr"])
        .arg(format!(
            "(import {}).defaults.operations.watchdog",
            lib.display()
        ))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The watchdog's limits as the module passes them by default (its options default to lib's values).
/// Read once per test binary: every watchdog run needs them.
fn module_limits() -> Vec<(&'static str, String)> {
    static LIMITS: std::sync::OnceLock<Vec<(&'static str, String)>> = std::sync::OnceLock::new();
    LIMITS
        .get_or_init(|| {
            let defaults = watchdog_defaults();
            [
                ("MAX_INACTIVE_SECONDS", "maxInactiveSeconds"),
                ("MAX_RETAINED_BYTES", "maxRetainedBytes"),
                ("GROWTH_CHECKS", "growthChecks"),
                ("MIN_RESTART_INTERVAL_SECONDS", "minRestartIntervalSeconds"),
            ]
            .into_iter()
            .map(|(var, option)| (var, defaults[option].to_string()))
            .collect()
        })
        .clone()
}

/// RESTART_CMD and LIVE_CMD as the module passes them for this unit (lib.watchdogCommands), read with real Nix.
fn watchdog_commands(unit: &str) -> Vec<(String, String)> {
    require("nix-instantiate", "nix-bin");
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lib");
    let output = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--expr"])
        .arg(format!(
            "(import {}).watchdogCommands {}",
            lib.display(),
            serde_json::to_string(unit).unwrap()
        ))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let commands: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&output.stdout).unwrap();
    commands
        .into_iter()
        .map(|(var, command)| (var, command.as_str().unwrap().to_owned()))
        .collect()
}

mod healing_time {
    use super::slot_watchdog::{series, Postgres, Watchdog, SLOT};
    use super::*;

    /// Seen on the real service with a frozen source path: the slot went inactive ~63 s after the stall
    /// (the source's wal_sender_timeout, 60 s), and after a restart it stood by ~45 s on the storage lock,
    /// which expires at most 60 s after the old process last refreshed it.
    const INACTIVE_AFTER: u64 = 63;
    const LOCK_WAIT: u64 = 60;
    /// The container's stop (SIGKILL after its stop timeout: a stuck service ignores SIGTERM) and start.
    const STOP_AND_START: u64 = 30;
    /// The timer's AccuracySec (operations.nix).
    const TIMER_JITTER: u64 = 1;

    fn default(name: &str) -> u64 {
        watchdog_defaults()[name].as_u64().unwrap()
    }

    #[test]
    fn the_defaults_heal_a_half_open_stall_within_five_minutes() {
        let (interval, limit) = (default("intervalSeconds"), default("maxInactiveSeconds"));
        let restart = worst_case_restart(INACTIVE_AFTER, interval, limit, TIMER_JITTER);
        let healed = restart + STOP_AND_START + LOCK_WAIT;
        assert!(
            healed <= 300,
            "restart after {restart}s, replication back after {healed}s: more than 5 min"
        );
        // No restart loop: the container gets at least the time it needs to take the slot back after a
        // restart before the watchdog counts it inactive again, and the rate limit stays.
        assert!(limit > LOCK_WAIT + STOP_AND_START, "limit {limit}s");
        assert_eq!(
            default("growthChecks") * interval,
            360,
            "the growth rule keeps its 6 minutes"
        );
        assert_eq!(default("minRestartIntervalSeconds"), 1800);
        let timer = fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../modules/powersync/operations.nix"),
        )
        .unwrap();
        assert_contains(&timer, &format!("AccuracySec = \"{TIMER_JITTER}s\";"));
    }

    /// The defaults, ten times faster, against a real PostgreSQL: a logical replication consumer frozen with
    /// SIGSTOP (its connection stays open), wal_sender_timeout 6 s, the watchdog run on a real clock every
    /// interval/10 with limit/10. The restart comes within the worst case the arithmetic above allows, not
    /// before the limit, replication resumes on the same slot, and nothing restarts again.
    #[test]
    fn a_frozen_consumer_is_restarted_within_the_scaled_window() {
        const SCALE: u64 = 10;
        let (interval, limit) = (
            default("intervalSeconds") / SCALE,
            default("maxInactiveSeconds") / SCALE,
        );
        let min_interval = (default("minRestartIntervalSeconds") / SCALE).to_string();
        let wal_sender_timeout = 60 / SCALE;
        let mut pg = Postgres::start_with(&[&format!("wal_sender_timeout={wal_sender_timeout}s")]);
        pg.create_slot(SLOT);
        pg.consume(SLOT);
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        let limits = [
            ("MAX_INACTIVE_SECONDS", limit.to_string()),
            ("MIN_RESTART_INTERVAL_SECONDS", min_interval),
        ];
        let env: Vec<(&str, &str)> = limits.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let healthy = watchdog.run_now(&env);
        assert_eq!(healthy.restarts, 0, "{}", healthy.output);

        pg.freeze_consumers();
        let frozen = Instant::now();
        // Generous for a loaded machine: one second of jitter per run (the clock counts whole seconds).
        let bound = worst_case_restart(wal_sender_timeout + 2, interval, limit, 1);
        let mut inactive_seen = None;
        let mut restarted = None;
        let mut run_at = Duration::ZERO;
        while restarted.is_none() && frozen.elapsed() < Duration::from_secs(bound + 10) {
            run_at += Duration::from_secs(interval);
            thread::sleep(run_at.saturating_sub(frozen.elapsed()));
            let run = watchdog.run_now(&env);
            if inactive_seen.is_none() && run.value(&series("powersync_slot_active")) == Some("0") {
                inactive_seen = Some(frozen.elapsed());
            }
            if run.restarts > 0 {
                restarted = Some(frozen.elapsed());
                assert_contains(&run.output, "restarting the container");
            }
        }
        let inactive_seen = inactive_seen.expect("the watchdog never saw the slot inactive");
        let restarted = restarted.expect("the watchdog never restarted");
        eprintln!(
            "inactive seen after {inactive_seen:?}, restart after {restarted:?} (bound {bound}s)"
        );
        assert!(
            inactive_seen >= Duration::from_secs(wal_sender_timeout - 1),
            "inactive before wal_sender_timeout: {inactive_seen:?}"
        );
        assert!(
            restarted >= inactive_seen + Duration::from_secs(limit) - Duration::from_secs(interval),
            "restart too early: {restarted:?}"
        );
        assert!(
            restarted <= Duration::from_secs(bound),
            "restart after {restarted:?}, more than {bound}s"
        );

        pg.restart_consumer(SLOT);
        assert!(pg.slot_active(SLOT));
        // Healed: the watchdog sees it and asks for nothing more, for longer than the limit.
        let after = Instant::now();
        let mut runs = 0;
        while after.elapsed() < Duration::from_secs(limit + 2 * interval) {
            thread::sleep(Duration::from_secs(interval));
            let run = watchdog.run_now(&env);
            assert_eq!(run.restarts, 1, "{}", run.output);
            run.assert_value(&series("powersync_slot_active"), "1");
            runs += 1;
        }
        assert!(runs >= 3);
    }
}

/// The watchdog's TLS to the source, against a real PostgreSQL with TLS. Without the source's CA it cannot
/// verify the certificate (the service's bundled CAs are in its image), so libpq must refuse an endpoint that
/// asks for the password in clear text or lets anyone in, before the password leaves; SCRAM and md5 sources
/// (Supabase's) still work. With the CA it verifies the certificate and the name as the service does.
///
/// The refusal is libpq's `require_auth` (libpq >= 16, as on the NixOS host's PostgreSQL 17). Debian 12's
/// libpq is 15, so the watchdog runs Debian's psql binary on the libpq 18 that psycopg-binary bundles
/// (tests/oracle/libpq/requirements.txt), and the test first proves that this libpq is the one in effect.
mod watchdog_tls {
    use super::common::pki::Pki;
    use super::slot_watchdog::{Postgres, Watchdog, SLOT};
    use super::*;

    /// A PostgreSQL that speaks TLS with `cert`/`key` and authenticates TCP clients with `method`, over
    /// TLS only (`hostssl`). For md5, the role's password is stored as an md5 hash, as on older sources.
    fn tls_postgres(cert: &Path, key: &Path, method: &str) -> Postgres {
        for file in [cert, key] {
            let status = Command::new("chown")
                .arg("postgres")
                .arg(file)
                .status()
                .unwrap();
            assert!(status.success(), "chown {}", file.display());
        }
        let hba = format!("local all all trust\nhostssl all all 127.0.0.1/32 {method}\n");
        let settings = [
            "ssl=on".to_owned(),
            format!("ssl_cert_file={}", cert.display()),
            format!("ssl_key_file={}", key.display()),
        ];
        let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
        let pg = Postgres::start_with_hba(Some(&hba), &settings);
        if method == "md5" {
            pg.sql(&format!(
                "SET password_encryption = 'md5'; ALTER ROLE watcher PASSWORD '{PASSWORD}'"
            ));
        }
        pg.create_slot(SLOT);
        pg
    }

    /// Debian's psql on a libpq >= 16: a program for the watchdog's PSQL, and the libpq's directories.
    struct NewLibpq {
        _dir: TempDir,
        psql: PathBuf,
    }

    impl NewLibpq {
        fn new(pg: &Postgres) -> NewLibpq {
            let output = Command::new("python3")
                .args([
                    "-c",
                    "import importlib.util, os; spec = importlib.util.find_spec('psycopg_binary'); \
                     print(os.path.dirname(os.path.dirname(spec.origin)) if spec else '')",
                ])
                .output()
                .expect("python3 is missing: apt-get install python3");
            let site = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            assert!(
                !site.is_empty(),
                "psycopg-binary (its bundled libpq) is missing: \
                 pip install -r tests/oracle/libpq/requirements.txt"
            );
            let libs = Path::new(&site).join("psycopg_binary.libs");
            let libpq = fs::read_dir(&libs)
                .unwrap()
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .find(|path| {
                    let name = path.file_name().unwrap().to_string_lossy().into_owned();
                    name.starts_with("libpq-") && name.contains(".so.5")
                })
                .unwrap_or_else(|| panic!("no libpq-*.so.5* in {}", libs.display()));
            let dir = TempDir::new("libpq");
            std::os::unix::fs::symlink(&libpq, dir.path("libpq.so.5")).unwrap();
            let psql = dir.program(
                "psql",
                &format!(
                    "LD_LIBRARY_PATH={}:{} exec {} \"$@\"",
                    dir.0.display(),
                    libs.display(),
                    pg.bin.join("psql").display()
                ),
            );
            // The libpq in effect knows require_auth (an older one ignores PGREQUIREAUTH altogether).
            let probe = Command::new(&psql)
                .env("PGREQUIREAUTH", "no-such-method")
                .args(["-h", "127.0.0.1", "-p", "1", "-c", "SELECT 1"])
                .output()
                .unwrap();
            assert_contains(&text(&probe), "invalid require_auth value");
            NewLibpq { _dir: dir, psql }
        }
    }

    fn source_up(pg: &Postgres, libpq: &NewLibpq, env: &[(&str, &str)]) -> (bool, String) {
        let psql = libpq.psql.display().to_string();
        let mut all = vec![("PSQL", psql.as_str())];
        all.extend_from_slice(env);
        let run = Watchdog::new(&pg.dsn(PASSWORD)).run_now(&all);
        let up = run.value("powersync_watchdog_source_up");
        assert!(up.is_some(), "no source_up:\n{}", run.output);
        (up == Some("1"), run.output)
    }

    const UNVERIFIED: &[(&str, &str)] = &[("SOURCE_SSLMODE", "verify-full")];

    #[test]
    fn without_the_ca_a_scram_source_is_reached() {
        let pki = Pki::new();
        let (cert, key) = pki.leaf("source", "127.0.0.1", 2);
        let pg = tls_postgres(&cert, &key, "scram-sha-256");
        let libpq = NewLibpq::new(&pg);
        let (up, output) = source_up(&pg, &libpq, UNVERIFIED);
        assert!(up, "{output}");
    }

    /// Unverified, whoever answers may be in the middle: an md5 challenge would get a hash of the password
    /// salted as that endpoint chooses, clear text the password itself, `trust` a session it controls.
    #[test]
    fn without_the_ca_an_endpoint_asking_for_anything_but_scram_never_gets_an_answer() {
        let pki = Pki::new();
        let (cert, key) = pki.leaf("source", "127.0.0.1", 2);
        for method in ["md5", "password", "trust"] {
            let pg = tls_postgres(&cert, &key, method);
            let libpq = NewLibpq::new(&pg);
            // The exposure: a client left to libpq's defaults hands the password over in clear text (or is
            // let in by whoever answers) and reports whatever that endpoint says.
            let exposed = Command::new(&libpq.psql)
                .env("PGHOST", "127.0.0.1")
                .env("PGPORT", pg.port.to_string())
                .env("PGUSER", "watcher")
                .env("PGDATABASE", "postgres")
                .env("PGPASSWORD", PASSWORD)
                .env("PGSSLMODE", "require")
                .args(["-w", "-X", "-q", "-c", "SELECT 1"])
                .output()
                .unwrap();
            assert!(
                exposed.status.success(),
                "{method}: the exposure did not show: {}",
                text(&exposed)
            );
            let (up, output) = source_up(&pg, &libpq, UNVERIFIED);
            assert!(!up, "{method}: the watchdog logged in:\n{output}");
            assert_contains(&output, "authentication method requirement");
        }
    }

    #[test]
    fn with_the_ca_the_certificate_and_its_name_are_verified() {
        let pki = Pki::new();
        let other = Pki::new();
        let ca = pki.ca().display().to_string();
        let other_ca = other.ca().display().to_string();
        let verify = |mode, ca| [("SOURCE_SSLMODE", mode), ("SOURCE_CA_FILE", ca)];

        let (cert, key) = pki.leaf("source", "127.0.0.1", 2);
        let pg = tls_postgres(&cert, &key, "scram-sha-256");
        let libpq = NewLibpq::new(&pg);
        let (up, output) = source_up(&pg, &libpq, &verify("verify-full", &ca));
        assert!(up, "{output}");
        let (up, output) = source_up(&pg, &libpq, &verify("verify-full", &other_ca));
        assert!(!up, "a certificate from another CA was accepted:\n{output}");
        assert_contains(&output, "certificate verify failed");
        drop(pg);

        // A certificate from the right CA for another name: verify-full refuses it, verify-ca (which the
        // service also offers) accepts it.
        let (cert, key) = pki.leaf("elsewhere", "db.example.test", 2);
        let pg = tls_postgres(&cert, &key, "scram-sha-256");
        let (up, output) = source_up(&pg, &libpq, &verify("verify-full", &ca));
        assert!(
            !up,
            "a certificate for another name was accepted:\n{output}"
        );
        assert_contains(&output, "does not match host name");
        let (up, output) = source_up(&pg, &libpq, &verify("verify-ca", &ca));
        assert!(up, "{output}");
    }

    #[test]
    fn a_ca_file_that_cannot_be_read_is_a_configuration_error() {
        let run = Watchdog::new("postgresql://watcher:x@127.0.0.1:5432/postgres").run_now(&[
            ("SOURCE_SSLMODE", "verify-full"),
            ("SOURCE_CA_FILE", "/nonexistent/ca.pem"),
        ]);
        assert_eq!(run.code, Some(2), "{}", run.output);
        assert_contains(
            &run.output,
            "SOURCE_CA_FILE '/nonexistent/ca.pem' is not a readable file",
        );
    }
}

/// The preflight against the real oracle: the PowerSync Service's own URI parser, uri-js 4.4.1 from npm
/// (tests/oracle, pinned by its package-lock), read the way the service reads it (tests/oracle/read-dsn.mjs),
/// and libpq itself (psql logging in to a real PostgreSQL with the DSN; where a literal `%` makes psql refuse
/// the URI, with the service's reading in PG* variables, as the watchdog connects). For every printable ASCII
/// character in the user and password, and for query, host, port, database and `%` forms: what the preflight
/// accepts, the service reads the same way (user, password, host, port, database) and psql logs in with, and
/// a user or password is refused only where the service would not read it as written.
mod dsn_oracle {
    use super::slot_watchdog::Postgres;
    use super::*;
    use std::net::Ipv6Addr;

    #[derive(Debug, PartialEq)]
    struct Reading {
        user: String,
        password: String,
        host: String,
        port: u16,
        database: String,
    }

    fn oracle_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/oracle")
    }

    /// The service's readings (None: it would refuse the DSN at start).
    fn service_readings(dsns: &[String]) -> Vec<Option<Reading>> {
        require("node", "nodejs");
        assert!(
            oracle_dir()
                .join("node_modules/uri-js/package.json")
                .is_file(),
            "uri-js is not installed: npm ci --prefix tests/oracle --no-audit --no-fund"
        );
        let mut child = Command::new("node")
            .arg(oracle_dir().join("read-dsn.mjs"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let input = serde_json::to_vec(dsns).unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "read-dsn.mjs: {}", text(&output));
        let readings: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
        readings
            .iter()
            .map(|r| {
                r.get("error").is_none().then(|| Reading {
                    user: r["user"].as_str().unwrap().to_owned(),
                    password: r["password"].as_str().unwrap().to_owned(),
                    host: r["host"].as_str().unwrap().to_owned(),
                    port: r["port"].as_u64().unwrap().try_into().unwrap(),
                    database: r["database"].as_str().unwrap().to_owned(),
                })
            })
            .collect()
    }

    /// Our readings: whether preflight-dsn.sh accepts each DSN, and what source-connection.sh (the code
    /// both scripts embed) reads from it.
    fn our_readings(dir: &TempDir, dsns: &[String]) -> Vec<(bool, Option<Reading>)> {
        let files: Vec<PathBuf> = dsns
            .iter()
            .enumerate()
            .map(|(i, dsn)| dir.file(&format!("{i}.env"), &format!("PS_SOURCE_DSN={dsn}\n")))
            .collect();
        let harness = r#". "$LIB"
            for file in "$@"; do
              if source_connection "$file"; then
                printf 'ok\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1e' "$conn_user" "$conn_password" "$conn_host" "$conn_port" "$conn_database"
              else
                printf 'refused\x1e'
              fi
            done"#;
        let output = Command::new("bash")
            .args(["-c", harness, "bash"])
            .args(&files)
            .env("LIB", script("source-connection.sh"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        let stdout = String::from_utf8(output.stdout).unwrap();
        let readings: Vec<Option<Reading>> = stdout
            .split_terminator('\x1e')
            .map(|record| {
                let fields: Vec<&str> = record.split('\x1f').collect();
                (fields[0] == "ok").then(|| Reading {
                    user: fields[1].to_owned(),
                    password: fields[2].to_owned(),
                    host: fields[3].to_owned(),
                    port: fields[4].parse().unwrap(),
                    database: fields[5].to_owned(),
                })
            })
            .collect();
        assert_eq!(readings.len(), dsns.len());
        files
            .iter()
            .zip(readings)
            .map(|(file, reading)| {
                let status = Command::new("bash")
                    .arg(script("preflight-dsn.sh"))
                    .arg(file)
                    .output()
                    .unwrap()
                    .status;
                (status.success(), reading)
            })
            .collect()
    }

    fn same_host(ours: &str, service: &str) -> bool {
        match (ours.parse::<Ipv6Addr>(), service.parse::<Ipv6Addr>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => ours == service,
        }
    }

    /// psql (libpq parsing the URI itself) logs in with each DSN as the reading's user, to its database.
    fn libpq_reads(pg: &Postgres, cases: &[(&String, &Reading)]) {
        let mut roles = std::collections::BTreeMap::new();
        for (dsn, reading) in cases {
            let previous = roles.insert(reading.user.as_str(), reading.password.as_str());
            assert!(
                previous.is_none_or(|p| p == reading.password),
                "{dsn}: one role, two passwords"
            );
        }
        let sql: String = roles
            .iter()
            .map(|(user, password)| {
                format!(
                    "CREATE ROLE \"{}\" LOGIN PASSWORD '{}';\n",
                    user.replace('"', "\"\""),
                    password.replace('\'', "''")
                )
            })
            .collect();
        pg.sql(&sql);
        let databases: std::collections::BTreeSet<&str> =
            cases.iter().map(|(_, r)| r.database.as_str()).collect();
        for database in databases.into_iter().filter(|d| *d != "postgres") {
            pg.sql(&format!(
                "CREATE DATABASE \"{}\"",
                database.replace('"', "\"\"")
            ));
        }
        let workers = 4;
        thread::scope(|scope| {
            for chunk in cases.chunks(cases.len().div_ceil(workers)) {
                scope.spawn(move || {
                    for (dsn, reading) in chunk {
                        let mut psql = Command::new("psql");
                        if dsn.contains('%') {
                            // psql refuses a `%` that starts no octet; the watchdog never gives it the URI,
                            // but the service's reading in PG* variables, as here.
                            psql.env("PGHOST", &reading.host)
                                .env("PGPORT", reading.port.to_string())
                                .env("PGUSER", &reading.user)
                                .env("PGPASSWORD", &reading.password)
                                .env("PGDATABASE", &reading.database);
                        } else {
                            psql.arg(dsn).env_remove("PGPASSWORD");
                        }
                        let output = psql
                            .args(["-w", "-X", "-tA", "-c"])
                            .arg("SELECT current_user || '|' || current_database()")
                            .output()
                            .unwrap();
                        assert!(output.status.success(), "psql {dsn}: {}", text(&output));
                        assert_eq!(
                            String::from_utf8_lossy(&output.stdout).trim(),
                            format!("{}|{}", reading.user, reading.database),
                            "{dsn}"
                        );
                    }
                });
            }
        });
    }

    #[test]
    fn what_the_preflight_accepts_the_service_and_libpq_read_the_same_way() {
        let pg = Postgres::start();
        let port = pg.port;
        let at = format!("127.0.0.1:{port}/postgres");
        let mut dsns = Vec::new();
        let printable: Vec<char> = (0x20u8..0x7f).map(char::from).collect();
        for c in &printable {
            // A role of its own for each password (libpq_reads creates them).
            for (i, password) in [format!("{c}pass"), format!("pa{c}ss"), format!("pass{c}")]
                .iter()
                .enumerate()
            {
                dsns.push(format!("postgresql://pw{}_{i}:{password}@{at}", *c as u8));
            }
            for user in [format!("{c}usr"), format!("us{c}r"), format!("usr{c}")] {
                dsns.push(format!("postgresql://{user}:pass@{at}"));
            }
        }
        for query in [
            "sslmode=disable",
            "sslmode=prefer",
            "application_name=x&connect_timeout=5",
            "password=other",
            "user=other",
            "dbname=other",
            "host=other",
            "hostaddr=::1",
            "port=1",
            "service=x",
            "replication=database",
            "",
            "a",
            "a=b=c",
            "options=-c%20x",
            "%70assword=x",
            "x=@y",
            "x=a#b",
            "sslmode=disable&",
            "&sslmode=disable",
        ] {
            dsns.push(format!("postgresql://usr:pass@{at}?{query}"));
        }
        for rest in [
            format!("[::1]:{port}/postgres"),
            "[::1]/postgres".to_owned(),
            "[FD00::AB]:5433/postgres".to_owned(),
            "[fd00:0::1]:5433/postgres".to_owned(),
            format!("LOCALHOST:{port}/postgres"),
            "127.0.0.1:/postgres".to_owned(),
            format!("127.0.0.1:0{port}/postgres"),
            "127.0.0.1:80/postgres".to_owned(),
            "127.0.0.1:99999/postgres".to_owned(),
            format!("127.0.0.1:{port}/"),
            format!("127.0.0.1:{port}"),
            format!("127.0.0.1:{port}/db/x"),
            format!("127.0.0.1:{port}/p%41"),
            format!("127.0.0.1:{port}/postgres#f"),
            format!("h1,h2:{port}/postgres"),
            format!("[::1%25lo]:{port}/postgres"),
            format!("127.0.0.1:{port}/Post-gres_1"),
        ] {
            dsns.push(format!("postgresql://usr:pass@{rest}"));
        }
        for dsn in [
            format!("postgres://usr:pass@{at}"),
            format!("POSTGRESQL://usr:pass@{at}"),
            format!("postgresql://{at}"),
            format!("postgresql://usr@{at}"),
            format!("postgresql://:pass@{at}"),
            format!("postgresql://usr:@{at}"),
            format!("postgresql://usr:pa:ss@{at}"),
            format!("postgresql://usr:pa@ss@{at}"),
            format!("postgresql://usr:pa%41ss@{at}"),
            format!("postgresql:/usr:pass@{at}"),
            // A `%` the service keeps as written (no two hex digits follow), and octets it decodes or
            // upper-cases.
            format!("postgresql://pct1:pa%zzss@{at}"),
            format!("postgresql://pct2:pa%4@{at}"),
            format!("postgresql://pct3:%@{at}"),
            format!("postgresql://pct4:pa%%ss@{at}"),
            format!("postgresql://pct5:pa%g1%@{at}"),
            format!("postgresql://u%zzr:pass@{at}"),
            format!("postgresql://pct6:pa%2Fss@{at}"),
            format!("postgresql://pct7:pa%e9ss@{at}"),
            format!("postgresql://pct8:pa%7Ess@{at}"),
            format!("postgresql://pct9:pa%%41ss@{at}"),
            format!("postgresql://usr:pass@127.0.0.1:{port}/db%zz"),
            format!("postgresql://usr:pass@127.0.0.1:{port}/db%2F"),
        ] {
            dsns.push(dsn);
        }

        let dir = TempDir::new("oracle");
        let service = service_readings(&dsns);
        let ours = our_readings(&dir, &dsns);
        let mut accepted = 0;
        let mut local = Vec::new();
        for ((dsn, (preflight, reading)), service) in dsns.iter().zip(&ours).zip(&service) {
            assert_eq!(
                *preflight,
                reading.is_some(),
                "{dsn}: the preflight and the reading differ"
            );
            let Some(reading) = reading else { continue };
            accepted += 1;
            let Some(service) = service else {
                panic!("{dsn}: accepted, but the service refuses it")
            };
            assert!(
                same_host(&reading.host, &service.host)
                    && (
                        &reading.user,
                        &reading.password,
                        reading.port,
                        &reading.database
                    ) == (
                        &service.user,
                        &service.password,
                        service.port,
                        &service.database
                    ),
                "{dsn}: we read {reading:?}, the service {service:?}"
            );
            if reading.host == "127.0.0.1" && reading.port == port {
                local.push((dsn, reading));
            }
        }
        libpq_reads(&pg, &local);

        // Refusals match the service exactly: every character, at the start, middle and end of a user or a
        // password, is accepted exactly when the service reads it as written (`%` included: no two hex
        // digits follow it here).
        let position = |dsn: String| dsns.iter().position(|d| *d == dsn).unwrap();
        for (i, shape) in ["{c}pass", "pa{c}ss", "pass{c}"].iter().enumerate() {
            let written = |c: char| shape.replace("{c}", &c.to_string());
            let at_index = |c: char| {
                position(format!(
                    "postgresql://pw{}_{i}:{}@{at}",
                    c as u8,
                    written(c)
                ))
            };
            let kept: String = printable
                .iter()
                .copied()
                .filter(|&c| {
                    service[at_index(c)].as_ref().is_some_and(|r| {
                        r.password == written(c) && r.user == format!("pw{}_{i}", c as u8)
                    })
                })
                .collect();
            let accepted: String = printable
                .iter()
                .copied()
                .filter(|&c| ours[at_index(c)].0)
                .collect();
            assert_eq!(accepted, kept, "passwords shaped {shape}");
            assert!(kept.contains('%'), "{kept}");
        }
        for shape in ["{c}usr", "us{c}r", "usr{c}"] {
            let written = |c: char| shape.replace("{c}", &c.to_string());
            let at_index = |c: char| position(format!("postgresql://{}:pass@{at}", written(c)));
            let kept: String = printable
                .iter()
                .copied()
                .filter(|&c| {
                    service[at_index(c)]
                        .as_ref()
                        .is_some_and(|r| r.user == written(c) && r.password == "pass")
                })
                .collect();
            let accepted: String = printable
                .iter()
                .copied()
                .filter(|&c| ours[at_index(c)].0)
                .collect();
            assert_eq!(accepted, kept, "users shaped {shape}");
        }
        // A `%` before two hex digits is refused: the service decodes (%7E is ~) or upper-cases (%e9) it,
        // psql decodes it, and %2F may have been meant as `/`. Any other `%` is accepted as written.
        for (dsn, accept) in [
            (format!("postgresql://pct1:pa%zzss@{at}"), true),
            (format!("postgresql://pct2:pa%4@{at}"), true),
            (format!("postgresql://pct3:%@{at}"), true),
            (format!("postgresql://pct4:pa%%ss@{at}"), true),
            (format!("postgresql://pct5:pa%g1%@{at}"), true),
            (format!("postgresql://u%zzr:pass@{at}"), true),
            (
                format!("postgresql://usr:pass@127.0.0.1:{port}/db%zz"),
                true,
            ),
            (format!("postgresql://pct6:pa%2Fss@{at}"), false),
            (format!("postgresql://pct7:pa%e9ss@{at}"), false),
            (format!("postgresql://pct8:pa%7Ess@{at}"), false),
            (format!("postgresql://pct9:pa%%41ss@{at}"), false),
            (format!("postgresql://usr:pa%41ss@{at}"), false),
            (
                format!("postgresql://usr:pass@127.0.0.1:{port}/db%2F"),
                false,
            ),
        ] {
            let i = position(dsn.clone());
            assert_eq!(ours[i].0, accept, "{dsn}: {:?}", service[i]);
        }
        assert!(
            accepted > 400,
            "only {accepted} accepted: the sweep proves little"
        );
    }
}

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
        ("preflight-jwks", &[]),
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

//! The operations scripts of the PowerSync module (modules/powersync/ops), run for real: the DSN preflight
//! against env files, the JWKS preflight against a local HTTP server, the slot watchdog against a real
//! PostgreSQL with logical replication slots, and the teardown with the container runtime injected. Every
//! case also checks that the DSN's password never shows.

use std::{
    fs,
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    thread,
    time::{Duration, Instant},
};

const PASSWORD: &str = "s3cr3t-Pa55";

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../modules/powersync/ops")
        .join(name)
}

/// A fresh temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xtask-ops-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn require(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found || Path::new(program).is_file(),
        "`{program}` is missing: apt-get install {package}"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_no_secret(output: &str) {
    assert!(!output.contains(PASSWORD), "the password leaked:\n{output}");
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on 127.0.0.1:{port}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

mod preflight_dsn {
    use super::*;

    fn run(files: &[&str]) -> Output {
        let dir = TempDir::new("dsn");
        let paths: Vec<PathBuf> = files
            .iter()
            .enumerate()
            .map(|(i, content)| dir.file(&format!("{i}.env"), content))
            .collect();
        Command::new("bash")
            .arg(script("preflight-dsn.sh"))
            .args(&paths)
            .output()
            .unwrap()
    }

    fn refused(files: &[&str], reason: &str) {
        let output = run(files);
        let all = text(&output);
        assert_eq!(output.status.code(), Some(1), "{all}");
        assert!(all.contains(reason), "expected {reason:?} in:\n{all}");
        assert_no_secret(&all);
    }

    const DIRECT: &str = "postgresql://powersync_selfhost:s3cr3t-Pa55@db.abcdefghijklmnopqrst.supabase.co:5432/postgres?sslmode=require";

    #[test]
    fn the_direct_endpoint_passes_and_only_host_and_port_are_shown() {
        let output = run(&[&format!("PS_SOURCE_DSN={DIRECT}\n")]);
        let all = text(&output);
        assert!(output.status.success(), "{all}");
        assert!(
            all.contains("host db.abcdefghijklmnopqrst.supabase.co, port 5432"),
            "{all}"
        );
        assert!(!all.contains("powersync_selfhost"), "{all}");
        assert_no_secret(&all);
    }

    #[test]
    fn ipv6_literals_and_leading_blanks_are_understood() {
        let output = run(&["  PS_SOURCE_DSN=postgresql://u:s3cr3t-Pa55@[fd00::1]:5433/postgres\n"]);
        let all = text(&output);
        assert!(output.status.success(), "{all}");
        assert!(all.contains("host [fd00::1], port 5433"), "{all}");
        assert_no_secret(&all);
    }

    #[test]
    fn quoted_values_are_unquoted_as_podman_reads_them() {
        for quoted in [
            format!("PS_SOURCE_DSN=\"{DIRECT}\"\n"),
            format!("PS_SOURCE_DSN='{DIRECT}'\n"),
        ] {
            let output = run(&[&quoted]);
            assert!(output.status.success(), "{}", text(&output));
            assert!(text(&output).contains("port 5432)"), "{}", text(&output));
        }
        refused(&["PS_SOURCE_DSN=\"postgresql://u:s3cr3t-Pa55@x.pooler.supabase.com:5432/postgres\"\n"], "pooler");
    }

    #[test]
    fn the_pooler_is_refused() {
        refused(
            &["PS_SOURCE_DSN=postgresql://postgres.ref:s3cr3t-Pa55@aws-0-eu-central-1.pooler.supabase.com:5432/postgres\n"],
            "Supabase's pooler",
        );
    }

    #[test]
    fn the_pooler_port_on_the_db_host_is_refused() {
        refused(
            &[&format!(
                "PS_SOURCE_DSN={}\n",
                DIRECT.replace(":5432", ":6543")
            )],
            "port 6543",
        );
    }

    #[test]
    fn replication_database_is_refused() {
        refused(
            &[&format!("PS_SOURCE_DSN={DIRECT}&replication=database\n")],
            "replication=database",
        );
    }

    #[test]
    fn a_missing_variable_an_empty_file_and_a_missing_file_are_refused() {
        refused(&["OTHER=1\n"], "PS_SOURCE_DSN is not set");
        refused(&[""], "PS_SOURCE_DSN is not set");
        refused(&["PS_SOURCE_DSN=\n"], "PS_SOURCE_DSN is empty");
        let output = Command::new("bash")
            .arg(script("preflight-dsn.sh"))
            .arg("/nonexistent/ps.env")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        assert!(
            text(&output).contains("cannot read the environment file"),
            "{}",
            text(&output)
        );
    }

    #[test]
    fn a_later_file_overrides_an_earlier_one() {
        let pooler =
            "PS_SOURCE_DSN=postgresql://u:s3cr3t-Pa55@x.pooler.supabase.com:5432/postgres\n";
        let direct = format!("PS_SOURCE_DSN={DIRECT}\n");
        assert!(run(&[pooler, &direct]).status.success());
        refused(&[&direct, pooler], "Supabase's pooler");
    }

    #[test]
    fn no_argument_is_a_usage_error() {
        let output = Command::new("bash")
            .arg(script("preflight-dsn.sh"))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
    }
}

mod preflight_jwks {
    use super::*;

    /// `python3 -m http.server` on 127.0.0.1 serving a directory; killed on drop.
    struct HttpServer {
        child: Child,
        port: u16,
        _dir: TempDir,
    }

    impl HttpServer {
        fn start(files: &[(&str, &str)]) -> HttpServer {
            require("python3", "python3");
            let dir = TempDir::new("jwks");
            for (name, content) in files {
                dir.file(name, content);
            }
            let port = free_port();
            let child = Command::new("python3")
                .args([
                    "-m",
                    "http.server",
                    "--bind",
                    "127.0.0.1",
                    &port.to_string(),
                    "--directory",
                ])
                .arg(&dir.0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            wait_for_port(port);
            HttpServer {
                child,
                port,
                _dir: dir,
            }
        }

        fn url(&self, path: &str) -> String {
            format!("http://127.0.0.1:{}/{path}", self.port)
        }
    }

    impl Drop for HttpServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn check(uri: &str) -> Output {
        require("curl", "curl");
        require("jq", "jq");
        Command::new("bash")
            .arg(script("preflight-jwks.sh"))
            .arg(uri)
            .output()
            .unwrap()
    }

    const EC_KEY: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","use":"sig","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

    #[test]
    fn a_jwks_with_a_signing_key_passes() {
        let server = HttpServer::start(&[("jwks.json", EC_KEY)]);
        let output = check(&server.url("jwks.json"));
        assert!(output.status.success(), "{}", text(&output));
        assert!(
            text(&output).contains("serves 1 usable key(s)"),
            "{}",
            text(&output)
        );
    }

    #[test]
    fn an_empty_jwks_is_refused_with_the_hs256_explanation() {
        let server = HttpServer::start(&[("jwks.json", r#"{"keys":[]}"#)]);
        let output = check(&server.url("jwks.json"));
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
        assert!(text(&output).contains("HS256"), "{}", text(&output));
    }

    #[test]
    fn symmetric_and_encryption_keys_are_not_usable() {
        let jwks = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"RSA","use":"enc","n":"x","e":"AQAB"},{"kty":"EC","alg":"HS256"}]}"#;
        let server = HttpServer::start(&[("jwks.json", jwks)]);
        assert_eq!(check(&server.url("jwks.json")).status.code(), Some(1));
    }

    #[test]
    fn garbage_is_refused() {
        let server = HttpServer::start(&[("jwks.json", "<html>not a jwks</html>")]);
        let output = check(&server.url("jwks.json"));
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
        assert!(
            text(&output).contains("did not serve a JWKS"),
            "{}",
            text(&output)
        );
    }

    #[test]
    fn a_wrong_path_is_refused() {
        let server = HttpServer::start(&[("jwks.json", EC_KEY)]);
        let output = check(&server.url("nothing-here.json"));
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
        assert!(text(&output).contains("HTTP 404"), "{}", text(&output));
    }

    #[test]
    fn an_unreachable_jwks_only_warns() {
        let output = check(&format!("http://127.0.0.1:{}/jwks.json", free_port()));
        assert!(output.status.success(), "{}", text(&output));
        assert!(text(&output).contains("WARNING"), "{}", text(&output));
    }
}

mod slot_watchdog {
    use super::*;

    /// A real PostgreSQL on 127.0.0.1 (Debian's), run as the `postgres` OS user because it refuses root,
    /// with logical decoding on and a plain LOGIN role `watcher` that authenticates with a password.
    struct Postgres {
        child: Child,
        port: u16,
        bin: PathBuf,
        dir: TempDir,
        recvlogical: Vec<Child>,
    }

    impl Postgres {
        fn start() -> Postgres {
            require("psql", "postgresql");
            let bin = fs::read_dir("/usr/lib/postgresql")
                .expect("PostgreSQL server binaries are missing: apt-get install postgresql")
                .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
                .filter(|bin| bin.join("postgres").is_file())
                .max()
                .expect("no /usr/lib/postgresql/*/bin/postgres: apt-get install postgresql");
            let dir = TempDir::new("pg");
            let data = dir.0.join("data");
            let as_postgres = |program: &str| {
                let mut command = Command::new("setpriv");
                command
                    .args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
                    .arg(bin.join(program));
                command
            };
            Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir.0)
                .status()
                .unwrap();
            let status = as_postgres("initdb")
                .args([
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-U",
                    "postgres",
                    "-D",
                ])
                .arg(&data)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "initdb failed");
            let port = free_port();
            let child = as_postgres("postgres")
                .arg("-D")
                .arg(&data)
                .args([
                    "-c",
                    &format!("port={port}"),
                    "-c",
                    "listen_addresses=127.0.0.1",
                ])
                .args([
                    "-c",
                    &format!("unix_socket_directories={}", dir.0.display()),
                ])
                .args([
                    "-c",
                    "wal_level=logical",
                    "-c",
                    "max_replication_slots=10",
                    "-c",
                    "max_wal_senders=10",
                ])
                .args(["-c", "fsync=off"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            wait_for_port(port);
            let pg = Postgres {
                child,
                port,
                bin,
                dir,
                recvlogical: Vec::new(),
            };
            pg.wait_ready();
            pg.sql(&format!("CREATE ROLE watcher LOGIN PASSWORD '{PASSWORD}'"));
            pg
        }

        fn wait_ready(&self) {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !self.try_sql("SELECT 1") {
                assert!(
                    Instant::now() < deadline,
                    "PostgreSQL did not accept connections"
                );
                thread::sleep(Duration::from_millis(100));
            }
        }

        fn psql(&self) -> Command {
            let mut command = Command::new("psql");
            command.arg("-h").arg(&self.dir.0).args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ]);
            command.args(["-X", "-q", "-v", "ON_ERROR_STOP=1"]);
            command
        }

        fn try_sql(&self, sql: &str) -> bool {
            self.psql()
                .args(["-c", sql])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success()
        }

        fn sql(&self, sql: &str) {
            let output = self.psql().args(["-c", sql]).output().unwrap();
            assert!(output.status.success(), "{sql}: {}", text(&output));
        }

        fn create_slot(&self, name: &str) {
            self.sql(&format!(
                "SELECT pg_create_logical_replication_slot('{name}', 'test_decoding')"
            ));
        }

        /// Consumes the slot with pg_recvlogical, so it is `active`.
        fn consume(&mut self, name: &str) {
            let child = Command::new(self.bin.join("pg_recvlogical"))
                .args(["-h"])
                .arg(&self.dir.0)
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                ])
                .args(["--slot", name, "--start", "-f", "/dev/null"])
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            self.recvlogical.push(child);
            let deadline = Instant::now() + Duration::from_secs(20);
            let query =
                format!("SELECT 1 FROM pg_replication_slots WHERE slot_name = '{name}' AND active");
            while String::from_utf8_lossy(
                &self.psql().args(["-tAc", &query]).output().unwrap().stdout,
            )
            .trim()
                != "1"
            {
                assert!(
                    Instant::now() < deadline,
                    "slot {name} did not become active"
                );
                thread::sleep(Duration::from_millis(100));
            }
        }

        /// Writes some WAL and moves to the next segment, so an unconsumed slot retains more.
        fn generate_wal(&self) {
            self.sql("CREATE TABLE IF NOT EXISTS filler (x text)");
            self.sql("INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 500)");
            self.sql("SELECT pg_switch_wal()");
        }

        fn dsn(&self, password: &str) -> String {
            format!(
                "postgresql://watcher:{password}@127.0.0.1:{}/postgres",
                self.port
            )
        }
    }

    impl Drop for Postgres {
        fn drop(&mut self) {
            for child in &mut self.recvlogical {
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// One watchdog world: its state and metrics directory, and a fake restart that logs to a file.
    struct Watchdog {
        dir: TempDir,
        env_file: PathBuf,
    }

    struct Run {
        output: Output,
        restarts: usize,
        metrics: String,
    }

    impl Watchdog {
        fn new(dsn: &str) -> Watchdog {
            let dir = TempDir::new("watchdog");
            let env_file = dir.file("source.env", &format!("PS_SOURCE_DSN={dsn}\n"));
            Watchdog { dir, env_file }
        }

        fn run(&self, now: u64, live: bool, limits: &[(&str, &str)]) -> Run {
            let log = self.dir.0.join("restarts.log");
            let output = Command::new("bash")
                .arg(script("slot-watchdog.sh"))
                .env("POWERSYNC_ENV_FILE", &self.env_file)
                .env("SLOT_PREFIX", "powersync_selfhost_")
                .env("STATE_DIR", self.dir.0.join("state"))
                .env("TEXTFILE", self.dir.0.join("powersync.prom"))
                .env("NOW", now.to_string())
                .env("RESTART_CMD", format!("echo restart >> {}", log.display()))
                .env("LIVE_CMD", if live { "true" } else { "false" })
                .envs(limits.iter().copied())
                .output()
                .unwrap();
            let restarts = fs::read_to_string(&log)
                .map(|l| l.lines().count())
                .unwrap_or(0);
            let metrics = fs::read_to_string(self.dir.0.join("powersync.prom")).unwrap_or_default();
            assert_no_secret(&text(&output));
            assert_no_secret(&metrics);
            Run {
                output,
                restarts,
                metrics,
            }
        }
    }

    fn value(metrics: &str, series: &str) -> Option<String> {
        metrics.lines().find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')
                .map(str::to_owned)
        })
    }

    const T0: u64 = 1_800_000_000;

    #[test]
    fn a_healthy_active_slot_is_left_alone() {
        let mut pg = Postgres::start();
        pg.create_slot("powersync_selfhost_1_ab12");
        pg.consume("powersync_selfhost_1_ab12");
        pg.create_slot("other_prefix_1_ffff");
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        let run = watchdog.run(T0, true, &[]);
        assert!(run.output.status.success(), "{}", text(&run.output));
        assert_eq!(run.restarts, 0);
        let slot = "{slot=\"powersync_selfhost_1_ab12\"}";
        assert_eq!(
            value(&run.metrics, "powersync_watchdog_source_up").as_deref(),
            Some("1")
        );
        assert_eq!(
            value(&run.metrics, "powersync_slot_present").as_deref(),
            Some("1")
        );
        assert_eq!(
            value(&run.metrics, &format!("powersync_slot_active{slot}")).as_deref(),
            Some("1")
        );
        assert!(
            value(
                &run.metrics,
                &format!("powersync_slot_retained_wal_bytes{slot}")
            )
            .is_some(),
            "{}",
            run.metrics
        );
        assert_eq!(
            value(
                &run.metrics,
                "powersync_slot_wal_status{slot=\"powersync_selfhost_1_ab12\",status=\"reserved\"}"
            )
            .as_deref(),
            Some("1")
        );
        assert_eq!(
            value(
                &run.metrics,
                "powersync_watchdog_last_run_timestamp_seconds"
            ),
            Some(T0.to_string())
        );
        assert!(!run.metrics.contains("other_prefix"), "{}", run.metrics);
    }

    #[test]
    fn an_inactive_slot_restarts_the_live_container_after_the_limit_once_per_interval() {
        let pg = Postgres::start();
        pg.create_slot("powersync_selfhost_1_ab12");
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        let limits = [
            ("MAX_INACTIVE_SECONDS", "300"),
            ("MIN_RESTART_INTERVAL_SECONDS", "1800"),
        ];
        assert_eq!(
            watchdog.run(T0, true, &limits).restarts,
            0,
            "first sight starts the clock"
        );
        assert_eq!(watchdog.run(T0 + 299, true, &limits).restarts, 0);
        let run = watchdog.run(T0 + 300, true, &limits);
        assert_eq!(run.restarts, 1, "{}", text(&run.output));
        assert!(
            text(&run.output).contains("inactive for 300s"),
            "{}",
            text(&run.output)
        );
        assert_eq!(
            value(&run.metrics, "powersync_watchdog_restarts_total").as_deref(),
            Some("1")
        );
        let suppressed = watchdog.run(T0 + 900, true, &limits);
        assert_eq!(suppressed.restarts, 1, "rate limit");
        assert!(
            text(&suppressed.output).contains("restart suppressed"),
            "{}",
            text(&suppressed.output)
        );
        assert_eq!(watchdog.run(T0 + 300 + 1800, true, &limits).restarts, 2);
    }

    #[test]
    fn a_container_that_is_not_live_is_left_to_systemd() {
        let pg = Postgres::start();
        pg.create_slot("powersync_selfhost_1_ab12");
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        watchdog.run(T0, false, &[]);
        let run = watchdog.run(T0 + 3600, false, &[]);
        assert_eq!(run.restarts, 0);
        assert!(
            text(&run.output).contains("not running"),
            "{}",
            text(&run.output)
        );
        assert_eq!(
            value(
                &run.metrics,
                "powersync_slot_inactive_seconds{slot=\"powersync_selfhost_1_ab12\"}"
            )
            .as_deref(),
            Some("3600")
        );
    }

    #[test]
    fn growing_retained_wal_restarts_after_the_growth_checks() {
        let pg = Postgres::start();
        pg.create_slot("powersync_selfhost_1_ab12");
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        let limits = [
            ("MAX_INACTIVE_SECONDS", "1000000"),
            ("MAX_RETAINED_BYTES", "1000"),
            ("GROWTH_CHECKS", "2"),
        ];
        let mut restarts = Vec::new();
        for step in 0..3 {
            pg.generate_wal();
            restarts.push(watchdog.run(T0 + step * 60, true, &limits).restarts);
        }
        // Run 1 has nothing to compare with; runs 2 and 3 grow: the second growth restarts.
        assert_eq!(restarts, vec![0, 0, 1]);
    }

    #[test]
    fn a_quoted_dsn_with_leading_blanks_is_read_as_podman_reads_it() {
        let mut pg = Postgres::start();
        pg.create_slot("powersync_selfhost_1_ab12");
        pg.consume("powersync_selfhost_1_ab12");
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        fs::write(
            &watchdog.env_file,
            format!("  PS_SOURCE_DSN=\"{}\"\n", pg.dsn(PASSWORD)),
        )
        .unwrap();
        let run = watchdog.run(T0, true, &[]);
        assert!(run.output.status.success(), "{}", text(&run.output));
        assert_eq!(
            value(&run.metrics, "powersync_watchdog_source_up").as_deref(),
            Some("1")
        );
    }

    #[test]
    fn no_slot_is_reported_but_not_restarted() {
        let pg = Postgres::start();
        let watchdog = Watchdog::new(&pg.dsn(PASSWORD));
        let run = watchdog.run(T0, true, &[]);
        assert!(run.output.status.success(), "{}", text(&run.output));
        assert_eq!(run.restarts, 0);
        assert_eq!(
            value(&run.metrics, "powersync_slot_present").as_deref(),
            Some("0")
        );
        assert!(
            text(&run.output).contains("no replication slot"),
            "{}",
            text(&run.output)
        );
    }

    #[test]
    fn an_unreachable_or_refusing_source_is_reported_and_nothing_restarts() {
        let pg = Postgres::start();
        pg.create_slot("powersync_selfhost_1_ab12");
        let watchdog = Watchdog::new(&pg.dsn("wrong-password"));
        let run = watchdog.run(T0 + 99_999, true, &[]);
        assert_eq!(run.output.status.code(), Some(1), "{}", text(&run.output));
        assert_eq!(run.restarts, 0);
        assert_eq!(
            value(&run.metrics, "powersync_watchdog_source_up").as_deref(),
            Some("0")
        );
        assert!(
            !text(&run.output).contains("wrong-password"),
            "{}",
            text(&run.output)
        );
    }
}

mod teardown {
    use super::*;

    /// Runs the teardown with fake systemctl and podman that append their argv to one log.
    fn run(args: &[&str], stdin: &str, podman_exit: i32) -> (Output, Vec<String>) {
        let dir = TempDir::new("teardown");
        let log = dir.0.join("calls.log");
        let fake = |name: &str, exit: i32| {
            let path = dir.file(
                name,
                &format!(
                    "#!/bin/sh\necho \"{name} $*\" >> {}\nexit {exit}\n",
                    log.display()
                ),
            );
            Command::new("chmod").arg("+x").arg(&path).status().unwrap();
            path
        };
        let systemctl = fake("systemctl", 0);
        let podman = fake("podman", podman_exit);
        let mut child = Command::new("bash")
            .arg(script("teardown.sh"))
            .args(args)
            .env("SYSTEMCTL", &systemctl)
            .env("PODMAN", &podman)
            .env("IMAGE", "docker.io/journeyapps/powersync-service:1.26.1@sha256:abc")
            .env("NETWORK", "v6egress")
            .env("CONFIG_MOUNTS", "/nix/store/x-service.yaml:/config/service.yaml:ro /nix/store/y-sync.yaml:/config/sync-config.yaml:ro")
            .env("ENV_FILES", "/run/secrets/rendered/powersync-source.env /var/lib/powersync/storage.env")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let calls = fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        (output, calls)
    }

    #[test]
    fn without_confirmation_nothing_happens() {
        for answer in ["no\n", "", "teardown\n"] {
            let (output, calls) = run(&[], answer, 0);
            assert_eq!(
                output.status.code(),
                Some(1),
                "{answer:?}: {}",
                text(&output)
            );
            assert!(
                text(&output).contains("Aborted: nothing was changed"),
                "{}",
                text(&output)
            );
            assert!(calls.is_empty(), "{calls:?}");
        }
    }

    #[test]
    fn confirmed_it_stops_the_unit_first_then_runs_the_images_teardown() {
        let (output, calls) = run(&[], "TEARDOWN\n", 0);
        assert!(output.status.success(), "{}", text(&output));
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[0], "systemctl stop podman-powersync.service");
        let podman = &calls[1];
        assert!(
            podman.starts_with("podman run --rm --network=v6egress --user=901:901"),
            "{podman}"
        );
        for part in [
            "--env-file /run/secrets/rendered/powersync-source.env",
            "--env-file /var/lib/powersync/storage.env",
            "-v /nix/store/x-service.yaml:/config/service.yaml:ro",
            "-e POWERSYNC_CONFIG_PATH=/config/service.yaml",
        ] {
            assert!(podman.contains(part), "{part} missing from {podman}");
        }
        assert!(
            podman.ends_with(
                "docker.io/journeyapps/powersync-service:1.26.1@sha256:abc teardown TEARDOWN"
            ),
            "{podman}"
        );
    }

    #[test]
    fn yes_skips_the_prompt() {
        let (output, calls) = run(&["--yes"], "", 0);
        assert!(output.status.success(), "{}", text(&output));
        assert_eq!(calls.len(), 2, "{calls:?}");
    }

    #[test]
    fn a_failed_teardown_says_to_retry_after_the_lock() {
        let (output, calls) = run(&["--yes"], "", 150);
        assert_eq!(output.status.code(), Some(1));
        assert!(text(&output).contains("PSYNC_S1003"), "{}", text(&output));
        assert_eq!(calls[0], "systemctl stop podman-powersync.service");
    }
}

/// The module embeds each script with writeShellApplication, which writes its own header and runs shellcheck
/// at build time; the module strips exactly this first line (operations.nix), so check both here.
#[test]
fn scripts_pass_shellcheck_as_the_module_embeds_them() {
    require("shellcheck", "shellcheck");
    let dir = TempDir::new("shellcheck");
    for name in [
        "preflight-dsn.sh",
        "preflight-jwks.sh",
        "slot-watchdog.sh",
        "teardown.sh",
    ] {
        let source = fs::read_to_string(script(name)).unwrap();
        let body = source
            .strip_prefix("#!/usr/bin/env bash\n")
            .unwrap_or_else(|| {
                panic!("{name} must start with #!/usr/bin/env bash (operations.nix strips it)")
            });
        let embedded = dir.file(
            name,
            &format!("#!/bin/bash\nset -o errexit\nset -o nounset\nset -o pipefail\nexport PATH=\"/x:$PATH\"\n\n{body}"),
        );
        for file in [script(name), embedded] {
            let output = Command::new("shellcheck").arg(&file).output().unwrap();
            assert!(
                output.status.success(),
                "{}:\n{}",
                file.display(),
                text(&output)
            );
        }
    }
}

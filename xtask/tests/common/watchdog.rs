//! The slot watchdog (modules/powersync/operations/slot-watchdog.sh) run for real against a real PostgreSQL with
//! logical replication slots: what its own tests, the healing-time test and the TLS tests share.

use std::{
    fs,
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use super::ops::{assert_no_secret, script, PASSWORD};
use super::{text, TempDir};

/// A real PostgreSQL on 127.0.0.1 with logical decoding on and a plain LOGIN role `watcher` that
/// authenticates with PASSWORD (scram), plus the pg_recvlogical consumers a test starts.
pub struct Postgres {
    cluster: super::postgres::Postgres,
    consumers: Vec<Child>,
}

impl std::ops::Deref for Postgres {
    type Target = super::postgres::Postgres;
    fn deref(&self) -> &Self::Target {
        &self.cluster
    }
}

impl Postgres {
    pub fn start() -> Postgres {
        Self::start_with(&[])
    }

    /// With extra server settings (`name=value`).
    pub fn start_with(extra: &[&str]) -> Postgres {
        Self::start_with_hba(None, extra)
    }

    /// With a pg_hba.conf of the test's instead of initdb's (local trust, host scram).
    pub fn start_with_hba(hba: Option<&str>, extra: &[&str]) -> Postgres {
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
        let cluster = super::postgres::Postgres::start(super::postgres::Setup {
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

    pub fn create_slot(&self, name: &str) {
        self.sql(&format!(
            "SELECT pg_create_logical_replication_slot('{name}', 'test_decoding')"
        ));
    }

    /// Consumes the slot with pg_recvlogical, so it is `active` until the test ends.
    pub fn consume(&mut self, name: &str) {
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
    pub fn freeze_consumers(&self) {
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
    pub fn restart_consumer(&mut self, name: &str) {
        for mut child in self.consumers.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.consume(name);
    }

    /// Waits until the slot's consumer has acknowledged everything written so far.
    pub fn wait_caught_up(&self, name: &str) {
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
    pub fn end_consumers(&mut self) {
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

    pub fn slot_active(&self, name: &str) -> bool {
        self.sql(&format!(
            "SELECT active FROM pg_replication_slots WHERE slot_name = '{name}'"
        )) == "t"
    }

    /// Writes some WAL and moves to the next segment, so an unconsumed slot retains more.
    pub fn generate_wal(&self) {
        self.sql("CREATE TABLE IF NOT EXISTS filler (x text)");
        self.sql("INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 500)");
        self.sql("SELECT pg_switch_wal()");
    }

    pub fn dsn(&self, password: &str) -> String {
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
pub struct Watchdog {
    pub dir: TempDir,
    pub env_file: PathBuf,
}

pub struct Run {
    pub code: Option<i32>,
    pub output: String,
    pub restarts: usize,
    pub metrics: String,
}

impl Watchdog {
    pub fn new(dsn: &str) -> Watchdog {
        let dir = TempDir::new("watchdog");
        let env_file = dir.file("source.env", &format!("PS_SOURCE_DSN={dsn}\n"));
        Watchdog { dir, env_file }
    }

    /// One run at `now`, LIVE_CMD answering `live`; `env` adds or overrides variables.
    pub fn run(&self, now: u64, live: bool, env: &[(&str, &str)]) -> Run {
        self.run_with(Some(now), live, env)
    }

    /// One run on the real clock, the container live.
    pub fn run_now(&self, env: &[(&str, &str)]) -> Run {
        self.run_with(None, true, env)
    }

    pub fn run_with(&self, now: Option<u64>, live: bool, env: &[(&str, &str)]) -> Run {
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
    pub fn value(&self, series: &str) -> Option<&str> {
        self.metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
    }

    pub fn assert_value(&self, series: &str, expected: &str) {
        assert_eq!(
            self.value(series),
            Some(expected),
            "{series} in:\n{}\n{}",
            self.metrics,
            self.output
        );
    }
}

pub const SLOT: &str = "powersync_selfhost_1_ab12";
pub const T0: u64 = 1_800_000_000;

pub fn series(name: &str) -> String {
    format!("{name}{{slot=\"{SLOT}\"}}")
}

/// The watchdog defaults of lib/instance.nix (what the module's options default to), read with real Nix.
pub fn watchdog_defaults() -> serde_json::Value {
    super::lib_eval("lib.defaults.operations.watchdog")
}

/// The watchdog's limits as the module passes them by default (its options default to lib's values).
/// Read once per test binary: every watchdog run needs them.
pub fn module_limits() -> Vec<(&'static str, String)> {
    static LIMITS: std::sync::OnceLock<Vec<(&'static str, String)>> = std::sync::OnceLock::new();
    LIMITS
        .get_or_init(|| {
            let defaults = watchdog_defaults();
            [
                ("MAX_INACTIVE_SECONDS", "maxInactiveSeconds"),
                ("MAX_RETAINED_BYTES", "maxRetainedBytes"),
                ("GROWTH_CHECKS", "growthChecks"),
                ("MIN_RESTART_INTERVAL_SECONDS", "minRestartIntervalSeconds"),
                ("PGCONNECT_TIMEOUT", "connectTimeoutSeconds"),
                ("STATEMENT_TIMEOUT_SECONDS", "statementTimeoutSeconds"),
            ]
            .into_iter()
            .map(|(var, option)| (var, defaults[option].to_string()))
            .collect()
        })
        .clone()
}

/// RESTART_CMD and LIVE_CMD as the module passes them for this unit (lib.watchdogCommands), read with real Nix.
pub fn watchdog_commands(unit: &str) -> Vec<(String, String)> {
    let commands: serde_json::Map<String, serde_json::Value> =
        serde_json::from_value(super::lib_eval(&format!(
            "lib.watchdogCommands {}",
            serde_json::to_string(unit).unwrap()
        )))
        .unwrap();
    commands
        .into_iter()
        .map(|(var, command)| (var, command.as_str().unwrap().to_owned()))
        .collect()
}

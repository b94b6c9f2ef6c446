//! The slot watchdog (modules/powersync/operations/slot-watchdog.sh), run for real against a real PostgreSQL with
//! logical replication slots (common/watchdog.rs). No output may contain the password.
//!
//! Needs (Debian): bash, postgresql (server, psql, pg_recvlogical), util-linux (setpriv), prometheus
//! (promtool), nix-bin (nix-instantiate, for the module's limits and commands). A missing one fails the test
//! with the package to install.

mod common;
use common::{
    assert_contains, free_port,
    http::HttpServer,
    ops::{assert_no_secret, script, EC_JWKS, EMPTY_JWKS, PASSWORD},
    require, text,
    watchdog::{module_limits, series, watchdog_commands, Postgres, Watchdog, SLOT, T0},
    TempDir,
};
use std::{
    fs,
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

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
            format!(
                "postgresql://special:s3cr3t-Pa55%2Fx@127.0.0.1:{}/postgres",
                pg.port
            ),
            "Choose a password of",
        ),
        (
            format!(
                "postgresql://special:s3cr3t-Pa55?x=@127.0.0.1:{}/postgres",
                pg.port
            ),
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
    let unsplittable = Watchdog::new("postgresql://watcher:s3cr3t-Pa55/x@127.0.0.1:5432/postgres");
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
        // The preflight's own bounds, which the module gives it (its runtimeEnv), shortened for the test.
        let run = watchdog.run(
            T0,
            true,
            &[
                ("JWKS_URI", &uri),
                ("JWKS_CHECK", &jwks_check),
                ("JWKS_CONNECT_TIMEOUT", "2"),
                ("JWKS_MAX_TIME", "2"),
            ],
        );
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
        "PGCONNECT_TIMEOUT",
        "STATEMENT_TIMEOUT_SECONDS",
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

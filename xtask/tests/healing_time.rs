//! How long the slot watchdog takes to heal a half-open stall: the arithmetic on the module's defaults, and
//! the defaults scaled down against a real PostgreSQL on a real clock.
//!
//! Needs (Debian): bash, postgresql (server, psql, pg_recvlogical), util-linux (setpriv), nix-bin
//! (nix-instantiate). A missing one fails the test with the package to install.

mod common;
use common::{
    assert_contains,
    ops::PASSWORD,
    watchdog::{series, watchdog_defaults, Postgres, Watchdog, SLOT},
};
use std::{
    fs,
    path::Path,
    thread,
    time::{Duration, Instant},
};

/// How long a half-open stall lasts before the watchdog asks for a restart, at worst: the source drops the
/// stalled walsender after `inactive_after` seconds; the next run sees the slot inactive (up to one interval
/// plus the timer's jitter later); the restart follows when the slot has been inactive for `limit` seconds,
/// counted in whole runs.
fn worst_case_restart(inactive_after: u64, interval: u64, limit: u64, jitter: u64) -> u64 {
    inactive_after + (interval + jitter) + limit.div_ceil(interval) * (interval + jitter)
}

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
    // Healed: the watchdog sees it and asks for nothing more, for longer than the limit (its last run comes
    // about one interval after the limit).
    let after = Instant::now();
    let mut runs = 0;
    while after.elapsed() < Duration::from_secs(limit + interval) {
        thread::sleep(Duration::from_secs(interval));
        let run = watchdog.run_now(&env);
        assert_eq!(run.restarts, 1, "{}", run.output);
        run.assert_value(&series("powersync_slot_active"), "1");
        runs += 1;
    }
    assert!(runs >= 3);
    assert!(
        after.elapsed() > Duration::from_secs(limit),
        "watched for {:?} only",
        after.elapsed()
    );
}

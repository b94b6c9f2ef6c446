//! The report: what was measured, on which machine, with which N and duration; as a table or as JSON.

use std::{collections::BTreeMap, fmt::Write as _, fs, time::Duration};

use serde_json::{json, Value};

use super::{
    stream::{Outcome, StreamResult, MESSAGE_KINDS},
    write::MARKER_ENV,
    Mode, Plan, Run,
};

/// What each figure measures, printed with every report so that it travels with the numbers.
const MEASURED: [(&str, &str); 6] = [
    (
        "connect",
        "from the request's start to the response headers, over the accepted (200) streams",
    ),
    (
        "first checkpoint_complete",
        "from the request's start to the end of the stream's first `checkpoint_complete` line",
    ),
    (
        "first checkpoint from due",
        "from when the stream was due (the burst's start, or its place on the ramp) to the end of its first `checkpoint_complete` line: what a client opening at that instant waits, the probe's own delay included",
    ),
    (
        "start lag",
        "from when a stream was due to its request's start: the probe's own scheduling, over all streams",
    ),
    (
        "probe CPU",
        "the probe process's user and system CPU time during the run, which competes with the service when both share the machine's cores",
    ),
    (
        "write to stream",
        "from the write command's start to the `data` line carrying its marker, over the streams that were open when the write started",
    ),
];

/// Nearest-rank percentile (`p` in 0..=100) of a sample: the smallest value with at least p % of the sample at
/// or below it. None for an empty sample.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[derive(Debug, PartialEq)]
pub(crate) struct Stats {
    pub(crate) count: usize,
    pub(crate) p50: Option<Duration>,
    pub(crate) p95: Option<Duration>,
    pub(crate) p99: Option<Duration>,
    pub(crate) max: Option<Duration>,
}

impl Stats {
    pub(crate) fn of(mut sample: Vec<Duration>) -> Stats {
        sample.sort();
        Stats {
            count: sample.len(),
            p50: percentile(&sample, 50.0),
            p95: percentile(&sample, 95.0),
            p99: percentile(&sample, 99.0),
            max: sample.last().copied(),
        }
    }

    fn to_json(&self) -> Value {
        let ms = |value: Option<Duration>| value.map(|d| (d.as_secs_f64() * 1e4).round() / 10.0);
        json!({
            "count": self.count,
            "p50": ms(self.p50),
            "p95": ms(self.p95),
            "p99": ms(self.p99),
            "max": ms(self.max),
        })
    }

    fn row(&self, label: &str) -> String {
        let cell = |value: Option<Duration>| {
            value.map_or("-".to_string(), |d| {
                format!("{:.1}", d.as_secs_f64() * 1000.0)
            })
        };
        format!(
            "  {label:<28}{:>6}{:>10}{:>10}{:>10}{:>10}\n",
            self.count,
            cell(self.p50),
            cell(self.p95),
            cell(self.p99),
            cell(self.max)
        )
    }
}

pub(crate) struct WriteSummary {
    pub(crate) commands: usize,
    pub(crate) failed: Vec<String>,
    pub(crate) took: Stats,
    pub(crate) latency: Stats,
    /// (stream, write) pairs where the stream was open when the write started.
    pub(crate) expected: usize,
    pub(crate) missed: usize,
    pub(crate) streams_that_missed: usize,
}

pub(crate) struct Report {
    url: String,
    machine: Machine,
    streams: usize,
    duration: Duration,
    mode: Mode,
    tokens: usize,
    started_unix: u64,
    took: Duration,
    pub(crate) accepted: usize,
    held: usize,
    refused: BTreeMap<u16, (usize, String)>,
    failed: BTreeMap<String, usize>,
    dropped: BTreeMap<String, usize>,
    bad_lines: usize,
    /// Lines by kind over all streams: every kind the protocol defines, then "unknown".
    kinds: BTreeMap<&'static str, usize>,
    connect: Stats,
    first_checkpoint: Stats,
    first_checkpoint_from_due: Stats,
    no_checkpoint: usize,
    start_lag: Stats,
    cpu: Duration,
    writes: Option<WriteSummary>,
}

impl Report {
    pub(crate) fn new(plan: &Plan, run: &Run) -> Report {
        let mut report = Report {
            url: plan.stream_url.clone(),
            machine: Machine::this(),
            streams: plan.streams,
            duration: plan.duration,
            mode: plan.mode,
            tokens: plan.tokens.len(),
            started_unix: run.started_unix,
            took: run.took,
            accepted: 0,
            held: 0,
            refused: BTreeMap::new(),
            failed: BTreeMap::new(),
            dropped: BTreeMap::new(),
            bad_lines: 0,
            kinds: MESSAGE_KINDS
                .into_iter()
                .chain(["unknown"])
                .map(|kind| (kind, 0))
                .collect(),
            connect: Stats::of(Vec::new()),
            first_checkpoint: Stats::of(Vec::new()),
            first_checkpoint_from_due: Stats::of(Vec::new()),
            no_checkpoint: 0,
            start_lag: Stats::of(
                run.streams
                    .iter()
                    .zip(&run.due)
                    .filter_map(|(stream, due)| {
                        Some(stream.started?.saturating_duration_since(*due))
                    })
                    .collect(),
            ),
            cpu: run.cpu,
            writes: plan.write.as_ref().map(|_| summarize_writes(run)),
        };
        let mut connect = Vec::new();
        let mut first_checkpoint = Vec::new();
        let mut from_due = Vec::new();
        for (stream, due) in run.streams.iter().zip(&run.due) {
            report.bad_lines += stream.bad_lines;
            for (kind, count) in &stream.kinds {
                *report.kinds.entry(kind).or_default() += count;
            }
            match &stream.outcome {
                Outcome::Refused { status, body } => {
                    let entry = report.refused.entry(*status).or_insert((0, body.clone()));
                    entry.0 += 1;
                    continue;
                }
                Outcome::Failed(error) => {
                    *report.failed.entry(error.clone()).or_default() += 1;
                    continue;
                }
                Outcome::Dropped(reason) => *report.dropped.entry(reason.clone()).or_default() += 1,
                Outcome::Held => report.held += 1,
            }
            report.accepted += 1;
            connect.extend(stream.connect);
            match (stream.first_checkpoint, stream.started) {
                (Some(time), Some(started)) => {
                    first_checkpoint.push(time);
                    from_due.push(started.saturating_duration_since(*due) + time);
                }
                _ => report.no_checkpoint += 1,
            }
        }
        report.connect = Stats::of(connect);
        report.first_checkpoint = Stats::of(first_checkpoint);
        report.first_checkpoint_from_due = Stats::of(from_due);
        report
    }

    /// The most common reason, for the error when no stream got in.
    pub(crate) fn why_none_accepted(&self) -> String {
        if let Some((status, (count, body))) =
            self.refused.iter().max_by_key(|(_, (count, _))| *count)
        {
            return format!("{count} refused with {status} {}", body_shown(body));
        }
        if let Some((error, count)) = self.failed.iter().max_by_key(|(_, count)| **count) {
            return format!("{count} failed: {error}");
        }
        "no stream was opened".to_string()
    }

    pub(crate) fn to_json(&self) -> Value {
        let counts = |map: &BTreeMap<String, usize>| {
            map.iter()
                .map(|(key, count)| (key.clone(), json!(count)))
                .collect::<serde_json::Map<_, _>>()
        };
        json!({
            "url": self.url,
            "machine": self.machine.to_json(),
            "run": {
                "mode": self.mode.name(),
                "streams": self.streams,
                "duration_s": self.duration.as_secs_f64(),
                "ramp_per_s": match self.mode { Mode::Ramped { per_sec } => json!(per_sec), Mode::Burst => Value::Null },
                "tokens": self.tokens,
                "started_unix": self.started_unix,
                "took_s": (self.took.as_secs_f64() * 10.0).round() / 10.0,
            },
            "streams": {
                "accepted": self.accepted,
                "held": self.held,
                "refused": self.refused.values().map(|(count, _)| count).sum::<usize>(),
                "refused_by_status": self.refused.iter()
                    .map(|(status, (count, body))| (status.to_string(), json!({"count": count, "body": body})))
                    .collect::<serde_json::Map<_, _>>(),
                "failed": self.failed.values().sum::<usize>(),
                "failed_by_error": counts(&self.failed),
                "dropped": self.dropped.values().sum::<usize>(),
                "dropped_by_reason": counts(&self.dropped),
                "no_checkpoint_complete": self.no_checkpoint,
                "bad_lines": self.bad_lines,
                "lines_by_kind": self.kinds.iter().map(|(kind, count)| (kind.to_string(), json!(count))).collect::<serde_json::Map<_, _>>(),
            },
            "connect_ms": self.connect.to_json(),
            "first_checkpoint_complete_ms": self.first_checkpoint.to_json(),
            "first_checkpoint_complete_from_due_ms": self.first_checkpoint_from_due.to_json(),
            "probe_overhead": {
                "cpu_s": (self.cpu.as_secs_f64() * 1000.0).round() / 1000.0,
                "cpu_ms_per_stream": (self.cpu_per_stream().as_secs_f64() * 1e4).round() / 10.0,
                "start_lag_ms": self.start_lag.to_json(),
            },
            "writes": self.writes.as_ref().map(|writes| json!({
                "marker_env": MARKER_ENV,
                "commands": writes.commands,
                "failed": writes.failed,
                "command_ms": writes.took.to_json(),
                "latency_ms": writes.latency.to_json(),
                "stream_writes": writes.expected,
                "seen": writes.expected - writes.missed,
                "missed": writes.missed,
                "streams_that_missed": writes.streams_that_missed,
            })),
            "measured": MEASURED.iter().map(|(name, text)| (name.to_string(), json!(text))).collect::<serde_json::Map<_, _>>(),
        })
    }

    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "load probe, {}: {} streams to {} for {} s ({} token{}), took {:.1} s",
            self.mode_shown(),
            self.streams,
            self.url,
            self.duration.as_secs_f64(),
            self.tokens,
            if self.tokens == 1 { "" } else { "s" },
            self.took.as_secs_f64()
        );
        let _ = writeln!(out, "machine: {}", self.machine.line());
        let _ = writeln!(
            out,
            "streams: {} accepted, {} held to the end, {} refused, {} failed, {} dropped",
            self.accepted,
            self.held,
            self.refused.values().map(|(count, _)| count).sum::<usize>(),
            self.failed.values().sum::<usize>(),
            self.dropped.values().sum::<usize>()
        );
        for (status, (count, body)) in &self.refused {
            let _ = writeln!(out, "  refused {status}: {count} ({})", body_shown(body));
        }
        for (error, count) in &self.failed {
            let _ = writeln!(out, "  failed: {count} ({error})");
        }
        for (reason, count) in &self.dropped {
            let _ = writeln!(out, "  dropped: {count} ({reason})");
        }
        if self.no_checkpoint > 0 {
            let _ = writeln!(
                out,
                "  accepted without a checkpoint_complete: {}",
                self.no_checkpoint
            );
        }
        if self.bad_lines > 0 {
            let _ = writeln!(
                out,
                "  lines that were not JSON objects: {}",
                self.bad_lines
            );
        }
        let _ = writeln!(
            out,
            "lines: {}",
            self.kinds
                .iter()
                .map(|(kind, count)| format!("{count} {kind}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            out,
            "\n  {:<28}{:>6}{:>10}{:>10}{:>10}{:>10}",
            "ms", "n", "p50", "p95", "p99", "max"
        );
        out += &self.connect.row("connect");
        out += &self.first_checkpoint.row("first checkpoint_complete");
        out += &self
            .first_checkpoint_from_due
            .row("first checkpoint from due");
        out += &self.start_lag.row("start lag (probe)");
        if let Some(writes) = &self.writes {
            out += &writes.latency.row("write to stream");
            out += &writes.took.row("write command");
            let _ = writeln!(
                out,
                "\nwrites: {} command run{} ({} failed); {} stream-writes expected, {} seen, {} missed ({} stream{} missed one)",
                writes.commands,
                if writes.commands == 1 { "" } else { "s" },
                writes.failed.len(),
                writes.expected,
                writes.expected - writes.missed,
                writes.missed,
                writes.streams_that_missed,
                if writes.streams_that_missed == 1 { "" } else { "s" }
            );
            for error in &writes.failed {
                let _ = writeln!(out, "  {error}");
            }
            if writes.commands == 0 {
                let _ = writeln!(
                    out,
                    "  no write ran: the run is too short for --write-timeout"
                );
            }
        }
        let _ = writeln!(
            out,
            "\nprobe overhead: {:.3} s CPU over the run ({:.1} ms a stream), start lag p99 {}",
            self.cpu.as_secs_f64(),
            self.cpu_per_stream().as_secs_f64() * 1000.0,
            self.start_lag.p99.map_or("-".to_string(), |d| format!(
                "{:.1} ms",
                d.as_secs_f64() * 1000.0
            ))
        );
        let _ = writeln!(out, "\nmeasured:");
        for (name, text) in MEASURED {
            let _ = writeln!(out, "  {name}: {text}");
        }
        out
    }
}

impl Report {
    fn mode_shown(&self) -> String {
        match self.mode {
            Mode::Burst => format!("burst mode (all {} streams at once)", self.streams),
            Mode::Ramped { per_sec } => format!("ramped mode ({per_sec} streams/s)"),
        }
    }

    fn cpu_per_stream(&self) -> Duration {
        self.cpu / u32::try_from(self.streams.max(1)).unwrap_or(u32::MAX)
    }
}

fn body_shown(body: &str) -> String {
    if body.is_empty() {
        "empty body".to_string()
    } else {
        format!("body {}", body.trim())
    }
}

/// Pairs each write with the streams open when it started, and finds when (or whether) each saw its marker.
fn summarize_writes(run: &Run) -> WriteSummary {
    let mut latency = Vec::new();
    let mut expected = 0;
    let mut missed = 0;
    let mut streams_that_missed = 0;
    for stream in &run.streams {
        let Some(accepted_at) = stream.accepted_at else {
            continue;
        };
        let mut missed_one = false;
        for write in &run.writes {
            let open_then = accepted_at <= write.started
                && stream.ended_at.is_none_or(|ended| ended > write.started);
            if !open_then {
                continue;
            }
            expected += 1;
            match seen(stream, write.number) {
                Some(arrived) if arrived >= write.started => latency.push(arrived - write.started),
                _ => {
                    missed += 1;
                    missed_one = true;
                }
            }
        }
        streams_that_missed += usize::from(missed_one);
    }
    WriteSummary {
        commands: run.writes.len(),
        failed: run
            .writes
            .iter()
            .filter_map(|write| {
                write
                    .error
                    .as_ref()
                    .map(|error| format!("write {}: {error}", write.number))
            })
            .collect(),
        took: Stats::of(run.writes.iter().map(|write| write.took).collect()),
        latency: Stats::of(latency),
        expected,
        missed,
        streams_that_missed,
    }
}

fn seen(stream: &StreamResult, number: usize) -> Option<std::time::Instant> {
    stream
        .markers
        .iter()
        .find(|(marker, _)| *marker == number)
        .map(|(_, arrived)| *arrived)
}

/// The machine the probe ran on: its numbers are about this client as much as about the service.
struct Machine {
    hostname: String,
    cores: usize,
    os: String,
    kernel: String,
    arch: &'static str,
}

impl Machine {
    fn this() -> Machine {
        let read = |path: &str| fs::read_to_string(path).map(|text| text.trim().to_string());
        let os = read("/etc/os-release")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("PRETTY_NAME="))
                    .map(|name| name.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| std::env::consts::OS.to_string());
        Machine {
            hostname: read("/proc/sys/kernel/hostname").unwrap_or_else(|_| "unknown".to_string()),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            os,
            kernel: read("/proc/sys/kernel/osrelease").unwrap_or_else(|_| "unknown".to_string()),
            arch: std::env::consts::ARCH,
        }
    }

    fn line(&self) -> String {
        format!(
            "{} ({} cores, {}, kernel {}, {})",
            self.hostname, self.cores, self.os, self.kernel, self.arch
        )
    }

    fn to_json(&self) -> Value {
        json!({
            "hostname": self.hostname,
            "cores": self.cores,
            "os": self.os,
            "kernel": self.kernel,
            "arch": self.arch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_millis).collect()
    }

    #[test]
    fn percentiles_of_one_to_a_hundred_are_the_ranks() {
        let sample = ms(1..=100);
        assert_eq!(percentile(&sample, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&sample, 95.0), Some(Duration::from_millis(95)));
        assert_eq!(percentile(&sample, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&sample, 100.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&sample, 0.0), Some(Duration::from_millis(1)));
    }

    #[test]
    fn percentiles_of_a_small_sample_round_up_to_a_member() {
        // Nearest rank: p95 of 10 values is the 10th (rank ceil(9.5)), p50 the 5th, never an interpolation.
        let sample = ms([10, 20, 30, 40, 50, 60, 70, 80, 90, 1000]);
        assert_eq!(percentile(&sample, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&sample, 95.0), Some(Duration::from_millis(1000)));
        assert_eq!(percentile(&sample, 99.0), Some(Duration::from_millis(1000)));
        assert_eq!(percentile(&ms([7]), 50.0), Some(Duration::from_millis(7)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn stats_sort_their_sample_first() {
        let stats = Stats::of(ms([300, 100, 200, 400]));
        assert_eq!(
            stats,
            Stats {
                count: 4,
                p50: Some(Duration::from_millis(200)),
                p95: Some(Duration::from_millis(400)),
                p99: Some(Duration::from_millis(400)),
                max: Some(Duration::from_millis(400)),
            }
        );
        assert_eq!(Stats::of(Vec::new()).to_json()["p50"], Value::Null);
    }
}

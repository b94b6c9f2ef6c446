//! `--write-cmd`: source writes made by the operator's command, each carrying a unique marker that the streams
//! watch for in their `data` lines.

use std::{
    io,
    path::PathBuf,
    process::{Command, Stdio},
    sync::atomic::Ordering,
    thread,
    time::{Duration, Instant},
};

use super::stream::StreamContext;

/// The environment variable that hands each write's marker to --write-cmd.
pub(crate) const MARKER_ENV: &str = "POWERSYNC_LOAD_MARKER";
const POLL: Duration = Duration::from_millis(5);

pub(crate) struct WritePlan {
    pub(crate) command: String,
    pub(crate) every: Option<Duration>,
    pub(crate) timeout: Duration,
    pub(crate) dir: PathBuf,
}

#[derive(Debug)]
pub(crate) struct Write {
    /// The marker's number (its text is `marker_prefix` followed by it).
    pub(crate) number: usize,
    pub(crate) started: Instant,
    /// How long the command ran.
    pub(crate) took: Duration,
    /// Why the command failed (non-zero exit, no start, still running at the end), if it did.
    pub(crate) error: Option<String>,
}

/// `psload-<run id>-`: the markers are this prefix and a number, letters, digits and `-` only, so they appear
/// unescaped inside the JSON-encoded row of a `data` line.
pub(crate) fn marker_prefix(run_id: &str) -> String {
    format!("psload-{run_id}-")
}

/// Waits until every stream has settled (or until the last moment a write may start), then makes the writes:
/// one, or one every `every`, none starting later than `timeout` before the end.
pub(crate) fn run_writes(plan: &WritePlan, context: &StreamContext, streams: usize) -> Vec<Write> {
    let last_start = context.end - plan.timeout;
    while context.settled.load(Ordering::SeqCst) < streams && Instant::now() < last_start {
        thread::sleep(POLL);
    }
    let mut writes = Vec::new();
    let mut next = Instant::now();
    while next <= last_start {
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        let number = writes.len() + 1;
        let marker = format!("{}{number}", context.marker_prefix);
        let write = run_write(plan, number, &marker, context.end);
        let started = write.started;
        writes.push(write);
        match plan.every {
            Some(every) => next = started + every,
            None => break,
        }
    }
    writes
}

/// Runs the command once under `sh -c`. std's Command rather than xshell: the run must be able to kill a
/// command that is still running when it ends, and xshell has no handle for that.
fn run_write(plan: &WritePlan, number: usize, marker: &str, end: Instant) -> Write {
    let started = Instant::now();
    // The command's output goes to stderr, so stdout stays the report (and valid JSON with --json).
    let child = Command::new("sh")
        .arg("-c")
        .arg(&plan.command)
        .env(MARKER_ENV, marker)
        .current_dir(&plan.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(io::stderr()))
        .spawn();
    let error = match child {
        Err(error) => Some(format!("cannot start sh: {error}")),
        Ok(mut child) => loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => break None,
                Ok(Some(status)) => break Some(format!("the write command failed ({status})")),
                Ok(None) if Instant::now() >= end => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Some(
                        "the write command was still running when the run ended".to_string(),
                    );
                }
                Ok(None) => thread::sleep(POLL),
                Err(error) => break Some(format!("cannot wait for the write command: {error}")),
            }
        },
    };
    Write {
        number,
        started,
        took: started.elapsed(),
        error,
    }
}

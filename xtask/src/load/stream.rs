//! One sync stream, opened as the client SDKs open it (crate::sync_client), read line by line until the
//! run's end. Objects the probe does not know are skipped, never fatal.

use std::{
    io::{BufRead, BufReader, Read},
    sync::atomic::{AtomicUsize, Ordering},
    thread,
    time::{Duration, Instant},
};

use crate::sync_client::{self, Line, Opened};

/// A stream that ends this close to the run's end ended because the run did.
const END_SLACK: Duration = Duration::from_millis(20);

/// Shared by every stream of a run.
pub(crate) struct StreamContext {
    pub(crate) agent: ureq::Agent,
    pub(crate) stream_url: String,
    pub(crate) marker_prefix: String,
    pub(crate) run_id: String,
    pub(crate) end: Instant,
    /// Streams that were refused, failed, ended, or got their first `checkpoint_complete`: writes wait for all.
    pub(crate) settled: AtomicUsize,
}

#[derive(Debug)]
pub(crate) enum Outcome {
    /// Accepted, and still open when the run ended.
    Held,
    /// Answered with a status other than 200.
    Refused { status: u16, body: String },
    /// No response at all (connection, TLS or timeout error).
    Failed(String),
    /// Accepted, then ended or broken before the run's end.
    Dropped(String),
}

#[derive(Debug)]
pub(crate) struct StreamResult {
    pub(crate) outcome: Outcome,
    /// From the request's start to the response headers, whatever the status.
    pub(crate) connect: Option<Duration>,
    /// From the request's start to the end of the first `checkpoint_complete` line.
    pub(crate) first_checkpoint: Option<Duration>,
    /// When the 200 response's headers arrived.
    pub(crate) accepted_at: Option<Instant>,
    /// When a dropped stream ended.
    pub(crate) ended_at: Option<Instant>,
    /// Each marker seen in a `data` line (its number), with when that line arrived; first sighting only.
    pub(crate) markers: Vec<(usize, Instant)>,
    /// Lines that were not a JSON object.
    pub(crate) bad_lines: usize,
}

impl StreamResult {
    fn new(outcome: Outcome) -> StreamResult {
        StreamResult {
            outcome,
            connect: None,
            first_checkpoint: None,
            accepted_at: None,
            ended_at: None,
            markers: Vec::new(),
            bad_lines: 0,
        }
    }
}

pub(crate) fn run_stream(
    context: &StreamContext,
    index: usize,
    token: &str,
    start_at: Instant,
) -> StreamResult {
    let mut settled = Settled(&context.settled, false);
    if let Some(wait) = start_at.checked_duration_since(Instant::now()) {
        thread::sleep(wait);
    }
    let started = Instant::now();
    let client_id = format!("powersync-load-{}-{index}", context.run_id);
    // ureq turns the timeout into a deadline for every read, so the stream ends with the run.
    let timeout = context.end.saturating_duration_since(started);
    let response = match sync_client::open(
        &context.agent,
        &context.stream_url,
        token,
        &client_id,
        timeout,
    ) {
        Opened::Accepted(response) => response,
        Opened::Refused { status, body } => {
            settled.mark();
            let mut result = StreamResult::new(Outcome::Refused { status, body });
            result.connect = Some(started.elapsed());
            return result;
        }
        Opened::Failed(error) => {
            settled.mark();
            return StreamResult::new(Outcome::Failed(error));
        }
    };
    let connect = started.elapsed();
    let mut result = StreamResult::new(Outcome::Held);
    result.connect = Some(connect);
    result.accepted_at = Some(Instant::now());
    read_lines(
        context,
        response.into_reader(),
        started,
        &mut result,
        &mut settled,
    );
    result
}

fn read_lines(
    context: &StreamContext,
    body: impl Read,
    started: Instant,
    result: &mut StreamResult,
    settled: &mut Settled,
) {
    let mut reader = BufReader::new(body);
    let mut line = String::new();
    loop {
        line.clear();
        let ended = match reader.read_line(&mut line) {
            Ok(0) => Some("the service ended the stream".to_string()),
            Ok(_) => None,
            Err(error) => Some(format!("read error: {error}")),
        };
        if let Some(reason) = ended {
            let now = Instant::now();
            if now + END_SLACK < context.end {
                result.outcome = Outcome::Dropped(reason);
                result.ended_at = Some(now);
            }
            return;
        }
        let arrived = Instant::now();
        match Line::parse(line.trim()) {
            Ok(Line::CheckpointComplete { .. }) if result.first_checkpoint.is_none() => {
                result.first_checkpoint = Some(arrived - started);
                settled.mark();
            }
            Ok(Line::Data { .. }) => {
                for marker in markers_in(&line, &context.marker_prefix) {
                    if !result.markers.iter().any(|(seen, _)| *seen == marker) {
                        result.markers.push((marker, arrived));
                    }
                }
            }
            Ok(_) => {}
            Err(_) if line.trim().is_empty() => {}
            Err(_) => result.bad_lines += 1,
        }
    }
}

/// The marker numbers in a line: the digits after each `<prefix>`.
pub(crate) fn markers_in<'a>(line: &'a str, prefix: &'a str) -> impl Iterator<Item = usize> + 'a {
    line.match_indices(prefix).filter_map(move |(at, _)| {
        let rest = &line[at + prefix.len()..];
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..digits].parse().ok()
    })
}

/// Counts a stream as settled once, however it gets there (and when its thread ends, at the latest).
struct Settled<'a>(&'a AtomicUsize, bool);

impl Settled<'_> {
    fn mark(&mut self) {
        if !self.1 {
            self.1 = true;
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Settled<'_> {
    fn drop(&mut self) {
        self.mark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_with_their_whole_number() {
        let line = r#"{"data":{"data":[{"data":"{\"name\":\"psload-ab-12\"}"},{"data":"{\"name\":\"psload-ab-3 x\"}"}]}}"#;
        assert_eq!(markers_in(line, "psload-ab-").collect::<Vec<_>>(), [12, 3]);
        assert_eq!(markers_in(line, "psload-cd-").count(), 0);
        assert_eq!(markers_in("psload-ab-", "psload-ab-").count(), 0);
    }
}

//! One sync stream, opened as the client SDKs open it (crate::sync_client), read line by line until the
//! run's end.
//!
//! The response is newline-delimited JSON, one object a line, of the kinds the service's protocol defines
//! (`StreamingSyncLine`, packages/service-core/src/util/protocol-types.ts, service 1.25.0), which
//! crate::sync_client decodes: `checkpoint`, `checkpoint_diff`, `data` (the rows), `checkpoint_complete`,
//! `partial_checkpoint_complete` (one priority done) and the keep-alive `token_expires_in`, whose 0 announces
//! the token's expiry: the service then ends the stream (packages/service-core/src/sync/util.ts). Each line is
//! counted by kind; an object of another kind is counted as unknown and skipped, never fatal.

use std::{
    io::{BufRead, BufReader, Read},
    sync::atomic::{AtomicUsize, Ordering},
    thread,
    time::{Duration, Instant},
};

use crate::sync_client::{self, Line, Opened};

/// The kinds of line the service sends, by their one key.
pub(crate) const MESSAGE_KINDS: [&str; 6] = [
    "checkpoint",
    "checkpoint_diff",
    "data",
    "checkpoint_complete",
    "partial_checkpoint_complete",
    "token_expires_in",
];

/// The kind of a decoded line: one of MESSAGE_KINDS, or "unknown".
fn kind_of(line: &Line) -> &'static str {
    match line {
        Line::Checkpoint { .. } => MESSAGE_KINDS[0],
        Line::CheckpointDiff { .. } => MESSAGE_KINDS[1],
        Line::Data { .. } => MESSAGE_KINDS[2],
        Line::CheckpointComplete { .. } => MESSAGE_KINDS[3],
        Line::PartialCheckpointComplete => MESSAGE_KINDS[4],
        Line::TokenExpiresIn(_) => MESSAGE_KINDS[5],
        Line::Other => "unknown",
    }
}

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
    /// When the request started: its due time plus the probe's own delay in getting to it.
    pub(crate) started: Option<Instant>,
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
    /// Lines by kind (one of MESSAGE_KINDS, or "unknown" for an object of no known kind).
    pub(crate) kinds: std::collections::BTreeMap<&'static str, usize>,
}

impl StreamResult {
    fn new(outcome: Outcome) -> StreamResult {
        StreamResult {
            outcome,
            started: None,
            connect: None,
            first_checkpoint: None,
            accepted_at: None,
            ended_at: None,
            markers: Vec::new(),
            bad_lines: 0,
            kinds: std::collections::BTreeMap::new(),
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
    let mut result = open_and_read(context, index, token, started, &mut settled);
    result.started = Some(started);
    result
}

fn open_and_read(
    context: &StreamContext,
    index: usize,
    token: &str,
    started: Instant,
    settled: &mut Settled,
) -> StreamResult {
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
        settled,
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
    let mut token_expired = false;
    loop {
        line.clear();
        let ended = match reader.read_line(&mut line) {
            Ok(0) if token_expired => Some(
                "the token expired (token_expires_in: 0), and the service ended the stream"
                    .to_string(),
            ),
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
        let parsed = Line::parse(line.trim());
        if let Ok(decoded) = &parsed {
            *result.kinds.entry(kind_of(decoded)).or_default() += 1;
        }
        match parsed {
            Ok(Line::TokenExpiresIn(0)) => token_expired = true,
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

    /// One line of each kind, shaped as protocol-types.ts declares them, then the expiry and the end.
    #[test]
    fn every_kind_the_service_sends_is_decoded() {
        let lines = [
            r#"{"checkpoint":{"last_op_id":"3","write_checkpoint":null,"buckets":[{"bucket":"b[]","checksum":1,"count":3,"priority":3}]}}"#,
            r#"{"partial_checkpoint_complete":{"last_op_id":"3","priority":1}}"#,
            r#"{"data":{"bucket":"b[]","after":"0","has_more":false,"next_after":"3","data":[{"op_id":"3","op":"PUT","object_type":"t","object_id":"1","checksum":1,"subkey":"s","data":"{\"name\":\"m-7\"}"}]}}"#,
            r#"{"checkpoint_complete":{"last_op_id":"3"}}"#,
            r#"{"checkpoint_diff":{"last_op_id":"4","write_checkpoint":null,"updated_buckets":[],"removed_buckets":["b[]"]}}"#,
            r#"{"token_expires_in":60}"#,
            r#"{"something_new":{}}"#,
            r#"{"token_expires_in":0}"#,
        ];
        let body = lines.join("\n") + "\n";
        let started = Instant::now();
        let context = StreamContext {
            agent: ureq::Agent::new(),
            stream_url: String::new(),
            marker_prefix: "m-".to_string(),
            run_id: String::new(),
            end: started + Duration::from_secs(3600),
            settled: AtomicUsize::new(0),
        };
        let mut result = StreamResult::new(Outcome::Held);
        let mut settled = Settled(&context.settled, false);
        read_lines(
            &context,
            body.as_bytes(),
            started,
            &mut result,
            &mut settled,
        );
        for kind in MESSAGE_KINDS {
            let expected = if kind == "token_expires_in" { 2 } else { 1 };
            assert_eq!(
                result.kinds.get(kind),
                Some(&expected),
                "{kind}: {:?}",
                result.kinds
            );
        }
        assert_eq!(result.kinds.get("unknown"), Some(&1));
        assert_eq!(result.bad_lines, 0);
        // The partial completion (one priority) is not the checkpoint's completion.
        assert!(result.first_checkpoint.is_some());
        assert_eq!(result.markers.iter().map(|m| m.0).collect::<Vec<_>>(), [7]);
        match &result.outcome {
            Outcome::Dropped(reason) => assert!(reason.contains("token expired"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn markers_are_found_with_their_whole_number() {
        let line = r#"{"data":{"data":[{"data":"{\"name\":\"psload-ab-12\"}"},{"data":"{\"name\":\"psload-ab-3 x\"}"}]}}"#;
        assert_eq!(markers_in(line, "psload-ab-").collect::<Vec<_>>(), [12, 3]);
        assert_eq!(markers_in(line, "psload-cd-").count(), 0);
        assert_eq!(markers_in("psload-ab-", "psload-ab-").count(), 0);
    }
}

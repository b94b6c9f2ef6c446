//! `cargo xtask compare <url-a> <url-b>`: whether two PowerSync services send a client the same data, for
//! the parallel run before a cutover. For each token (one user), one sync stream per service, read as the SDK
//! reads it (replica.rs), compared bucket by bucket and row by row (diff.rs), reported as one table
//! (report.rs). One user at a time, its two streams at once, each on a blocking thread.

mod diff;
mod replica;
mod report;

use std::{
    io::{BufRead, BufReader},
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc,
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::{
    flags,
    sync_client::{self, Line, Opened, Roots},
};
use diff::{Difference, Side};
use replica::{Replica, Snapshot};

impl flags::Compare {
    pub fn run(self, caller_dir: &Path) -> Result<()> {
        let plan = Plan::new(self, caller_dir)?;
        let users: Vec<User> = plan
            .tokens
            .iter()
            .enumerate()
            .map(|(index, token)| plan.compare_user(index, token))
            .collect::<Result<_>>()?;
        let report = report::Report {
            urls: plan.urls.clone(),
            settle: plan.settle,
            users,
        };
        if plan.json {
            println!("{}", serde_json::to_string_pretty(&report.to_json())?);
        } else {
            print!("{}", report.table());
        }
        let failing = report.users.iter().filter(|user| !user.same()).count();
        if failing > 0 {
            bail!(
                "{failing} of {} users did not get the same data from A and B (see the report)",
                report.users.len()
            );
        }
        Ok(())
    }
}

struct Plan {
    urls: [String; 2],
    stream_urls: [String; 2],
    tokens: Vec<String>,
    agent: ureq::Agent,
    timeout: Duration,
    settle: Duration,
    json: bool,
    run_id: String,
}

impl Plan {
    fn new(flags: flags::Compare, caller_dir: &Path) -> Result<Plan> {
        let (stream_a, authority_a) = sync_client::stream_url(&flags.url_a).context("A")?;
        let (stream_b, authority_b) = sync_client::stream_url(&flags.url_b).context("B")?;
        let tokens = sync_client::read_tokens(&caller_dir.join(&flags.jwt_file))?;
        let ca_file = flags.ca_file.map(|file| caller_dir.join(file));
        let agent = sync_client::agent(ca_file.as_deref(), Roots::PublicAndCaFile)?;
        sync_client::check_reachable(&authority_a).context("A")?;
        sync_client::check_reachable(&authority_b).context("B")?;
        Ok(Plan {
            urls: [flags.url_a, flags.url_b],
            stream_urls: [stream_a, stream_b],
            tokens,
            agent,
            timeout: Duration::from_secs(flags.timeout),
            settle: Duration::from_secs(flags.settle),
            json: flags.json,
            run_id: sync_client::run_id(),
        })
    }

    /// One user: both streams to their first complete checkpoint, then, while they differ, every new
    /// checkpoint of either side until they agree or the settle time is up.
    fn compare_user(&self, index: usize, token: &str) -> Result<User> {
        let name =
            sync_client::token_subject(token).unwrap_or_else(|| format!("token {}", index + 1));
        let started = Instant::now();
        let (events, _stop_on_return) = self.watch_both(index, token, started)?;
        let mut latest = [None, None];
        let mut ended = [None, None];
        let first = first_checkpoints(&events, started + self.timeout, &mut latest, &mut ended);
        let outcome = match first {
            Ok(()) => settle(&events, self.settle, &mut latest, ended),
            Err(NoCheckpoint::Timeout) => {
                let side = Side::BOTH
                    .into_iter()
                    .find(|side| latest[side.index()].is_none())
                    .unwrap_or(Side::A);
                let reason = format!(
                    "no checkpoint_complete within {} s (--timeout)",
                    self.timeout.as_secs()
                );
                Outcome::Failed { side, reason }
            }
            Err(NoCheckpoint::Failed(side, reason)) => Outcome::Failed { side, reason },
        };
        Ok(User {
            name,
            latest,
            outcome,
        })
    }

    /// One stream per side, each on its own thread, telling the returned channel what it sees; they stop
    /// when the guard is dropped (at their next line), or at the deadline.
    fn watch_both(
        &self,
        index: usize,
        token: &str,
        started: Instant,
    ) -> Result<(mpsc::Receiver<(Side, Event)>, StopOnDrop)> {
        let (sender, events) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        for side in Side::BOTH {
            let watch = Watch {
                side,
                agent: self.agent.clone(),
                stream_url: self.stream_urls[side.index()].clone(),
                token: token.to_string(),
                client_id: format!("powersync-compare-{}-{index}", self.run_id),
                deadline: started + self.timeout + self.settle,
                stop: Arc::clone(&stop),
                events: sender.clone(),
            };
            thread::Builder::new()
                .name(format!("compare-{side}-{index}"))
                .spawn(move || watch.run())
                .with_context(|| format!("start the stream thread of {side}"))?;
        }
        Ok((events, StopOnDrop(stop)))
    }
}

/// Why a side has no first checkpoint.
enum NoCheckpoint {
    Timeout,
    Failed(Side, String),
}

/// Waits until both sides hold a complete checkpoint. A side whose stream ends after its first one is noted
/// in `ended`: what it holds is final.
fn first_checkpoints(
    events: &mpsc::Receiver<(Side, Event)>,
    deadline: Instant,
    latest: &mut [Option<Snapshot>; 2],
    ended: &mut [Option<String>; 2],
) -> Result<(), NoCheckpoint> {
    while latest.iter().any(Option::is_none) {
        let wait = deadline.saturating_duration_since(Instant::now());
        match events
            .recv_timeout(wait)
            .map_err(|_| NoCheckpoint::Timeout)?
        {
            (side, Event::Complete(snapshot)) => latest[side.index()] = Some(snapshot),
            (side, Event::Refused { status, code }) => {
                let code = code.map(|code| format!(" {code}")).unwrap_or_default();
                return Err(NoCheckpoint::Failed(
                    side,
                    format!("refused the token: {status}{code}"),
                ));
            }
            (side, Event::Ended(why)) if latest[side.index()].is_some() => {
                ended[side.index()] = Some(why);
            }
            (side, Event::Ended(why)) => {
                return Err(NoCheckpoint::Failed(
                    side,
                    format!("{why}, before its first checkpoint_complete"),
                ));
            }
        }
    }
    Ok(())
}

/// Compares the two sides' latest checkpoints, again after every new one, until they agree or `settle` is up.
fn settle(
    events: &mpsc::Receiver<(Side, Event)>,
    settle: Duration,
    latest: &mut [Option<Snapshot>; 2],
    mut ended: [Option<String>; 2],
) -> Outcome {
    let started = Instant::now();
    let deadline = started + settle;
    let mut moved = [0; 2];
    loop {
        let differences = match &latest {
            [Some(a), Some(b)] => diff::compare(a, b),
            _ => unreachable!("both sides hold a checkpoint before the comparison"),
        };
        if differences.is_empty() {
            let settled_after = (moved != [0, 0]).then(|| started.elapsed());
            return Outcome::Same { settled_after };
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        let event = if wait.is_zero() {
            None
        } else {
            events.recv_timeout(wait).ok()
        };
        match event {
            Some((side, Event::Complete(snapshot))) => {
                latest[side.index()] = Some(snapshot);
                moved[side.index()] += 1;
            }
            Some((side, Event::Ended(why))) => ended[side.index()] = Some(why),
            // Only a stream's first answer can be a refusal, and both were accepted by now.
            Some((_, Event::Refused { .. })) => {}
            None => {
                return Outcome::Different {
                    differences,
                    waited: started.elapsed(),
                    moved,
                    ended,
                }
            }
        }
    }
}

/// What one user got from A and B.
pub(crate) struct User {
    pub(crate) name: String,
    /// Each side's last complete checkpoint.
    pub(crate) latest: [Option<Snapshot>; 2],
    pub(crate) outcome: Outcome,
}

pub(crate) enum Outcome {
    /// The same rows in the same buckets; `settled_after` when that took new checkpoints during the wait.
    Same { settled_after: Option<Duration> },
    /// Still different when the settle time was up (or no stream was left to wait for).
    Different {
        differences: Vec<Difference>,
        waited: Duration,
        /// New checkpoints seen on each side while waiting.
        moved: [usize; 2],
        /// A stream that ended while waiting, and why.
        ended: [Option<String>; 2],
    },
    /// One side could not be read to a complete checkpoint.
    Failed { side: Side, reason: String },
}

impl User {
    pub(crate) fn same(&self) -> bool {
        matches!(self.outcome, Outcome::Same { .. })
    }
}

enum Event {
    Complete(Snapshot),
    Refused { status: u16, code: Option<String> },
    Ended(String),
}

/// One side's stream, on its own thread: every complete checkpoint goes to the comparing thread.
struct Watch {
    side: Side,
    agent: ureq::Agent,
    stream_url: String,
    token: String,
    client_id: String,
    /// The stream is closed by then at the latest (ureq's read deadline).
    deadline: Instant,
    /// Set when the comparison is done; checked after every line.
    stop: Arc<AtomicBool>,
    events: mpsc::Sender<(Side, Event)>,
}

impl Watch {
    fn run(self) {
        let timeout = self.deadline.saturating_duration_since(Instant::now());
        let response = match sync_client::open(
            &self.agent,
            &self.stream_url,
            &self.token,
            &self.client_id,
            timeout,
        ) {
            Opened::Accepted(response) => response,
            Opened::Refused { status, body } => {
                let code = sync_client::error_code(&body);
                return self.send(Event::Refused { status, code });
            }
            Opened::Failed(error) => {
                return self.send(Event::Ended(format!("no answer ({error})")))
            }
        };
        let mut reader = BufReader::new(response.into_reader());
        let mut replica = Replica::default();
        let mut text = String::new();
        let mut lines = 0;
        while !self.stop.load(Ordering::SeqCst) {
            text.clear();
            let line = match reader.read_line(&mut text) {
                Ok(0) => Err(format!("the stream ended after {lines} lines")),
                Err(error) => Err(format!("the stream broke after {lines} lines ({error})")),
                Ok(_) if text.trim().is_empty() => continue,
                Ok(_) => {
                    lines += 1;
                    Line::parse(text.trim())
                        .map_err(|why| format!("line {lines} is unreadable: {why}"))
                }
            };
            match line.and_then(|line| replica.apply(line)) {
                Ok(None) => {}
                Ok(Some(snapshot)) => {
                    if self
                        .events
                        .send((self.side, Event::Complete(snapshot)))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(why) => return self.send(Event::Ended(why)),
            }
        }
    }

    fn send(&self, event: Event) {
        // The comparing thread may be done with this user already: nobody to tell.
        let _ = self.events.send((self.side, event));
    }
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

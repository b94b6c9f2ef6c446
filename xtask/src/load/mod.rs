//! `cargo xtask load <url>`: a load probe for a running PowerSync Service. It opens N concurrent sync streams
//! as the client SDKs do, inserts nothing itself, and reports what it measured and on which machine. One
//! blocking thread per stream (ureq, std threads): a few hundred threads need no async runtime.

mod report;
mod stream;
mod write;

use std::{
    fs,
    path::Path,
    sync::{atomic::AtomicUsize, Arc},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context, Result};

use crate::{
    flags,
    sync_client::{self, Roots},
};

/// A stream thread reads and parses lines only; ureq and rustls fit well within this.
const STREAM_STACK: usize = 256 * 1024;

impl flags::Load {
    pub fn run(self, caller_dir: &Path) -> Result<()> {
        let plan = Plan::new(self, caller_dir)?;
        let run = plan.execute()?;
        let report = report::Report::new(&plan, &run);
        if plan.json {
            println!("{}", serde_json::to_string_pretty(&report.to_json())?);
        } else {
            print!("{}", report.table());
        }
        if report.accepted == 0 {
            bail!(
                "no stream was accepted: {}; check the URL and the tokens in {}",
                report.why_none_accepted(),
                plan.jwt_file_shown
            );
        }
        Ok(())
    }
}

/// Everything a run needs, checked before any stream opens.
pub(crate) struct Plan {
    pub(crate) stream_url: String,
    pub(crate) tokens: Vec<String>,
    pub(crate) jwt_file_shown: String,
    pub(crate) streams: usize,
    pub(crate) duration: Duration,
    pub(crate) ramp_per_sec: u32,
    pub(crate) agent: ureq::Agent,
    pub(crate) write: Option<write::WritePlan>,
    pub(crate) json: bool,
    /// Unique per run, so a marker or client id left over from an earlier run never matches.
    pub(crate) run_id: String,
}

impl Plan {
    fn new(flags: flags::Load, caller_dir: &Path) -> Result<Plan> {
        let (stream_url, authority) = sync_client::stream_url(&flags.url)?;
        let jwt_file = caller_dir.join(&flags.jwt_file);
        let tokens = sync_client::read_tokens(&jwt_file)?;
        let ca_file = flags.ca_file.map(|file| caller_dir.join(file));
        let agent = sync_client::agent(ca_file.as_deref(), Roots::CaFileOnly)?;
        let streams = flags.streams as usize;
        let duration = Duration::from_secs(flags.duration);
        let ramp = ramp_time(streams, flags.ramp);
        if ramp >= duration {
            bail!(
                "opening {streams} streams at {} per second takes {:.1} s, not less than --duration {} s: raise --ramp or --duration",
                flags.ramp,
                ramp.as_secs_f64(),
                flags.duration
            );
        }
        check_open_file_limit(
            streams,
            fs::read_to_string("/proc/self/limits").ok().as_deref(),
        )?;
        let write = flags.write_cmd.map(|command| write::WritePlan {
            command,
            every: flags.write_every.map(Duration::from_secs),
            timeout: Duration::from_secs(flags.write_timeout),
            dir: caller_dir.to_path_buf(),
        });
        if let Some(write) = &write {
            if write.timeout >= duration {
                bail!(
                    "--write-timeout {} s leaves no time for a write in a {} s run: raise --duration",
                    flags.write_timeout,
                    flags.duration
                );
            }
        }
        sync_client::check_reachable(&authority)?;
        Ok(Plan {
            stream_url,
            tokens,
            jwt_file_shown: jwt_file.display().to_string(),
            streams,
            duration,
            ramp_per_sec: flags.ramp,
            agent,
            write,
            json: flags.json,
            run_id: sync_client::run_id(),
        })
    }

    /// Opens the streams on the ramp, makes the writes, and waits for every stream to end (by the deadline).
    fn execute(&self) -> Result<Run> {
        let started = Instant::now();
        let started_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let end = started + self.duration;
        let context = Arc::new(stream::StreamContext {
            agent: self.agent.clone(),
            stream_url: self.stream_url.clone(),
            marker_prefix: write::marker_prefix(&self.run_id),
            run_id: self.run_id.clone(),
            end,
            settled: AtomicUsize::new(0),
        });
        let mut handles = Vec::with_capacity(self.streams);
        for index in 0..self.streams {
            let context = Arc::clone(&context);
            let token = self.tokens[index % self.tokens.len()].clone();
            let start_at = started + ramp_time(index, self.ramp_per_sec);
            let handle = thread::Builder::new()
                .name(format!("stream-{index}"))
                .stack_size(STREAM_STACK)
                .spawn(move || stream::run_stream(&context, index, &token, start_at))
                .with_context(|| format!("start the thread of stream {index}"))?;
            handles.push(handle);
        }
        let writes = match &self.write {
            Some(plan) => write::run_writes(plan, &context, self.streams),
            None => Vec::new(),
        };
        let streams = handles
            .into_iter()
            .map(|handle| handle.join().expect("a stream thread panicked"))
            .collect();
        Ok(Run {
            started_unix,
            took: started.elapsed(),
            streams,
            writes,
        })
    }
}

/// What a run observed, before any summary.
pub(crate) struct Run {
    pub(crate) started_unix: u64,
    pub(crate) took: Duration,
    pub(crate) streams: Vec<stream::StreamResult>,
    pub(crate) writes: Vec<write::Write>,
}

/// When stream `index` starts, counted from the run's start.
fn ramp_time(index: usize, per_sec: u32) -> Duration {
    Duration::from_secs_f64(index as f64 / f64::from(per_sec))
}

/// Each stream holds a socket: past the open-file limit the last streams would fail with EMFILE and read as
/// the service's fault. `limits` is /proc/self/limits (absent off Linux: no check).
fn check_open_file_limit(streams: usize, limits: Option<&str>) -> Result<()> {
    // Sockets beyond the streams: stdio, the reachability check, the write command's pipes.
    const SPARE: usize = 32;
    let soft_limit = limits.and_then(|limits| {
        let line = limits
            .lines()
            .find(|line| line.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse::<usize>().ok()
    });
    match soft_limit {
        Some(limit) if streams + SPARE > limit => bail!(
            "{streams} streams need about {} open files, but this process may open {limit}: raise the limit \
             (`ulimit -n {}`) or lower --streams",
            streams + SPARE,
            streams + SPARE
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_file_limit_is_read_from_proc_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert!(check_open_file_limit(992, Some(limits)).is_ok());
        let error = check_open_file_limit(1000, Some(limits))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("may open 1024") && error.contains("ulimit -n 1032"),
            "{error}"
        );
        assert!(check_open_file_limit(1000, None).is_ok());
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert!(check_open_file_limit(1000, Some(unlimited)).is_ok());
    }

    #[test]
    fn ramp_spreads_the_starts_evenly() {
        assert_eq!(ramp_time(0, 50), Duration::ZERO);
        assert_eq!(ramp_time(50, 50), Duration::from_secs(1));
        assert_eq!(ramp_time(25, 100), Duration::from_millis(250));
    }
}

//! `cargo xtask load <url>`: a load probe for a running PowerSync Service. It opens N concurrent sync streams
//! as the client SDKs do, inserts nothing itself, and reports what it measured and on which machine. One
//! blocking thread per stream (ureq, std threads): a few hundred threads need no async runtime.

mod report;
mod stream;
mod write;

use std::{
    fs,
    path::Path,
    sync::{atomic::AtomicUsize, mpsc, Arc},
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
        without_transparent_huge_pages();
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
    pub(crate) mode: Mode,
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
        let duration = flags.duration;
        let mode = if flags.burst {
            Mode::Burst
        } else {
            Mode::Ramped {
                per_sec: flags.ramp,
            }
        };
        let ramp = mode.start_offset(streams);
        if ramp >= duration {
            bail!(
                "opening {streams} streams at {} per second takes {:.1} s, not less than --duration {} s: raise --ramp or --duration",
                flags.ramp,
                ramp.as_secs_f64(),
                duration.as_secs_f64()
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
                    duration.as_secs_f64()
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
            mode,
            agent,
            write,
            json: flags.json,
            run_id: sync_client::run_id(),
        })
    }

    /// Opens the streams (at once, or on the ramp), makes the writes, and waits for every stream to end (by
    /// the deadline). Every thread is started first and handed the run's start, an instant just ahead; each
    /// sleeps until its own due time and the kernel's timers wake them. (Released from one lock instead, as
    /// by a `Barrier`, a burst's threads woke one after another: a p99 start lag of 100-300 ms at 200 streams.)
    /// What remains of the probe's own cost is reported: start lag and CPU time.
    fn execute(&self) -> Result<Run> {
        let started_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        type Start = (Arc<stream::StreamContext>, Instant);
        let mut handles = Vec::with_capacity(self.streams);
        let mut starts = Vec::with_capacity(self.streams);
        for index in 0..self.streams {
            let token = self.tokens[index % self.tokens.len()].clone();
            let (start_tx, start_rx) = mpsc::sync_channel::<Start>(1);
            let offset = self.mode.start_offset(index);
            let handle = thread::Builder::new()
                .name(format!("stream-{index}"))
                .stack_size(STREAM_STACK)
                .spawn(move || {
                    warm_up();
                    let (context, started) = start_rx.recv().expect("the run's start is sent");
                    stream::run_stream(&context, index, &token, started + offset)
                })
                .with_context(|| format!("start the thread of stream {index}"))?;
            handles.push(handle);
            starts.push(start_tx);
        }
        let cpu_before = cpu_time();
        let started = Instant::now() + release_margin(self.streams);
        let context = Arc::new(stream::StreamContext {
            agent: self.agent.clone(),
            stream_url: self.stream_url.clone(),
            marker_prefix: write::marker_prefix(&self.run_id),
            run_id: self.run_id.clone(),
            end: started + self.duration,
            settled: AtomicUsize::new(0),
        });
        for start in starts {
            start
                .send((Arc::clone(&context), started))
                .context("hand a stream thread the run's start")?;
        }
        let writes = match &self.write {
            Some(plan) => write::run_writes(plan, &context, self.streams),
            None => Vec::new(),
        };
        let streams: Vec<stream::StreamResult> = handles
            .into_iter()
            .map(|handle| handle.join().expect("a stream thread panicked"))
            .collect();
        let due = (0..self.streams)
            .map(|index| started + self.mode.start_offset(index))
            .collect();
        Ok(Run {
            started_unix,
            took: started.elapsed(),
            cpu: cpu_time().saturating_sub(cpu_before),
            streams,
            due,
            writes,
        })
    }
}

/// Touches, before the run, the memory a stream's first request needs: the thread's allocator pages and the
/// stack. Their first touch faults in and zeroes fresh pages; done in a burst, that would be 200 threads
/// faulting at the moment they should be connecting.
fn warm_up() {
    let mut held = Vec::new();
    for size in [
        32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16_384, 32_768, 65_536,
    ] {
        for _ in 0..4 {
            held.push(std::hint::black_box(vec![1u8; size]));
        }
    }
    drop(held);
    let stack = std::hint::black_box([1u8; 64 * 1024]);
    std::hint::black_box(&stack);
}

/// How far ahead the run's start is set: long enough for every thread to receive it and fall asleep first
/// (a thread that gets it late shows as start lag, never as the service's time).
fn release_margin(streams: usize) -> Duration {
    Duration::from_millis(20)
        + Duration::from_micros(200) * u32::try_from(streams).unwrap_or(u32::MAX)
}

/// The binary's global allocator is mimalloc (the alejandra library declares it), which asks for transparent
/// huge pages: a stream thread's first allocations then fault in and zero 2 MiB at a time. In a burst of 200
/// streams that was 85 % of the probe's CPU (perf: clear_page_erms under mimalloc's page allocation), spent
/// just as each stream started. Ordinary 4 KiB pages cost the probe nothing measurable; the probe holds a
/// few hundred small buffers, where huge pages gain nothing. Best effort: an old kernel keeps huge pages.
fn without_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE only sets a flag of this process's memory map.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

/// The CPU time (user and system) this process has used so far: the probe's own cost, which competes with
/// the service for the cores when both run on one machine.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// How the streams are opened. The two give different figures: a burst makes every stream wait behind the
/// others' set-up, a ramp lets each find the service idle, so the report always names the mode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Mode {
    /// Every stream released at the same instant.
    Burst,
    /// Streams started evenly, this many per second.
    Ramped { per_sec: u32 },
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Burst => "burst",
            Mode::Ramped { .. } => "ramped",
        }
    }

    /// When stream `index` is due, counted from the run's start (a burst: all at once).
    fn start_offset(self, index: usize) -> Duration {
        match self {
            Mode::Burst => Duration::ZERO,
            Mode::Ramped { per_sec } => ramp_time(index, per_sec),
        }
    }
}

/// What a run observed, before any summary.
pub(crate) struct Run {
    pub(crate) started_unix: u64,
    pub(crate) took: Duration,
    /// The probe's own CPU time (user and system) during the run.
    pub(crate) cpu: Duration,
    pub(crate) streams: Vec<stream::StreamResult>,
    /// When each stream was due to start (the same instant for all in a burst).
    pub(crate) due: Vec<Instant>,
    pub(crate) writes: Vec<write::Write>,
}

/// The longest run --duration accepts, in seconds.
const MAX_DURATION_S: f64 = 3600.0;

/// --duration: seconds as a decimal number, so a short run (a test's) need not last a whole second.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!("`{text}` is not a duration: give seconds, more than 0 and at most {MAX_DURATION_S} (e.g. 30 or 0.5)")
    };
    let seconds: f64 = text.parse().map_err(|_| invalid())?;
    if !seconds.is_finite() || seconds > MAX_DURATION_S {
        return Err(invalid());
    }
    // A positive duration below a nanosecond rounds to zero, which is no run either.
    match Duration::try_from_secs_f64(seconds) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        _ => Err(invalid()),
    }
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
    fn duration_takes_decimal_seconds_within_its_bounds() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("0.3"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3600"), Ok(Duration::from_secs(3600)));
        for bad in [
            "0", "0.0", "-1", "-0.5", "1e-10", "3600.5", "inf", "NaN", "", "1s", "1,5",
        ] {
            let error = parse_duration(bad).unwrap_err();
            assert!(
                error.contains(&format!("`{bad}` is not a duration"))
                    && error.contains("more than 0 and at most 3600"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn ramp_spreads_the_starts_evenly() {
        assert_eq!(ramp_time(0, 50), Duration::ZERO);
        assert_eq!(ramp_time(50, 50), Duration::from_secs(1));
        assert_eq!(ramp_time(25, 100), Duration::from_millis(250));
    }
}

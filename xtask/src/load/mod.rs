//! `cargo xtask load <url>`: a load probe for a running PowerSync Service. It opens N concurrent sync streams
//! as the client SDKs do, inserts nothing itself, and reports what it measured and on which machine. One
//! blocking thread per stream (ureq, std threads): a few hundred threads need no async runtime.

mod report;
mod stream;
mod write;

use std::{
    fs,
    net::{TcpStream, ToSocketAddrs},
    path::Path,
    sync::{atomic::AtomicUsize, Arc},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context, Result};

use crate::flags;

/// How long one TCP connect (and the reachability check before the run) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
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
        let (stream_url, authority) = stream_url(&flags.url)?;
        let jwt_file = caller_dir.join(&flags.jwt_file);
        let tokens = read_tokens(&jwt_file)?;
        let ca_file = flags.ca_file.map(|file| caller_dir.join(file));
        let agent = agent(ca_file.as_deref())?;
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
        check_reachable(&authority)?;
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
            run_id: run_id(),
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

/// The stream endpoint of a base URL, and the URL's `host:port` for the reachability check.
fn stream_url(url: &str) -> Result<(String, String)> {
    let Some((scheme, rest)) = url.split_once("://") else {
        bail!(
            "{url:?} is not a URL: give the service's base URL, e.g. https://powersync.example.org"
        );
    };
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => bail!("{url:?}: the scheme must be http or https"),
    };
    if rest.contains(['?', '#']) {
        bail!("{url:?}: give the base URL without a query or fragment");
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        bail!("{url:?}: the URL needs a host (and no user info)");
    }
    // A port follows the last `:` unless that `:` is inside an IPv6 literal (`[::1]`).
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.contains(']'));
    let host_port = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    };
    Ok((
        format!("{}/sync/stream", url.trim_end_matches('/')),
        host_port,
    ))
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

/// Fails fast, with the address, when nothing listens: better than N identical connection errors.
fn check_reachable(host_port: &str) -> Result<()> {
    let addresses: Vec<_> = host_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host_port}"))?
        .collect();
    let mut last_error = None;
    for address in &addresses {
        match TcpStream::connect_timeout(address, CONNECT_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(error) => last_error = Some(format!("{address}: {error}")),
        }
    }
    bail!(
        "cannot reach {host_port} ({}): is the service running and the URL right?",
        last_error.unwrap_or_else(|| "no address".to_string())
    )
}

/// The tokens, one per line. They are secrets: no message ever shows one.
fn read_tokens(file: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(file)
        .with_context(|| format!("read the JWT file {}", file.display()))?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect();
    if tokens.is_empty() {
        bail!("{} holds no token: put one JWT per line", file.display());
    }
    if let Some(line) = tokens
        .iter()
        .position(|token| token.contains(char::is_whitespace))
    {
        bail!(
            "token {} in {} contains whitespace: put one JWT per line, nothing else",
            line + 1,
            file.display()
        );
    }
    Ok(tokens)
}

/// One agent for every stream. With --ca-file it trusts only that file's CAs; certificates are always verified.
fn agent(ca_file: Option<&Path>) -> Result<ureq::Agent> {
    let mut builder = ureq::AgentBuilder::new()
        .timeout_connect(CONNECT_TIMEOUT)
        .redirects(0)
        .max_idle_connections(0);
    if let Some(ca_file) = ca_file {
        builder = builder.tls_config(Arc::new(tls_config(ca_file)?));
    }
    Ok(builder.build())
}

fn tls_config(ca_file: &Path) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca_file)
        .with_context(|| format!("read the CA file {}", ca_file.display()))?
    {
        let certificate =
            certificate.with_context(|| format!("parse the CA file {}", ca_file.display()))?;
        roots
            .add(certificate)
            .with_context(|| format!("use a certificate of {} as a CA", ca_file.display()))?;
    }
    if roots.is_empty() {
        bail!(
            "{} holds no PEM certificate: give the CA certificate the service's chain ends in",
            ca_file.display()
        );
    }
    // The provider ureq itself uses, named explicitly so no process-wide default is needed.
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("set the TLS versions")?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    format!("{:x}{:08x}", std::process::id(), nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_url_appends_the_endpoint_and_finds_the_port() {
        let cases = [
            (
                "http://127.0.0.1:8080",
                "http://127.0.0.1:8080/sync/stream",
                "127.0.0.1:8080",
            ),
            (
                "https://ps.example.org/",
                "https://ps.example.org/sync/stream",
                "ps.example.org:443",
            ),
            ("http://[::1]", "http://[::1]/sync/stream", "[::1]:80"),
            (
                "http://[::1]:9000/base",
                "http://[::1]:9000/base/sync/stream",
                "[::1]:9000",
            ),
        ];
        for (url, endpoint, authority) in cases {
            let (got_endpoint, got_authority) = stream_url(url).unwrap();
            assert_eq!(
                (got_endpoint.as_str(), got_authority.as_str()),
                (endpoint, authority),
                "{url}"
            );
        }
    }

    #[test]
    fn stream_url_refuses_what_is_not_a_base_url() {
        for url in [
            "powersync.example.org",
            "ftp://x",
            "http://",
            "http://h/?a=1",
            "http://u:p@h",
        ] {
            assert!(stream_url(url).is_err(), "{url} was accepted");
        }
    }

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

//! The checks only the outside can make, each one independent so they run side by side: what a client
//! reaches through nginx and TLS, and what it must not reach at all.

use std::{
    io::{BufRead, BufReader, ErrorKind, Read},
    net::{TcpStream, ToSocketAddrs},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use super::tls;
use crate::sync_client;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pass,
    Warn,
    Fail,
    /// Not run, and said so (the sync stream without --jwt-file).
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [Status::Pass, Status::Warn, Status::Fail, Status::Skip]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// Every check id this side reports; each has its `### check: <id>` section in docs/runbook.md.
pub const IDS: [&str; 7] = [
    "host-report",
    "liveness",
    "tls-certificate",
    "hsts",
    "sync-reachable",
    "private-port",
    "sync-stream",
];

/// A certificate closer to expiry than this is a warning: ACME renews 30 days ahead, so it is stuck.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

#[derive(Debug, Clone)]
pub struct Check {
    pub status: Status,
    pub id: String,
    pub subject: String,
    pub detail: String,
}

impl Check {
    /// A check made here; its id must be one of IDS (so it has its runbook section).
    pub fn new(status: Status, id: &str, subject: &str, detail: impl Into<String>) -> Check {
        debug_assert!(IDS.contains(&id), "{id} is not in IDS");
        Check::reported(status, id, subject, detail)
    }

    /// A check as the host reported it. Every field is made printable: a host's report, a server's headers
    /// and certificate names are text from elsewhere, and must not move the cursor or rewrite the terminal.
    pub fn reported(status: Status, id: &str, subject: &str, detail: impl Into<String>) -> Check {
        Check {
            status,
            id: printable(id),
            subject: printable(subject),
            detail: printable(&detail.into()),
        }
    }

    pub fn fix(&self) -> String {
        format!("docs/runbook.md#check-{}", self.id)
    }
}

/// `text` with every control character (C0, DEL, C1: escape sequences, carriage returns, bells) and every
/// bidirectional override written as its `\u{…}` escape, so it prints as what it is.
pub fn printable(text: &str) -> String {
    let bidi = |c: char| matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    text.chars()
        .map(|c| {
            if c.is_control() || bidi(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The public endpoint: `https://host[:port]`, with the TLS config every check shares.
pub struct Endpoint {
    pub base: String,
    pub host: String,
    pub port: u16,
    pub tls: Arc<rustls::ClientConfig>,
    pub timeout: Duration,
}

impl Endpoint {
    pub fn parse(url: &str, tls: Arc<rustls::ClientConfig>, timeout: Duration) -> Result<Endpoint> {
        let authority = url
            .strip_prefix("https://")
            .with_context(|| format!("the public URL must start with https://, not {url:?}"))?
            .trim_end_matches('/');
        if authority.contains(['/', '@', '[', '?', '#']) || authority.is_empty() {
            bail!("the public URL must be https://<host>[:<port>], not {url:?}");
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse()
                    .with_context(|| format!("bad port in {url:?}"))?,
            ),
            None => (authority, 443),
        };
        Ok(Endpoint {
            base: format!("https://{authority}"),
            host: host.to_owned(),
            port,
            tls,
            timeout,
        })
    }

    fn agent(&self, read_timeout: Duration) -> ureq::Agent {
        ureq::AgentBuilder::new()
            .tls_config(Arc::clone(&self.tls))
            .timeout_connect(self.timeout)
            .timeout_read(read_timeout)
            .timeout_write(self.timeout)
            .redirects(0)
            .build()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A ureq answer of any status, or why there was none.
fn answer(result: Result<ureq::Response, ureq::Error>) -> Result<ureq::Response, String> {
    match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => Ok(response),
        Err(ureq::Error::Transport(transport)) => Err(transport.to_string()),
    }
}

/// `/probes/liveness` answers 200, and the same answer carries HSTS.
pub fn liveness_and_hsts(endpoint: &Endpoint) -> [Check; 2] {
    let url = endpoint.url("/probes/liveness");
    let started = Instant::now();
    let response = match answer(endpoint.agent(endpoint.timeout).get(&url).call()) {
        Ok(response) => response,
        Err(why) => {
            return [
                Check::new(Status::Fail, "liveness", &url, format!("no answer: {why}")),
                Check::new(
                    Status::Fail,
                    "hsts",
                    &endpoint.base,
                    "no answer to read it from",
                ),
            ]
        }
    };
    let millis = started.elapsed().as_millis();
    let liveness = match response.status() {
        200 => Check::new(
            Status::Pass,
            "liveness",
            &url,
            format!("200 in {millis} ms"),
        ),
        status => Check::new(
            Status::Fail,
            "liveness",
            &url,
            format!("answered {status} {}", response.status_text()),
        ),
    };
    let hsts = match response.header("strict-transport-security") {
        None => Check::new(
            Status::Fail,
            "hsts",
            &endpoint.base,
            "no Strict-Transport-Security header",
        ),
        Some(value) => {
            let max_age = value
                .split(';')
                .filter_map(|part| part.trim().strip_prefix("max-age="))
                .find_map(|age| age.trim_matches('"').parse::<u64>().ok());
            match max_age {
                Some(age) if age > 0 => Check::new(Status::Pass, "hsts", &endpoint.base, value),
                _ => Check::new(
                    Status::Fail,
                    "hsts",
                    &endpoint.base,
                    format!("Strict-Transport-Security without a positive max-age: {value}"),
                ),
            }
        }
    };
    [liveness, hsts]
}

/// The chain verifies (against the public roots or --ca-file) for the host name; issuer and days left.
pub fn certificate(endpoint: &Endpoint, now: i64) -> Check {
    let subject = format!("{}:{}", endpoint.host, endpoint.port);
    let chain = match tls::peer_chain(
        Arc::clone(&endpoint.tls),
        &endpoint.host,
        endpoint.port,
        endpoint.timeout,
    ) {
        Ok(chain) => chain,
        Err(error) => {
            return Check::new(
                Status::Fail,
                "tls-certificate",
                &subject,
                format!("{error:#}"),
            )
        }
    };
    let leaf = match tls::leaf(&chain[0]) {
        Ok(leaf) => leaf,
        Err(error) => {
            return Check::new(
                Status::Fail,
                "tls-certificate",
                &subject,
                format!("{error:#}"),
            )
        }
    };
    let days = (leaf.not_after - now).div_euclid(86_400);
    let detail = format!(
        "valid chain of {}; issuer {}; expires {} ({days} days)",
        chain.len(),
        leaf.issuer,
        tls::date(leaf.not_after)
    );
    if days < EXPIRY_WARNING_DAYS {
        Check::new(
            Status::Warn,
            "tls-certificate",
            &subject,
            format!("{detail}: under {EXPIRY_WARNING_DAYS} days, renewal is not happening"),
        )
    } else {
        Check::new(Status::Pass, "tls-certificate", &subject, detail)
    }
}

/// The sync endpoint answers; 401 without a token is the answer of a reachable, protected service.
pub fn sync_reachable(endpoint: &Endpoint) -> Check {
    let url = endpoint.url("/sync/stream");
    let request = endpoint
        .agent(endpoint.timeout)
        .post(&url)
        .set("Content-Type", "application/json");
    match answer(request.send_string("{}")) {
        Err(why) => Check::new(
            Status::Fail,
            "sync-reachable",
            &url,
            format!("no answer: {why}"),
        ),
        Ok(response) if response.status() == 401 => {
            let code = error_code(response);
            Check::new(
                Status::Pass,
                "sync-reachable",
                &url,
                format!("401 without a token{code}: reachable and protected"),
            )
        }
        Ok(response) if response.status() == 200 => Check::new(
            Status::Fail,
            "sync-reachable",
            &url,
            "200 without a token: client authentication is off",
        ),
        Ok(response) => Check::new(
            Status::Fail,
            "sync-reachable",
            &url,
            format!("answered {} {}", response.status(), response.status_text()),
        ),
    }
}

/// " (PSYNC_Sxxxx)" from a PowerSync error body, or nothing.
fn error_code(response: ureq::Response) -> String {
    let mut body = String::new();
    let _ = response
        .into_reader()
        .take(64 * 1024)
        .read_to_string(&mut body);
    match body.find("PSYNC_") {
        Some(at) => format!(" ({})", &body[at..(at + 11).min(body.len())]),
        None => String::new(),
    }
}

/// Nothing answers on `port` from outside: refused and timed out both pass; an open connection fails.
pub fn private_port(host: &str, port: u16, timeout: Duration) -> Check {
    let subject = format!("{host}:{port}");
    let addresses: Vec<_> = match (host, port).to_socket_addrs() {
        Ok(addresses) => addresses.collect(),
        Err(error) => {
            return Check::new(
                Status::Fail,
                "private-port",
                &subject,
                format!("resolve: {error}"),
            )
        }
    };
    let mut seen = Vec::new();
    for address in &addresses {
        match TcpStream::connect_timeout(address, timeout) {
            Ok(_) => {
                return Check::new(
                    Status::Fail,
                    "private-port",
                    &subject,
                    format!("{address} accepts connections from here"),
                )
            }
            Err(error) => seen.push(match error.kind() {
                ErrorKind::ConnectionRefused => format!("{address} refused"),
                ErrorKind::TimedOut | ErrorKind::WouldBlock => format!("{address} timed out"),
                _ => format!("{address} unreachable ({error})"),
            }),
        }
    }
    Check::new(Status::Pass, "private-port", &subject, seen.join(", "))
}

/// With a client JWT, POST /sync/stream opens and delivers a checkpoint line within `deadline`.
pub fn sync_stream(endpoint: &Endpoint, token: &str, deadline: Duration) -> Check {
    let url = endpoint.url("/sync/stream");
    let check = |status, detail: String| {
        // The token is the client's credential: whatever the server echoes, it is not printed.
        Check::new(
            status,
            "sync-stream",
            &url,
            detail.replace(token, "<token>"),
        )
    };
    let started = Instant::now();
    let request = endpoint
        .agent(deadline)
        .post(&url)
        .set("Content-Type", "application/json")
        .set("Authorization", &format!("Bearer {token}"));
    let response =
        match answer(request.send_string(&sync_client::request_body("cargo-xtask-verify"))) {
            Err(why) => return check(Status::Fail, format!("no answer: {why}")),
            Ok(response) if response.status() != 200 => {
                let status = response.status();
                let code = error_code(response);
                return check(
                    Status::Fail,
                    format!("answered {status}{code} to the token"),
                );
            }
            Ok(response) => response,
        };
    let mut lines = BufReader::new(response.into_reader().take(16 * 1024 * 1024));
    let mut line = String::new();
    loop {
        line.clear();
        let read = lines.read_line(&mut line);
        let millis = started.elapsed().as_millis();
        match read {
            Ok(0) => {
                return check(
                    Status::Fail,
                    format!("the stream ended after {millis} ms without a checkpoint"),
                )
            }
            Err(error) => {
                return check(
                    Status::Fail,
                    format!("no checkpoint within {} s ({error})", deadline.as_secs()),
                )
            }
            Ok(_) => {}
        }
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if let Some(checkpoint) = message.get("checkpoint") {
            let buckets = checkpoint["buckets"].as_array().map_or(0, Vec::len);
            let op = checkpoint["last_op_id"].as_str().unwrap_or("?");
            return check(
                Status::Pass,
                format!("checkpoint after {millis} ms (last_op_id {op}, {buckets} bucket(s))"),
            );
        }
        if started.elapsed() > deadline {
            return check(
                Status::Fail,
                format!("no checkpoint within {} s", deadline.as_secs()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> Result<Endpoint> {
        Endpoint::parse(
            url,
            tls::client_config(None).unwrap(),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn control_characters_print_as_escapes() {
        assert_eq!(
            printable("ok\u{1b}[2J\r\n\u{7}\u{9b}x\u{202e}é ✓"),
            "ok\\u{1b}[2J\\u{d}\\u{a}\\u{7}\\u{9b}x\\u{202e}é ✓"
        );
        let check = Check::reported(Status::Pass, "a\u{1b}", "b\u{7}", "c\r");
        assert_eq!(
            (
                check.id.as_str(),
                check.subject.as_str(),
                check.detail.as_str()
            ),
            ("a\\u{1b}", "b\\u{7}", "c\\u{d}")
        );
    }

    #[test]
    fn public_urls_are_https_host_and_port() {
        let e = endpoint("https://powersync.example.com/").unwrap();
        assert_eq!(
            (e.base.as_str(), e.host.as_str(), e.port),
            (
                "https://powersync.example.com",
                "powersync.example.com",
                443
            )
        );
        let e = endpoint("https://localhost:8443").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("localhost", 8443));
        for bad in [
            "http://x",
            "https://",
            "https://x/path",
            "https://u:p@x",
            "https://x:port",
        ] {
            assert!(endpoint(bad).is_err(), "{bad}");
        }
    }
}

//! Just enough of the OCI distribution API for a bump: the anonymous bearer-token challenge, the tag list
//! with pagination, and manifests whose bytes are checked against their digest.
//!
//! Hand-written rather than the maintained `oci-client` crate (rust-oci-client 0.18), compared on the cases of
//! issue 13 by running its `list_tags` and `pull_manifest` against a hostile test registry: it returned the
//! first tag page and ignored `Link` (paging, which Docker Hub needs, is left to the caller, so the cross-host
//! and loop rules would still be ours); it followed a manifest redirect to another host and accepted the
//! bytes; it accepted a 5 MiB manifest; and it hung on a slow-loris until killed at 15 s (it offers connect
//! and read timeouts, no deadline for a run). It is also async (tokio, reqwest, hyper): a scratch crate with
//! only oci-client and tokio took 108 s of CPU to build cold in debug on the 2-core bench machine, twice the
//! 55 s of this whole crate, paid by every cold `cargo xtask`.
//!
//! What this client guarantees, each tested in tests.rs against a real registry and a hostile front:
//! - The bearer token goes only to the registry's own origin (scheme, host and port); the token endpoint
//!   gets none.
//! - No redirect is followed. Manifests and tag lists come from the registry itself (Docker Hub redirects
//!   only blob downloads, and a bump fetches no blob), so a 3xx is reported, never obeyed.
//! - Tag-list pages are followed on the registry's own origin only, each URL once, up to MAX_TAGS tags; the
//!   run's deadline bounds pages that bring none.
//! - Every digest handed out is the sha256 of bytes this client received and hashed; a Docker-Content-Digest
//!   (optional in the spec) must match them when sent (sha256 or sha512). No HEAD answer is trusted.
//! - The whole run has one deadline; when it runs out the error names the request that stalled. A 429 is
//!   retried after its Retry-After (seconds or an HTTP date) when that fits in the deadline.
//! - Every body is read up to a limit (decompressed, if a registry or proxy compressed it unasked) and a
//!   larger one is called "response too large".

use std::{
    collections::HashSet,
    io::Read,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};

use super::network::{Proxies, QuickAckTls, Route, Trust};

/// What we accept for a tag: multi-arch indexes first; single manifests only so the error can say so.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

pub const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
pub const IMAGE_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Manifests are kilobytes and a tag list page of 1000 tags is tens of them; anything this large is not one.
pub const MAX_BODY_BYTES: u64 = 4 << 20;

/// Far beyond any real repository (Docker Hub's largest hold tens of thousands), small enough to hold.
pub const MAX_TAGS: usize = 100_000;

/// Retries of a 429, each after the wait it asks for (or 1 s, doubling), and all within the deadline.
const MAX_RATE_LIMIT_RETRIES: usize = 5;

/// How a registry is reached: the proxies, what TLS trusts, and whether to say so.
pub struct Net {
    pub proxies: Proxies,
    pub trust: Arc<Trust>,
    pub verbose: bool,
}

pub struct Registry {
    base: String,
    origin: String,
    repository: String,
    net: Net,
    /// One agent per route (direct, or through one proxy), each with its own connection pool.
    agents: Vec<(Option<String>, ureq::Agent)>,
    /// Origins whose route was already told (--verbose).
    routed: HashSet<String>,
    token: Option<String>,
    deadline: Instant,
    budget: Duration,
    pub page_size: usize,
    pub max_tags: usize,
    pub requests: usize,
}

/// A manifest as served: the sha256 of its bytes (checked against the registry's digest when it sent one), the
/// document, and the media type the registry labelled it with.
pub struct Manifest {
    pub digest: String,
    pub json: Value,
    pub content_type: Option<String>,
}

impl Registry {
    /// A client for `repository` on `base`, direct, trusting the public roots, that gives up once `budget`
    /// (the whole run's) has passed.
    #[cfg(test)]
    pub fn new(base: &str, repository: &str, budget: Duration) -> Registry {
        let net = Net {
            proxies: Proxies::default(),
            trust: Arc::new(Trust::new(None, None, false)),
            verbose: false,
        };
        Registry::with_net(base, repository, budget, net)
    }

    pub fn with_net(base: &str, repository: &str, budget: Duration, net: Net) -> Registry {
        let base = base.trim_end_matches('/').to_string();
        Registry {
            origin: origin(&base).unwrap_or_default().to_string(),
            base,
            repository: repository.to_string(),
            net,
            agents: Vec::new(),
            routed: HashSet::new(),
            token: None,
            deadline: Instant::now() + budget,
            budget,
            page_size: 1000,
            max_tags: MAX_TAGS,
            requests: 0,
        }
    }

    /// The agent for `url`'s route, said once per origin with --verbose.
    fn agent(&mut self, url: &str) -> Result<ureq::Agent> {
        let route = self.net.proxies.route(url)?;
        let origin = origin(url).unwrap_or(url).to_string();
        if self.net.verbose && self.routed.insert(origin.clone()) {
            eprintln!("bump: {origin}: {}", route.describe());
        }
        let key = route.key().map(str::to_owned);
        if let Some((_, agent)) = self.agents.iter().find(|(k, _)| *k == key) {
            return Ok(agent.clone());
        }
        let agent = self.build_agent(&route);
        self.agents.push((key, agent.clone()));
        Ok(agent)
    }

    fn build_agent(&self, route: &Route) -> ureq::Agent {
        let mut agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .redirects(0)
            .no_delay(true)
            .tls_connector(Arc::new(QuickAckTls(self.net.trust.clone())))
            .user_agent("powersync-nix-xtask-bump");
        if let Some(proxy) = route.proxy() {
            agent = agent.proxy(proxy);
        }
        if self.base.starts_with("http://") {
            // A keep-alive front without TCP_NODELAY holds each response's body until our delayed ACK (about
            // 40 ms a request). ureq gives no hook on a plain socket, so plain HTTP (a local mirror, where a
            // connection costs a fraction of a millisecond and starts in quick-ACK mode) gets a fresh
            // connection per request; TLS connections are kept alive and ACK at once (QuickAckTls).
            agent = agent.max_idle_connections(0);
        }
        agent.build()
    }

    /// Every tag of the repository, following `Link: <…>; rel="next"` pages on the registry's own origin.
    pub fn tags(&mut self) -> Result<Vec<String>> {
        let mut url = format!(
            "{}/v2/{}/tags/list?n={}",
            self.base, self.repository, self.page_size
        );
        let mut seen = HashSet::new();
        let mut tags = Vec::new();
        loop {
            if !seen.insert(url.clone()) {
                bail!(
                    "list the tags: the registry's next-page links loop back to {url}; refusing to follow them"
                );
            }
            let what = match seen.len() {
                1 => "list the tags".to_string(),
                page => format!("list the tags (page {page}, {} tags so far)", tags.len()),
            };
            let response = self.get(&url, "application/json", &what)?;
            let next = response.header("link").and_then(next_link);
            let bytes = self.body(response, MAX_BODY_BYTES, &what, &url)?;
            let body: Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("the tag list at {url} is not JSON"))?;
            tags.extend(
                body["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|tag| tag.as_str().map(str::to_owned)),
            );
            if tags.len() > self.max_tags {
                bail!(
                    "list the tags: more than {} tags after {} pages; no real repository has that many, so \
                     refusing to read more",
                    self.max_tags,
                    seen.len()
                );
            }
            match next {
                None => return Ok(tags),
                Some(next) => url = self.same_origin(&next)?,
            }
        }
    }

    /// A next-page link as an absolute URL, if it stays on the registry's origin.
    fn same_origin(&self, link: &str) -> Result<String> {
        let absolute = if link.starts_with('/') && !link.starts_with("//") {
            format!("{}{link}", self.origin)
        } else {
            link.to_string()
        };
        if origin(&absolute) != Some(self.origin.as_str()) {
            bail!(
                "list the tags: the next-page link points to {link}, off the registry's origin {}; \
                 refusing to follow it (the registry's token must not reach another host)",
                self.origin
            );
        }
        Ok(absolute)
    }

    /// The manifest a tag names. Its digest is the sha256 of the bytes received; a Docker-Content-Digest, when
    /// sent, must name the same bytes.
    pub fn manifest(&mut self, reference: &str) -> Result<Manifest> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.repository);
        let what = format!("fetch the manifest of {reference}");
        let response = self.get(&url, MANIFEST_ACCEPT, &what)?;
        let reported = response.header("docker-content-digest").map(str::to_owned);
        let content_type = response
            .header("content-type")
            .map(|value| value.split(';').next().unwrap_or("").trim().to_string());
        let bytes = self.body(response, MAX_BODY_BYTES, &what, &url)?;
        let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
        match reported {
            Some(reported) => check_reported(reference, &reported, &bytes)?,
            None if self.net.verbose => eprintln!(
                "bump: the registry sent no Docker-Content-Digest for {reference} (the spec makes it \
                 optional); its bytes hash to {digest}"
            ),
            None => {}
        }
        let json = serde_json::from_slice(&bytes)
            .with_context(|| format!("the manifest of {reference} is not JSON"))?;
        Ok(Manifest {
            digest,
            json,
            content_type,
        })
    }

    fn get(&mut self, url: &str, accept: &str, what: &str) -> Result<ureq::Response> {
        self.send("GET", url, accept, what)
    }

    /// The time left of the run's budget, or the error that names the request it ran out in.
    fn remaining(&self, what: &str, url: &str) -> Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("{}", self.deadline_error(what, url));
        }
        Ok(left)
    }

    fn deadline_error(&self, what: &str, url: &str) -> String {
        format!(
            "{what}: the bump's deadline of {}s ran out waiting for {url}; the registry stalled \
             (raise it with --timeout if the registry is merely slow)",
            self.budget.as_secs_f64()
        )
    }

    fn transport_error(&self, what: &str, url: &str, error: impl std::fmt::Display) -> String {
        if Instant::now() >= self.deadline {
            return self.deadline_error(what, url);
        }
        let through = match self.net.proxies.route(url) {
            Ok(Route::Via(proxy)) => format!(
                " through the proxy {} (from {})",
                proxy.shown, proxy.variable
            ),
            _ => String::new(),
        };
        format!(
            "{what}: cannot reach the registry at {}{through}: {error}",
            self.base
        )
    }

    /// A response body up to `limit` bytes, read within the run's deadline and decompressed if it came
    /// compressed (bump asks for no encoding, but a registry or a proxy may compress anyway).
    fn body(&self, response: ureq::Response, limit: u64, what: &str, url: &str) -> Result<Vec<u8>> {
        let encoding = response
            .header("content-encoding")
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty() && e != "identity");
        let mut bytes = Vec::new();
        if let Err(error) = response
            .into_reader()
            .take(limit + 1)
            .read_to_end(&mut bytes)
        {
            bail!("{}", self.transport_error(what, url, error));
        }
        if let Some(encoding) = encoding {
            bytes = decode(&encoding, &bytes, limit)
                .with_context(|| format!("{what}: decode the {encoding} body from {url}"))?;
        }
        if bytes.len() as u64 > limit {
            bail!(
                "{what}: response too large (limit {} MiB) from {url}; a registry answer is never that big",
                limit >> 20
            );
        }
        Ok(bytes)
    }

    /// One request, answering a bearer challenge once (anonymous token) and a 429 after the wait it asks for
    /// (within the deadline), with errors that say what happened.
    fn send(
        &mut self,
        method: &str,
        url: &str,
        accept: &str,
        what: &str,
    ) -> Result<ureq::Response> {
        let mut challenged = false;
        let mut rate_limited = 0;
        loop {
            let timeout = self.remaining(what, url)?;
            let mut request = self
                .agent(url)
                .with_context(|| format!("{what}: reach {url}"))?
                .request(method, url)
                .timeout(timeout)
                .set("Accept", accept);
            // Every URL here is built on the registry's origin; checked again so no path can leak the token.
            if let Some(token) = self
                .token
                .as_ref()
                .filter(|_| origin(url) == Some(&self.origin))
            {
                request = request.set("Authorization", &format!("Bearer {token}"));
            }
            self.requests += 1;
            match request.call() {
                Ok(response) if (300..400).contains(&response.status()) => {
                    bail!(
                        "{what}: the registry redirected ({}) to {}; bump follows no redirects: manifests and tag \
                         lists come from the registry itself (Docker Hub redirects only blob downloads, which a \
                         bump never makes)",
                        response.status(),
                        response.header("location").unwrap_or("nowhere")
                    )
                }
                Ok(response) => return Ok(response),
                Err(ureq::Error::Status(401, response)) if !challenged => {
                    let challenge = response
                        .header("www-authenticate")
                        .map(str::to_owned)
                        .with_context(|| {
                            format!("{what}: 401 without a WWW-Authenticate challenge")
                        })?;
                    // Read to its end, the connection goes back to the pool for the requests that follow.
                    let _ = self.body(response, 64 << 10, what, url);
                    self.token = Some(
                        self.fetch_token(&challenge)
                            .with_context(|| format!("{what}: get a token"))?,
                    );
                    challenged = true;
                }
                Err(ureq::Error::Status(429, response)) => {
                    let asked =
                        RetryAfter::parse(response.header("retry-after"), SystemTime::now());
                    let _ = self.body(response, 64 << 10, what, url);
                    let wait = asked
                        .as_ref()
                        .map_or(Duration::from_secs(1 << rate_limited), |a| a.wait);
                    let left = self.deadline.saturating_duration_since(Instant::now());
                    if rate_limited == MAX_RATE_LIMIT_RETRIES || wait >= left {
                        bail!(
                            "{what}: {}",
                            rate_limited_error(asked.as_ref(), rate_limited, left)
                        );
                    }
                    rate_limited += 1;
                    if self.net.verbose {
                        eprintln!(
                            "bump: rate limited (429); retrying in {:.1}s",
                            wait.as_secs_f64()
                        );
                    }
                    std::thread::sleep(wait);
                }
                Err(ureq::Error::Status(code, _)) => {
                    bail!("{what}: {}", status_error(code, url))
                }
                Err(ureq::Error::Transport(transport)) => {
                    bail!("{}", self.transport_error(what, url, transport))
                }
            }
        }
    }

    /// `Bearer realm="…",service="…",scope="…"` → GET realm?service=…&scope=… → `token` or `access_token`.
    fn fetch_token(&mut self, challenge: &str) -> Result<String> {
        let params = parse_challenge(challenge)?;
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .context("no realm")?;
        let what = "get a token";
        let mut request = self
            .agent(&realm)
            .with_context(|| format!("reach the token endpoint {realm}"))?
            .get(&realm)
            .timeout(self.remaining(what, &realm)?);
        for (key, value) in params
            .iter()
            .filter(|(k, _)| k == "service" || k == "scope")
        {
            request = request.query(key, value);
        }
        self.requests += 1;
        let response = match request.call() {
            Ok(response) if (300..400).contains(&response.status()) => {
                bail!(
                    "token endpoint {realm} redirected ({}); bump follows no redirects",
                    response.status()
                )
            }
            Ok(response) => response,
            Err(ureq::Error::Status(code, _)) => {
                bail!("token endpoint: {}", status_error(code, &realm))
            }
            Err(ureq::Error::Transport(transport)) => {
                if Instant::now() >= self.deadline {
                    bail!("{}", self.deadline_error(what, &realm));
                }
                bail!("cannot reach the token endpoint {realm}: {transport}")
            }
        };
        let bytes = self.body(response, 1 << 20, what, &realm)?;
        let body: Value = serde_json::from_slice(&bytes).context("read the token")?;
        body["token"]
            .as_str()
            .or_else(|| body["access_token"].as_str())
            .map(str::to_owned)
            .context("the token response has neither `token` nor `access_token`")
    }
}

/// A Docker-Content-Digest against the bytes it names: sha256 and sha512 are checked; another well-formed
/// algorithm cannot be, and counts as no header (the bytes' own sha256 is what gets pinned).
fn check_reported(reference: &str, reported: &str, bytes: &[u8]) -> Result<()> {
    let Some((algorithm, encoded)) = parse_digest(reported) else {
        bail!(
            "the registry sent a malformed Docker-Content-Digest for {reference}: `{reported}` is not \
             algorithm:hex. Nothing was pinned."
        );
    };
    let actual = match algorithm {
        "sha256" => format!("{:x}", Sha256::digest(bytes)),
        "sha512" => format!("{:x}", Sha512::digest(bytes)),
        _ => return Ok(()),
    };
    if actual != encoded {
        bail!(
            "digest mismatch for {reference}: the registry says {reported} but the bytes received hash to \
             {algorithm}:{actual}; the manifest was altered in transit or by a mirror. Nothing was pinned."
        );
    }
    Ok(())
}

/// `algorithm:encoded` per the OCI descriptor grammar; sha256 and sha512 must be lowercase hex of their length.
pub fn parse_digest(digest: &str) -> Option<(&str, &str)> {
    let (algorithm, encoded) = digest.split_once(':')?;
    let component = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let algorithm_ok = algorithm.split(['+', '.', '_', '-']).all(component);
    let encoded_ok = !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
    let hex = |len: usize| {
        encoded.len() == len
            && encoded
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let known_ok = match algorithm {
        "sha256" => hex(64),
        "sha512" => hex(128),
        _ => true,
    };
    (algorithm_ok && encoded_ok && known_ok).then_some((algorithm, encoded))
}

/// A body's bytes under its Content-Encoding, at most `limit` + 1 of them (so a bomb is "too large").
fn decode(encoding: &str, bytes: &[u8], limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let read = match encoding {
        "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(bytes)
            .take(limit + 1)
            .read_to_end(&mut out),
        // HTTP's "deflate" is zlib-wrapped; some servers send it raw.
        "deflate" => flate2::read::ZlibDecoder::new(bytes)
            .take(limit + 1)
            .read_to_end(&mut out)
            .or_else(|_| {
                out.clear();
                flate2::read::DeflateDecoder::new(bytes)
                    .take(limit + 1)
                    .read_to_end(&mut out)
            }),
        other => bail!(
            "it came as Content-Encoding: {other}, which bump did not ask for and cannot decode (only gzip \
             and deflate)"
        ),
    };
    read.context("the compressed body is corrupt")?;
    Ok(out)
}

/// A 429's Retry-After: how long to wait, and how the registry put it.
#[derive(Debug, PartialEq)]
pub struct RetryAfter {
    wait: Duration,
    shown: String,
}

impl RetryAfter {
    /// Delay-seconds or an HTTP date (RFC 9110 §10.2.3), relative to `now`; None if absent or unreadable.
    pub fn parse(header: Option<&str>, now: SystemTime) -> Option<RetryAfter> {
        let value = header?.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            let seconds: u64 = value.parse().ok()?;
            return Some(RetryAfter {
                wait: Duration::from_secs(seconds),
                shown: format!("after {seconds}s"),
            });
        }
        let at = parse_http_date(value)?;
        let wait = at.duration_since(now).unwrap_or_default();
        Some(RetryAfter {
            wait,
            shown: format!("at {value} (in {}s)", wait.as_secs_f64().ceil()),
        })
    }
}

fn rate_limited_error(asked: Option<&RetryAfter>, retried: usize, left: Duration) -> String {
    let asked = asked.map_or("gave no Retry-After".to_string(), |a| {
        format!("asks to retry {}", a.shown)
    });
    format!(
        "rate limited by the registry (429): it {asked}; retried {retried} times, and {:.1}s of the bump's \
         deadline are left. Docker Hub limits anonymous requests per IP: wait and try again, raise --timeout, \
         or use a mirror with --registry",
        left.as_secs_f64()
    )
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), and the obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`)
/// and asctime (`Sun Nov  6 08:49:37 1994`) forms a recipient must also read.
pub fn parse_http_date(value: &str) -> Option<SystemTime> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = |m: &str| MONTHS.iter().position(|x| *x == m).map(|i| i as u64 + 1);
    let words: Vec<&str> = value.split_whitespace().collect();
    let (day, month, year, time) = match words.as_slice() {
        [_, day, mon, year, time, "GMT"] => {
            (day.parse().ok()?, month(mon)?, year.parse().ok()?, *time)
        }
        [_, date, time, "GMT"] => {
            let mut parts = date.split('-');
            let (day, mon, year) = (parts.next()?, parts.next()?, parts.next()?);
            let year: u64 = year.parse().ok()?;
            // RFC 9110: a two-digit year more than 50 years in the future is in the past century.
            let year = if year < 70 {
                2000 + year
            } else if year < 100 {
                1900 + year
            } else {
                year
            };
            (day.parse().ok()?, month(mon)?, year, *time)
        }
        [_, mon, day, time, year] => (day.parse().ok()?, month(mon)?, year.parse().ok()?, *time),
        _ => return None,
    };
    let mut clock = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (clock.next()??, clock.next()??, clock.next()??);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 || year < 1970 {
        return None;
    }
    let seconds = days_since_epoch(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    Some(UNIX_EPOCH + Duration::from_secs(seconds))
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's days_from_civil, for years from 1970).
fn days_since_epoch(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `scheme://host[:port]` of an absolute http(s) URL, lowercased host; None for anything else.
fn origin(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(&url[..url.len() - rest.len() + authority_end])
}

fn status_error(code: u16, url: &str) -> String {
    match code {
        401 | 403 => format!(
            "the registry refused access ({code}) to {url}; the anonymous token was not accepted"
        ),
        404 => format!("not found (404): {url}"),
        429 => rate_limited_error(None, 0, Duration::ZERO),
        500..=599 => format!("the registry failed with {code} at {url}; try again later"),
        _ => format!("unexpected HTTP {code} from {url}"),
    }
}

/// The key="value" pairs of a `Bearer` challenge.
fn parse_challenge(header: &str) -> Result<Vec<(String, String)>> {
    let rest = header
        .trim()
        .strip_prefix("Bearer ")
        .with_context(|| format!("not a Bearer challenge: {header}"))?;
    let mut pairs = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .with_context(|| format!("malformed challenge: {header}"))?;
        let after = after
            .strip_prefix('"')
            .with_context(|| format!("unquoted value in challenge: {header}"))?;
        let (value, after) = after
            .split_once('"')
            .with_context(|| format!("unterminated value in challenge: {header}"))?;
        pairs.push((key.trim().to_string(), value.to_string()));
        rest = after.trim_start_matches([',', ' ']);
    }
    Ok(pairs)
}

/// The target of `Link: <url>; rel="next"`.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

/// The `os/arch` pairs an index lists.
pub fn platforms(index: &Value) -> Vec<String> {
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(platform_of)
        .collect()
}

fn platform_of(entry: &Value) -> Option<String> {
    Some(format!(
        "{}/{}",
        entry["platform"]["os"].as_str()?,
        entry["platform"]["architecture"].as_str()?
    ))
}

/// The media type a manifest declares: its `mediaType` field, else the Content-Type it was served with; an
/// error when the two disagree (an index labelled as a single manifest, or the reverse).
pub fn media_type(manifest: &Manifest) -> Result<String, String> {
    let field = manifest.json["mediaType"].as_str();
    let header = manifest
        .content_type
        .as_deref()
        .filter(|t| INDEX_TYPES.contains(t) || IMAGE_TYPES.contains(t));
    match (field, header) {
        (Some(field), Some(header)) if field != header => Err(format!(
            "the registry labels it {header} but the document says {field}"
        )),
        (Some(field), _) => Ok(field.to_string()),
        (None, Some(header)) => Ok(header.to_string()),
        (None, None) => Err(format!(
            "it declares no media type (no mediaType field; served as {})",
            manifest
                .content_type
                .as_deref()
                .unwrap_or("no Content-Type")
        )),
    }
}

/// What is wrong with the index entries for `platform`: none listed, or one that is not a plain image manifest
/// with a sha256/sha512 digest and a plausible size. Each problem names the entry.
pub fn entry_problems(index: &Value, platform: &str) -> Vec<String> {
    let entries: Vec<(usize, &Value)> = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, entry)| platform_of(entry).as_deref() == Some(platform))
        .collect();
    let mut problems = Vec::new();
    for (position, entry) in entries {
        let name = format!("its {platform} entry (manifests[{position}])");
        match entry["mediaType"].as_str() {
            Some(t) if IMAGE_TYPES.contains(&t) => {}
            Some(t) if INDEX_TYPES.contains(&t) => problems.push(format!(
                "{name} is a nested index ({t}), not an image manifest"
            )),
            Some(t) => problems.push(format!("{name} has media type {t}, not an image manifest")),
            None => problems.push(format!("{name} has no media type")),
        }
        let digest = entry["digest"].as_str().unwrap_or("");
        if !matches!(parse_digest(digest), Some(("sha256" | "sha512", _))) {
            problems.push(format!(
                "{name} has digest `{digest}`, not sha256:<64 hex> or sha512:<128 hex>"
            ));
        }
        match entry["size"].as_u64() {
            Some(size) if size > 0 && size <= MAX_BODY_BYTES => {}
            _ => problems.push(format!(
                "{name} has size {}, not a manifest's byte count (1 to {MAX_BODY_BYTES})",
                entry["size"]
            )),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use xtask_testkit::registry::{Fault, LocalRegistry, Proxy, Push};

    use super::*;

    #[test]
    fn challenges_parse_into_their_parameters() {
        let header = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:journeyapps/powersync-service:pull""#;
        assert_eq!(
            parse_challenge(header).unwrap(),
            vec![
                ("realm".into(), "https://auth.docker.io/token".into()),
                ("service".into(), "registry.docker.io".into()),
                (
                    "scope".into(),
                    "repository:journeyapps/powersync-service:pull".into()
                ),
            ]
        );
        assert!(parse_challenge("Basic realm=\"x\"").is_err());
    }

    #[test]
    fn next_links_are_found() {
        assert_eq!(
            next_link(r#"</v2/a/b/tags/list?last=1.2.3&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/b/tags/list?last=1.2.3&n=2")
        );
        assert_eq!(next_link(r#"<https://x/y>; rel="prev""#), None);
    }

    #[test]
    fn http_dates_parse_in_all_three_forms() {
        let expected = UNIX_EPOCH + Duration::from_secs(784_111_777);
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_http_date(date), Some(expected), "{date}");
        }
        assert_eq!(parse_http_date("06 Nov 1994"), None);
        let now = UNIX_EPOCH + Duration::from_secs(784_111_767);
        assert_eq!(
            RetryAfter::parse(Some("Sun, 06 Nov 1994 08:49:37 GMT"), now),
            Some(RetryAfter {
                wait: Duration::from_secs(10),
                shown: "at Sun, 06 Nov 1994 08:49:37 GMT (in 10s)".into()
            })
        );
        assert_eq!(
            RetryAfter::parse(Some("30"), now).unwrap().shown,
            "after 30s"
        );
        assert_eq!(RetryAfter::parse(Some("soon"), now), None);
    }

    #[test]
    fn a_reported_digest_is_checked_by_its_own_algorithm() {
        let bytes = b"{\"schemaVersion\":2}";
        let sha512 = format!("sha512:{:x}", Sha512::digest(bytes));
        assert!(check_reported("t", &sha512, bytes).is_ok());
        let err = check_reported("t", &sha512, b"{}").unwrap_err().to_string();
        assert!(err.contains("digest mismatch for t"), "{err}");
        assert!(check_reported("t", "blake3:abcd", bytes).is_ok());
        let err = check_reported("t", "sha256", bytes)
            .unwrap_err()
            .to_string();
        assert!(err.contains("malformed Docker-Content-Digest"), "{err}");
    }

    #[test]
    fn a_compressed_body_is_decoded_up_to_the_limit() {
        use std::io::Write;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gzip.write_all(&vec![b' '; 1 << 20]).unwrap();
        let bomb = gzip.finish().unwrap();
        assert!(bomb.len() < 10_000);
        assert_eq!(decode("gzip", &bomb, 100).unwrap().len(), 101);
        let err = format!("{:#}", decode("br", &bomb, 100).unwrap_err());
        assert!(
            err.contains("Content-Encoding: br, which bump did not ask for"),
            "{err}"
        );
    }

    #[test]
    fn digests_follow_the_oci_grammar() {
        let sha256 = format!("sha256:{}", "a".repeat(64));
        let sha512 = format!("sha512:{}", "b".repeat(128));
        assert!(parse_digest(&sha256).is_some());
        assert!(parse_digest(&sha512).is_some());
        assert!(parse_digest("blake3:abc").is_some());
        for bad in [
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha512:{}", "b".repeat(64)),
            "sha256".to_string(),
            "SHA256:ab".to_string(),
            ":ab".to_string(),
        ] {
            assert_eq!(parse_digest(&bad), None, "{bad}");
        }
    }

    /// The cap has no flag: a real registry behind the testkit's front, which adds 30 old tags to the seven
    /// of a release history.
    #[test]
    fn tags_are_capped_by_count() {
        let repo = "test/powersync-service";
        let (upstream, _) = LocalRegistry::seeded(&[Push::History(repo)]);
        let proxy = Proxy::start(&upstream.url);
        proxy.set_fault(Fault::ExtraTags(30));
        let mut registry = Registry::new(&proxy.url, repo, Duration::from_secs(60));
        registry.page_size = 10;
        registry.max_tags = 25;
        let err = format!("{:#}", registry.tags().unwrap_err());
        assert!(err.contains("more than 25 tags after 3 pages"), "{err}");
    }
}

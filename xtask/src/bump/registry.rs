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
//! - Tag-list pages are followed on the registry's own origin only, each URL once, at most MAX_PAGES.
//! - The whole run has one deadline; when it runs out the error names the request that stalled.
//! - Every body is read up to a limit and a larger one is called "response too large".

use std::{
    collections::HashSet,
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use sha2::{Digest, Sha256};
use ureq::{
    rustls::{
        self,
        pki_types::{pem::PemObject, CertificateDer},
    },
    ReadWrite, TlsConnector,
};

/// What we accept for a tag: multi-arch indexes first; single manifests only so the error can say so.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Manifests are kilobytes and a tag list page of 1000 tags is tens of them; anything this large is not one.
const MAX_BODY_BYTES: u64 = 4 << 20;

/// With pages of 1000 tags, 50 pages is 50,000 tags: far beyond any real repository.
pub const MAX_PAGES: usize = 50;

pub struct Registry {
    base: String,
    origin: String,
    repository: String,
    agent: ureq::Agent,
    token: Option<String>,
    deadline: Instant,
    budget: Duration,
    pub page_size: usize,
    pub requests: usize,
}

/// A manifest as served, verified against the digest the registry reported for it.
pub struct Manifest {
    pub digest: String,
    pub json: Value,
}

impl Registry {
    /// A client for `repository` on `base` that gives up once `budget` (the whole run's) has passed.
    #[cfg(test)]
    pub fn new(base: &str, repository: &str, budget: Duration) -> Registry {
        Registry::with_roots(base, repository, budget, Vec::new())
    }

    /// The same, also trusting `extra_roots` (a mirror's own CA) beside the public web PKI.
    pub fn with_roots(
        base: &str,
        repository: &str,
        budget: Duration,
        extra_roots: Vec<CertificateDer<'static>>,
    ) -> Registry {
        let base = base.trim_end_matches('/').to_string();
        let mut agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .redirects(0)
            .no_delay(true)
            .tls_connector(Arc::new(QuickAckTls(tls_config(extra_roots))))
            .user_agent("powersync-nix-xtask-bump");
        if base.starts_with("http://") {
            // A keep-alive front without TCP_NODELAY holds each response's body until our delayed ACK (about
            // 40 ms a request). ureq gives no hook on a plain socket, so plain HTTP (a local mirror, where a
            // connection costs a fraction of a millisecond and starts in quick-ACK mode) gets a fresh
            // connection per request; TLS connections are kept alive and ACK at once (QuickAckTls).
            agent = agent.max_idle_connections(0);
        }
        Registry {
            origin: origin(&base).unwrap_or_default().to_string(),
            base,
            repository: repository.to_string(),
            agent: agent.build(),
            token: None,
            deadline: Instant::now() + budget,
            budget,
            page_size: 1000,
            requests: 0,
        }
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
            if seen.len() > MAX_PAGES {
                bail!("list the tags: more than {MAX_PAGES} pages; refusing to follow more");
            }
            let response = self.get(&url, "application/json", "list the tags")?;
            let next = response.header("link").and_then(next_link);
            let bytes = self.body(response, MAX_BODY_BYTES, "list the tags", &url)?;
            let body: Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("the tag list at {url} is not JSON"))?;
            tags.extend(
                body["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|tag| tag.as_str().map(str::to_owned)),
            );
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

    /// The manifest `reference` (tag or digest) names, its bytes checked against the registry's digest.
    pub fn manifest(&mut self, reference: &str) -> Result<Manifest> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.repository);
        let what = format!("fetch the manifest of {reference}");
        let response = self.get(&url, MANIFEST_ACCEPT, &what)?;
        let reported = response
            .header("docker-content-digest")
            .map(str::to_owned)
            .with_context(|| {
                format!("the registry sent no Docker-Content-Digest for {reference}")
            })?;
        let bytes = self.body(response, MAX_BODY_BYTES, &what, &url)?;
        let actual = format!("sha256:{:x}", Sha256::digest(&bytes));
        if actual != reported {
            bail!(
                "digest mismatch for {reference}: the registry says {reported} but the bytes received hash to \
                 {actual}; the manifest was altered in transit or by a mirror. Nothing was pinned."
            );
        }
        let json = serde_json::from_slice(&bytes)
            .with_context(|| format!("the manifest of {reference} is not JSON"))?;
        Ok(Manifest {
            digest: actual,
            json,
        })
    }

    /// The digest a tag points at, from a HEAD request (no body to verify: used only to compare digests).
    pub fn digest_of(&mut self, tag: &str) -> Result<String> {
        let url = format!("{}/v2/{}/manifests/{tag}", self.base, self.repository);
        let response = self.send(
            "HEAD",
            &url,
            MANIFEST_ACCEPT,
            &format!("look up the digest of {tag}"),
        )?;
        response
            .header("docker-content-digest")
            .map(str::to_owned)
            .with_context(|| format!("the registry sent no Docker-Content-Digest for {tag}"))
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
            self.deadline_error(what, url)
        } else {
            format!(
                "{what}: cannot reach the registry at {}: {error}",
                self.base
            )
        }
    }

    /// A response body up to `limit` bytes, read within the run's deadline.
    fn body(&self, response: ureq::Response, limit: u64, what: &str, url: &str) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        if let Err(error) = response
            .into_reader()
            .take(limit + 1)
            .read_to_end(&mut bytes)
        {
            bail!("{}", self.transport_error(what, url, error));
        }
        if bytes.len() as u64 > limit {
            bail!(
                "{what}: response too large (limit {} MiB) from {url}; a registry answer is never that big",
                limit >> 20
            );
        }
        Ok(bytes)
    }

    /// One request, answering a bearer challenge once (anonymous token), with errors that say what happened.
    fn send(
        &mut self,
        method: &str,
        url: &str,
        accept: &str,
        what: &str,
    ) -> Result<ureq::Response> {
        let mut challenged = false;
        loop {
            let timeout = self.remaining(what, url)?;
            let mut request = self
                .agent
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
                Err(ureq::Error::Status(code, response)) => {
                    bail!("{what}: {}", status_error(code, &response, url))
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
            .agent
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
            Err(ureq::Error::Status(code, response)) => {
                bail!("token endpoint: {}", status_error(code, &response, &realm))
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

/// The certificates of a PEM file, for --ca-cert.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("read {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
    if certificates.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certificates)
}

/// ureq's own rustls setup (ring, TLS 1.2 and 1.3, the webpki roots), plus any extra roots.
fn tls_config(extra_roots: Vec<CertificateDer<'static>>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    roots.add_parsable_certificates(extra_roots);
    let config = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
    .expect("ring supports TLS 1.2 and 1.3")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

/// rustls over a socket that asks for an immediate ACK before every read. A server that writes a response's
/// head and body separately without TCP_NODELAY holds the body (Nagle) until the head is acknowledged, and on
/// a kept-alive connection Linux delays that ACK by about 40 ms; TCP_QUICKACK is not sticky, hence every read.
struct QuickAckTls(Arc<rustls::ClientConfig>);

impl TlsConnector for QuickAckTls {
    fn connect(
        &self,
        dns_name: &str,
        io: Box<dyn ReadWrite>,
    ) -> Result<Box<dyn ReadWrite>, ureq::Error> {
        self.0.connect(dns_name, Box::new(QuickAck(io)))
    }
}

#[derive(Debug)]
struct QuickAck(Box<dyn ReadWrite>);

impl Read for QuickAck {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(socket) = self.0.socket() {
            quick_ack(socket);
        }
        self.0.read(buf)
    }
}

impl Write for QuickAck {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl ReadWrite for QuickAck {
    fn socket(&self) -> Option<&TcpStream> {
        self.0.socket()
    }
}

#[cfg(target_os = "linux")]
fn quick_ack(socket: &TcpStream) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor, a pointer to a c_int and its size, as setsockopt(2) asks. A failure
    // only costs the delay this avoids, so it is ignored.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Only Linux has TCP_QUICKACK; elsewhere the delayed-ACK stall stays possible.
#[cfg(not(target_os = "linux"))]
fn quick_ack(_socket: &TcpStream) {}

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

fn status_error(code: u16, response: &ureq::Response, url: &str) -> String {
    match code {
        401 | 403 => format!(
            "the registry refused access ({code}) to {url}; the anonymous token was not accepted"
        ),
        404 => format!("not found (404): {url}"),
        429 => {
            let retry = response
                .header("retry-after")
                .map(|s| format!(" (Retry-After: {s}s)"))
                .unwrap_or_default();
            format!(
                "rate limited by the registry (429){retry}: Docker Hub limits anonymous requests per IP; \
                 wait and try again, or use a mirror with --registry"
            )
        }
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
        .filter_map(|m| {
            Some(format!(
                "{}/{}",
                m["platform"]["os"].as_str()?,
                m["platform"]["architecture"].as_str()?
            ))
        })
        .collect()
}

pub fn is_index(manifest: &Value) -> bool {
    manifest["manifests"].is_array()
}

#[cfg(test)]
mod tests {
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
}

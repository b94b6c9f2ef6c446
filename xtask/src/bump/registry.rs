//! Just enough of the OCI distribution API for a bump: the anonymous bearer-token challenge, the tag list
//! with pagination, and manifests whose bytes are checked against their digest.

use std::{io::Read, time::Duration};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What we accept for a tag: multi-arch indexes first; single manifests only so the error can say so.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Manifests are kilobytes; anything this large is not one.
const MAX_MANIFEST_BYTES: u64 = 4 << 20;

pub struct Registry {
    base: String,
    repository: String,
    agent: ureq::Agent,
    token: Option<String>,
    pub page_size: usize,
    pub requests: usize,
}

/// A manifest as served, verified against the digest the registry reported for it.
pub struct Manifest {
    pub digest: String,
    pub json: Value,
}

impl Registry {
    pub fn new(base: &str, repository: &str) -> Registry {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent("powersync-nix-xtask-bump")
            .build();
        Registry {
            base: base.trim_end_matches('/').to_string(),
            repository: repository.to_string(),
            agent,
            token: None,
            page_size: 1000,
            requests: 0,
        }
    }

    /// Every tag of the repository, following `Link: <…>; rel="next"` pages.
    pub fn tags(&mut self) -> Result<Vec<String>> {
        let mut url = format!(
            "{}/v2/{}/tags/list?n={}",
            self.base, self.repository, self.page_size
        );
        let mut tags = Vec::new();
        loop {
            let response = self.get(&url, "application/json", "list the tags")?;
            let next = response.header("link").and_then(next_link);
            let body: Value =
                serde_json::from_reader(response.into_reader().take(MAX_MANIFEST_BYTES))
                    .context("read the tag list")?;
            tags.extend(
                body["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|tag| tag.as_str().map(str::to_owned)),
            );
            match next {
                Some(path) if path.starts_with('/') => url = format!("{}{path}", self.base),
                Some(absolute) => url = absolute,
                None => return Ok(tags),
            }
        }
    }

    /// The manifest `reference` (tag or digest) names, its bytes checked against the registry's digest.
    pub fn manifest(&mut self, reference: &str) -> Result<Manifest> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.repository);
        let response = self.get(
            &url,
            MANIFEST_ACCEPT,
            &format!("fetch the manifest of {reference}"),
        )?;
        let reported = response
            .header("docker-content-digest")
            .map(str::to_owned)
            .with_context(|| {
                format!("the registry sent no Docker-Content-Digest for {reference}")
            })?;
        let mut bytes = Vec::new();
        response
            .into_reader()
            .take(MAX_MANIFEST_BYTES)
            .read_to_end(&mut bytes)
            .with_context(|| format!("read the manifest of {reference}"))?;
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
            let mut request = self.agent.request(method, url).set("Accept", accept);
            if let Some(token) = &self.token {
                request = request.set("Authorization", &format!("Bearer {token}"));
            }
            self.requests += 1;
            match request.call() {
                Ok(response) => return Ok(response),
                Err(ureq::Error::Status(401, response)) if !challenged => {
                    let challenge = response
                        .header("www-authenticate")
                        .map(str::to_owned)
                        .with_context(|| {
                            format!("{what}: 401 without a WWW-Authenticate challenge")
                        })?;
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
                    bail!(
                        "{what}: cannot reach the registry at {}: {transport}",
                        self.base
                    )
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
        let mut request = self.agent.get(&realm);
        for (key, value) in params
            .iter()
            .filter(|(k, _)| k == "service" || k == "scope")
        {
            request = request.query(key, value);
        }
        self.requests += 1;
        let response = match request.call() {
            Ok(response) => response,
            Err(ureq::Error::Status(code, response)) => {
                bail!("token endpoint: {}", status_error(code, &response, &realm))
            }
            Err(ureq::Error::Transport(transport)) => {
                bail!("cannot reach the token endpoint {realm}: {transport}")
            }
        };
        let body: Value = serde_json::from_reader(response.into_reader().take(1 << 20))
            .context("read the token")?;
        body["token"]
            .as_str()
            .or_else(|| body["access_token"].as_str())
            .map(str::to_owned)
            .context("the token response has neither `token` nor `access_token`")
    }
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

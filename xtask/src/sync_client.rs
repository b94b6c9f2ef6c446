//! A PowerSync Service's sync endpoint, spoken to as the client SDKs speak to it; shared by `load` and
//! `compare`: the base URL, the tokens file, the HTTP agent and its TLS roots, the request that opens a
//! stream, and the lines the stream answers with.
//!
//! A stream is `POST <url>/sync/stream` with `Authorization: Bearer <jwt>`. The response is newline-delimited
//! JSON (the service's packages/service-core/src/util/protocol-types.ts): `checkpoint`, `data`,
//! `checkpoint_complete`, later `checkpoint_diff`, `partial_checkpoint_complete`, and the keep-alive
//! `token_expires_in`. Objects of another kind are skipped, as the SDKs skip them.

use std::{
    fs,
    io::Read,
    net::{TcpStream, ToSocketAddrs},
    path::Path,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

use crate::tls;

/// How long one TCP connect (and the reachability check) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a refusal's body is kept (a 401 carries a JSON error naming the code).
const BODY_SAMPLE: u64 = 300;

/// The stream endpoint of a base URL, and the URL's `host:port` for the reachability check.
pub(crate) fn stream_url(url: &str) -> Result<(String, String)> {
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

/// Fails fast, with the address, when nothing listens: better than N identical connection errors.
pub(crate) fn check_reachable(host_port: &str) -> Result<()> {
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
pub(crate) fn read_tokens(file: &Path) -> Result<Vec<String>> {
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

/// The `sub` claim of a JWT, read without verifying it: only to name the user in a report.
pub(crate) fn token_subject(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&base64url_decode(payload)?).ok()?;
    match &claims["sub"] {
        Value::String(sub) => Some(sub.clone()),
        Value::Number(sub) => Some(sub.to_string()),
        _ => None,
    }
}

fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut bytes = Vec::with_capacity(text.len() * 3 / 4);
    for c in text.trim_end_matches('=').bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
        }
    }
    Some(bytes)
}

/// Which certificate authorities an agent trusts. Certificates are always verified.
#[derive(Clone, Copy)]
pub(crate) enum Roots {
    /// Only the CA file's, when one is given (a test CA: nothing else may answer); else the public roots.
    CaFileOnly,
    /// The public roots ureq trusts, plus the CA file's: one side may be PowerSync Cloud and the other a
    /// staging copy with its own CA.
    PublicAndCaFile,
}

/// One agent for every stream of a run: no redirects, no pooled connections (each stream is its own).
pub(crate) fn agent(ca_file: Option<&Path>, roots: Roots) -> Result<ureq::Agent> {
    let mut builder = ureq::AgentBuilder::new()
        .timeout_connect(CONNECT_TIMEOUT)
        .redirects(0)
        .max_idle_connections(0);
    if let Some(ca_file) = ca_file {
        builder = builder.tls_config(tls_config(ca_file, roots)?);
    }
    Ok(builder.build())
}

fn tls_config(ca_file: &Path, roots: Roots) -> Result<Arc<rustls::ClientConfig>> {
    let from_file = tls::Roots::ca_file(ca_file)?;
    Ok(match roots {
        Roots::CaFileOnly => from_file,
        Roots::PublicAndCaFile => tls::Roots::public().and(&from_file),
    }
    .client_config())
}

/// Unique per run, for client ids (and anything else a later run must not mistake for its own).
pub(crate) fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    format!("{:x}{:08x}", std::process::id(), nanos)
}

/// The body the SDKs send for a client with no local data yet: every bucket from the start, checksums on,
/// each row's data as the JSON text the service stored.
pub(crate) fn request_body(client_id: &str) -> String {
    json!({
        "buckets": [],
        "include_checksum": true,
        "raw_data": true,
        "client_id": client_id,
    })
    .to_string()
}

/// How the service answered a stream request.
pub(crate) enum Opened {
    /// 200: the body is the stream.
    Accepted(Box<ureq::Response>),
    /// Another status, with the start of the body (the service's error names a code).
    Refused { status: u16, body: String },
    /// No response at all (connection, TLS or timeout error).
    Failed(String),
}

/// Opens a stream. `timeout` bounds the request and every later read of its body.
pub(crate) fn open(
    agent: &ureq::Agent,
    stream_url: &str,
    token: &str,
    client_id: &str,
    timeout: Duration,
) -> Opened {
    let response = agent
        .post(stream_url)
        .timeout(timeout)
        .set("Authorization", &format!("Bearer {token}"))
        .set("Content-Type", "application/json")
        .send_string(&request_body(client_id));
    let response = match response {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(ureq::Error::Transport(error)) => return Opened::Failed(error.to_string()),
    };
    if response.status() == 200 {
        return Opened::Accepted(Box::new(response));
    }
    let status = response.status();
    let mut body = String::new();
    let _ = response
        .into_reader()
        .take(BODY_SAMPLE)
        .read_to_string(&mut body);
    // Whatever a server echoes, the token is not shown.
    Opened::Refused {
        status,
        body: body.replace(token, "<token>"),
    }
}

/// The service's error code in a refusal's body (`{"error": {"code": "PSYNC_S2101", …}}`), if any.
pub(crate) fn error_code(body: &str) -> Option<String> {
    let body: Value = serde_json::from_str(body).ok()?;
    let code = body["error"]["code"].as_str().or(body["code"].as_str())?;
    Some(code.to_string())
}

/// A checksum as the service sends it: conceptually an unsigned 32-bit number, added with wrap-around. The
/// service may send it signed (`(a + b) & 0xffffffff` in JavaScript is an int32), so both readings are
/// accepted, as the SDK's core accepts them (powersync-sqlite-core, crates/core/src/sync/checksum.rs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Checksum(pub(crate) u32);

impl Checksum {
    fn from_json(value: &Value) -> Option<Checksum> {
        if let Some(value) = value.as_u64() {
            return u32::try_from(value).ok().map(Checksum);
        }
        if let Some(value) = value.as_i64() {
            return i32::try_from(value).ok().map(|v| Checksum(v as u32));
        }
        let value = value.as_f64()?;
        if value.fract() != 0.0 {
            return None;
        }
        if (0.0..=f64::from(u32::MAX)).contains(&value) {
            Some(Checksum(value as u32))
        } else if (f64::from(i32::MIN)..0.0).contains(&value) {
            Some(Checksum(value as i32 as u32))
        } else {
            None
        }
    }

    pub(crate) fn add(self, other: Checksum) -> Checksum {
        Checksum(self.0.wrapping_add(other.0))
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// A bucket in a `checkpoint` or `checkpoint_diff`: what the client must hold once the checkpoint completes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BucketChecksum {
    pub(crate) bucket: String,
    pub(crate) checksum: Checksum,
    /// Operations in the bucket; informational (the SDKs do not check it).
    pub(crate) count: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpKind {
    Put,
    Remove,
    Move,
    Clear,
}

/// One operation of a bucket's log (`OplogEntry`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Op {
    pub(crate) kind: OpKind,
    pub(crate) object_type: Option<String>,
    pub(crate) object_id: Option<String>,
    /// The row as JSON text (`raw_data`); an object sent by an older service is kept as its JSON text.
    pub(crate) data: Option<String>,
    pub(crate) checksum: Checksum,
    /// Tells apart two source rows that land on one output row; derived from the source table's id, so
    /// it differs between two instances.
    pub(crate) subkey: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Line {
    Checkpoint {
        last_op_id: String,
        buckets: Vec<BucketChecksum>,
    },
    CheckpointDiff {
        last_op_id: String,
        updated: Vec<BucketChecksum>,
        removed: Vec<String>,
    },
    Data {
        bucket: String,
        ops: Vec<Op>,
    },
    CheckpointComplete {
        last_op_id: String,
    },
    PartialCheckpointComplete,
    TokenExpiresIn(i64),
    /// A JSON object of a kind not read here.
    Other,
}

impl Line {
    /// Reads one line of the stream. An error says what is wrong with it.
    pub(crate) fn parse(text: &str) -> Result<Line, String> {
        let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) else {
            return Err("not a JSON object".to_string());
        };
        if let Some(checkpoint) = object.get("checkpoint") {
            return Ok(Line::Checkpoint {
                last_op_id: op_id(&checkpoint["last_op_id"])
                    .ok_or("checkpoint without last_op_id")?,
                buckets: bucket_checksums(&checkpoint["buckets"])
                    .ok_or("checkpoint with bad buckets")?,
            });
        }
        if let Some(diff) = object.get("checkpoint_diff") {
            let removed = diff["removed_buckets"]
                .as_array()
                .and_then(|names| {
                    names
                        .iter()
                        .map(|name| name.as_str().map(str::to_string))
                        .collect()
                })
                .ok_or("checkpoint_diff with bad removed_buckets")?;
            return Ok(Line::CheckpointDiff {
                last_op_id: op_id(&diff["last_op_id"])
                    .ok_or("checkpoint_diff without last_op_id")?,
                updated: bucket_checksums(&diff["updated_buckets"])
                    .ok_or("checkpoint_diff with bad updated_buckets")?,
                removed,
            });
        }
        if let Some(complete) = object.get("checkpoint_complete") {
            return Ok(Line::CheckpointComplete {
                last_op_id: op_id(&complete["last_op_id"])
                    .ok_or("checkpoint_complete without last_op_id")?,
            });
        }
        if object.contains_key("partial_checkpoint_complete") {
            return Ok(Line::PartialCheckpointComplete);
        }
        if let Some(data) = object.get("data") {
            return data_line(data);
        }
        if let Some(expires) = object.get("token_expires_in") {
            return Ok(Line::TokenExpiresIn(
                expires.as_f64().ok_or("token_expires_in is not a number")? as i64,
            ));
        }
        Ok(Line::Other)
    }
}

fn op_id(value: &Value) -> Option<String> {
    match value {
        Value::String(id) => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

fn bucket_checksums(value: &Value) -> Option<Vec<BucketChecksum>> {
    value
        .as_array()?
        .iter()
        .map(|bucket| {
            Some(BucketChecksum {
                bucket: bucket["bucket"].as_str()?.to_string(),
                checksum: Checksum::from_json(&bucket["checksum"])?,
                count: bucket["count"].as_u64().unwrap_or(0),
            })
        })
        .collect()
}

fn data_line(data: &Value) -> Result<Line, String> {
    let bucket = data["bucket"]
        .as_str()
        .ok_or("data without a bucket")?
        .to_string();
    let entries = data["data"]
        .as_array()
        .ok_or_else(|| format!("data of {bucket} without operations"))?;
    let ops = entries
        .iter()
        .map(|entry| {
            entry
                .as_object()
                .and_then(op)
                .ok_or_else(|| format!("a bad operation in {bucket}: {entry}"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Line::Data { bucket, ops })
}

fn op(entry: &Map<String, Value>) -> Option<Op> {
    let kind = match entry.get("op")?.as_str()? {
        "PUT" => OpKind::Put,
        "REMOVE" => OpKind::Remove,
        "MOVE" => OpKind::Move,
        "CLEAR" => OpKind::Clear,
        _ => return None,
    };
    let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_string);
    let data = match entry.get("data") {
        None | Some(Value::Null) => None,
        Some(Value::String(data)) => Some(data.clone()),
        Some(data) => Some(data.to_string()),
    };
    Some(Op {
        kind,
        object_type: text("object_type"),
        object_id: text("object_id"),
        data,
        checksum: Checksum::from_json(entry.get("checksum")?)?,
        subkey: text("subkey"),
    })
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

    /// The readings of the SDK core's own checksum tests (checksum.rs, `test_deserialize`).
    #[test]
    fn checksums_are_read_signed_or_unsigned_as_the_sdk_reads_them() {
        let read = |text: &str| Checksum::from_json(&serde_json::from_str(text).unwrap());
        assert_eq!(read("0"), Some(Checksum(0)));
        assert_eq!(read("-1"), Some(Checksum(u32::MAX)));
        assert_eq!(read("-1.0"), Some(Checksum(u32::MAX)));
        assert_eq!(read("3573495687"), Some(Checksum(3573495687)));
        assert_eq!(read("3573495687.0"), Some(Checksum(3573495687)));
        assert_eq!(read("-721471609.0"), Some(Checksum(3573495687)));
        assert_eq!(read("4294967296"), None);
        assert_eq!(read("1.5"), None);
        assert_eq!(Checksum(u32::MAX).add(Checksum(2)), Checksum(1));
    }

    #[test]
    fn lines_are_read_by_their_key() {
        let line = Line::parse(
            r#"{"checkpoint":{"last_op_id":"7","write_checkpoint":null,"buckets":[{"bucket":"b[]","checksum":-1,"count":2,"priority":3}]}}"#,
        )
        .unwrap();
        assert_eq!(
            line,
            Line::Checkpoint {
                last_op_id: "7".into(),
                buckets: vec![BucketChecksum {
                    bucket: "b[]".into(),
                    checksum: Checksum(u32::MAX),
                    count: 2
                }]
            }
        );
        let line = Line::parse(
            r#"{"data":{"bucket":"b[]","after":"0","next_after":"2","has_more":false,"data":[
                {"op_id":"1","op":"PUT","object_type":"t","object_id":"1","data":"{\"a\":1}","checksum":5,"subkey":"s"},
                {"op_id":"2","op":"REMOVE","object_type":"t","object_id":"2","data":null,"checksum":6}]}}"#,
        )
        .unwrap();
        let Line::Data { bucket, ops } = line else {
            panic!("not data")
        };
        assert_eq!(bucket, "b[]");
        assert_eq!(ops[0].kind, OpKind::Put);
        assert_eq!(ops[0].data.as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(ops[1].kind, OpKind::Remove);
        assert_eq!(ops[1].data, None);
        assert_eq!(
            Line::parse(r#"{"token_expires_in":0}"#),
            Ok(Line::TokenExpiresIn(0))
        );
        assert_eq!(Line::parse(r#"{"something_new":{}}"#), Ok(Line::Other));
        assert!(Line::parse("[1]").is_err());
        assert!(Line::parse(r#"{"data":{"bucket":"b","data":[{"op":"PUT"}]}}"#).is_err());
    }

    #[test]
    fn the_subject_is_read_from_an_unverified_jwt() {
        // {"alg":"none"} . {"sub":"user-1","aud":"authenticated"} . (no signature)
        let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyLTEiLCJhdWQiOiJhdXRoZW50aWNhdGVkIn0.";
        assert_eq!(token_subject(token).as_deref(), Some("user-1"));
        assert_eq!(token_subject("not-a-jwt"), None);
    }
}

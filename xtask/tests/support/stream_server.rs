//! A local stand-in for the PowerSync Service's sync endpoint, for testing `cargo xtask load` offline.
//!
//! It frames streams as the project saw the running service (1.25.0) frame them:
//! - `POST /sync/stream` with `Authorization: Bearer <jwt>` (or `Token <jwt>`, as the SDKs send it) answers 200 with newline-delimited JSON: `checkpoint`,
//!   the rows as `data`, `checkpoint_complete`, and later, after a source write, `checkpoint_diff`.
//! - No token: 401 with a JSON error body, code `PSYNC_S2106`; a token it does not know: 401 `PSYNC_S2101`.
//! - Beyond its concurrent-stream capacity (the service's `max_concurrent_connections`, 200 by default): 429 at
//!   once, an empty body, no `Retry-After`; a freed slot is reused at once. A stream's slot is freed the moment
//!   its client closes the connection (as Node sees a socket close), not at the server's next write.
//!
//! Not recorded from the service, so kept generic: the fields inside each line, the error body's shape beyond
//! its code, the order `checkpoint_diff`, `data`, `checkpoint_complete` after a write (the sync protocol's order),
//! and the keep-alive line (`token_expires_in`) and its interval. The probe reads only each line's key and
//! searches `data` lines for its marker, so none of these choices can make its tests pass.
//!
//! For `compare`, a token can instead get a script: the lines a service sent one user (built with the line
//! functions below, which frame every line this server sends), with pauses, and possibly a cut.
//!
//! A "source write" is a line appended to `writes_file` (the row's value, e.g. the probe's marker): every open
//! stream then receives it, as the service sends a replicated row to every client whose bucket holds it.
//! For tests of the probe it can also end some streams early and keep some deaf to writes. With `tls` it
//! serves https with the given certificate.

#![allow(dead_code)] // Each test crate uses part of it.

use std::{
    collections::HashMap,
    fs,
    io::{self, BufRead, BufReader, Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Condvar, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

#[derive(Clone)]
pub struct Config {
    /// Concurrent streams served; one more gets 429.
    pub capacity: usize,
    /// Between the `checkpoint` line and the first `checkpoint_complete`.
    pub checkpoint_delay: Duration,
    /// Tokens accepted as valid.
    pub tokens: Vec<String>,
    /// The first `drop_clean` accepted streams are ended cleanly (final chunk) after `drop_after`.
    pub drop_clean: usize,
    /// The next `drop_abrupt` are cut (TCP shutdown, no final chunk) after `drop_after`.
    pub drop_abrupt: usize,
    pub drop_after: Duration,
    /// The next `deaf` accepted streams never receive writes.
    pub deaf: usize,
    pub keepalive: Duration,
    /// Serve https with this certificate chain and key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Tokens (accepted too) whose streams play a script instead of the rows written; then keep-alives.
    pub scripts: HashMap<String, Vec<Step>>,
}

/// One step of a scripted stream.
#[derive(Clone)]
pub enum Step {
    Line(Value),
    Pause(Duration),
    /// The connection is cut there: a TCP shutdown, no final chunk.
    Cut,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            capacity: 200,
            checkpoint_delay: Duration::from_millis(50),
            tokens: vec!["test-token".to_string()],
            drop_clean: 0,
            drop_abrupt: 0,
            drop_after: Duration::from_millis(300),
            deaf: 0,
            keepalive: Duration::from_millis(250),
            tls: None,
            scripts: HashMap::new(),
        }
    }
}

struct State {
    config: Config,
    tls: Option<Arc<rustls::ServerConfig>>,
    active: AtomicUsize,
    accepted: AtomicUsize,
    refused: AtomicUsize,
    /// The rows written so far, in order; op id = index + 1.
    rows: Mutex<Vec<String>>,
    changed: Condvar,
    stop: AtomicBool,
    /// Every accepted stream's request body, for tests of what the probe sends.
    bodies: Mutex<Vec<Value>>,
    closes: Closes,
}

/// Sees clients close their streams. A stream's thread writes only every keep-alive, and only a write after
/// the close fails: by itself it would hold the slot up to two keep-alives after the client left.
struct Closes {
    epoll: OwnedFd,
    /// Open streams by epoll token: set once the stream has given its slot back.
    open: Mutex<HashMap<u64, Arc<AtomicBool>>>,
    next: AtomicU64,
}

impl Closes {
    fn new() -> Closes {
        // SAFETY: epoll_create1 returns a new descriptor (or -1), owned from here on.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(fd >= 0, "epoll_create1: {}", io::Error::last_os_error());
        Closes {
            // SAFETY: a valid descriptor nothing else owns.
            epoll: unsafe { OwnedFd::from_raw_fd(fd) },
            open: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        }
    }

    /// Watches `socket` for the client's close (its FIN); the flag is the stream's "slot given back".
    fn watch(&self, socket: &TcpStream) -> (u64, Arc<AtomicBool>) {
        let token = self.next.fetch_add(1, Ordering::SeqCst);
        let released = Arc::new(AtomicBool::new(false));
        self.open
            .lock()
            .unwrap()
            .insert(token, Arc::clone(&released));
        let mut event = libc::epoll_event {
            events: (libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32,
            u64: token,
        };
        // SAFETY: both descriptors are open; the kernel copies the event.
        let added = unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                socket.as_raw_fd(),
                &mut event,
            )
        };
        assert_eq!(added, 0, "epoll_ctl: {}", io::Error::last_os_error());
        (token, released)
    }

    /// The stream `token` is over: its slot is given back unless the watcher already did.
    fn forget(&self, token: u64, released: &AtomicBool, active: &AtomicUsize) {
        self.open.lock().unwrap().remove(&token);
        if !released.swap(true, Ordering::SeqCst) {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Gives a stream's slot back as soon as its client closes the connection.
fn watch_closes(state: &State) {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
    while !state.stop.load(Ordering::SeqCst) {
        // SAFETY: the buffer holds 64 events; the timeout lets the loop see `stop`.
        let ready = unsafe {
            libc::epoll_wait(state.closes.epoll.as_raw_fd(), events.as_mut_ptr(), 64, 100)
        };
        for event in &events[..usize::try_from(ready).unwrap_or(0)] {
            let token = event.u64;
            let Some(released) = state.closes.open.lock().unwrap().remove(&token) else {
                continue;
            };
            if !released.swap(true, Ordering::SeqCst) {
                state.active.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

pub struct StreamServer {
    pub url: String,
    pub writes_file: PathBuf,
    address: std::net::SocketAddr,
    state: Arc<State>,
}

impl StreamServer {
    pub fn start(config: Config, dir: &std::path::Path) -> StreamServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stream server");
        // std listens with a backlog of 128: a burst of more connections than that would lose SYNs and wait out
        // the client's 1 s retransmission, which no client's figures should show. Node (the service) listens
        // with 511; listen() again only raises the queue.
        {
            // SAFETY: a valid listening socket; listen() changes only its backlog.
            let raised = unsafe { libc::listen(listener.as_raw_fd(), 511) };
            assert_eq!(raised, 0, "raise the listen backlog");
        }
        let address = listener.local_addr().unwrap();
        let writes_file = dir.join("writes");
        fs::write(&writes_file, "").unwrap();
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let host = if config.tls.is_some() {
            "localhost".to_string()
        } else {
            "127.0.0.1".to_string()
        };
        let tls = config
            .tls
            .as_ref()
            .map(|(chain, key)| Arc::new(tls_config(chain, key)));
        let state = Arc::new(State {
            config,
            tls,
            active: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            rows: Mutex::new(Vec::new()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            bodies: Mutex::new(Vec::new()),
            closes: Closes::new(),
        });
        let accept_state = Arc::clone(&state);
        thread::spawn(move || accept_loop(&listener, &accept_state));
        let watch_state = Arc::clone(&state);
        let watched = writes_file.clone();
        thread::spawn(move || watch_writes(&watched, &watch_state));
        let closes_state = Arc::clone(&state);
        thread::spawn(move || watch_closes(&closes_state));
        StreamServer {
            url: format!("{scheme}://{host}:{}", address.port()),
            writes_file,
            address,
            state,
        }
    }

    /// Streams open right now.
    pub fn active(&self) -> usize {
        self.state.active.load(Ordering::SeqCst)
    }

    pub fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    pub fn refused(&self) -> usize {
        self.state.refused.load(Ordering::SeqCst)
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.state.bodies.lock().unwrap().clone()
    }

    /// Makes a source write directly (what a line appended to `writes_file` does).
    pub fn write(&self, value: &str) {
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&self.writes_file)
            .unwrap();
        writeln!(file, "{value}").unwrap();
    }
}

impl Drop for StreamServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.state.changed.notify_all();
        // Wakes the accept loop so that it sees `stop`.
        let _ = TcpStream::connect(self.address);
    }
}

fn tls_config(chain: &std::path::Path, key: &std::path::Path) -> rustls::ServerConfig {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(chain)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap()
}

fn accept_loop(listener: &TcpListener, state: &Arc<State>) {
    for connection in listener.incoming() {
        if state.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(connection) = connection else { continue };
        let state = Arc::clone(state);
        thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let _ = serve(connection, &state);
            })
            .expect("start a connection thread");
    }
}

/// Polls the writes file; each new complete line is one written row.
fn watch_writes(file: &std::path::Path, state: &State) {
    while !state.stop.load(Ordering::SeqCst) {
        let text = fs::read_to_string(file).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        let lines: Vec<&str> = complete.lines().collect();
        let mut rows = state.rows.lock().unwrap();
        if lines.len() > rows.len() {
            let known = rows.len();
            rows.extend(lines[known..].iter().map(|line| line.to_string()));
            state.changed.notify_all();
        }
        drop(rows);
        thread::sleep(Duration::from_millis(10));
    }
}

trait Connection: Read + Write + Send {}
impl<T: Read + Write + Send> Connection for T {}

fn serve(tcp: TcpStream, state: &State) -> io::Result<()> {
    let raw = tcp.try_clone()?;
    let connection: Box<dyn Connection> = match &state.tls {
        Some(config) => Box::new(rustls::StreamOwned::new(
            rustls::ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?,
            tcp,
        )),
        None => Box::new(tcp),
    };
    let mut reader = BufReader::new(connection);
    let (method, path, headers, body) = read_request(&mut reader)?;
    let connection = reader.get_mut();
    if method != "POST" || path != "/sync/stream" {
        return respond(connection, "404 Not Found", "");
    }
    // The concurrency limit answers before the request is handled, as the service's queue does.
    if state.active.fetch_add(1, Ordering::SeqCst) >= state.config.capacity {
        state.active.fetch_sub(1, Ordering::SeqCst);
        state.refused.fetch_add(1, Ordering::SeqCst);
        return respond(connection, "429 Too Many Requests", "");
    }
    let token = match authorize(&headers, &state.config) {
        Err(error) => {
            state.active.fetch_sub(1, Ordering::SeqCst);
            return respond(connection, "401 Unauthorized", &error.to_string());
        }
        Ok(token) => token,
    };
    let index = state.accepted.fetch_add(1, Ordering::SeqCst);
    state
        .bodies
        .lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    let (watch, released) = state.closes.watch(&raw);
    let result = match state.config.scripts.get(&token) {
        Some(script) => play(connection, &raw, state, script, &released),
        None => stream(connection, &raw, state, index, &released),
    };
    state.closes.forget(watch, &released, &state.active);
    result
}

type Request = (String, String, HashMap<String, String>, Vec<u8>);

fn read_request(reader: &mut impl BufRead) -> io::Result<Request> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = HashMap::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length = headers
        .get("content-length")
        .and_then(|length| length.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok((method, path, headers, body))
}

/// The request's token, if the server knows it.
fn authorize(headers: &HashMap<String, String>, config: &Config) -> Result<String, Value> {
    let error = |code: &str, description: &str| json!({"error": {"code": code, "status": 401, "description": description}});
    // As the service reads it (/^(Token|Bearer) (\S+)$/, packages/service-core/src/routes/auth.ts): the SDKs
    // send `Token`, curl users and the probe `Bearer`.
    let Some(token) = headers.get("authorization").and_then(|value| {
        value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("Token "))
    }) else {
        return Err(error("PSYNC_S2106", "Authentication required"));
    };
    if !config.tokens.iter().any(|known| known == token) && !config.scripts.contains_key(token) {
        return Err(error(
            "PSYNC_S2101",
            "Could not find an appropriate key in the keystore",
        ));
    }
    Ok(token.to_string())
}

fn respond(connection: &mut dyn Connection, status: &str, body: &str) -> io::Result<()> {
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/json\r\n"
    };
    write!(
        connection,
        "HTTP/1.1 {status}\r\n{content_type}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    connection.flush()
}

/// The head of an accepted stream: chunked NDJSON, as the service answers.
fn stream_head(connection: &mut dyn Connection) -> io::Result<()> {
    write!(
        connection,
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
}

fn send(connection: &mut dyn Connection, line: &Value) -> io::Result<()> {
    let line = format!("{line}\n");
    write!(connection, "{:x}\r\n{line}\r\n", line.len())?;
    connection.flush()
}

/// A bucket as a checkpoint announces it: name, checksum (the wrapping sum of its operations'), count.
pub type Announced = (String, u32, usize);

fn announced(buckets: &[Announced]) -> Vec<Value> {
    buckets
        .iter()
        .map(|(bucket, checksum, count)| {
            json!({"bucket": bucket, "checksum": checksum, "count": count, "priority": 3})
        })
        .collect()
}

pub fn checkpoint_line(last_op_id: u64, buckets: &[Announced]) -> Value {
    json!({"checkpoint": {"last_op_id": last_op_id.to_string(), "write_checkpoint": null,
                          "buckets": announced(buckets)}})
}

pub fn checkpoint_diff_line(last_op_id: u64, updated: &[Announced], removed: &[String]) -> Value {
    json!({"checkpoint_diff": {"last_op_id": last_op_id.to_string(), "write_checkpoint": null,
                               "updated_buckets": announced(updated), "removed_buckets": removed}})
}

pub fn checkpoint_complete_line(last_op_id: u64) -> Value {
    json!({"checkpoint_complete": {"last_op_id": last_op_id.to_string()}})
}

/// One operation of a bucket's log; with `raw_data` the row is its JSON text.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub op_id: u64,
    pub op: &'static str,
    pub object_type: String,
    pub object_id: String,
    pub data: Option<String>,
    pub checksum: u32,
    pub subkey: String,
}

/// The operations `ops` of `bucket`, sent to a client that has those up to `after`.
pub fn data_line(bucket: &str, after: u64, ops: &[Op]) -> Value {
    let entries: Vec<Value> = ops
        .iter()
        .map(|op| {
            json!({"op_id": op.op_id.to_string(), "op": op.op, "object_type": op.object_type,
                   "object_id": op.object_id, "checksum": op.checksum, "subkey": op.subkey,
                   "data": op.data})
        })
        .collect();
    let next_after = ops.last().map_or(after, |op| op.op_id);
    json!({"data": {"bucket": bucket, "after": after.to_string(), "has_more": false,
                    "next_after": next_after.to_string(), "data": entries}})
}

fn checkpoint(key: &str, rows: usize) -> Value {
    let buckets = [("global[]".to_string(), 0, rows)];
    match key {
        "checkpoint" => checkpoint_line(rows as u64, &buckets),
        "checkpoint_diff" => checkpoint_diff_line(rows as u64, &buckets, &[]),
        _ => checkpoint_complete_line(rows as u64),
    }
}

/// The rows `from..` (0-based) as one `data` line.
fn data(rows: &[String], from: usize) -> Value {
    let ops: Vec<Op> = rows[from..]
        .iter()
        .enumerate()
        .map(|(offset, value)| {
            let op = (from + offset + 1).to_string();
            Op {
                op_id: (from + offset + 1) as u64,
                op: "PUT",
                object_type: "items".into(),
                object_id: op.clone(),
                data: Some(json!({"id": op, "value": value}).to_string()),
                checksum: 0,
                subkey: op,
            }
        })
        .collect();
    data_line("global[]", from as u64, &ops)
}

/// Plays a token's script, then sends keep-alives until the server stops.
fn play(
    connection: &mut dyn Connection,
    raw: &TcpStream,
    state: &State,
    script: &[Step],
    closed: &AtomicBool,
) -> io::Result<()> {
    stream_head(connection)?;
    for step in script {
        match step {
            Step::Line(line) => send(connection, line)?,
            Step::Pause(pause) => thread::sleep(*pause),
            Step::Cut => return raw.shutdown(Shutdown::Both),
        }
    }
    while !state.stop.load(Ordering::SeqCst) {
        thread::sleep(state.config.keepalive);
        if closed.load(Ordering::SeqCst) {
            break;
        }
        send(connection, &json!({"token_expires_in": 3600}))?;
    }
    Ok(())
}

fn stream(
    connection: &mut dyn Connection,
    raw: &TcpStream,
    state: &State,
    index: usize,
    closed: &AtomicBool,
) -> io::Result<()> {
    let config = &state.config;
    stream_head(connection)?;
    let started = Instant::now();
    let mut sent = state.rows.lock().unwrap().len();
    send(connection, &checkpoint("checkpoint", sent))?;
    thread::sleep(config.checkpoint_delay);
    if sent > 0 {
        send(connection, &data(&state.rows.lock().unwrap()[..sent], 0))?;
    }
    send(connection, &checkpoint("checkpoint_complete", sent))?;
    let drop_clean = index < config.drop_clean;
    let drop_abrupt = !drop_clean && index < config.drop_clean + config.drop_abrupt;
    let deaf = (config.drop_clean + config.drop_abrupt
        ..config.drop_clean + config.drop_abrupt + config.deaf)
        .contains(&index);
    loop {
        if state.stop.load(Ordering::SeqCst) || closed.load(Ordering::SeqCst) {
            return Ok(());
        }
        if (drop_clean || drop_abrupt) && started.elapsed() >= config.drop_after {
            if drop_clean {
                write!(connection, "0\r\n\r\n")?;
                connection.flush()?;
            }
            return raw.shutdown(Shutdown::Both);
        }
        let mut wait = config.keepalive;
        if drop_clean || drop_abrupt {
            wait = wait.min(config.drop_after.saturating_sub(started.elapsed()));
        }
        let mut rows = state.rows.lock().unwrap();
        if rows.len() == sent {
            rows = state.changed.wait_timeout(rows, wait).unwrap().0;
        }
        let rows = rows.clone();
        if rows.len() > sent && !deaf {
            send(connection, &checkpoint("checkpoint_diff", rows.len()))?;
            send(connection, &data(&rows, sent))?;
            send(connection, &checkpoint("checkpoint_complete", rows.len()))?;
        } else {
            send(connection, &json!({"token_expires_in": 3600}))?;
        }
        sent = rows.len();
    }
}

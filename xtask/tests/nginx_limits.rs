//! The public vhost's limits (lib/nginx.nix) in a real nginx, each case in a network namespace of its own:
//! the directives come from the module's own pure function (evaluated with `nix-instantiate`), wrapped the way
//! nixpkgs' nginx module wraps them, with the per-source cap loaded by the real `nft`. Runners are small local
//! backends that hold sync streams open and answer 429 beyond their capacity, as the service does; clients
//! connect from distinct loopback addresses (IPv4) and from addresses of IPv6 /64s added to the namespace.
//!
//! The vhost listens on 80 in plain HTTP as well as on 443 with TLS, so the clients need no TLS: every
//! directive under test but the handshake timeout acts the same on both (production serves only TLS).
//!
//! Needs (Debian): nginx, nftables (nft), iproute2 (ip), openssl, nix-bin (nix-instantiate), and root; and
//! gixy from tests/nginx/requirements.txt. A missing one fails the test with what to install.

mod common;
use common::{pki::Pki, require, TempDir};

use std::{
    collections::HashMap,
    fs,
    io::{self, Read, Write},
    net::{IpAddr, SocketAddr, TcpListener, TcpStream},
    os::fd::{AsRawFd, FromRawFd},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use common::http::Acceptor;
use serde_json::Value;

/// The address the vhost is reached at over IPv6 (on the namespace's loopback).
const SERVER_V6: &str = "2001:db8:60:ff::1";
const LISTEN_PORT: u16 = 8080;

use common::run_ok as run;

/// What lib/nginx.nix renders for `mode` with the option defaults the module uses, `overrides` (a Nix
/// attribute set) applied on top; workerConnections is the module's default for those values.
fn render(mode: &str, api_runners: u32, overrides: &str) -> Value {
    let expr = format!(
        r#"let
          d = lib.nginx.defaults;
          args = {{
            runners = lib.runners {{ mode = "{mode}"; apiRunners = {api_runners}; listenPort = {LISTEN_PORT}; metricsPort = 9464; }};
            maxConnsPerRunner = d.maxConnsPerRunner "{mode}";
            inherit (d) streamsPerClient requestsPerSecondPerClient tcpConnectionsPerClient;
            exposeAdminApi = false;
            ports = [ 80 443 ];
          }} // {overrides};
        in lib.nginx.frontend (args // {{
          workerConnections = lib.nginx.workerConnectionsNeeded {{ inherit (args) runners maxConnsPerRunner tcpConnectionsPerClient; }};
        }})"#,
    );
    common::lib_eval(&expr)
}

/// nginx.conf as nixpkgs' nginx module writes it (nixos/modules/services/web-servers/nginx/default.nix):
/// appendConfig in the main context, eventsConfig, the upstreams, the websocket map, commonHttpConfig, then
/// the vhost with its locations (proxy_pass, the websocket headers, extraConfig, the recommended headers)
/// and its extraConfig.
fn nginx_conf(frontend: &Value, dir: &TempDir, cert: &Path, key: &Path) -> String {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    let mut upstreams = String::new();
    for (name, upstream) in frontend["upstreams"].as_object().unwrap() {
        upstreams += &format!("upstream {name} {{\n");
        for (server, parameters) in upstream["servers"].as_object().unwrap() {
            let parameters: Vec<String> = parameters
                .as_object()
                .unwrap()
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            upstreams += &format!("server {server} {};\n", parameters.join(" "));
        }
        upstreams += &format!("{}}}\n", text(&upstream["extraConfig"]));
    }
    let recommended = dir.file(
        "recommended-proxy-headers.conf",
        "proxy_set_header Host $host;\nproxy_set_header X-Real-IP $remote_addr;\n\
         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\nproxy_set_header X-Forwarded-Proto $scheme;\n\
         proxy_set_header X-Forwarded-Host $host;\nproxy_set_header X-Forwarded-Server $hostname;\n",
    );
    let mut locations = String::new();
    for (path, location) in frontend["locations"].as_object().unwrap() {
        locations += &format!("location {path} {{\n");
        if let Some(target) = location.get("proxyPass") {
            locations += &format!("proxy_pass {};\n", text(target));
        }
        if location.get("proxyWebsockets") == Some(&Value::Bool(true)) {
            locations += "proxy_http_version 1.1;\nproxy_set_header Upgrade $http_upgrade;\nproxy_set_header Connection $connection_upgrade;\n";
        }
        locations += &text(&location["extraConfig"]);
        if location.get("proxyPass").is_some()
            && location.get("recommendedProxySettings") == Some(&Value::Bool(true))
        {
            locations += &format!("include {};\n", recommended.display());
        }
        locations += "}\n";
    }
    let d = dir.0.display();
    format!(
        "pid {d}/nginx.pid;\nerror_log {d}/error.log info;\ndaemon off;\n{main}\
         events {{\n{events}}}\n\
         http {{\n\
         access_log off;\n\
         client_body_temp_path {d}/body;\nproxy_temp_path {d}/proxy;\nfastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
         {upstreams}\
         map $http_upgrade $connection_upgrade {{\ndefault upgrade;\n'' close;\n}}\n\
         client_max_body_size 10m;\nserver_tokens off;\n\
         {http}\
         server {{\n\
         listen 0.0.0.0:80;\nlisten [::]:80;\nlisten 0.0.0.0:443 ssl;\nlisten [::]:443 ssl;\n\
         server_name test;\n\
         ssl_certificate {cert};\nssl_certificate_key {key};\n\
         {locations}\
         {server}\
         }}\n}}\n",
        main = text(&frontend["mainConfig"]),
        events = text(&frontend["eventsConfig"]),
        http = text(&frontend["httpConfig"]),
        server = text(&frontend["serverConfig"]),
        cert = cert.display(),
        key = key.display(),
    )
}

/// A network namespace of this test's own, entered by the calling thread (so the sockets it opens, the
/// threads it starts and the programs it runs live there). Removed on drop.
struct Namespace(String);

impl Namespace {
    fn enter(label: &str) -> Namespace {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "xn-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        run("ip", &["netns", "add", &name]);
        let namespace = Namespace(name);
        let file = fs::File::open(format!("/run/netns/{}", namespace.0)).unwrap();
        // SAFETY: setns on a valid namespace file descriptor affects only the calling thread.
        let entered = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(entered, 0, "setns: {}", io::Error::last_os_error());
        run("ip", &["link", "set", "lo", "up"]);
        namespace
    }

    /// Makes `address` (IPv6) a local address, usable as a client's source.
    fn add_v6(&self, address: &str) {
        run(
            "ip",
            &[
                "-6",
                "addr",
                "add",
                &format!("{address}/128"),
                "dev",
                "lo",
                "nodad",
            ],
        );
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A stand-in runner on 127.0.0.1:`port`: `/sync/stream` holds an HTTP stream (200, chunked NDJSON) or a
/// websocket (101) open until the other side closes it, and answers 429 with no body and no Retry-After at
/// once beyond `capacity` open streams, as the service does; any other path answers 200 with a small JSON
/// body (a write checkpoint).
struct Runner {
    active: Arc<AtomicUsize>,
    _acceptor: Acceptor,
}

impl Runner {
    fn start(port: u16, capacity: usize) -> Runner {
        let active = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind a runner");
        let counter = Arc::clone(&active);
        let acceptor = Acceptor::spawn(listener, move |stream, stop| {
            let _ = serve(stream, stop, &counter, capacity);
        });
        Runner {
            active,
            _acceptor: acceptor,
        }
    }

    fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }
}

fn serve(
    mut stream: TcpStream,
    stop: &AtomicBool,
    active: &AtomicUsize,
    capacity: usize,
) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let head = read_head(&mut stream)?;
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    if path != "/sync/stream" {
        let body = r#"{"write_checkpoint":"1"}"#;
        return write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
    if active.fetch_add(1, Ordering::SeqCst) >= capacity {
        active.fetch_sub(1, Ordering::SeqCst);
        return write!(
            stream,
            "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }
    let result = hold(&mut stream, &head, stop);
    active.fetch_sub(1, Ordering::SeqCst);
    result
}

fn hold(stream: &mut TcpStream, head: &str, stop: &AtomicBool) -> io::Result<()> {
    if head.to_ascii_lowercase().contains("upgrade: websocket") {
        write!(
            stream,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        )?;
    } else {
        let line = "{\"checkpoint\":{}}\n";
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{line}\r\n",
            line.len()
        )?;
    }
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut buffer = [0; 1024];
    while !stop.load(Ordering::SeqCst) {
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Reads up to the end of an HTTP head (the blank line), byte by byte so nothing after it is consumed.
fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the end of the head",
            ));
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// nginx with `frontend`'s directives and its nft table, in the namespace the calling thread is in.
struct Frontend {
    dir: TempDir,
    nginx: Child,
}

impl Frontend {
    fn start(frontend: &Value) -> Frontend {
        let dir = TempDir::new("nginx-limits");
        let pki = Pki::new();
        let (cert, key) = pki.leaf("vhost", "test", 2);
        let ruleset = dir.file("cap.nft", frontend["nftables"]["ruleset"].as_str().unwrap());
        run("nft", &["-f", ruleset.to_str().unwrap()]);
        let conf = dir.file("nginx.conf", &nginx_conf(frontend, &dir, &cert, &key));
        let error_log = dir.path("error.log");
        let check = Command::new("nginx")
            .args(["-t", "-e"])
            .arg(&error_log)
            .arg("-c")
            .arg(&conf)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "nginx -t refused the rendered config: {}\n{}",
            common::text(&check),
            fs::read_to_string(&conf).unwrap()
        );
        let nginx = Command::new("nginx")
            .arg("-e")
            .arg(&error_log)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let frontend = Frontend { dir, nginx };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", 80)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                frontend.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
        frontend
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path("error.log")).unwrap_or_default()
    }
}

impl Drop for Frontend {
    /// SIGTERM, so the master stops its workers too (a SIGKILL-ed master leaves them running); SIGKILL
    /// only if it has not exited after a few seconds.
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of a child this struct owns and has not reaped yet.
        unsafe { libc::kill(self.nginx.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.nginx.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.nginx.kill();
        let _ = self.nginx.wait();
    }
}

/// A TCP connection to the vhost's `port` from `source` (bound first, so the server sees that address).
fn connect_from(source: IpAddr, port: u16) -> io::Result<TcpStream> {
    let (destination, family) = match source {
        IpAddr::V4(_) => ("127.0.0.1".parse::<IpAddr>().unwrap(), libc::AF_INET),
        IpAddr::V6(_) => (SERVER_V6.parse().unwrap(), libc::AF_INET6),
    };
    // SAFETY: plain socket calls on a descriptor this function owns; on error it is closed before returning.
    unsafe {
        let fd = libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let (local, local_len) = sockaddr(SocketAddr::new(source, 0));
        if libc::bind(fd, &local as *const _ as *const libc::sockaddr, local_len) != 0 {
            return Err(io::Error::last_os_error());
        }
        let (remote, remote_len) = sockaddr(SocketAddr::new(destination, port));
        if libc::connect(fd, &remote as *const _ as *const libc::sockaddr, remote_len) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stream)
    }
}

fn sockaddr(address: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid, and each arm writes a sockaddr that fits in it.
    unsafe {
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        let len = match address {
            SocketAddr::V4(v4) => {
                let sin = &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in);
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = v4.port().to_be();
                sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(v6) => {
                let sin6 = &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6);
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = v6.port().to_be();
                sin6.sin6_addr.s6_addr = v6.ip().octets();
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        (storage, len as libc::socklen_t)
    }
}

/// A response's status and headers (lower-case names), and the connection, still open.
struct Response {
    status: u16,
    headers: HashMap<String, String>,
    /// Kept so a stream stays open as long as its Response lives.
    _connection: TcpStream,
}

impl Response {
    fn retry_after(&self) -> Option<&str> {
        self.headers.get("retry-after").map(String::as_str)
    }
}

fn exchange(source: &str, request: &str) -> Response {
    let source: IpAddr = source.parse().unwrap();
    let mut connection =
        connect_from(source, 80).unwrap_or_else(|error| panic!("connect from {source}: {error}"));
    connection
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    connection.write_all(request.as_bytes()).unwrap();
    let head =
        read_head(&mut connection).unwrap_or_else(|error| panic!("response to {source}: {error}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        _connection: connection,
    }
}

/// Opens a sync stream over HTTP, as the SDKs do (POST with a JSON body).
fn stream(source: &str) -> Response {
    exchange(
        source,
        "POST /sync/stream HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    )
}

/// Opens a sync stream over a websocket (GET with Upgrade, on the same path).
fn websocket(source: &str) -> Response {
    exchange(
        source,
        "GET /sync/stream HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
}

/// An ordinary request: a write checkpoint.
fn write_checkpoint(source: &str) -> Response {
    exchange(
        source,
        "GET /write-checkpoint2.json?client_id=test HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    )
}

fn require_tools() {
    require("nginx", "nginx");
    require("nft", "nftables");
    require("ip", "iproute2");
    require("openssl", "openssl");
    require("nix-instantiate", "nix-bin");
}

#[test]
fn an_office_behind_one_address_is_served_at_the_defaults() {
    require_tools();
    let _namespace = Namespace::enter("office");
    let runner = Runner::start(LISTEN_PORT, 200);
    let nginx = Frontend::start(&render("unified", 1, "{}"));
    // 60 users behind one NAT come online at once: 60 streams, then a write checkpoint each while their
    // streams stay open.
    let streams: Vec<Response> = (0..60).map(|_| stream("127.0.0.2")).collect();
    let statuses: Vec<u16> = streams.iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|&s| s == 200),
        "stream answers: {statuses:?}\n{}",
        nginx.log()
    );
    assert_eq!(runner.active(), 60);
    let checkpoints: Vec<u16> = (0..60)
        .map(|_| write_checkpoint("127.0.0.2").status)
        .collect();
    assert!(
        checkpoints.iter().all(|&s| s == 200),
        "write checkpoint answers: {checkpoints:?}\n{}",
        nginx.log()
    );
}

#[test]
fn an_ipv6_64_is_one_client_and_streams_have_their_own_budget() {
    require_tools();
    let namespace = Namespace::enter("budgets");
    for address in [
        SERVER_V6,
        "2001:db8:60:1::1",
        "2001:db8:60:1::2",
        "2001:db8:60:1::3",
        "2001:db8:60:1::4",
        "2001:db8:60:1::5",
        "2001:db8:60:2::1",
    ] {
        namespace.add_v6(address);
    }
    // Two API runners taking 3 streams each behind nginx; a client may hold 4 streams, make 1 request a
    // second (a burst of 10) and open 20 connections.
    let runners = [
        Runner::start(LISTEN_PORT, 200),
        Runner::start(LISTEN_PORT + 1, 200),
    ];
    let nginx = Frontend::start(&render(
        "split",
        2,
        "{ maxConnsPerRunner = 3; streamsPerClient = 4; requestsPerSecondPerClient = 1; tcpConnectionsPerClient = 20; }",
    ));
    let mut held = Vec::new();

    // Ordinary requests run out on their own: beyond the burst, 429 with Retry-After ...
    let answers: Vec<Response> = (0..15).map(|_| write_checkpoint("127.0.0.5")).collect();
    let refused: Vec<&Response> = answers.iter().filter(|r| r.status == 429).collect();
    assert!(!refused.is_empty(), "15 requests at once, none refused");
    assert!(
        refused.iter().all(|r| r.retry_after() == Some("5")),
        "429 without Retry-After: {:?}",
        refused[0].headers
    );
    // ... and the same client still opens a stream.
    let opened = stream("127.0.0.5");
    assert_eq!(opened.status, 200, "{}", nginx.log());
    held.push(opened);

    // Four addresses of one /64 share one client's budget: three HTTP streams and a websocket ...
    for address in ["2001:db8:60:1::1", "2001:db8:60:1::2", "2001:db8:60:1::3"] {
        let opened = stream(address);
        assert_eq!(opened.status, 200, "stream from {address}: {}", nginx.log());
        held.push(opened);
    }
    let upgraded = websocket("2001:db8:60:1::4");
    assert_eq!(upgraded.status, 101, "websocket: {}", nginx.log());
    held.push(upgraded);
    // ... so a fifth address of it is refused, with Retry-After ...
    let refused = stream("2001:db8:60:1::5");
    assert_eq!(refused.status, 429);
    assert_eq!(refused.retry_after(), Some("5"));
    let refused = websocket("2001:db8:60:1::5");
    assert_eq!(refused.status, 429);
    // ... while its write checkpoints still pass, and another /64 still opens a stream.
    assert_eq!(write_checkpoint("2001:db8:60:1::5").status, 200);
    let opened = stream("2001:db8:60:2::1");
    assert_eq!(opened.status, 200, "{}", nginx.log());
    held.push(opened);
    assert_eq!(runners[0].active() + runners[1].active(), 6);

    // Both runners are at max_conns: 503 with Retry-After, not nginx's 502; requests still pass.
    let full = stream("127.0.0.4");
    assert_eq!(full.status, 503, "{}", nginx.log());
    assert_eq!(full.retry_after(), Some("5"));
    assert_eq!(write_checkpoint("127.0.0.4").status, 200);

    // A stream that ends frees its place at once.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    while stream("127.0.0.4").status != 200 {
        assert!(
            Instant::now() < deadline,
            "the freed place was not reused: {}",
            nginx.log()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_service_own_429_carries_retry_after_and_a_runner_that_is_down_is_502() {
    require_tools();
    let _namespace = Namespace::enter("upstream");
    // nginx would send 200 streams; this runner, like a service configured with a lower
    // max_concurrent_connections, takes two.
    let runner = Runner::start(LISTEN_PORT, 2);
    let nginx = Frontend::start(&render("unified", 1, "{}"));
    let held: Vec<Response> = (0..2).map(|_| stream("127.0.0.2")).collect();
    assert!(held.iter().all(|r| r.status == 200));
    let refused = stream("127.0.0.2");
    assert_eq!(refused.status, 429, "{}", nginx.log());
    assert_eq!(refused.retry_after(), Some("5"));
    drop(held);
    drop(runner);
    // Nothing listens where the runner was: nginx tried it and failed, which stays a 502.
    assert_eq!(write_checkpoint("127.0.0.3").status, 502, "{}", nginx.log());
    assert_eq!(stream("127.0.0.3").status, 502, "{}", nginx.log());
}

#[test]
fn the_kernel_caps_connections_per_client_before_nginx_reads_them() {
    require_tools();
    let namespace = Namespace::enter("cap");
    for address in [
        SERVER_V6,
        "2001:db8:60:3::1",
        "2001:db8:60:3::2",
        "2001:db8:60:3::3",
        "2001:db8:60:4::1",
    ] {
        namespace.add_v6(address);
    }
    let _runner = Runner::start(LISTEN_PORT, 200);
    let _nginx = Frontend::start(&render(
        "unified",
        1,
        "{ streamsPerClient = 4; tcpConnectionsPerClient = 20; }",
    ));
    let ip = |text: &str| -> IpAddr { text.parse().unwrap() };
    for (port, client) in [(80, "127.0.0.6"), (443, "127.0.0.9")] {
        // Twenty connections that never send a byte (half-open requests, unfinished handshakes) ...
        let held: Vec<TcpStream> = (0..20)
            .map(|n| {
                connect_from(ip(client), port)
                    .unwrap_or_else(|e| panic!("connection {n} to {port}: {e}"))
            })
            .collect();
        // ... and the 21st is reset before nginx sees it, while another address still connects.
        let refused = connect_from(ip(client), port);
        assert_eq!(
            refused.as_ref().map_err(io::Error::kind).err(),
            Some(io::ErrorKind::ConnectionRefused),
            "the 21st connection to {port} was not refused"
        );
        assert!(connect_from(ip("127.0.0.7"), port).is_ok());
        drop(held);
    }
    // The addresses of one IPv6 /64 share the cap.
    let held: Vec<TcpStream> = (0..20)
        .map(|n| connect_from(ip(["2001:db8:60:3::1", "2001:db8:60:3::2"][n % 2]), 443).unwrap())
        .collect();
    assert!(connect_from(ip("2001:db8:60:3::3"), 443).is_err());
    assert!(connect_from(ip("2001:db8:60:4::1"), 443).is_ok());
    drop(held);
}

/// Lets this process hold `wanted` descriptors (the soft limit is often 1024), up to the hard limit.
fn allow_descriptors(wanted: u64) {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_cur.max(wanted.min(limit.rlim_max));
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
}

/// The attack that exhausted nginx before: one IPv4 address opening ~1,060 requests and never finishing
/// them. At the defaults the kernel lets 512 through, and nginx (worker_connections sized for every stream
/// plus one capped client) still serves everyone else in full.
#[test]
fn one_address_cannot_exhaust_nginx_with_half_sent_requests_at_the_defaults() {
    require_tools();
    allow_descriptors(4096);
    let _namespace = Namespace::enter("exhaust");
    let runner = Runner::start(LISTEN_PORT, 200);
    let nginx = Frontend::start(&render("unified", 1, "{}"));
    let attacker: IpAddr = "127.0.0.12".parse().unwrap();
    let mut half_sent = Vec::new();
    let mut refused = 0;
    for _ in 0..1060 {
        match connect_from(attacker, 80) {
            Ok(mut connection) => {
                connection
                    .write_all(b"GET /write-checkpoint2.json HTTP/1.1\r\nHost: te")
                    .unwrap();
                half_sent.push(connection);
            }
            Err(error) => {
                assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused, "{error}");
                refused += 1;
            }
        }
    }
    assert_eq!(half_sent.len(), 512, "{}", nginx.log());
    assert_eq!(refused, 1060 - 512);
    // Everyone else: a full office of streams and their write checkpoints.
    let streams: Vec<Response> = (0..60).map(|_| stream("127.0.0.13")).collect();
    assert!(streams.iter().all(|r| r.status == 200), "{}", nginx.log());
    assert_eq!(runner.active(), 60);
    assert_eq!(write_checkpoint("127.0.0.13").status, 200);
    assert!(
        !nginx.log().contains("worker_connections are not enough"),
        "{}",
        nginx.log()
    );
}

#[test]
fn slow_handshakes_headers_and_bodies_are_cut_off() {
    require_tools();
    let _namespace = Namespace::enter("slow");
    let _runner = Runner::start(LISTEN_PORT, 200);
    let nginx = Frontend::start(&render("unified", 1, "{}"));
    // nginx's own default for each is 60 s; the rendered config closes them after 10 s.
    let limit = Duration::from_secs(14);
    let closed_within = |mut connection: TcpStream, trickle: &'static [u8]| {
        thread::spawn(move || {
            let started = Instant::now();
            connection
                .set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut answer = Vec::new();
            let mut sent = 0;
            while started.elapsed() < limit {
                if sent < trickle.len() && connection.write_all(&trickle[sent..sent + 1]).is_ok() {
                    sent += 1;
                }
                let mut buffer = [0; 512];
                match connection.read(&mut buffer) {
                    Ok(0) => return (true, started.elapsed(), answer),
                    Ok(n) => answer.extend_from_slice(&buffer[..n]),
                    Err(error)
                        if matches!(
                            error.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => return (true, started.elapsed(), answer),
                }
            }
            (false, started.elapsed(), answer)
        })
    };
    let ip: IpAddr = "127.0.0.8".parse().unwrap();
    // A TLS connection whose handshake never starts.
    let handshake = closed_within(connect_from(ip, 443).unwrap(), b"");
    // A request header sent one byte every half second (never complete in 14 s).
    let header = closed_within(
        connect_from(ip, 80).unwrap(),
        b"GET /write-checkpoint2.json HTTP/1.1\r\nHost: test\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
    );
    // A complete header announcing a body that never comes.
    let mut body = connect_from(ip, 80).unwrap();
    body.write_all(b"POST /sync/stream HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n").unwrap();
    let body = closed_within(body, b"");
    for (what, waiter) in [
        ("TLS handshake", handshake),
        ("request header", header),
        ("request body", body),
    ] {
        let (closed, after, answer) = waiter.join().unwrap();
        assert!(
            closed,
            "nginx kept a stalled {what} open for {after:?}: {}",
            nginx.log()
        );
        assert!(
            after >= Duration::from_secs(8),
            "the {what} was closed after only {after:?}"
        );
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{what}: {answer}"
        );
    }
}

/// nixpkgs builds nginx.conf with `writers.writeNginxConfig`, which fails the build on anything gixy (the
/// version nixpkgs packages) reports: the rendered vhost must pass it.
#[test]
fn the_rendered_vhost_passes_gixy_as_nixpkgs_requires() {
    assert!(
        Command::new("gixy").arg("--version").output().is_ok(),
        "`gixy` is missing: install tests/nginx/requirements.txt with pip (.ci/run does, in /opt/gixy)"
    );
    let dir = TempDir::new("nginx-gixy");
    let mut confs = Vec::new();
    for (mode, runners) in [("unified", 1), ("split", 2)] {
        for (overrides, name) in [
            ("{}", "defaults"),
            ("{ exposeAdminApi = true; }", "admin-api"),
        ] {
            confs.push(dir.file(
                &format!("{mode}-{name}.conf"),
                &nginx_conf(
                    &render(mode, runners, overrides),
                    &dir,
                    &dir.path("cert.pem"),
                    &dir.path("key.pem"),
                ),
            ));
        }
    }
    // One gixy for the four files: it audits each on its own, as one run per file would, and fails if any
    // has an issue (its report names the file).
    let output = Command::new("gixy").args(&confs).output().unwrap();
    let report = common::text(&output);
    assert!(output.status.success(), "gixy refuses a vhost:\n{report}");
    for conf in &confs {
        // gixy skips a file it cannot find with only a log line: each must be in the report.
        assert!(
            report.contains(&format!("File path: {}\nNo issues found.", conf.display())),
            "{} was not audited:\n{report}",
            conf.display()
        );
    }
}

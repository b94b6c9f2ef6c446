//! `cargo xtask verify` against a local TLS server (rustls, certificates made by openssl at test time: a
//! test CA, a leaf valid for 90 days, one expiring in 5, one for another name), with and without HSTS, and
//! an SSH stand-in that runs the host script (modules/powersync/verify/verify.sh) on a host world of host.rs.

use super::common::http::Acceptor;
use super::common::pki::{openssl, Pki};
use super::host::{Host, Postgres};
use super::*;
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};

/// The client's JWT: it opens the stream and must never be printed.
const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJlLW9mLXRoZS10ZXN0";

/// How the local PowerSync stand-in behind TLS answers.
#[derive(Clone, Copy)]
struct Behaviour {
    hsts: bool,
    liveness: u16,
    /// The status of POST /sync/stream without a token.
    anonymous_sync: u16,
    /// Whether an authorized stream delivers a checkpoint (else it stalls after one line).
    checkpoint: bool,
}

const HEALTHY: Behaviour = Behaviour {
    hsts: true,
    liveness: 200,
    anonymous_sync: 401,
    checkpoint: true,
};

/// An HTTPS server on 127.0.0.1 (rustls) playing nginx in front of the service. Stopped on drop.
struct TlsServer(Acceptor);

impl TlsServer {
    fn start(pki: &Pki, cert: &Path, key: &Path, behaviour: Behaviour) -> TlsServer {
        let mut chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        chain.extend(
            CertificateDer::pem_file_iter(pki.ca())
                .unwrap()
                .map(Result::unwrap),
        );
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        TlsServer(Acceptor::spawn(listener, move |stream, stop| {
            serve(stream, Arc::clone(&config), behaviour, stop)
        }))
    }

    fn url(&self) -> String {
        format!("https://localhost:{}", self.0.port)
    }
}

fn serve(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    behaviour: Behaviour,
    stop: &AtomicBool,
) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let connection = rustls::ServerConnection::new(config).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    let mut request = Vec::new();
    let mut buffer = [0; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let head = String::from_utf8_lossy(&request).to_lowercase();
    // Read the body too: closing with unread bytes makes the kernel reset the connection, and the client
    // would see the reset instead of the answer.
    let header_end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let mut body_read = request.len() - header_end;
    while body_read < length {
        match tls.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => body_read += n,
        }
    }
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let hsts = if behaviour.hsts {
        "Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n"
    } else {
        ""
    };
    let reply = |tls: &mut rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
                 status: u16,
                 body: &str| {
        let _ = write!(
            tls,
            "HTTP/1.1 {status} Test\r\n{hsts}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tls.flush();
        tls.conn.send_close_notify();
        let _ = tls.flush();
    };
    match path.as_str() {
        "/probes/liveness" => reply(&mut tls, behaviour.liveness, "{\"ready\":true}"),
        "/sync/stream" => {
            if !head.contains("authorization:") {
                let body = r#"{"error":{"code":"PSYNC_S2106","status":401,"description":"Authentication required"}}"#;
                reply(&mut tls, behaviour.anonymous_sync, body);
            } else if !head.contains(&format!("authorization: bearer {}", TOKEN.to_lowercase())) {
                reply(
                    &mut tls,
                    401,
                    r#"{"error":{"code":"PSYNC_S2101","status":401}}"#,
                );
            } else {
                let _ = write!(
                    tls,
                    "HTTP/1.1 200 OK\r\n{hsts}Content-Type: application/x-ndjson\r\nConnection: close\r\n\r\n{{\"token_expires_in\":3600}}\n"
                );
                if behaviour.checkpoint {
                    let _ = tls.write_all(
                        b"{\"checkpoint\":{\"last_op_id\":\"42\",\"write_checkpoint\":null,\"buckets\":[{\"bucket\":\"global[]\",\"checksum\":1,\"count\":1}]}}\n",
                    );
                }
                let _ = tls.flush();
                // A stream stays open; the client hangs up.
                let deadline = Instant::now() + Duration::from_secs(30);
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    if tls.write_all(b"").and_then(|()| tls.flush()).is_err() {
                        return;
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
        _ => reply(&mut tls, 404, "{}"),
    }
}

struct Outcome {
    code: Option<i32>,
    output: String,
    json: serde_json::Value,
}

impl Outcome {
    fn status(&self, id: &str) -> Vec<(String, String)> {
        self.json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["id"] == id)
            .map(|c| {
                (
                    c["status"].as_str().unwrap().to_owned(),
                    c["detail"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn assert_one(&self, id: &str, status: &str, detail: &str) {
        let found = self.status(id);
        assert_eq!(found.len(), 1, "{id}:\n{}", self.output);
        assert_eq!(found[0].0, status, "{id}: {}\n{}", found[0].1, self.output);
        assert_contains(&found[0].1, detail);
    }

    fn failed(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "fail")
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        ids.dedup();
        ids
    }
}

/// `cargo xtask verify web-arm <args> --json`, with `env`; the token never shows.
fn xtask(args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["verify", "web-arm"])
        .args(args)
        .arg("--json")
        .env_remove("POWERSYNC_VERIFY_TARGET")
        .env_remove("POWERSYNC_VERIFY_URL")
        .env_remove("POWERSYNC_VERIFY_SSH")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let all = text(&output);
    assert!(!all.contains(TOKEN), "the token leaked:\n{all}");
    assert_no_secret(&all);
    let json =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{all}"));
    Outcome {
        code: output.status.code(),
        output: all,
        json,
    }
}

/// Only the outside checks against `server`, trusting the test CA, with a closed and an open private port.
fn outside(server: &TlsServer, pki: &Pki, extra: &[&str]) -> Outcome {
    let ca = pki.ca().display().to_string();
    let closed = free_port().to_string();
    let url = server.url();
    let mut args = vec![
        "--outside-only",
        "--url",
        &url,
        "--ca-file",
        &ca,
        "--private-port",
        &closed,
        "--timeout",
        "5",
    ];
    args.extend_from_slice(extra);
    xtask(&args, &[])
}

fn healthy_server(pki: &Pki, behaviour: Behaviour) -> TlsServer {
    let (cert, key) = pki.leaf("valid", "localhost", 90);
    TlsServer::start(pki, &cert, &key, behaviour)
}

fn jwt_file(dir: &TempDir, token: &str) -> String {
    dir.file("token.jwt", &format!("{token}\n"))
        .display()
        .to_string()
}

#[test]
fn a_healthy_endpoint_passes_every_outside_check() {
    let pki = Pki::new();
    let server = healthy_server(&pki, HEALTHY);
    let dir = TempDir::new("jwt");
    let token = jwt_file(&dir, TOKEN);
    let run = outside(&server, &pki, &["--jwt-file", &token]);
    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(run.failed(), Vec::<String>::new());
    let ids: Vec<&str> = run.json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "liveness",
            "tls-certificate",
            "hsts",
            "sync-reachable",
            "private-port",
            "sync-stream"
        ]
    );
    run.assert_one("liveness", "pass", "200 in");
    run.assert_one(
        "tls-certificate",
        "pass",
        "valid chain of 2; issuer C=DE, O=Verify Test, CN=Verify Test CA",
    );
    run.assert_one("hsts", "pass", "max-age=31536000");
    run.assert_one(
        "sync-reachable",
        "pass",
        "401 without a token (PSYNC_S2106)",
    );
    run.assert_one("private-port", "pass", "refused");
    run.assert_one("sync-stream", "pass", "(last_op_id 42, 1 bucket(s))");
}

/// The issuer and expiry shown are what openssl reads from the same certificate.
#[test]
fn issuer_and_expiry_agree_with_openssl() {
    let pki = Pki::new();
    let (cert, key) = pki.leaf("valid", "localhost", 90);
    let server = TlsServer::start(&pki, &cert, &key, HEALTHY);
    let oracle = openssl(
        &pki.dir,
        &[
            "x509",
            "-in",
            &cert.display().to_string(),
            "-noout",
            "-issuer",
            "-enddate",
            "-nameopt",
            "esc_2253,utf8,sep_comma_plus_space,sname",
            "-dateopt",
            "iso_8601",
        ],
    );
    let issuer = oracle
        .lines()
        .find_map(|l| l.strip_prefix("issuer="))
        .unwrap();
    let expiry = oracle
        .lines()
        .find_map(|l| l.strip_prefix("notAfter="))
        .unwrap();
    let run = outside(&server, &pki, &[]);
    run.assert_one(
        "tls-certificate",
        "pass",
        &format!("issuer {issuer}; expires {}", &expiry[..10]),
    );
    assert!([89, 90].contains(&days_left(&run)), "{}", run.output);
}

/// The "(N days)" of the certificate check: a certificate made for D days shows D - 1 or D (the clock moves).
fn days_left(run: &Outcome) -> i64 {
    let (_, detail) = &run.status("tls-certificate")[0];
    let (_, after) = detail.rsplit_once('(').unwrap();
    after.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn a_certificate_near_expiry_warns_and_still_passes() {
    let pki = Pki::new();
    let (cert, key) = pki.leaf("soon", "localhost", 5);
    let server = TlsServer::start(&pki, &cert, &key, HEALTHY);
    let run = outside(&server, &pki, &[]);
    assert_eq!(run.code, Some(0), "{}", run.output);
    run.assert_one(
        "tls-certificate",
        "warn",
        "days): under 14 days, renewal is not happening",
    );
    assert!([4, 5].contains(&days_left(&run)), "{}", run.output);
    run.assert_one("sync-stream", "skip", "no --jwt-file");
}

#[test]
fn an_untrusted_chain_fails_every_tls_check() {
    let pki = Pki::new();
    let server = healthy_server(&pki, HEALTHY);
    let closed = free_port().to_string();
    // No --ca-file: only the public roots, which do not hold the test CA.
    let run = xtask(
        &[
            "--outside-only",
            "--url",
            &server.url(),
            "--private-port",
            &closed,
        ],
        &[],
    );
    assert_eq!(run.code, Some(1), "{}", run.output);
    assert_eq!(
        run.failed(),
        ["liveness", "tls-certificate", "hsts", "sync-reachable"]
    );
    run.assert_one(
        "tls-certificate",
        "fail",
        "certificate refused: UnknownIssuer",
    );
}

#[test]
fn a_certificate_for_another_name_fails() {
    let pki = Pki::new();
    let (cert, key) = pki.leaf("other", "other.example.test", 90);
    let server = TlsServer::start(&pki, &cert, &key, HEALTHY);
    let run = outside(&server, &pki, &[]);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_one(
        "tls-certificate",
        "fail",
        "certificate refused: NotValidForName",
    );
}

#[test]
fn a_missing_hsts_header_fails() {
    let pki = Pki::new();
    let server = healthy_server(
        &pki,
        Behaviour {
            hsts: false,
            ..HEALTHY
        },
    );
    let run = outside(&server, &pki, &[]);
    assert_eq!(run.failed(), ["hsts"]);
    run.assert_one("hsts", "fail", "no Strict-Transport-Security header");
}

#[test]
fn a_failing_probe_or_sync_endpoint_fails() {
    let pki = Pki::new();
    let server = healthy_server(
        &pki,
        Behaviour {
            liveness: 503,
            anonymous_sync: 502,
            ..HEALTHY
        },
    );
    let run = outside(&server, &pki, &[]);
    assert_eq!(run.failed(), ["liveness", "sync-reachable"]);
    run.assert_one("liveness", "fail", "answered 503");
    run.assert_one("sync-reachable", "fail", "answered 502");

    let server = healthy_server(
        &pki,
        Behaviour {
            anonymous_sync: 200,
            ..HEALTHY
        },
    );
    let run = outside(&server, &pki, &[]);
    run.assert_one("sync-reachable", "fail", "client authentication is off");
}

#[test]
fn an_open_private_port_fails() {
    let pki = Pki::new();
    let server = healthy_server(&pki, HEALTHY);
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port().to_string();
    let run = outside(&server, &pki, &["--private-port", &port]);
    assert_eq!(run.code, Some(1), "{}", run.output);
    assert_eq!(run.failed(), ["private-port"]);
    assert_eq!(run.status("private-port").len(), 2);
    assert_contains(
        &run.output,
        &format!("127.0.0.1:{port} accepts connections from here"),
    );
}

#[test]
fn a_refused_token_or_a_stream_without_checkpoint_fails() {
    let pki = Pki::new();
    let dir = TempDir::new("jwt");
    let server = healthy_server(&pki, HEALTHY);
    let wrong = jwt_file(&dir, "eyJ.wrong.token");
    let run = outside(&server, &pki, &["--jwt-file", &wrong]);
    assert_eq!(run.failed(), ["sync-stream"]);
    run.assert_one("sync-stream", "fail", "answered 401 (PSYNC_S2101)");

    let server = healthy_server(
        &pki,
        Behaviour {
            checkpoint: false,
            ..HEALTHY
        },
    );
    let token = jwt_file(&dir, TOKEN);
    let started = Instant::now();
    let run = outside(
        &server,
        &pki,
        &["--jwt-file", &token, "--stream-timeout", "2"],
    );
    assert_eq!(run.failed(), ["sync-stream"]);
    run.assert_one("sync-stream", "fail", "no checkpoint within 2 s");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// An SSH stand-in: logs its argv, drops the options and the target, runs the command here with a
/// `powersync-verify` that is verify.sh in `host`'s world.
fn ssh_stand_in(dir: &TempDir, host: &Host, pg: &Postgres) -> (PathBuf, PathBuf) {
    let env = host.world(
        dir,
        Some(pg),
        &format!("http://127.0.0.1:{}/metrics", free_port()),
    );
    let exports: String = env
        .iter()
        .map(|(k, v)| format!("export {k}='{v}'\n"))
        .collect();
    dir.program(
        "bin/powersync-verify",
        &format!("{exports}exec bash {} \"$@\"", verify_script().display()),
    );
    let log = dir.path("ssh.log");
    let ssh = dir.program(
        "ssh",
        &format!(
            "echo \"$*\" >> {}\nwhile [ \"$1\" = -o ]; do shift 2; done\n[ \"$1\" = -- ] && shift\nshift\nPATH={}:$PATH exec \"$@\"",
            log.display(),
            dir.path("bin").display()
        ),
    );
    (ssh, log)
}

#[test]
fn the_host_report_and_the_outside_checks_make_one_table() {
    let pki = Pki::new();
    let server = healthy_server(&pki, HEALTHY);
    let pg = Postgres::start();
    let dir = TempDir::new("ssh");
    let closed = free_port();
    let mut host = Host::healthy();
    // The ports come from the host's report; the metrics endpoint is down (one failure).
    host.set("privatePorts", json!([closed]));
    let (ssh, log) = ssh_stand_in(&dir, &host, &pg);
    let token = jwt_file(&dir, TOKEN);
    let ca = pki.ca().display().to_string();
    let started = Instant::now();
    let run = xtask(
        &[
            "--url",
            &server.url(),
            "--ca-file",
            &ca,
            "--jwt-file",
            &token,
            "--ssh",
            &ssh.display().to_string(),
        ],
        &[("POWERSYNC_VERIFY_TARGET", "admin@web-arm.example")],
    );
    let wall = started.elapsed();
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "-o BatchMode=yes -o ConnectTimeout=10 -- admin@web-arm.example powersync-verify --json\n"
    );
    assert_eq!(run.code, Some(1), "{}", run.output);
    assert_eq!(run.failed(), ["lag"]);
    let checks = run.json["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 16 + 6, "{}", run.output);
    assert_eq!(checks[0]["id"], "unit-active");
    assert_eq!(checks[15]["id"], "listeners");
    assert_eq!(checks[16]["id"], "liveness");
    assert_eq!(checks[21]["id"], "sync-stream");
    run.assert_one("lag", "fail", "metrics endpoint unreachable");
    let lag = checks.iter().find(|c| c["id"] == "lag").unwrap();
    assert_eq!(lag["fix"], "docs/runbook.md#check-lag");
    run.assert_one(
        "private-port",
        "pass",
        &format!("127.0.0.1:{closed} refused"),
    );
    run.assert_one("sync-stream", "pass", "checkpoint after");
    eprintln!("cargo xtask verify, host over the SSH stand-in + outside checks: {wall:?} wall, {} s reported", run.json["seconds"]);
}

#[test]
fn the_table_shows_each_failure_with_its_fix_and_a_count() {
    let pki = Pki::new();
    let server = healthy_server(
        &pki,
        Behaviour {
            hsts: false,
            ..HEALTHY
        },
    );
    let ca = pki.ca().display().to_string();
    let closed = free_port().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "verify",
            "web-arm",
            "--outside-only",
            "--url",
            &server.url(),
            "--ca-file",
            &ca,
        ])
        .args(["--private-port", &closed])
        .output()
        .unwrap();
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert_contains(&all, "STATUS  CHECK");
    assert_contains(&all, "fix: docs/runbook.md#check-hsts");
    assert_contains(&all, "6 checks: 4 pass, 0 warn, 1 fail, 1 skipped, in ");
    assert_contains(&all, "1 check(s) failed on web-arm");
}

#[test]
fn an_unreachable_host_is_a_failed_check_and_the_outside_checks_still_run() {
    let pki = Pki::new();
    let server = healthy_server(&pki, HEALTHY);
    let dir = TempDir::new("ssh-down");
    let log = dir.path("ssh.log");
    let ssh = dir.program(
        "ssh",
        &format!(
            "echo \"$*\" > {}\necho 'root@web-arm: Permission denied (publickey).' >&2\nexit 255",
            log.display()
        ),
    );
    let ca = pki.ca().display().to_string();
    let closed = free_port().to_string();
    let run = xtask(
        &[
            "--url",
            &server.url(),
            "--ca-file",
            &ca,
            "--private-port",
            &closed,
            "--ssh",
            &ssh.display().to_string(),
        ],
        &[],
    );
    assert_eq!(run.code, Some(1), "{}", run.output);
    assert_eq!(run.failed(), ["host-report"]);
    run.assert_one("host-report", "fail", "exited with 255 and no report");
    run.assert_one("host-report", "fail", "Permission denied (publickey).");
    run.assert_one("liveness", "pass", "200");
    // Without --target or POWERSYNC_VERIFY_TARGET, root@<host>.
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "-o BatchMode=yes -o ConnectTimeout=10 -- root@web-arm powersync-verify --json\n"
    );
}

/// A repository with this one's lib and a host `example` whose instance is `instance`.
fn flake_with(instance: &str) -> TempDir {
    let dir = TempDir::new("flake");
    std::os::unix::fs::symlink(repo().join("lib"), dir.path("lib")).unwrap();
    dir.file("hosts/example/modules/powersync/instance.nix", instance);
    dir
}

#[test]
fn outside_only_needs_a_url() {
    let flake = flake_with("{ powersync.auth.audience = \"authenticated\"; }");
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["verify", "example", "--outside-only", "--flake"])
        .arg(flake.path(""))
        .env_remove("POWERSYNC_VERIFY_URL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert_contains(&text(&output), "--outside-only needs a public URL");
}

/// A TCP listener on 127.0.0.1 that counts the connections it gets (a TLS client's first bytes are enough).
struct Collector {
    port: u16,
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl Collector {
    fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&connections);
        thread::spawn(move || {
            for stream in listener.incoming() {
                count.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Collector { port, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A host whose report is hostile: it names a public URL of its own choosing (a server that would collect
/// the token) and carries terminal escape sequences, a carriage return, a bell and a bidi override.
fn hostile_ssh(dir: &TempDir, collector: &Collector) -> PathBuf {
    let report = serde_json::json!({
        "host": "web-arm",
        "ok": true,
        "public_url": format!("https://127.0.0.1:{}", collector.port),
        "private_ports": [],
        "checks": [{
            "status": "pass",
            "id": "unit-active\u{1b}[2J",
            "subject": "x\u{1b}]0;owned\u{7}",
            "detail": "ok\r\u{1b}[1A\u{1b}[32mall green\u{9b}31m\u{202e}",
            "fix": "docs/runbook.md#check-unit-active",
        }],
    });
    dir.file("report.json", &report.to_string());
    dir.program("ssh", &format!("cat {}", dir.path("report.json").display()))
}

fn assert_printable(output: &str) {
    for c in output.chars() {
        assert!(
            c == '\n' || !(c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
            "{:?} reached the output:\n{output:?}",
            c
        );
    }
}

/// The token goes to --url only; the host's report neither redirects it nor writes to the terminal.
#[test]
fn a_hostile_report_gets_no_token_and_prints_as_text() {
    let pki = Pki::new();
    let server = healthy_server(&pki, HEALTHY);
    let collector = Collector::start();
    let dir = TempDir::new("hostile");
    let ssh = hostile_ssh(&dir, &collector);
    let token = jwt_file(&dir, TOKEN);
    let ca = pki.ca().display().to_string();
    let closed = free_port().to_string();
    let args = [
        "verify",
        "web-arm",
        "--url",
        &server.url(),
        "--ca-file",
        &ca,
        "--jwt-file",
        &token,
        "--private-port",
        &closed,
        "--ssh",
        &ssh.display().to_string(),
    ];
    for json in [false, true] {
        let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .args(json.then_some("--json"))
            .env_remove("POWERSYNC_VERIFY_URL")
            .output()
            .unwrap();
        let all = text(&output);
        assert_eq!(output.status.code(), Some(0), "{all}");
        assert!(!all.contains(TOKEN), "the token leaked:\n{all}");
        assert_printable(&String::from_utf8_lossy(&output.stdout));
        let shown = if json {
            let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            let checks = value["checks"].as_array().unwrap();
            let stream = checks.iter().find(|c| c["id"] == "sync-stream").unwrap();
            assert_eq!(stream["status"], "pass", "{all}");
            assert_contains(stream["subject"].as_str().unwrap(), &server.url());
            let field = |name: &str| checks[0][name].as_str().unwrap().to_owned();
            format!("{} {}", field("id"), field("detail"))
        } else {
            all.clone()
        };
        assert_contains(&shown, "unit-active\\u{1b}[2J");
        assert_contains(
            &shown,
            "ok\\u{d}\\u{1b}[1A\\u{1b}[32mall green\\u{9b}31m\\u{202e}",
        );
    }
    assert_eq!(collector.connections(), 0, "the report's URL was contacted");
}

/// Without --url the URL is the repository's (hosts/<host>/…/instance.nix), not the report's; a host the
/// repository does not know is an error before anything is sent.
#[test]
fn without_url_the_repository_names_the_url_never_the_report() {
    let collector = Collector::start();
    let dir = TempDir::new("hostile-no-url");
    let ssh = hostile_ssh(&dir, &collector);
    let token = jwt_file(&dir, TOKEN);
    let run = |host: &str, flake: &Path| {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args([
                "verify",
                host,
                "--json",
                "--jwt-file",
                &token,
                "--timeout",
                "2",
            ])
            .args(["--private-port", &free_port().to_string(), "--ssh"])
            .arg(&ssh)
            .arg("--flake")
            .arg(flake)
            .env_remove("POWERSYNC_VERIFY_URL")
            .output()
            .unwrap()
    };
    let output = run("staging", &repo());
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert_contains(
        &all,
        "no --url, and staging names no instance to read the public URL from",
    );
    assert_contains(&all, "hosts with a PowerSync instance: web-arm");

    // The repository's URL: https://localhost (port 443 on loopback; whether anything answers there does
    // not matter, only where the checks went).
    let flake = flake_with("{ powersync.nginx.domain = \"localhost\"; }");
    let output = run("example", &flake.path(""));
    let all = text(&output);
    assert!(!all.contains(TOKEN), "the token leaked:\n{all}");
    let value: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {all}"));
    let liveness = value["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "liveness")
        .unwrap();
    assert_eq!(
        liveness["subject"], "https://localhost/probes/liveness",
        "{all}"
    );

    // No domain in the instance: the host's checks run, the outside ones cannot, and that fails.
    let flake = flake_with("{ }");
    let output = run("example", &flake.path(""));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert_contains(
        &all,
        "sets no powersync.nginx.domain (nginx off?) and --url was not given",
    );
    assert_eq!(collector.connections(), 0, "the report's URL was contacted");
}

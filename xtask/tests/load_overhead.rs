//! `cargo xtask load`'s own cost in a burst, against an independent minimal client on the same framing server
//! (support/stream_server.rs): N streams released at one instant, time from that instant to each stream's first
//! `checkpoint_complete`, p99. The probe must stay within 1.2x of the minimal client at 100 and 200 streams, over
//! plain HTTP and over TLS.
//!
//! The minimal client shares no code with the probe: one thread per stream, a raw socket (rustls directly
//! for https), a hand-written request, and a byte search for `checkpoint_complete`; it parses nothing else.
//! Timing on a shared machine is noisy, so the two run interleaved (alternating which goes first), several
//! rounds, and the verdict compares the medians of their p99s. Every round's figures are printed.
//!
//! Needs (Debian): openssl, for the https cases' throwaway CA.

#[path = "support/stream_server.rs"]
mod stream_server;

mod common;
use common::{pki::Pki, TempDir};

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Barrier},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use stream_server::{Config, StreamServer};

const TOKEN: &str = "test-token";
const ROUNDS: usize = 5;
const BOUND: f64 = 1.2;
/// How long each run holds its streams: twice the burst p99s this test sees alone on a 2-core machine (60-150
/// ms), so that every stream's first checkpoint_complete arrives within the run (both clients check it does).
const HOLD: Duration = Duration::from_millis(300);

/// The minimal client: `streams` connections released together; each one's time from the release to the end
/// of its first `checkpoint_complete`, sorted.
fn minimal_burst(
    url: &str,
    streams: usize,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Vec<Duration> {
    let (host, port) = url.split_once("://").unwrap().1.rsplit_once(':').unwrap();
    let address = format!("127.0.0.1:{port}");
    let body = r#"{"buckets":[],"include_checksum":true,"raw_data":true,"client_id":"minimal"}"#;
    let request = Arc::new(format!(
        "POST /sync/stream HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    let gate = Arc::new(Barrier::new(streams + 1));
    let release: Arc<std::sync::OnceLock<Instant>> = Arc::default();
    let handles: Vec<_> = (0..streams)
        .map(|_| {
            let (gate, release, request, address) = (
                gate.clone(),
                release.clone(),
                request.clone(),
                address.clone(),
            );
            let tls = tls.cloned();
            let host = host.to_string();
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    gate.wait();
                    let released = *release.get().unwrap();
                    let tcp = TcpStream::connect(&address).unwrap();
                    tcp.set_read_timeout(Some(HOLD)).unwrap();
                    // The same socket: its timeout set here applies to `connection`'s reads.
                    let timeouts = tcp.try_clone().unwrap();
                    let mut connection: Box<dyn ReadWrite> = match tls {
                        Some(config) => Box::new(rustls::StreamOwned::new(
                            rustls::ClientConnection::new(config, host.try_into().unwrap())
                                .unwrap(),
                            tcp,
                        )),
                        None => Box::new(tcp),
                    };
                    connection.write_all(request.as_bytes()).unwrap();
                    let mut seen = Vec::new();
                    let mut buffer = [0; 8192];
                    let first = loop {
                        let n = connection.read(&mut buffer).unwrap_or_else(|error| {
                            panic!("no checkpoint_complete within the run ({HOLD:?}): {error}")
                        });
                        assert!(n > 0, "the stream ended before its checkpoint_complete");
                        seen.extend_from_slice(&buffer[..n]);
                        if seen.windows(19).any(|w| w == b"checkpoint_complete") {
                            break released.elapsed();
                        }
                    };
                    // Hold the stream, as the probe does, until the run's end (no read waits past it).
                    while let Some(left) = HOLD
                        .checked_sub(released.elapsed())
                        .filter(|left| !left.is_zero())
                    {
                        timeouts.set_read_timeout(Some(left)).unwrap();
                        if !matches!(connection.read(&mut buffer), Ok(n) if n > 0) {
                            break;
                        }
                    }
                    first
                })
                .unwrap()
        })
        .collect();
    let _ = release.set(Instant::now());
    gate.wait();
    let mut times: Vec<Duration> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    times.sort();
    times
}

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

fn p99_ms(sorted: &[Duration]) -> f64 {
    let rank = (0.99 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

/// The probe in burst mode: its p99 from the burst's start, and its reported CPU time (ms).
fn probe_burst(
    server: &StreamServer,
    jwt_file: &Path,
    streams: usize,
    ca: Option<&Path>,
) -> (f64, f64) {
    let streams = streams.to_string();
    let hold = HOLD.as_secs_f64().to_string();
    let mut args = vec![
        server.url.as_str(),
        "--jwt-file",
        jwt_file.to_str().unwrap(),
        "--streams",
        &streams,
        "--duration",
        &hold,
        "--burst",
        "--json",
    ];
    if let Some(ca) = ca {
        args.extend(["--ca-file", ca.to_str().unwrap()]);
    }
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("load")
        .args(&args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["run"]["mode"], "burst", "{report:#}");
    assert_eq!(
        report["streams"]["held"],
        streams.parse::<u64>().unwrap(),
        "{report:#}"
    );
    // Every stream's time counts: one whose checkpoint_complete missed the run would leave the p99 too low.
    assert_eq!(
        report["first_checkpoint_complete_from_due_ms"]["count"], report["streams"]["held"],
        "a stream got no checkpoint_complete within the run ({HOLD:?}): {report:#}"
    );
    (
        report["first_checkpoint_complete_from_due_ms"]["p99"]
            .as_f64()
            .unwrap(),
        report["probe_overhead"]["cpu_s"].as_f64().unwrap() * 1000.0,
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn wait_until_idle(server: &StreamServer) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.active() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} streams still open",
            server.active()
        );
        thread::sleep(Duration::from_millis(2));
    }
}

/// Interleaved rounds of both clients; the probe's median p99 must be within BOUND of the minimal client's.
fn compare(label: &str, streams: usize, tls: bool) -> Option<String> {
    let dir = TempDir::new("load-overhead");
    let pki = tls.then(Pki::new);
    let (config, ca, client_tls): (Config, Option<PathBuf>, Option<Arc<rustls::ClientConfig>>) =
        match &pki {
            Some(pki) => {
                let (chain, key) = pki.leaf("server", "localhost", 2);
                (
                    Config {
                        tls: Some((chain, key)),
                        capacity: 1000,
                        ..Config::default()
                    },
                    Some(pki.ca()),
                    Some(Arc::new(client_config(&pki.ca()))),
                )
            }
            None => (
                Config {
                    capacity: 1000,
                    ..Config::default()
                },
                None,
                None,
            ),
        };
    let server = StreamServer::start(config, &dir.0);
    let jwt_file = dir.file("tokens", &format!("{TOKEN}\n"));
    let (mut probe, mut minimal, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let mut run_probe = || {
            let (p99, ms) = probe_burst(&server, &jwt_file, streams, ca.as_deref());
            wait_until_idle(&server);
            probe.push(p99);
            cpu.push(ms);
        };
        let mut run_minimal = || {
            minimal.push(p99_ms(&minimal_burst(
                &server.url,
                streams,
                client_tls.as_ref(),
            )));
            wait_until_idle(&server);
        };
        if round % 2 == 0 {
            run_probe();
            run_minimal();
        } else {
            run_minimal();
            run_probe();
        }
    }
    let (probe_median, minimal_median) = (median(probe.clone()), median(minimal.clone()));
    let ratio = probe_median / minimal_median;
    println!(
        "{label}, {streams} streams at once: first checkpoint_complete p99 (ms), probe {probe:.1?} vs minimal \
         {minimal:.1?}; medians {probe_median:.1} vs {minimal_median:.1}, ratio {ratio:.2}; probe CPU per run \
         (ms) {cpu:.0?}"
    );
    (ratio > BOUND).then(|| {
        format!(
            "{label}, {streams} streams: the probe's p99 {probe_median:.1} ms is {ratio:.2}x the minimal client's \
             {minimal_median:.1} ms (bound {BOUND}); rounds: probe {probe:.1?}, minimal {minimal:.1?}"
        )
    })
}

fn client_config(ca: &Path) -> rustls::ClientConfig {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

// One test runs all cases in turn: cases running in parallel would each measure the others.
#[test]
fn in_a_burst_the_probe_is_within_1_2x_of_a_minimal_client() {
    let failures: Vec<String> = [100, 200]
        .into_iter()
        .flat_map(|streams| {
            [
                compare("http", streams, false),
                compare("https", streams, true),
            ]
        })
        .flatten()
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

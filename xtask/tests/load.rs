//! `cargo xtask load`, run for real against a local server that frames sync streams as the PowerSync Service
//! did (support/stream_server.rs). First the server's own tests, which show that framing; then the probe's.
//!
//! Needs (Debian): openssl, for the https test's throwaway CA. A missing one fails with the package to install.

#[path = "support/stream_server.rs"]
mod stream_server;

mod common;
use common::{pki::Pki, TempDir};

use std::{
    fs,
    io::{BufRead, BufReader, Read},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Output},
    thread,
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use stream_server::{Config, StreamServer};

const TOKEN: &str = "test-token";

/// A JWT file in `dir` holding `tokens`, one per line, with a comment and a blank line the probe must skip.
fn jwt_file(dir: &TempDir, tokens: &[&str]) -> PathBuf {
    dir.file(
        "tokens",
        &format!("# test tokens\n\n{}\n", tokens.join("\n")),
    )
}

fn sdk_body() -> String {
    json!({"buckets": [], "include_checksum": true, "raw_data": true, "client_id": "test"})
        .to_string()
}

/// A stream opened as the SDKs open it: the status and the response, whatever the status.
fn open(server: &StreamServer, token: Option<&str>) -> (u16, ureq::Response) {
    let mut request =
        ureq::post(&format!("{}/sync/stream", server.url)).set("Content-Type", "application/json");
    if let Some(token) = token {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    match request.send_string(&sdk_body()) {
        Ok(response) | Err(ureq::Error::Status(_, response)) => (response.status(), response),
        Err(error) => panic!("no response from the stream server: {error}"),
    }
}

/// The next line's object, skipping keep-alive lines.
fn next_object(reader: &mut impl BufRead) -> Value {
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the stream ended");
        assert!(line.ends_with('\n'), "a line without its newline: {line:?}");
        let object: Value = serde_json::from_str(&line).unwrap();
        if object.get("token_expires_in").is_none() {
            return object;
        }
    }
}

fn key(object: &Value) -> &str {
    let keys: Vec<&String> = object.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 1, "one key per line: {object}");
    keys[0]
}

/// The client SDK (npm `@powersync/node`, tests/sdk) syncs from the server: the rows present at its first
/// sync (checkpoint, data, checkpoint_complete), then a row written afterwards (checkpoint_diff, data,
/// checkpoint_complete), with keep-alives between. So the framing the probe is tested on is one a real client
/// decodes and applies.
#[test]
fn the_client_sdk_syncs_from_the_server() {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/sdk");
    assert!(
        sdk.join("node_modules/better-sqlite3/build/Release/better_sqlite3.node")
            .is_file(),
        "the client SDK is not installed: run `npm ci --prefix tests/sdk` (builds better-sqlite3 with node-gyp: needs g++, make, python3)"
    );
    let dir = TempDir::new("sdk");
    let server = StreamServer::start(Config::default(), &dir.0);
    server.write("before-connect");
    thread::sleep(Duration::from_millis(50));
    let mut client = Command::new("node")
        .arg(sdk.join("sync.mjs"))
        .args([server.url.as_str(), TOKEN, "2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run node (apt-get install nodejs)");
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(
        first,
        json!({"firstSync": [{"id": "1", "value": "before-connect"}]})
    );
    server.write("after-connect");
    let last: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(
        last,
        json!({"rows": [{"id": "1", "value": "before-connect"}, {"id": "2", "value": "after-connect"}]})
    );
    assert!(client.wait().unwrap().success());
}

#[test]
fn server_frames_a_stream_as_the_service_did() {
    let dir = TempDir::new("frames");
    let server = StreamServer::start(
        Config {
            checkpoint_delay: Duration::from_millis(150),
            ..Config::default()
        },
        &dir.0,
    );
    let started = Instant::now();
    let (status, response) = open(&server, Some(TOKEN));
    assert_eq!(status, 200);
    assert_eq!(response.content_type(), "application/x-ndjson");
    let mut reader = BufReader::new(response.into_reader());
    let first = next_object(&mut reader);
    assert_eq!(key(&first), "checkpoint");
    assert_eq!(first["checkpoint"]["buckets"][0]["count"], 0);
    assert_eq!(key(&next_object(&mut reader)), "checkpoint_complete");
    assert!(started.elapsed() >= Duration::from_millis(150));

    server.write("row-one");
    let lines: Vec<Value> = (0..3).map(|_| next_object(&mut reader)).collect();
    let keys: Vec<&str> = lines.iter().map(key).collect();
    assert_eq!(keys, ["checkpoint_diff", "data", "checkpoint_complete"]);
    // raw_data: the row is a JSON string inside the data line.
    let row: Value =
        serde_json::from_str(lines[1]["data"]["data"][0]["data"].as_str().unwrap()).unwrap();
    assert_eq!(row["value"], "row-one");
    assert_eq!(lines[2]["checkpoint_complete"]["last_op_id"], "1");

    // A stream opened after the write receives the row in its first checkpoint.
    let (status, late) = open(&server, Some(TOKEN));
    assert_eq!(status, 200);
    let mut late = BufReader::new(late.into_reader());
    let keys: Vec<String> = (0..3)
        .map(|_| key(&next_object(&mut late)).to_string())
        .collect();
    assert_eq!(keys, ["checkpoint", "data", "checkpoint_complete"]);
    assert_eq!(server.active(), 2);
}

#[test]
fn server_refuses_beyond_capacity_with_an_empty_429_and_reuses_a_freed_slot() {
    let dir = TempDir::new("capacity");
    let server = StreamServer::start(
        Config {
            capacity: 2,
            ..Config::default()
        },
        &dir.0,
    );
    let mut held: Vec<_> = (0..2)
        .map(|_| {
            let (status, response) = open(&server, Some(TOKEN));
            assert_eq!(status, 200);
            let mut reader = BufReader::new(response.into_reader());
            assert_eq!(key(&next_object(&mut reader)), "checkpoint");
            reader
        })
        .collect();
    let (status, response) = open(&server, Some(TOKEN));
    assert_eq!(status, 429);
    assert_eq!(response.header("Retry-After"), None);
    let mut body = String::new();
    response.into_reader().read_to_string(&mut body).unwrap();
    assert_eq!(body, "");
    assert_eq!(server.refused(), 1);

    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    while open(&server, Some(TOKEN)).0 != 200 {
        assert!(Instant::now() < deadline, "the freed slot was not reused");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn server_answers_401_with_a_json_error_without_a_known_token() {
    let dir = TempDir::new("auth");
    let server = StreamServer::start(Config::default(), &dir.0);
    for (token, code) in [(None, "PSYNC_S2106"), (Some("wrong"), "PSYNC_S2101")] {
        let (status, response) = open(&server, token);
        assert_eq!(status, 401, "{token:?}");
        let body: Value = serde_json::from_reader(response.into_reader()).unwrap();
        assert_eq!(body["error"]["code"], code);
    }
    assert_eq!(server.accepted(), 0);
}

fn probe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("load")
        .args(args)
        .output()
        .expect("run cargo xtask load")
}

/// Runs the probe with --json and returns its report; the run must succeed.
fn probe_json(server: &StreamServer, jwt_file: &Path, args: &[&str]) -> Value {
    let mut all = vec![
        server.url.as_str(),
        "--jwt-file",
        jwt_file.to_str().unwrap(),
        "--json",
    ];
    all.extend(args);
    let output = probe(&all);
    assert!(
        output.status.success(),
        "the probe failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    serde_json::from_slice(&output.stdout).expect("--json prints JSON")
}

fn wait_until_idle(server: &StreamServer) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.active() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} streams still open on the server",
            server.active()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn probe_holds_streams_up_to_capacity_and_counts_exactly_the_excess_as_refused() {
    let dir = TempDir::new("probe-capacity");
    let server = StreamServer::start(Config::default(), &dir.0);
    let jwt_file = jwt_file(&dir, &[TOKEN]);

    let report = probe_json(
        &server,
        &jwt_file,
        &["--streams", "200", "--ramp", "1000", "--duration", "0.6"],
    );
    let streams = &report["streams"];
    assert_eq!(
        (
            &streams["accepted"],
            &streams["held"],
            &streams["refused"],
            &streams["dropped"],
            &streams["failed"]
        ),
        (&json!(200), &json!(200), &json!(0), &json!(0), &json!(0)),
        "{report:#}"
    );
    assert_eq!(report["connect_ms"]["count"], 200);
    assert_eq!(report["first_checkpoint_complete_ms"]["count"], 200);
    // The server waits 50 ms before the first checkpoint_complete: the probe cannot have seen it sooner.
    assert!(
        report["first_checkpoint_complete_ms"]["p50"]
            .as_f64()
            .unwrap()
            >= 50.0
    );
    assert_eq!(report["run"]["streams"], 200);
    assert_eq!(report["run"]["duration_s"], 0.6);
    // Each stream is opened as the SDKs open it, with its own client id.
    let bodies = server.bodies();
    assert_eq!(bodies.len(), 200);
    let mut client_ids: Vec<&str> = bodies
        .iter()
        .map(|body| body["client_id"].as_str().unwrap())
        .collect();
    client_ids.sort();
    client_ids.dedup();
    assert_eq!(client_ids.len(), 200);
    assert_eq!(
        (
            &bodies[0]["buckets"],
            &bodies[0]["include_checksum"],
            &bodies[0]["raw_data"]
        ),
        (&json!([]), &json!(true), &json!(true))
    );
    // The probe closed every stream when its run ended.
    wait_until_idle(&server);

    let report = probe_json(
        &server,
        &jwt_file,
        &["--streams", "260", "--ramp", "1000", "--duration", "0.6"],
    );
    let streams = &report["streams"];
    assert_eq!(
        (&streams["accepted"], &streams["refused"]),
        (&json!(200), &json!(60)),
        "{report:#}"
    );
    assert_eq!(
        streams["refused_by_status"]["429"],
        json!({"count": 60, "body": ""})
    );
    assert_eq!(server.refused(), 60);
}

#[test]
fn probe_counts_streams_that_end_early_as_dropped() {
    let dir = TempDir::new("probe-drops");
    let server = StreamServer::start(
        Config {
            drop_clean: 3,
            drop_abrupt: 2,
            ..Config::default()
        },
        &dir.0,
    );
    let jwt_file = jwt_file(&dir, &[TOKEN]);
    let report = probe_json(
        &server,
        &jwt_file,
        &["--streams", "20", "--ramp", "200", "--duration", "0.8"],
    );
    let streams = &report["streams"];
    assert_eq!(
        (&streams["accepted"], &streams["held"], &streams["dropped"]),
        (&json!(20), &json!(15), &json!(5)),
        "{report:#}"
    );
    // A clean end (the final chunk) and a cut connection are told apart.
    let reasons = streams["dropped_by_reason"].as_object().unwrap();
    assert_eq!(reasons["the service ended the stream"], 3, "{reasons:?}");
    let cut: u64 = reasons
        .iter()
        .filter(|(reason, _)| reason.starts_with("read error"))
        .map(|(_, count)| count.as_u64().unwrap())
        .sum();
    assert_eq!(cut, 2, "{reasons:?}");
    // Keep-alive lines are objects the probe does not know: skipped, never counted as bad.
    assert_eq!(streams["bad_lines"], 0);
}

#[test]
fn probe_measures_write_latency_and_counts_streams_that_never_saw_the_marker() {
    let dir = TempDir::new("probe-writes");
    let server = StreamServer::start(
        Config {
            deaf: 4,
            ..Config::default()
        },
        &dir.0,
    );
    let jwt_file = jwt_file(&dir, &[TOKEN]);
    let write_cmd = format!(
        "printf '%s\\n' \"$POWERSYNC_LOAD_MARKER\" >> '{}'",
        server.writes_file.display()
    );
    let report = probe_json(
        &server,
        &jwt_file,
        &[
            "--streams",
            "30",
            "--ramp",
            "300",
            "--duration",
            "3",
            "--write-cmd",
            &write_cmd,
            "--write-every",
            "1",
            "--write-timeout",
            "1",
        ],
    );
    let writes = &report["writes"];
    let commands = writes["commands"].as_u64().unwrap();
    // Writes start once every stream has its first checkpoint, then every second, the last one at least
    // --write-timeout before the end: two in a 3 s run (a third would start after 2 s).
    assert_eq!(commands, 2, "{report:#}");
    assert_eq!(writes["failed"], json!([]));
    assert_eq!(writes["stream_writes"], 30 * commands);
    assert_eq!(
        writes["missed"],
        4 * commands,
        "the deaf streams never saw a marker"
    );
    assert_eq!(writes["streams_that_missed"], 4);
    assert_eq!(writes["latency_ms"]["count"], 26 * commands);
    let p50 = writes["latency_ms"]["p50"].as_f64().unwrap();
    let max = writes["latency_ms"]["max"].as_f64().unwrap();
    assert!(p50 > 0.0 && max < 1000.0, "{writes:#}");
    // What reached the source: one unique marker per write, through the environment variable.
    let written = fs::read_to_string(&server.writes_file).unwrap();
    let markers: Vec<&str> = written.lines().collect();
    assert_eq!(markers.len() as u64, commands);
    assert!(
        markers.iter().all(|marker| marker.starts_with("psload-")),
        "{markers:?}"
    );
    assert_ne!(markers[0], markers[1]);
}

#[test]
fn probe_reports_a_failing_write_command_and_every_stream_missing_its_marker() {
    let dir = TempDir::new("probe-write-fails");
    let server = StreamServer::start(Config::default(), &dir.0);
    let jwt_file = jwt_file(&dir, &[TOKEN]);
    let report = probe_json(
        &server,
        &jwt_file,
        &[
            "--streams",
            "5",
            "--duration",
            "1.5",
            "--write-cmd",
            "exit 3",
            "--write-timeout",
            "1",
        ],
    );
    let writes = &report["writes"];
    assert_eq!(writes["commands"], 1);
    let failed = writes["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].as_str().unwrap().contains("exit status: 3"),
        "{failed:?}"
    );
    assert_eq!(
        (&writes["stream_writes"], &writes["missed"]),
        (&json!(5), &json!(5))
    );
    assert_eq!(writes["latency_ms"]["p50"], Value::Null);
}

#[test]
fn probe_prints_a_table_naming_the_machine_and_what_it_measured() {
    let dir = TempDir::new("probe-table");
    let server = StreamServer::start(Config::default(), &dir.0);
    let jwt_file = jwt_file(&dir, &[TOKEN, "another-token"]);
    let output = probe(&[
        &server.url,
        "--jwt-file",
        jwt_file.to_str().unwrap(),
        "--streams",
        "6",
        "--duration",
        "0.5",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8(output.stdout).unwrap();
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let cores = thread::available_parallelism().unwrap();
    assert!(
        table.contains(&format!("machine: {} ({cores} cores", hostname.trim())),
        "{table}"
    );
    assert!(table.contains("6 streams to "), "{table}");
    assert!(table.contains("2 tokens"), "{table}");
    // Every second stream presents the second token, which this server does not know.
    assert!(
        table.contains("3 accepted, 3 held to the end, 3 refused"),
        "{table}"
    );
    assert!(table.contains("refused 401: 3 (body {\"error\""), "{table}");
    for row in [
        "connect",
        "first checkpoint_complete",
        "first checkpoint from due",
        "start lag (probe)",
        "p50",
        "p95",
        "p99",
        "measured:",
    ] {
        assert!(table.contains(row), "no {row:?} in:\n{table}");
    }
    assert!(
        table.starts_with("load probe, ramped mode (50 streams/s): 6 streams"),
        "{table}"
    );
    assert!(table.contains("\nprobe overhead: "), "{table}");
    assert!(table.contains(" s CPU over the run ("), "{table}");
    // Three streams got their checkpoint, then keep-alives; none of the lines is of an unknown kind.
    assert!(table.contains("3 checkpoint, "), "{table}");
    assert!(table.contains("3 checkpoint_complete, "), "{table}");
    assert!(table.contains(", 0 unknown"), "{table}");
}

#[test]
fn burst_and_ramped_runs_are_named_modes_with_the_probes_own_overhead() {
    let dir = TempDir::new("probe-modes");
    let server = StreamServer::start(Config::default(), &dir.0);
    let jwt_file = jwt_file(&dir, &[TOKEN]);
    let burst = probe_json(
        &server,
        &jwt_file,
        &["--streams", "20", "--duration", "0.3", "--burst"],
    );
    assert_eq!(burst["run"]["mode"], "burst", "{burst:#}");
    assert_eq!(burst["run"]["ramp_per_s"], Value::Null, "{burst:#}");
    assert_eq!(burst["streams"]["held"], 20, "{burst:#}");
    let overhead = &burst["probe_overhead"];
    assert!(overhead["cpu_s"].as_f64().unwrap() > 0.0, "{burst:#}");
    assert_eq!(overhead["start_lag_ms"]["count"], 20, "{burst:#}");
    // Every stream of a burst is due at the same instant: from there, its wait covers its own start lag.
    let from_due = burst["first_checkpoint_complete_from_due_ms"]["p50"]
        .as_f64()
        .unwrap();
    let from_start = burst["first_checkpoint_complete_ms"]["p50"]
        .as_f64()
        .unwrap();
    assert!(from_due >= from_start, "{burst:#}");
    assert_eq!(
        burst["streams"]["lines_by_kind"]["checkpoint"], 20,
        "{burst:#}"
    );
    assert_eq!(burst["streams"]["lines_by_kind"]["unknown"], 0, "{burst:#}");
    wait_until_idle(&server);

    let ramped = probe_json(
        &server,
        &jwt_file,
        &["--streams", "20", "--duration", "1.5", "--ramp", "20"],
    );
    assert_eq!(ramped["run"]["mode"], "ramped", "{ramped:#}");
    assert_eq!(ramped["run"]["ramp_per_s"], 20, "{ramped:#}");
    // A stream due late on the ramp waits from its own due time, not from the run's start.
    let from_due_max = ramped["first_checkpoint_complete_from_due_ms"]["max"]
        .as_f64()
        .unwrap();
    assert!(from_due_max < 900.0, "{ramped:#}");

    let both = probe(&[
        &server.url,
        "--jwt-file",
        jwt_file.to_str().unwrap(),
        "--burst",
        "--ramp",
        "5",
    ]);
    assert!(!both.status.success());
    assert!(String::from_utf8_lossy(&both.stderr).contains("cannot be used with"));
}

#[test]
fn probe_fails_clearly_on_a_bad_url_an_unreachable_server_or_refused_tokens() {
    let dir = TempDir::new("probe-errors");
    let jwt_file = jwt_file(&dir, &[TOKEN]);
    let jwt = jwt_file.to_str().unwrap();
    let stderr = |output: &Output| {
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).to_string()
    };

    assert!(stderr(&probe(&["powersync.example.org", "--jwt-file", jwt])).contains("is not a URL"));
    assert!(stderr(&probe(&["ftp://h", "--jwt-file", jwt])).contains("must be http or https"));

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = stderr(&probe(&[
        &format!("http://127.0.0.1:{port}"),
        "--jwt-file",
        jwt,
    ]));
    assert!(
        error.contains(&format!("cannot reach 127.0.0.1:{port}")),
        "{error}"
    );

    let empty = dir.0.join("empty");
    fs::write(&empty, "# nothing\n").unwrap();
    let server = StreamServer::start(Config::default(), &dir.0);
    let error = stderr(&probe(&[
        &server.url,
        "--jwt-file",
        empty.to_str().unwrap(),
    ]));
    assert!(error.contains("holds no token"), "{error}");

    let wrong = dir.0.join("wrong");
    fs::write(&wrong, "not-a-known-token\n").unwrap();
    let output = probe(&[
        &server.url,
        "--jwt-file",
        wrong.to_str().unwrap(),
        "--streams",
        "3",
        "--duration",
        "0.3",
        "--json",
    ]);
    let error = stderr(&output);
    assert!(
        error.contains("no stream was accepted: 3 refused with 401"),
        "{error}"
    );
    assert!(error.contains("PSYNC_S2101"), "{error}");
    // The report still comes out, and says the same.
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["streams"]["refused_by_status"]["401"]["count"], 3);
    // The tokens are secrets: no output shows one.
    assert!(
        !error.contains("not-a-known-token")
            && !String::from_utf8_lossy(&output.stdout).contains("not-a-known-token")
    );

    let error = stderr(&probe(&[
        &server.url,
        "--jwt-file",
        jwt,
        "--streams",
        "100",
        "--ramp",
        "10",
        "--duration",
        "5",
    ]));
    assert!(error.contains("raise --ramp or --duration"), "{error}");

    // --duration takes decimal seconds, and nothing that is not a positive, finite number of them.
    for bad in ["0", "-1", "inf", "3601", "1s"] {
        let error = stderr(&probe(&[
            &server.url,
            "--jwt-file",
            jwt,
            &format!("--duration={bad}"),
        ]));
        assert!(
            error.contains(&format!("`{bad}` is not a duration")),
            "{bad}: {error}"
        );
    }
    let error = stderr(&probe(&[
        &server.url,
        "--jwt-file",
        jwt,
        "--streams",
        "30",
        "--ramp",
        "100",
        "--duration",
        "0.25",
    ]));
    assert!(
        error.contains("takes 0.3 s, not less than --duration 0.25 s"),
        "{error}"
    );
    let error = stderr(&probe(&[
        &server.url,
        "--jwt-file",
        jwt,
        "--streams",
        "5",
        "--duration",
        "1.5",
        "--write-cmd",
        "true",
        "--write-timeout",
        "2",
    ]));
    assert!(
        error.contains("--write-timeout 2 s leaves no time for a write in a 1.5 s run"),
        "{error}"
    );
}

#[test]
fn probe_speaks_https_trusting_only_the_given_ca() {
    let dir = TempDir::new("probe-https");
    let pki = Pki::new();
    let ca = pki.ca();
    let (chain, key) = pki.leaf("server", "localhost", 2);
    let server = StreamServer::start(
        Config {
            tls: Some((chain, key)),
            ..Config::default()
        },
        &dir.0,
    );
    assert!(server.url.starts_with("https://localhost:"));
    let jwt_file = jwt_file(&dir, &[TOKEN]);
    let report = probe_json(
        &server,
        &jwt_file,
        &[
            "--streams",
            "4",
            "--duration",
            "0.3",
            "--ca-file",
            ca.to_str().unwrap(),
        ],
    );
    assert_eq!(report["streams"]["held"], 4, "{report:#}");
    assert_eq!(report["first_checkpoint_complete_ms"]["count"], 4);

    // Without the CA, the built-in roots do not know it: every stream fails, and says why.
    let output = probe(&[
        &server.url,
        "--jwt-file",
        jwt_file.to_str().unwrap(),
        "--streams",
        "2",
        "--duration",
        "0.3",
    ]);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("2 failed") && error.contains("UnknownIssuer"),
        "{error}"
    );
}

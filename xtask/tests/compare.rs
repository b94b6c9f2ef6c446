//! `cargo xtask compare`, run for real against two local stream servers (support/stream_server.rs) that stand
//! for two PowerSync services. What each test user must receive comes from the service's own sync-rules
//! engine (tests/oracle/sync-buckets.mjs: @powersync/service-sync-rules 0.38.1, pinned): its buckets, each
//! row's data as the service stores it, and each PUT's checksum as the service computes it. Each server then
//! tells those rows as an instance with its own op ids, subkeys and history would.
//!
//! The client SDK (tests/sdk: @powersync/node, pinned) is the second oracle: synced from the same servers,
//! it must hold the rows `compare` calls the same, and refuse the data `compare` calls inconsistent.
//!
//! Needs node (Debian: nodejs), `npm ci --prefix tests/oracle`, the SDK's install (see `sdk_sync`), and
//! openssl for the https test.

#[path = "support/stream_server.rs"]
mod stream_server;

mod common;
use common::{assert_contains, pki::Pki, require, text, TempDir};

use std::{
    collections::{BTreeMap, HashMap},
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use stream_server::{
    checkpoint_complete_line, checkpoint_diff_line, checkpoint_line, data_line, Announced, Config,
    Op, Step, StreamServer,
};

/// A sync config with a global bucket, a bucket per user from the token, and buckets from a parameter
/// table (a list shared with a user), evaluated over a few rows of each table.
const SYNC_CONFIG: &str = r#"
bucket_definitions:
  global:
    data:
      - SELECT id, name FROM categories
  user_lists:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT id, name, owner_id FROM lists WHERE owner_id = bucket.user_id
  shared_todos:
    parameters: SELECT list_id FROM shares WHERE user_id = request.user_id()
    data:
      - SELECT id, list_id, description, done FROM todos WHERE list_id = bucket.list_id
"#;

fn tables() -> Value {
    json!({
        "categories": [{"id": "c1", "name": "Home"}, {"id": "c2", "name": "Work"}],
        "lists": [
            {"id": "l1", "name": "Groceries", "owner_id": "u1"},
            {"id": "l2", "name": "Sprint", "owner_id": "u2"},
            {"id": "l3", "name": "Books", "owner_id": "u1"}
        ],
        "shares": [
            {"id": "s1", "list_id": "l1", "user_id": "u1"},
            {"id": "s2", "list_id": "l2", "user_id": "u1"},
            {"id": "s3", "list_id": "l2", "user_id": "u2"}
        ],
        "todos": [
            {"id": "t1", "list_id": "l1", "description": "Milk", "done": 0},
            {"id": "t2", "list_id": "l2", "description": "Report", "done": 1},
            {"id": "t3", "list_id": "l2", "description": "Mail", "done": 0},
            {"id": "t4", "list_id": "l1", "description": "Bread", "done": 0},
            {"id": "t5", "list_id": "l9", "description": "Nobody's", "done": 0}
        ]
    })
}

/// A row a user must receive, as the engine and the service's storage make it.
#[derive(Clone, Debug)]
struct Row {
    object_type: String,
    object_id: String,
    data: String,
    checksum: u32,
}

/// user → bucket → rows, in the order the rows were written.
type Expected = BTreeMap<String, BTreeMap<String, Vec<Row>>>;

fn oracle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/oracle")
}

/// What the engine says each user receives, with bucket names versioned as sync config `version` would
/// name them (`versioned_bucket_ids`). Computed once per version.
fn expected(version: u32) -> &'static Expected {
    static CACHE: OnceLock<HashMap<u32, Expected>> = OnceLock::new();
    CACHE
        .get_or_init(|| [1, 4].into_iter().map(|v| (v, run_oracle(v))).collect())
        .get(&version)
        .expect("versions 1 and 4 are computed")
}

fn run_oracle(version: u32) -> Expected {
    let input = json!({
        "sync_config": SYNC_CONFIG,
        "bucket_version": version,
        "tables": tables(),
        "users": [{"sub": "u1"}, {"sub": "u2"}],
    });
    let users: BTreeMap<String, BTreeMap<String, Vec<Value>>> =
        serde_json::from_slice(&cached_engine_answer(&input)).unwrap();
    users
        .into_iter()
        .map(|(user, buckets)| {
            let buckets = buckets
                .into_iter()
                .map(|(bucket, rows)| {
                    let rows = rows
                        .iter()
                        .map(|row| Row {
                            object_type: row["object_type"].as_str().unwrap().into(),
                            object_id: row["object_id"].as_str().unwrap().into(),
                            data: row["data"].as_str().unwrap().into(),
                            checksum: row["checksum"].as_u64().unwrap() as u32,
                        })
                        .collect();
                    (bucket, rows)
                })
                .collect();
            (user, buckets)
        })
        .collect()
}

/// The engine's answer to `input`, kept on disk under the target directory: each test is a process of its
/// own, and the engine's start (Node, the sync-rules library) costs ~0.4 s CPU a run. The file is named by a
/// hash of everything the answer depends on (the input, the script, the lockfile and the installed engine),
/// so a change to any of them asks the engine again; it is written whole and renamed into place, so
/// processes that make it at once never read half of it.
fn cached_engine_answer(input: &Value) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let engine = oracle_dir().join("node_modules/@powersync/service-sync-rules/package.json");
    assert!(
        engine.is_file(),
        "the sync-rules engine is not installed: npm ci --prefix tests/oracle --no-audit --no-fund"
    );
    let mut key = Sha256::new();
    key.update(input.to_string());
    for file in [
        oracle_dir().join("sync-buckets.mjs"),
        oracle_dir().join("package-lock.json"),
        engine,
    ] {
        key.update(std::fs::read(file).unwrap());
    }
    let key: String = key.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let cached = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sync-buckets-{key}.json"));
    if let Ok(answer) = std::fs::read(&cached) {
        return answer;
    }
    let answer = engine_answer(input);
    let partial = cached.with_extension(format!("{}.partial", std::process::id()));
    std::fs::write(&partial, &answer).unwrap();
    std::fs::rename(&partial, &cached).unwrap();
    answer
}

/// tests/oracle/sync-buckets.mjs's answer (JSON) to `input`.
fn engine_answer(input: &Value) -> Vec<u8> {
    require("node", "nodejs");
    let mut child = Command::new("node")
        .arg(oracle_dir().join("sync-buckets.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "sync-buckets.mjs: {}",
        text(&output)
    );
    // Only a whole answer is kept.
    serde_json::from_slice::<Value>(&output.stdout).expect("sync-buckets.mjs prints JSON");
    output.stdout
}

/// The engine's answer, as the tests rely on it: every bucket kind is there, and u1 gets what it must.
#[test]
fn the_engine_gives_each_user_the_buckets_of_the_sync_config() {
    let u1 = &expected(1)["u1"];
    let names: Vec<&str> = u1.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "1#global[]",
            "1#shared_todos[\"l1\"]",
            "1#shared_todos[\"l2\"]",
            "1#user_lists[\"u1\"]"
        ]
    );
    let ids = |bucket: &str| -> Vec<String> {
        u1[bucket].iter().map(|row| row.object_id.clone()).collect()
    };
    assert_eq!(ids("1#shared_todos[\"l1\"]"), ["t1", "t4"]);
    assert_eq!(ids("1#user_lists[\"u1\"]"), ["l1", "l3"]);
    assert_eq!(
        u1["1#user_lists[\"u1\"]"][0].data,
        r#"{"id":"l1","name":"Groceries","owner_id":"u1"}"#
    );
    assert!(expected(4)["u2"].contains_key("4#user_lists[\"u2\"]"));
}

/// One instance's oplog for one user: op ids from its own sequence, subkeys from its own table ids, and the
/// checkpoint it announces: each bucket's checksum is the wrapping sum of its operations', its count theirs.
#[derive(Clone)]
struct Oplog {
    next_op: u64,
    instance: &'static str,
    buckets: BTreeMap<String, Vec<Op>>,
    /// Checksums announced instead of the true sum (an inconsistent instance).
    announced_override: BTreeMap<String, u32>,
}

impl Oplog {
    fn new(first_op: u64, instance: &'static str) -> Oplog {
        Oplog {
            next_op: first_op,
            instance,
            buckets: BTreeMap::new(),
            announced_override: BTreeMap::new(),
        }
    }

    /// The engine's rows, as an initial snapshot replicates them.
    fn snapshot_of(
        first_op: u64,
        instance: &'static str,
        buckets: &BTreeMap<String, Vec<Row>>,
    ) -> Oplog {
        let mut oplog = Oplog::new(first_op, instance);
        for (bucket, rows) in buckets {
            oplog.buckets.entry(bucket.clone()).or_default();
            for row in rows {
                oplog.put(bucket, row);
            }
        }
        oplog
    }

    fn op(&mut self, bucket: &str, op: &'static str, row: &Row) {
        let op = Op {
            op_id: self.next_op,
            op,
            object_type: row.object_type.clone(),
            object_id: row.object_id.clone(),
            data: (op == "PUT").then(|| row.data.clone()),
            checksum: row.checksum,
            subkey: format!("{}-table/{}", self.instance, row.object_id),
        };
        self.next_op += 1;
        self.buckets.entry(bucket.to_string()).or_default().push(op);
    }

    fn put(&mut self, bucket: &str, row: &Row) {
        self.op(bucket, "PUT", row);
    }

    /// A CLEAR: the bucket's rows so far are gone, and `checksum` stands for every operation it folded.
    fn clear(&mut self, bucket: &str, checksum: u32) {
        let op = Op {
            op_id: self.next_op,
            op: "CLEAR",
            object_type: String::new(),
            object_id: String::new(),
            data: None,
            checksum,
            subkey: String::new(),
        };
        self.next_op += 1;
        self.buckets.entry(bucket.to_string()).or_default().push(op);
    }

    /// A REMOVE's checksum hashes the instance's own table id: any value stands for it.
    fn remove(&mut self, bucket: &str, row: &Row, checksum: u32) {
        let row = Row {
            checksum,
            ..row.clone()
        };
        self.op(bucket, "REMOVE", &row);
    }

    fn announced(&self) -> Vec<Announced> {
        self.buckets
            .iter()
            .map(|(bucket, ops)| {
                // Since the last CLEAR, whose checksum stands for everything it folded.
                let sum = ops.iter().fold(0u32, |sum, op| match op.op {
                    "CLEAR" => op.checksum,
                    _ => sum.wrapping_add(op.checksum),
                });
                let checksum = self.announced_override.get(bucket).copied().unwrap_or(sum);
                (bucket.clone(), checksum, ops.len())
            })
            .collect()
    }

    fn last_op(&self) -> u64 {
        self.next_op - 1
    }

    /// What a new client receives: checkpoint, every bucket's operations (the first bucket's in two
    /// batches, as large buckets come), checkpoint_complete.
    fn script(&self) -> Vec<Step> {
        let mut steps = vec![Step::Line(checkpoint_line(
            self.last_op(),
            &self.announced(),
        ))];
        for (index, (bucket, ops)) in self.buckets.iter().enumerate() {
            if ops.is_empty() {
                continue;
            }
            if index == 0 && ops.len() > 1 {
                let (first, rest) = ops.split_at(1);
                steps.push(Step::Line(data_line(bucket, 0, first)));
                steps.push(Step::Line(data_line(bucket, first[0].op_id, rest)));
            } else {
                steps.push(Step::Line(data_line(bucket, 0, ops)));
            }
        }
        steps.push(Step::Line(checkpoint_complete_line(self.last_op())));
        steps
    }

    /// What a client that holds `before` receives when the oplog has become `self`.
    fn script_since(&self, before: &Oplog) -> Vec<Step> {
        let announced = self.announced();
        let updated: Vec<Announced> = announced
            .into_iter()
            .filter(|(bucket, ..)| self.buckets.get(bucket) != before.buckets.get(bucket))
            .collect();
        let mut steps = vec![Step::Line(checkpoint_diff_line(
            self.last_op(),
            &updated,
            &[],
        ))];
        for (bucket, ..) in &updated {
            let known = before.buckets.get(bucket).map_or(0, Vec::len);
            let after = before
                .buckets
                .get(bucket)
                .and_then(|ops| ops.last())
                .map_or(0, |op| op.op_id);
            steps.push(Step::Line(data_line(
                bucket,
                after,
                &self.buckets[bucket][known..],
            )));
        }
        steps.push(Step::Line(checkpoint_complete_line(self.last_op())));
        steps
    }
}

/// An unsigned JWT naming `sub`: enough for the servers (which match it as a string) and for the report's
/// user column. Each carries a marker that must never show in the output.
fn token(sub: &str) -> String {
    let part = |value: Value| base64url(value.to_string().as_bytes());
    format!(
        "{}.{}.secret-signature-{sub}",
        part(json!({"alg": "none", "typ": "JWT"})),
        part(json!({"sub": sub, "aud": "authenticated"}))
    )
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn server(dir: &TempDir, scripts: Vec<(String, Vec<Step>)>) -> StreamServer {
    StreamServer::start(
        Config {
            tokens: Vec::new(),
            scripts: scripts.into_iter().collect(),
            ..Config::default()
        },
        &dir.0,
    )
}

/// Runs `cargo xtask compare A B` for `users` with `args`; no token may show in what it prints.
fn compare(a: &str, b: &str, users: &[&str], args: &[&str]) -> (Output, String) {
    let dir = TempDir::new("compare-tokens");
    let tokens: Vec<String> = users.iter().map(|user| token(user)).collect();
    let jwt_file = dir.file("tokens.txt", &format!("# sample\n{}\n", tokens.join("\n")));
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["compare", a, b, "--jwt-file", jwt_file.to_str().unwrap()])
        .args(args)
        .output()
        .expect("run cargo xtask compare");
    let all = text(&output);
    assert!(
        !all.contains("secret-signature"),
        "a token was printed:\n{all}"
    );
    (output, all)
}

/// The line of the table for `user`.
fn table_line<'a>(output: &'a str, user: &str) -> &'a str {
    output
        .lines()
        .find(|line| line.starts_with(&format!("{user} ")))
        .unwrap_or_else(|| panic!("no line for {user} in:\n{output}"))
}

/// Each user's rows as A and B hold them in the same-data test: A kept a history (a superseded version of
/// a row, a row added then removed, the first bucket in two batches) under sync config 1, and its global
/// bucket comes after a compaction: rows, then a CLEAR folding them, then the current rows (what a client
/// catching up across a compaction receives). B copied the current rows once under sync config 4, with its
/// own op ids.
fn same_data_with_different_histories(user: &str) -> (Oplog, Oplog) {
    let mut a = Oplog::new(1, "a");
    for (bucket, rows) in &expected(1)[user] {
        a.buckets.entry(bucket.clone()).or_default();
        if bucket.contains("global") {
            let compacted = Row {
                object_id: "compacted".into(),
                data: r#"{"id":"compacted"}"#.into(),
                checksum: 0x7777_0000,
                ..rows[0].clone()
            };
            a.put(bucket, &compacted);
            a.clear(bucket, 0x0123_4567);
        }
        for (index, row) in rows.iter().enumerate() {
            if index == 0 {
                let older = Row {
                    data: row.data.replace('}', r#","old":true}"#),
                    checksum: 0x0bad_cafe,
                    ..row.clone()
                };
                a.put(bucket, &older);
                let gone = Row {
                    object_id: "deleted".into(),
                    data: r#"{"id":"deleted"}"#.into(),
                    checksum: 0x1234_5678,
                    ..row.clone()
                };
                a.put(bucket, &gone);
                a.remove(bucket, &gone, 0x9abc_def0);
            }
            a.put(bucket, row);
        }
    }
    let b = Oplog::snapshot_of(5000, "b", &expected(4)[user]);
    (a, b)
}

#[test]
fn the_same_rows_with_different_histories_and_sync_config_versions_are_the_same() {
    let dir = TempDir::new("compare-same");
    let (a1, b1) = same_data_with_different_histories("u1");
    let (a2, b2) = same_data_with_different_histories("u2");
    // What makes this case: the checkpoints differ in every bucket name, and in checksum and count wherever
    // A kept a history. A comparison of names, checksums or counts would call them different.
    let (announced_a, announced_b) = (a1.announced(), b1.announced());
    assert!(announced_a
        .iter()
        .zip(&announced_b)
        .any(|(a, b)| a.1 != b.1 && a.2 != b.2 && a.0 != b.0));
    let a = server(
        &dir,
        vec![(token("u1"), a1.script()), (token("u2"), a2.script())],
    );
    let b = server(
        &dir,
        vec![(token("u1"), b1.script()), (token("u2"), b2.script())],
    );
    let (output, all) = compare(&a.url, &b.url, &["u1", "u2"], &[]);
    assert!(output.status.success(), "{all}");
    // u1: 4 buckets; rows c1 c2 l1 l3 t1 t4 t2 t3 (each once in the client's tables).
    let u1 = table_line(&all, "u1");
    assert!(
        u1.contains("4/4") && u1.contains("8/8") && u1.ends_with("same"),
        "{u1}"
    );
    assert!(table_line(&all, "u2").ends_with("same"), "{all}");
    assert_contains(&all, "2 of 2 users got the same data");
}

/// B's rows for u1 and u2 after `change` edits u2's, told as a snapshot.
fn b_with(user: &str, change: impl FnOnce(&mut BTreeMap<String, Vec<Row>>)) -> Oplog {
    let mut buckets = expected(4)[user].clone();
    change(&mut buckets);
    Oplog::snapshot_of(5000, "b", &buckets)
}

#[test]
fn differing_rows_are_named_with_their_side_and_data() {
    let dir = TempDir::new("compare-rows");
    let a1 = Oplog::snapshot_of(1, "a", &expected(1)["u1"]);
    let a2 = Oplog::snapshot_of(1, "a", &expected(1)["u2"]);
    let b1 = Oplog::snapshot_of(5000, "b", &expected(4)["u1"]);
    let b2 = b_with("u2", |buckets| {
        let todos = buckets.get_mut("4#shared_todos[\"l2\"]").unwrap();
        // t2 changed, t3 missing; an extra t9 (a row the sync config would not give u2).
        todos[0].data = todos[0].data.replace("Report", "Report v2");
        todos[0].checksum ^= 0xffff;
        todos.remove(1);
        todos.push(Row {
            object_type: "todos".into(),
            object_id: "t9".into(),
            data: r#"{"id":"t9","list_id":"l2","description":"Stray","done":0}"#.into(),
            checksum: 77,
        });
    });
    let a = server(
        &dir,
        vec![(token("u1"), a1.script()), (token("u2"), a2.script())],
    );
    let b = server(
        &dir,
        vec![(token("u1"), b1.script()), (token("u2"), b2.script())],
    );

    let (output, all) = compare(&a.url, &b.url, &["u1", "u2"], &["--settle", "0"]);
    assert!(!output.status.success(), "{all}");
    assert!(table_line(&all, "u1").ends_with("same"), "{all}");
    let u2 = table_line(&all, "u2");
    assert!(u2.contains("3 difference(s)"), "{u2}");
    let bucket = "bucket shared_todos[\"l2\"]";
    assert_contains(
        &all,
        &format!(
            r#"{bucket}: row todos/t2 differs: A {{"id":"t2","list_id":"l2","description":"Report","done":1}} | B {{"id":"t2","list_id":"l2","description":"Report v2","done":1}}"#
        ),
    );
    assert_contains(
        &all,
        &format!("{bucket}: row todos/t3 only on A, missing on B: "),
    );
    assert_contains(
        &all,
        &format!("{bucket}: row todos/t9 only on B, missing on A: "),
    );
    assert_contains(&all, "1 of 2 users got the same data");

    let (output, all) = compare(&a.url, &b.url, &["u1", "u2"], &["--settle", "0", "--json"]);
    assert!(!output.status.success());
    let report: Value = serde_json::from_slice(&output.stdout).expect(&all);
    assert_eq!(report["users"][0]["result"], "same", "{report:#}");
    let kinds: Vec<(&str, &str)> = report["users"][1]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["kind"].as_str().unwrap(), d["row"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("row_differs", "todos/t2"),
            ("row_only_on", "todos/t3"),
            ("row_only_on", "todos/t9")
        ]
    );
    let bucket = &report["users"][1]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["bucket"] == "shared_todos[\"l2\"]")
        .unwrap();
    assert_eq!(bucket["a"]["name"], "1#shared_todos[\"l2\"]");
    assert_eq!(bucket["b"]["name"], "4#shared_todos[\"l2\"]");
    assert_eq!(
        (bucket["a"]["rows"].as_u64(), bucket["b"]["rows"].as_u64()),
        (Some(2), Some(2))
    );
}

#[test]
fn a_bucket_on_one_side_only_is_named() {
    let dir = TempDir::new("compare-bucket");
    let a1 = Oplog::snapshot_of(1, "a", &expected(1)["u1"]);
    let b1 = b_with("u1", |buckets| {
        buckets.remove("4#shared_todos[\"l1\"]");
    });
    let a = server(&dir, vec![(token("u1"), a1.script())]);
    let b = server(&dir, vec![(token("u1"), b1.script())]);
    let (output, all) = compare(&a.url, &b.url, &["u1"], &["--settle", "0"]);
    assert!(!output.status.success(), "{all}");
    let u1 = table_line(&all, "u1");
    assert!(
        u1.contains("4/3") && u1.contains("8/6") && u1.contains("1 difference(s)"),
        "{u1}"
    );
    assert_contains(
        &all,
        "bucket shared_todos[\"l1\"]: only on A (2 rows), missing on B",
    );
}

#[test]
fn equal_counts_with_other_data_are_a_difference() {
    let dir = TempDir::new("compare-checksum");
    let a1 = Oplog::snapshot_of(1, "a", &expected(1)["u1"]);
    let b1 = b_with("u1", |buckets| {
        let lists = buckets.get_mut("4#user_lists[\"u1\"]").unwrap();
        lists[1].data = lists[1].data.replace("Books", "Bookz");
        lists[1].checksum = lists[1].checksum.wrapping_add(1);
    });
    let count = |oplog: &Oplog, bucket: &str| {
        oplog
            .announced()
            .into_iter()
            .find(|(name, ..)| name == bucket)
            .unwrap()
    };
    let (a_list, b_list) = (
        count(&a1, "1#user_lists[\"u1\"]"),
        count(&b1, "4#user_lists[\"u1\"]"),
    );
    assert_eq!(a_list.2, b_list.2, "the same count");
    assert_ne!(a_list.1, b_list.1, "other checksums");
    let a = server(&dir, vec![(token("u1"), a1.script())]);
    let b = server(&dir, vec![(token("u1"), b1.script())]);
    let (output, all) = compare(&a.url, &b.url, &["u1"], &["--settle", "0"]);
    assert!(!output.status.success(), "{all}");
    assert_contains(
        &all,
        r#"row lists/l3 differs: A {"id":"l3","name":"Books","owner_id":"u1"} | B {"id":"l3","name":"Bookz","owner_id":"u1"}"#,
    );
}

#[test]
fn operations_that_do_not_add_up_to_the_checkpoint_are_a_difference() {
    let dir = TempDir::new("compare-inconsistent");
    let a1 = Oplog::snapshot_of(1, "a", &expected(1)["u1"]);
    // The same rows and count on B, but its checkpoint announces another checksum than its operations sum.
    let mut b1 = Oplog::snapshot_of(5000, "b", &expected(4)["u1"]);
    let (bucket, sum, _) = b1
        .announced()
        .into_iter()
        .find(|(name, ..)| name.contains("global"))
        .unwrap();
    b1.announced_override.insert(bucket, sum.wrapping_add(5));
    let a = server(&dir, vec![(token("u1"), a1.script())]);
    let b = server(&dir, vec![(token("u1"), b1.script())]);
    let (output, all) = compare(&a.url, &b.url, &["u1"], &["--settle", "0"]);
    assert!(!output.status.success(), "{all}");
    assert_contains(
        &all,
        &format!(
            "bucket 4#global[]: on B the operations add up to {:#010x} but the checkpoint says {:#010x}",
            sum,
            sum.wrapping_add(5)
        ),
    );
    assert!(table_line(&all, "u1").contains("1 difference(s)"), "{all}");
}

/// B first holds u1's rows without the newest todo, t4, then catches up after `catch_up`.
fn lagging(dir: &TempDir, catch_up: Duration) -> (StreamServer, StreamServer) {
    let a1 = Oplog::snapshot_of(1, "a", &expected(1)["u1"]);
    let full = &expected(4)["u1"];
    let mut before = full.clone();
    let newest = before
        .get_mut("4#shared_todos[\"l1\"]")
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(newest.object_id, "t4");
    let b_before = Oplog::snapshot_of(5000, "b", &before);
    let mut b_after = b_before.clone();
    b_after.put("4#shared_todos[\"l1\"]", &newest);
    let mut script = b_before.script();
    script.push(Step::Pause(catch_up));
    script.extend(b_after.script_since(&b_before));
    (
        server(dir, vec![(token("u1"), a1.script())]),
        server(dir, vec![(token("u1"), script)]),
    )
}

#[test]
fn a_side_that_catches_up_within_the_settle_time_is_the_same() {
    let dir = TempDir::new("compare-lag");
    let (a, b) = lagging(&dir, Duration::from_millis(1500));
    let started = Instant::now();
    let (output, all) = compare(&a.url, &b.url, &["u1"], &["--settle", "10"]);
    assert!(output.status.success(), "{all}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let u1 = table_line(&all, "u1");
    assert!(u1.contains("same after waiting 1."), "{u1}");
}

#[test]
fn a_lag_longer_than_the_settle_time_is_reported_with_what_moved() {
    let dir = TempDir::new("compare-lag-long");
    let a1 = Oplog::snapshot_of(1, "a", &expected(1)["u1"]);
    // B lacks t1 and t4 at first; t1 arrives after 1 s (well after A's first checkpoint, also on a busy
    // machine), t4 only after 20 s.
    let full = &expected(4)["u1"];
    let mut first = full.clone();
    let todos = first.get_mut("4#shared_todos[\"l1\"]").unwrap();
    let (t1, t4) = (todos[0].clone(), todos[1].clone());
    todos.clear();
    let b0 = Oplog::snapshot_of(5000, "b", &first);
    let mut b1 = b0.clone();
    b1.put("4#shared_todos[\"l1\"]", &t1);
    let mut b2 = b1.clone();
    b2.put("4#shared_todos[\"l1\"]", &t4);
    let mut script = b0.script();
    script.push(Step::Pause(Duration::from_secs(1)));
    script.extend(b1.script_since(&b0));
    script.push(Step::Pause(Duration::from_secs(20)));
    script.extend(b2.script_since(&b1));
    let a = server(&dir, vec![(token("u1"), a1.script())]);
    let b = server(&dir, vec![(token("u1"), script)]);

    let started = Instant::now();
    let (output, all) = compare(&a.url, &b.url, &["u1"], &["--settle", "3"]);
    assert!(!output.status.success(), "{all}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it waited past --settle"
    );
    let u1 = table_line(&all, "u1");
    assert!(
        u1.contains("1 difference(s); still different after waiting 3."),
        "{u1}"
    );
    assert!(u1.contains("(new checkpoints meanwhile: A 0, B 1)"), "{u1}");
    assert_contains(
        &all,
        "bucket shared_todos[\"l1\"]: row todos/t4 only on A, missing on B",
    );
}

#[test]
fn a_stream_that_ends_while_waiting_is_reported_with_the_difference() {
    let dir = TempDir::new("compare-ended");
    // A answers late; B, without t4, ends its stream before A's first checkpoint: what B holds is final.
    let mut a_script = vec![Step::Pause(Duration::from_millis(800))];
    a_script.extend(Oplog::snapshot_of(1, "a", &expected(1)["u1"]).script());
    let mut rows = expected(4)["u1"].clone();
    rows.get_mut("4#shared_todos[\"l1\"]").unwrap().pop();
    let mut b_script = Oplog::snapshot_of(5000, "b", &rows).script();
    b_script.push(Step::Pause(Duration::from_millis(100)));
    b_script.push(Step::Cut);
    let a = server(&dir, vec![(token("u1"), a_script)]);
    let b = server(&dir, vec![(token("u1"), b_script)]);
    let (output, all) = compare(&a.url, &b.url, &["u1"], &["--settle", "1"]);
    assert!(!output.status.success(), "{all}");
    let u1 = table_line(&all, "u1");
    assert!(
        u1.contains("1 difference(s); ")
            && u1.contains("; B's stream ended while waiting: the stream "),
        "{u1}"
    );
    assert_contains(&all, "row todos/t4 only on A, missing on B");
}

#[test]
fn a_side_refusing_the_token_is_named_with_its_code() {
    let dir = TempDir::new("compare-401");
    let a1 = Oplog::snapshot_of(1, "a", &expected(1)["u1"]);
    let a = server(&dir, vec![(token("u1"), a1.script())]);
    let b = server(&dir, Vec::new());
    let (output, all) = compare(&a.url, &b.url, &["u1"], &[]);
    assert!(!output.status.success(), "{all}");
    assert!(
        table_line(&all, "u1").ends_with("B: refused the token: 401 PSYNC_S2101"),
        "{all}"
    );
    assert_contains(&all, "0 of 1 users got the same data");
}

#[test]
fn a_stream_cut_before_its_checkpoint_completes_is_not_read_as_data() {
    let dir = TempDir::new("compare-cut");
    let a1 = Oplog::snapshot_of(1, "a", &expected(1)["u1"]);
    let b1 = Oplog::snapshot_of(5000, "b", &expected(4)["u1"]);
    // The checkpoint and the first bucket's first batch, then the connection drops.
    let mut script: Vec<Step> = b1.script().into_iter().take(2).collect();
    script.push(Step::Cut);
    let a = server(&dir, vec![(token("u1"), a1.script())]);
    let b = server(&dir, vec![(token("u1"), script)]);
    let (output, all) = compare(&a.url, &b.url, &["u1"], &[]);
    assert!(!output.status.success(), "{all}");
    let u1 = table_line(&all, "u1");
    assert!(
        u1.contains("B: the stream broke after 2 lines")
            || u1.contains("B: the stream ended after 2 lines"),
        "{u1}"
    );
    assert!(u1.contains("before its first checkpoint_complete"), "{u1}");
    assert!(
        !all.contains("only on A"),
        "a cut stream was compared as data:\n{all}"
    );
}

#[test]
fn https_with_a_ca_file_beside_plain_http() {
    let dir = TempDir::new("compare-https");
    let pki = Pki::new();
    let (chain, key) = pki.leaf("server", "localhost", 2);
    let a1 = Oplog::snapshot_of(1, "a", &expected(1)["u1"]);
    let b1 = Oplog::snapshot_of(5000, "b", &expected(4)["u1"]);
    let a = StreamServer::start(
        Config {
            tokens: Vec::new(),
            scripts: [(token("u1"), a1.script())].into_iter().collect(),
            tls: Some((chain, key)),
            ..Config::default()
        },
        &dir.0,
    );
    let b = server(&dir, vec![(token("u1"), b1.script())]);
    assert!(a.url.starts_with("https://localhost:"));
    let ca = pki.ca();
    let (output, all) = compare(
        &a.url,
        &b.url,
        &["u1"],
        &["--ca-file", ca.to_str().unwrap()],
    );
    assert!(output.status.success(), "{all}");
    assert!(table_line(&all, "u1").ends_with("same"), "{all}");

    // Without it, the public roots do not know the test CA, and A says so.
    let (output, all) = compare(&a.url, &b.url, &["u1"], &[]);
    assert!(!output.status.success(), "{all}");
    let u1 = table_line(&all, "u1");
    assert!(
        u1.contains("A: no answer") && u1.contains("UnknownIssuer"),
        "{u1}"
    );
}

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/sdk")
}

/// How long the SDK may take to sync from a local server, also on a busy machine (it returns once synced).
const SDK_SYNCS: Duration = Duration::from_secs(30);

/// What the client SDK holds after its first sync from `url` as `user`: each row (`type/id`) with its data.
/// An error when the first sync did not complete within `wait` (or, `until_failure`, once the SDK warned or
/// failed: its first attempt failed), with the SDK's download error and warnings.
fn sdk_sync(
    url: &str,
    user: &str,
    wait: Duration,
    until_failure: bool,
) -> Result<BTreeMap<String, String>, String> {
    require("node", "nodejs");
    assert!(
        sdk_dir()
            .join("node_modules/better-sqlite3/build/Release/better_sqlite3.node")
            .is_file(),
        "the client SDK is not installed (better-sqlite3 builds from source: needs make, g++ and the Node.js \
         headers): npm_config_build_from_source=true npm_config_nodedir=\"$(dirname \"$(dirname \"$(command -v node)\")\")\" \
         npm ci --prefix tests/sdk --no-audit --no-fund"
    );
    let tables = ["categories", "lists", "todos"];
    let input = json!({"url": url, "token": token(user), "tables": tables, "timeout_ms": wait.as_millis() as u64,
                       "until_failure": until_failure});
    let mut child = Command::new("node")
        .arg(sdk_dir().join("sdk-sync.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "sdk-sync.mjs: {}", text(&output));
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    if result["synced"] != true {
        return Err(format!("{} (log: {})", result["error"], result["log"]));
    }
    let mut rows = BTreeMap::new();
    for table in tables {
        for (id, data) in result["tables"][table].as_object().unwrap() {
            rows.insert(format!("{table}/{id}"), data.as_str().unwrap().to_string());
        }
    }
    Ok(rows)
}

/// The rows a client of `user` must hold, by the engine: each `type/id` once, whichever bucket brings it.
fn engine_rows(user: &str) -> BTreeMap<String, String> {
    expected(1)[user]
        .values()
        .flatten()
        .map(|row| {
            (
                format!("{}/{}", row.object_type, row.object_id),
                row.data.clone(),
            )
        })
        .collect()
}

#[test]
fn the_client_sdk_holds_what_compare_calls_the_same_and_refuses_what_it_calls_inconsistent() {
    let dir = TempDir::new("compare-sdk");
    let (a1, b1) = same_data_with_different_histories("u1");
    let mut c1 = Oplog::snapshot_of(5000, "c", &expected(4)["u1"]);
    let (bucket, sum, _) = c1
        .announced()
        .into_iter()
        .find(|(name, ..)| name.contains("global"))
        .unwrap();
    c1.announced_override.insert(bucket, sum.wrapping_add(5));
    let a = server(&dir, vec![(token("u1"), a1.script())]);
    let b = server(&dir, vec![(token("u1"), b1.script())]);
    let c = server(&dir, vec![(token("u1"), c1.script())]);

    // The SDK, synced from A (a history, batches, a REMOVE) and from B (a snapshot), holds exactly the rows
    // the engine gives u1, and compare calls A and B the same.
    let want = engine_rows("u1");
    assert_eq!(want.len(), 8);
    assert_eq!(sdk_sync(&a.url, "u1", SDK_SYNCS, false), Ok(want.clone()));
    assert_eq!(sdk_sync(&b.url, "u1", SDK_SYNCS, false), Ok(want));
    let (output, all) = compare(&a.url, &b.url, &["u1"], &["--settle", "0"]);
    assert!(output.status.success(), "{all}");

    // C's operations do not add up to its checkpoint: the SDK never completes a sync from it, and compare
    // says why.
    // Its first attempt fails within a second, and the wait ends there (a retry gets the same data); 8 s
    // only bounds the test.
    let error = sdk_sync(&c.url, "u1", Duration::from_secs(8), true).unwrap_err();
    let (announced, received) = (sum.wrapping_add(5), sum);
    assert_contains(
        &error,
        &format!(
            "Checksums didn't match, failed for: 4#global[] (expected {announced:#010x}, got {received:#010x}"
        ),
    );
    let (output, all) = compare(&a.url, &c.url, &["u1"], &["--settle", "0"]);
    assert!(!output.status.success(), "{all}");
    assert_contains(
        &all,
        &format!(
            "bucket 4#global[]: on B the operations add up to {received:#010x} but the checkpoint says {announced:#010x}"
        ),
    );
}

#[test]
fn bad_input_is_refused_before_any_stream_opens() {
    let dir = TempDir::new("compare-input");
    let a1 = Oplog::snapshot_of(1, "a", &expected(1)["u1"]);
    let a = server(&dir, vec![(token("u1"), a1.script())]);
    let closed = format!("http://127.0.0.1:{}", common::free_port());
    let (output, all) = compare(&a.url, &closed, &["u1"], &[]);
    assert!(!output.status.success(), "{all}");
    assert_contains(&all, "Error: B\n\nCaused by:\n    cannot reach 127.0.0.1:");
    let (output, all) = compare("powersync.example.org", &a.url, &["u1"], &[]);
    assert!(!output.status.success(), "{all}");
    assert_contains(&all, "is not a URL");
    let empty = dir.file("empty.txt", "# no token yet\n");
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "compare",
            &a.url,
            &a.url,
            "--jwt-file",
            empty.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_contains(&text(&output), "holds no token: put one JWT per line");
    assert_eq!(a.accepted(), 0, "a stream was opened");
}

#[test]
fn help_shows_an_example() {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["compare", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_contains(
        &String::from_utf8_lossy(&output.stdout),
        "Example: `cargo xtask compare https://",
    );
}

//! The preflight against the real oracle: the PowerSync Service's own URI parser, uri-js 4.4.1 from npm
//! (tests/oracle, pinned by its package-lock), read the way the service reads it (tests/oracle/read-dsn.mjs),
//! and libpq itself (psql logging in to a real PostgreSQL with the DSN; where a literal `%` makes psql refuse
//! the URI, with the service's reading in PG* variables, as the watchdog connects). For every printable ASCII
//! character in the user and password, and for query, host, port, database and `%` forms: what the preflight
//! accepts, the service reads the same way (user, password, host, port, database) and psql logs in with, and
//! a user or password is refused only where the service would not read it as written.
//!
//! Needs (Debian): bash, postgresql (server, psql, pg_recvlogical), util-linux (setpriv), nodejs
//! and `npm ci --prefix tests/oracle`. A missing one fails the test with the package to install.

mod common;
use common::{ops::script, require, text, watchdog::Postgres, TempDir};
use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
};

use std::net::Ipv6Addr;

#[derive(Debug, PartialEq)]
struct Reading {
    user: String,
    password: String,
    host: String,
    port: u16,
    database: String,
}

fn oracle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/oracle")
}

/// The service's readings (None: it would refuse the DSN at start).
fn service_readings(dsns: &[String]) -> Vec<Option<Reading>> {
    require("node", "nodejs");
    assert!(
        oracle_dir()
            .join("node_modules/uri-js/package.json")
            .is_file(),
        "uri-js is not installed: npm ci --prefix tests/oracle --no-audit --no-fund"
    );
    let mut child = Command::new("node")
        .arg(oracle_dir().join("read-dsn.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = serde_json::to_vec(dsns).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "read-dsn.mjs: {}", text(&output));
    let readings: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    readings
        .iter()
        .map(|r| {
            r.get("error").is_none().then(|| Reading {
                user: r["user"].as_str().unwrap().to_owned(),
                password: r["password"].as_str().unwrap().to_owned(),
                host: r["host"].as_str().unwrap().to_owned(),
                port: r["port"].as_u64().unwrap().try_into().unwrap(),
                database: r["database"].as_str().unwrap().to_owned(),
            })
        })
        .collect()
}

/// Our readings: whether preflight-dsn.sh accepts each DSN, and what source-connection.sh (the code
/// both scripts embed) reads from it.
fn our_readings(dir: &TempDir, dsns: &[String]) -> Vec<(bool, Option<Reading>)> {
    let files: Vec<PathBuf> = dsns
        .iter()
        .enumerate()
        .map(|(i, dsn)| dir.file(&format!("{i}.env"), &format!("PS_SOURCE_DSN={dsn}\n")))
        .collect();
    let harness = r#". "$LIB"
            for file in "$@"; do
              if source_connection "$file"; then
                printf 'ok\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1e' "$conn_user" "$conn_password" "$conn_host" "$conn_port" "$conn_database"
              else
                printf 'refused\x1e'
              fi
            done"#;
    let output = Command::new("bash")
        .args(["-c", harness, "bash"])
        .args(&files)
        .env("LIB", script("source-connection.sh"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let readings: Vec<Option<Reading>> = stdout
        .split_terminator('\x1e')
        .map(|record| {
            let fields: Vec<&str> = record.split('\x1f').collect();
            (fields[0] == "ok").then(|| Reading {
                user: fields[1].to_owned(),
                password: fields[2].to_owned(),
                host: fields[3].to_owned(),
                port: fields[4].parse().unwrap(),
                database: fields[5].to_owned(),
            })
        })
        .collect();
    assert_eq!(readings.len(), dsns.len());
    // One run of the real script per file, four at a time.
    let preflight = script("preflight-dsn.sh");
    let accepted: Vec<bool> = thread::scope(|scope| {
        let runs: Vec<_> = files
            .chunks(files.len().div_ceil(4))
            .map(|chunk| {
                let preflight = &preflight;
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|file| {
                            Command::new("bash")
                                .arg(preflight)
                                .arg(file)
                                .output()
                                .unwrap()
                                .status
                                .success()
                        })
                        .collect::<Vec<bool>>()
                })
            })
            .collect();
        runs.into_iter()
            .flat_map(|run| run.join().unwrap())
            .collect()
    });
    accepted.into_iter().zip(readings).collect()
}

fn same_host(ours: &str, service: &str) -> bool {
    match (ours.parse::<Ipv6Addr>(), service.parse::<Ipv6Addr>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => ours == service,
    }
}

/// psql (libpq parsing the URI itself) logs in with each DSN as the reading's user, to its database.
fn libpq_reads(pg: &Postgres, cases: &[(&String, &Reading)]) {
    let mut roles = std::collections::BTreeMap::new();
    for (dsn, reading) in cases {
        let previous = roles.insert(reading.user.as_str(), reading.password.as_str());
        assert!(
            previous.is_none_or(|p| p == reading.password),
            "{dsn}: one role, two passwords"
        );
    }
    let sql: String = roles
        .iter()
        .map(|(user, password)| {
            format!(
                "CREATE ROLE \"{}\" LOGIN PASSWORD '{}';\n",
                user.replace('"', "\"\""),
                password.replace('\'', "''")
            )
        })
        .collect();
    pg.sql(&sql);
    let databases: std::collections::BTreeSet<&str> =
        cases.iter().map(|(_, r)| r.database.as_str()).collect();
    for database in databases.into_iter().filter(|d| *d != "postgres") {
        pg.sql(&format!(
            "CREATE DATABASE \"{}\"",
            database.replace('"', "\"\"")
        ));
    }
    // The `%` cases each need a process of their own (their PG* variables); the rest share a few.
    let (percent, uris): (Vec<_>, Vec<_>) = cases.iter().partition(|(dsn, _)| dsn.contains('%'));
    let workers = 4;
    thread::scope(|scope| {
        for chunk in uris.chunks(uris.len().div_ceil(workers).max(1)) {
            scope.spawn(move || log_in_with_uris(pg, chunk));
        }
        scope.spawn(|| {
            for (dsn, reading) in &percent {
                // psql refuses a `%` that starts no octet; the watchdog never gives it the URI, but the
                // service's reading in PG* variables, as here.
                let output = Command::new("psql")
                    .env("PGHOST", &reading.host)
                    .env("PGPORT", reading.port.to_string())
                    .env("PGUSER", &reading.user)
                    .env("PGPASSWORD", &reading.password)
                    .env("PGDATABASE", &reading.database)
                    .args(["-w", "-X", "-tA", "-c", WHO])
                    .output()
                    .unwrap();
                assert!(output.status.success(), "psql {dsn}: {}", text(&output));
                assert_eq!(
                    String::from_utf8_lossy(&output.stdout).trim(),
                    format!("{}|{}", reading.user, reading.database),
                    "{dsn}"
                );
            }
        });
    });
}

const WHO: &str = "SELECT current_user || '|' || current_database()";

/// One psql logs in with each DSN in turn: `\connect` given the DSN as a psql variable, which psql puts in
/// verbatim (no quoting, no rescanning), so libpq parses the URI exactly as written, as from psql's command
/// line; a conninfo string reuses nothing from the connection before it. The first failed login stops the
/// script (ON_ERROR_STOP): the DSN after the last one answered is the one that failed.
fn log_in_with_uris(pg: &Postgres, cases: &[&(&String, &Reading)]) {
    let mut psql = Command::new("psql");
    // The script's first connection: the superuser over the socket (trust), only to start from.
    psql.arg("-h")
        .arg(pg.socket_dir())
        .args([
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args(["-w", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1"])
        .env_remove("PGPASSWORD");
    let mut script = String::new();
    for (i, (dsn, _)) in cases.iter().enumerate() {
        psql.arg("-v").arg(format!("d{i}={dsn}"));
        script.push_str(&format!(
            "\\connect -reuse-previous=off :d{i}\nSELECT '{i}|' || current_user || '|' || current_database();\n"
        ));
    }
    let mut child = psql
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let answers: Vec<&str> = stdout.lines().collect();
    for (i, (dsn, reading)) in cases.iter().enumerate() {
        let Some(answer) = answers.get(i) else {
            panic!("psql {dsn}: {}", text(&output));
        };
        assert_eq!(
            *answer,
            format!("{i}|{}|{}", reading.user, reading.database),
            "{dsn}"
        );
    }
    assert_eq!(answers.len(), cases.len(), "{}", text(&output));
    assert!(output.status.success(), "psql: {}", text(&output));
}

#[test]
fn what_the_preflight_accepts_the_service_and_libpq_read_the_same_way() {
    let pg = Postgres::start();
    let port = pg.port;
    let at = format!("127.0.0.1:{port}/postgres");
    let mut dsns = Vec::new();
    let printable: Vec<char> = (0x20u8..0x7f).map(char::from).collect();
    for c in &printable {
        // A role of its own for each password (libpq_reads creates them).
        for (i, password) in [format!("{c}pass"), format!("pa{c}ss"), format!("pass{c}")]
            .iter()
            .enumerate()
        {
            dsns.push(format!("postgresql://pw{}_{i}:{password}@{at}", *c as u8));
        }
        for user in [format!("{c}usr"), format!("us{c}r"), format!("usr{c}")] {
            dsns.push(format!("postgresql://{user}:pass@{at}"));
        }
    }
    for query in [
        "sslmode=disable",
        "sslmode=prefer",
        "application_name=x&connect_timeout=5",
        "password=other",
        "user=other",
        "dbname=other",
        "host=other",
        "hostaddr=::1",
        "port=1",
        "service=x",
        "replication=database",
        "",
        "a",
        "a=b=c",
        "options=-c%20x",
        "%70assword=x",
        "x=@y",
        "x=a#b",
        "sslmode=disable&",
        "&sslmode=disable",
    ] {
        dsns.push(format!("postgresql://usr:pass@{at}?{query}"));
    }
    for rest in [
        format!("[::1]:{port}/postgres"),
        "[::1]/postgres".to_owned(),
        "[FD00::AB]:5433/postgres".to_owned(),
        "[fd00:0::1]:5433/postgres".to_owned(),
        format!("LOCALHOST:{port}/postgres"),
        "127.0.0.1:/postgres".to_owned(),
        format!("127.0.0.1:0{port}/postgres"),
        "127.0.0.1:80/postgres".to_owned(),
        "127.0.0.1:99999/postgres".to_owned(),
        format!("127.0.0.1:{port}/"),
        format!("127.0.0.1:{port}"),
        format!("127.0.0.1:{port}/db/x"),
        format!("127.0.0.1:{port}/p%41"),
        format!("127.0.0.1:{port}/postgres#f"),
        format!("h1,h2:{port}/postgres"),
        format!("[::1%25lo]:{port}/postgres"),
        format!("127.0.0.1:{port}/Post-gres_1"),
    ] {
        dsns.push(format!("postgresql://usr:pass@{rest}"));
    }
    for dsn in [
        format!("postgres://usr:pass@{at}"),
        format!("POSTGRESQL://usr:pass@{at}"),
        format!("postgresql://{at}"),
        format!("postgresql://usr@{at}"),
        format!("postgresql://:pass@{at}"),
        format!("postgresql://usr:@{at}"),
        format!("postgresql://usr:pa:ss@{at}"),
        format!("postgresql://usr:pa@ss@{at}"),
        format!("postgresql://usr:pa%41ss@{at}"),
        format!("postgresql:/usr:pass@{at}"),
        // A `%` the service keeps as written (no two hex digits follow), and octets it decodes or
        // upper-cases.
        format!("postgresql://pct1:pa%zzss@{at}"),
        format!("postgresql://pct2:pa%4@{at}"),
        format!("postgresql://pct3:%@{at}"),
        format!("postgresql://pct4:pa%%ss@{at}"),
        format!("postgresql://pct5:pa%g1%@{at}"),
        format!("postgresql://u%zzr:pass@{at}"),
        format!("postgresql://pct6:pa%2Fss@{at}"),
        format!("postgresql://pct7:pa%e9ss@{at}"),
        format!("postgresql://pct8:pa%7Ess@{at}"),
        format!("postgresql://pct9:pa%%41ss@{at}"),
        format!("postgresql://usr:pass@127.0.0.1:{port}/db%zz"),
        format!("postgresql://usr:pass@127.0.0.1:{port}/db%2F"),
    ] {
        dsns.push(dsn);
    }

    let dir = TempDir::new("oracle");
    let service = service_readings(&dsns);
    let ours = our_readings(&dir, &dsns);
    let mut accepted = 0;
    let mut local = Vec::new();
    for ((dsn, (preflight, reading)), service) in dsns.iter().zip(&ours).zip(&service) {
        assert_eq!(
            *preflight,
            reading.is_some(),
            "{dsn}: the preflight and the reading differ"
        );
        let Some(reading) = reading else { continue };
        accepted += 1;
        let Some(service) = service else {
            panic!("{dsn}: accepted, but the service refuses it")
        };
        assert!(
            same_host(&reading.host, &service.host)
                && (
                    &reading.user,
                    &reading.password,
                    reading.port,
                    &reading.database
                ) == (
                    &service.user,
                    &service.password,
                    service.port,
                    &service.database
                ),
            "{dsn}: we read {reading:?}, the service {service:?}"
        );
        if reading.host == "127.0.0.1" && reading.port == port {
            local.push((dsn, reading));
        }
    }
    libpq_reads(&pg, &local);

    // Refusals match the service exactly: every character, at the start, middle and end of a user or a
    // password, is accepted exactly when the service reads it as written (`%` included: no two hex
    // digits follow it here).
    let position = |dsn: String| dsns.iter().position(|d| *d == dsn).unwrap();
    for (i, shape) in ["{c}pass", "pa{c}ss", "pass{c}"].iter().enumerate() {
        let written = |c: char| shape.replace("{c}", &c.to_string());
        let at_index = |c: char| {
            position(format!(
                "postgresql://pw{}_{i}:{}@{at}",
                c as u8,
                written(c)
            ))
        };
        let kept: String = printable
            .iter()
            .copied()
            .filter(|&c| {
                service[at_index(c)].as_ref().is_some_and(|r| {
                    r.password == written(c) && r.user == format!("pw{}_{i}", c as u8)
                })
            })
            .collect();
        let accepted: String = printable
            .iter()
            .copied()
            .filter(|&c| ours[at_index(c)].0)
            .collect();
        assert_eq!(accepted, kept, "passwords shaped {shape}");
        assert!(kept.contains('%'), "{kept}");
    }
    for shape in ["{c}usr", "us{c}r", "usr{c}"] {
        let written = |c: char| shape.replace("{c}", &c.to_string());
        let at_index = |c: char| position(format!("postgresql://{}:pass@{at}", written(c)));
        let kept: String = printable
            .iter()
            .copied()
            .filter(|&c| {
                service[at_index(c)]
                    .as_ref()
                    .is_some_and(|r| r.user == written(c) && r.password == "pass")
            })
            .collect();
        let accepted: String = printable
            .iter()
            .copied()
            .filter(|&c| ours[at_index(c)].0)
            .collect();
        assert_eq!(accepted, kept, "users shaped {shape}");
    }
    // A `%` before two hex digits is refused: the service decodes (%7E is ~) or upper-cases (%e9) it,
    // psql decodes it, and %2F may have been meant as `/`. Any other `%` is accepted as written.
    for (dsn, accept) in [
        (format!("postgresql://pct1:pa%zzss@{at}"), true),
        (format!("postgresql://pct2:pa%4@{at}"), true),
        (format!("postgresql://pct3:%@{at}"), true),
        (format!("postgresql://pct4:pa%%ss@{at}"), true),
        (format!("postgresql://pct5:pa%g1%@{at}"), true),
        (format!("postgresql://u%zzr:pass@{at}"), true),
        (
            format!("postgresql://usr:pass@127.0.0.1:{port}/db%zz"),
            true,
        ),
        (format!("postgresql://pct6:pa%2Fss@{at}"), false),
        (format!("postgresql://pct7:pa%e9ss@{at}"), false),
        (format!("postgresql://pct8:pa%7Ess@{at}"), false),
        (format!("postgresql://pct9:pa%%41ss@{at}"), false),
        (format!("postgresql://usr:pa%41ss@{at}"), false),
        (
            format!("postgresql://usr:pass@127.0.0.1:{port}/db%2F"),
            false,
        ),
    ] {
        let i = position(dsn.clone());
        assert_eq!(ours[i].0, accept, "{dsn}: {:?}", service[i]);
    }
    assert!(
        accepted > 400,
        "only {accepted} accepted: the sweep proves little"
    );
}

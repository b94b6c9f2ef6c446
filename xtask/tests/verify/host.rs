//! `powersync-verify` on a host whose state a test sets: each check in its passing and failing form.

use super::*;

pub const PIN: &str = "sha256:413a0c813e96935ebe7203b5759f8a594a7b7cd8aa42134713e63af637e0f079";
const INSTANCE_DIGEST: &str =
    "sha256:eeb83b378545d243b427a5557e41efce80d067a4b0cac2652fbf97900ff002c4";
const IMAGE_ID: &str = "9f2c4e1a7b3d5f6e8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f";
const CONFIG: &str = "/nix/store/0zbw6v0bc0a1m7nqd4bdsv8vq2h8lj2a-powersync-service.yaml";
const SYNC_CONFIG: &str = "/nix/store/4b0hq5a8bkk7r7d5jqvv7kmm6rdf9j1x-sync-config.yaml";
const SLOT: &str = "powersync_selfhost_1_e76f";
pub const T0: u64 = 1_800_000_000;
pub const UNIT: &str = "podman-powersync.service";

/// A real PostgreSQL on its own Unix socket only (peer authentication, as a host's local socket), with the
/// storage role.
pub struct Postgres(common::postgres::Postgres);

impl std::ops::Deref for Postgres {
    type Target = common::postgres::Postgres;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Postgres {
    pub fn start() -> Postgres {
        require("runuser", "util-linux");
        let cluster = common::postgres::Postgres::start(common::postgres::Setup {
            initdb: &["--auth-local=peer"],
            hba: None,
            settings: vec!["listen_addresses=".to_owned()],
            log_file: false,
            stop_mode: "fast",
        });
        cluster.sql(&format!(
            "CREATE ROLE powersync_storage LOGIN PASSWORD '{STORAGE_PASSWORD}'"
        ));
        Postgres(cluster)
    }
}

fn unit(active: &str, sub: &str, restarts: u32, since: Option<u64>) -> String {
    let since = since.map(|t| format!("@{t}")).unwrap_or_default();
    format!("ActiveState={active}\nSubState={sub}\nNRestarts={restarts}\nActiveEnterTimestamp={since}\n")
}

/// What podman's `container inspect` prints for the service, environment (secrets) included.
fn container_json(running: bool, health: &str, image: &str, config: &str, rw: bool) -> String {
    serde_json::json!([{
        "Id": "c0ffee",
        "Image": image,
        "ImageName": format!("docker.io/journeyapps/powersync-service:1.26.1@{PIN}"),
        "State": {"Status": if running {"running"} else {"exited"}, "Running": running,
                  "Health": {"Status": health, "FailingStreak": 0, "Log": []}},
        "Mounts": [
            {"Type": "bind", "Source": config, "Destination": "/config/service.yaml", "RW": rw},
            {"Type": "bind", "Source": SYNC_CONFIG, "Destination": "/config/sync-config.yaml", "RW": false},
        ],
        "Config": {"Env": [
            format!("PS_SOURCE_DSN=postgresql://powersync_selfhost:{PASSWORD}@db.x.supabase.co:5432/postgres"),
            format!("PS_STORAGE_PASSWORD={STORAGE_PASSWORD}"),
            "POWERSYNC_CONFIG_PATH=/config/service.yaml",
        ]},
    }])
    .to_string()
}

fn image_json(digests: &[&str]) -> String {
    let repo_digests: Vec<String> = digests
        .iter()
        .map(|d| format!("docker.io/journeyapps/powersync-service@{d}"))
        .collect();
    serde_json::json!([{"Id": IMAGE_ID, "Digest": INSTANCE_DIGEST, "RepoDigests": repo_digests}])
        .to_string()
}

fn textfile(last_run: u64, source_up: u8, slots: &[(&str, u8, u64)]) -> String {
    let mut text = format!(
        "# HELP powersync_watchdog_source_up x\n# TYPE powersync_watchdog_source_up gauge\npowersync_watchdog_source_up {source_up}\n\
         powersync_slot_present {}\n",
        u8::from(!slots.is_empty())
    );
    for (slot, active, retained) in slots {
        text += &format!("powersync_slot_active{{slot=\"{slot}\"}} {active}\n");
        text += &format!("powersync_slot_retained_wal_bytes{{slot=\"{slot}\"}} {retained}\n");
    }
    text + &format!("powersync_watchdog_restarts_total 0\npowersync_watchdog_last_run_timestamp_seconds {last_run}\n")
}

fn metrics(lag: Option<&str>) -> String {
    let mut text =
        "# HELP powersync_concurrent_connections x\npowersync_concurrent_connections 3\n"
            .to_owned();
    if let Some(lag) = lag {
        text += &format!("# TYPE powersync_replication_lag_seconds gauge\npowersync_replication_lag_seconds {lag}\n");
    }
    text
}

const SS: &str = "\
LISTEN 0      4096       127.0.0.1:8080       0.0.0.0:*
LISTEN 0      4096       127.0.0.1:9464       0.0.0.0:*
LISTEN 0      4096      10.89.64.1:5432       0.0.0.0:*
LISTEN 0      244        127.0.0.1:5432       0.0.0.0:*
LISTEN 0      244            [::1]:5432          [::]:*
LISTEN 0      128          0.0.0.0:22         0.0.0.0:*
LISTEN 0      128             [::]:22            [::]:*
LISTEN 0      511          0.0.0.0:443        0.0.0.0:*
";

/// A host's state, all green unless a test changes it.
pub struct Host {
    pub units: Vec<(String, String)>,
    pub container: Option<String>,
    pub image: String,
    pub textfile: Option<String>,
    /// The metrics endpoint's body; None: nothing listens.
    pub metrics: Option<String>,
    pub journal: String,
    pub ss: String,
    /// Keys of the module's manifest that differ from the healthy host's.
    pub manifest: Vec<(String, Value)>,
    pub sql: Vec<String>,
}

pub struct Run {
    pub code: Option<i32>,
    pub output: String,
    pub json: serde_json::Value,
    pub calls: String,
}

impl Host {
    /// A healthy host.
    pub fn healthy() -> Host {
        Host {
            units: vec![
                (UNIT.into(), unit("active", "running", 0, Some(T0 - 600))),
                (
                    "powersync-storage-proxy.socket".into(),
                    unit("active", "listening", 0, Some(T0 - 700)),
                ),
                (
                    "powersync-slot-watchdog.timer".into(),
                    unit("active", "waiting", 0, Some(T0 - 700)),
                ),
            ],
            container: Some(container_json(true, "healthy", IMAGE_ID, CONFIG, false)),
            image: image_json(&[INSTANCE_DIGEST, PIN]),
            textfile: Some(textfile(T0 - 60, 1, &[(SLOT, 1, 3 * 1024 * 1024)])),
            metrics: Some(metrics(Some("0.4"))),
            journal: format!(
                "Booting PowerSync Service v1.26.1\n\
                 [{SLOT}] Created replication slot {SLOT}\n\
                 Request failed: [PSYNC_S2105] Unexpected \"aud\" claim value: \"someone-else\"\n"
            ),
            ss: SS.into(),
            manifest: Vec::new(),
            sql: Vec::new(),
        }
    }
}

impl Host {
    pub fn set_unit(&mut self, name: &str, active: &str, sub: &str, restarts: u32) {
        let since = (active == "active").then_some(T0 - 600);
        self.units.retain(|(unit, _)| unit != name);
        self.units
            .push((name.into(), unit(active, sub, restarts, since)));
    }

    pub fn set(&mut self, key: &str, value: Value) {
        self.manifest.push((key.into(), value));
    }

    /// The stand-ins, the env files and the manifest the module would write, in `dir`; the environment
    /// verify.sh runs with. `pg` None: no server (the manifest names a closed port, PGHOST a directory that
    /// does not exist), for runs that end before the storage role is checked.
    pub fn world(
        &self,
        dir: &TempDir,
        pg: Option<&Postgres>,
        metrics_url: &str,
    ) -> Vec<(String, String)> {
        let calls = dir.path("calls.log");
        for (name, state) in &self.units {
            dir.file(&format!("state/units/{name}"), state);
        }
        if let Some(container) = &self.container {
            dir.file("state/container-powersync.json", container);
        }
        dir.file(&format!("state/image-{IMAGE_ID}.json"), &self.image);
        dir.file("state/journal", &self.journal);
        dir.file("state/ss", &self.ss);
        let state = dir.path("state");
        let state = state.display();
        // Each stand-in answers exactly the calls verify.sh makes and refuses anything else. They are
        // POSIX sh of builtins only: verify.sh runs up to 7 per run, and dash starts in a third of bash's
        // time, without a basename or cat of its own.
        let stand_in = |name: &str, body: String| {
            let path = dir.file(
                &format!("bin/{name}"),
                &format!(
                    "#!/bin/sh\nprintf '%s\\n' \"${{0##*/}} $*\" >> {}\n\
                     show() {{ while IFS= read -r line || [ -n \"$line\" ]; do printf '%s\\n' \"$line\"; done < \"$1\"; }}\n\
                     {body}\n",
                    calls.display()
                ),
            );
            fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        };
        stand_in(
            "systemctl",
            format!(
                "[ \"$1 $2 $3\" = 'show --timestamp=unix -p' ] && [ \"$4\" = ActiveState,SubState,NRestarts,ActiveEnterTimestamp ] && [ \"$5\" = -- ] || {{ echo UNEXPECTED >&2; exit 99; }}\n\
                 f={state}/units/$6\nif [ -f \"$f\" ]; then show \"$f\"; else printf 'ActiveState=inactive\\nSubState=dead\\nNRestarts=0\\nActiveEnterTimestamp=\\n'; fi"
            ),
        );
        stand_in(
            "podman",
            format!(
                "case \"$1 $2 $3\" in\n  'container inspect --') f={state}/container-$4.json ;;\n  'image inspect --') f={state}/image-$4.json ;;\n  *) echo UNEXPECTED >&2; exit 99 ;;\nesac\n\
                 [ -f \"$f\" ] || {{ echo \"Error: no such object: $4\" >&2; echo '[]'; exit 125; }}\nshow \"$f\""
            ),
        );
        stand_in(
            "journalctl",
            format!(
                "[ \"$1 $2 $3\" = '-u {UNIT} --since' ] && [ \"$4\" = @{} ] || {{ echo UNEXPECTED >&2; exit 99; }}\nshow {state}/journal",
                T0 - 600
            ),
        );
        stand_in(
            "ss",
            format!("[ \"$*\" = -Hltn ] || {{ echo UNEXPECTED >&2; exit 99; }}\nshow {state}/ss"),
        );
        let source_env = dir.file(
            "secrets/source.env",
            &format!("PS_SOURCE_DSN=postgresql://powersync_selfhost:{PASSWORD}@db.x.supabase.co:5432/postgres\n"),
        );
        let storage_env = dir.file(
            "secrets/storage.env",
            &format!("PS_STORAGE_PASSWORD={STORAGE_PASSWORD}\n"),
        );
        let textfile = dir.path("powersync.prom");
        if let Some(content) = &self.textfile {
            fs::write(&textfile, content).unwrap();
        }
        // The module puts the server's package on verify.sh's PATH (runtimeInputs): its psql, not Debian's
        // /usr/bin/psql, a Perl wrapper that costs some 45 ms of CPU per call.
        let mut path = vec![dir.path("bin")];
        path.extend(pg.map(|pg| pg.bin.clone()));
        path.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap()));
        let path = std::env::join_paths(path).unwrap().into_string().unwrap();
        let (pgport, pghost) = match pg {
            Some(pg) => (pg.port, pg.dir.0.clone()),
            None => (free_port(), dir.path("no-server")),
        };
        let mut manifest = json!({
            "runners": [{"unit": UNIT, "container": "powersync"}],
            "sockets": ["powersync-storage-proxy.socket"],
            "timers": ["powersync-slot-watchdog.timer"],
            "imageDigest": PIN,
            "imageArchive": null,
            "configMounts": [
                format!("{CONFIG}:/config/service.yaml:ro"),
                format!("{SYNC_CONFIG}:/config/sync-config.yaml:ro"),
            ],
            "textfile": textfile,
            "watchdogInterval": 120,
            "maxRetainedBytes": 1073741824_u64,
            "metricsUrls": [metrics_url],
            "maxLagSeconds": 300,
            "slotPrefix": "powersync_selfhost_",
            "replicates": true,
            "storageRole": "powersync_storage",
            "pgport": pgport,
            "ourPorts": [8080, 5432, 9464],
            "allowedAddresses": ["127.0.0.1", "::1", "10.89.64.1"],
            "secretFiles": [source_env, storage_env],
            "privatePorts": [8080, 9464],
        });
        for (key, value) in &self.manifest {
            manifest[key] = value.clone();
        }
        let manifest = dir.file("manifest.json", &manifest.to_string());
        [
            ("PATH", path),
            ("MANIFEST", manifest.display().to_string()),
            ("PGHOST", pghost.display().to_string()),
            ("NOW", T0.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Runs verify.sh on this state, as a table and as JSON; both must agree on the exit code.
    pub fn run(&self) -> Run {
        require("jq", "jq");
        require("curl", "curl");
        // A host whose storage is another's (storageRole null) has no role to check: no server.
        let storage = !self
            .manifest
            .iter()
            .any(|(key, value)| key == "storageRole" && value.is_null());
        if !storage && self.sql.is_empty() {
            return self.run_with(None);
        }
        // One PostgreSQL per test (thread), stopped when the test's thread ends, and whether a run changed
        // the role since it was made.
        thread_local! {
            static PG: (Postgres, std::cell::Cell<bool>) = (Postgres::start(), std::cell::Cell::new(false));
        }
        PG.with(|(pg, changed)| {
            // The role as made, then this run's changes: one psql, or none when there is nothing to do.
            let mut sql = Vec::new();
            if changed.get() {
                sql.push("ALTER ROLE powersync_storage NOSUPERUSER NOREPLICATION");
            }
            sql.extend(self.sql.iter().map(String::as_str));
            if !sql.is_empty() {
                pg.sql(&sql.join(";\n"));
            }
            changed.set(!self.sql.is_empty());
            self.run_with(Some(pg))
        })
    }

    fn run_with(&self, pg: Option<&Postgres>) -> Run {
        let dir = TempDir::new("host");
        let server = self
            .metrics
            .as_ref()
            .map(|body| HttpServer::start(&[("/metrics", 200, body)]));
        let url = server.as_ref().map_or_else(
            || format!("http://127.0.0.1:{}/metrics", free_port()),
            |s| s.url("/metrics"),
        );
        let env = self.world(&dir, pg, &url);
        let run = |args: &[&str]| {
            Command::new("bash")
                .arg(verify_script())
                .args(args)
                .env_clear()
                .envs(env.iter().map(|(k, v)| (k, v)))
                .output()
                .unwrap()
        };
        let table = run(&[]);
        let json = run(&["--json"]);
        let (table_text, json_text) = (text(&table), text(&json));
        assert_no_secret(&table_text);
        assert_no_secret(&json_text);
        assert_eq!(
            table.status.code(),
            json.status.code(),
            "{table_text}\n{json_text}"
        );
        let calls = fs::read_to_string(dir.path("calls.log")).unwrap_or_default();
        assert!(!table_text.contains("UNEXPECTED"), "{table_text}\n{calls}");
        let value = serde_json::from_slice(&json.stdout)
            .unwrap_or_else(|e| panic!("--json is not JSON ({e}):\n{json_text}"));
        Run {
            code: table.status.code(),
            output: table_text,
            json: value,
            calls,
        }
    }
}

impl Run {
    /// The (status, detail) of the one check with this id and subject.
    pub fn check(&self, id: &str, subject: &str) -> (String, String) {
        let checks = self.json["checks"].as_array().unwrap();
        let found: Vec<_> = checks
            .iter()
            .filter(|c| c["id"] == id && c["subject"] == subject)
            .collect();
        assert_eq!(found.len(), 1, "{id} {subject} in:\n{}", self.output);
        (
            found[0]["status"].as_str().unwrap().to_owned(),
            found[0]["detail"].as_str().unwrap().to_owned(),
        )
    }

    /// Exactly these checks failed (id list), each pointing to its runbook section in both outputs.
    pub fn assert_failed(&self, ids: &[&str]) {
        let checks = self.json["checks"].as_array().unwrap();
        let mut failed: Vec<&str> = checks
            .iter()
            .filter(|c| c["status"] == "fail")
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        failed.dedup();
        assert_eq!(failed, ids, "{}", self.output);
        assert_eq!(
            self.code,
            Some(if ids.is_empty() { 0 } else { 1 }),
            "{}",
            self.output
        );
        assert_eq!(self.json["ok"], ids.is_empty());
        for id in ids {
            assert_contains(&self.output, &format!("fix: docs/runbook.md#check-{id}"));
        }
    }

    pub fn assert_status(&self, id: &str, subject: &str, status: &str, detail: &str) {
        let (actual, text) = self.check(id, subject);
        assert_eq!(actual, status, "{id}: {text}\n{}", self.output);
        assert_contains(&text, detail);
    }
}

#[test]
fn a_healthy_host_passes_every_check() {
    let run = Host::healthy().run();
    run.assert_failed(&[]);
    let checks = run.json["checks"].as_array().unwrap();
    assert!(
        checks.iter().all(|c| c["status"] == "pass"),
        "{}",
        run.output
    );
    let ids: Vec<&str> = checks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "unit-active",
            "unit-restarts",
            "storage-proxy",
            "watchdog-timer",
            "container-health",
            "image-pinned",
            "config-mounted",
            "watchdog-recent",
            "source-up",
            "slot-active",
            "slot-wal",
            "lag",
            "journal-errors",
            "journal-slot",
            "storage-role",
            "listeners"
        ]
    );
    run.assert_status("image-pinned", "powersync", "pass", PIN);
    run.assert_status("slot-active", "source", "pass", SLOT);
    run.assert_status(
        "slot-wal",
        "source",
        "pass",
        "3 MiB retained, limit 1024 MiB",
    );
    run.assert_status(
        "lag",
        run.json["checks"][11]["subject"].as_str().unwrap(),
        "pass",
        "0.4 s",
    );
    run.assert_status(
        "journal-slot",
        "journal",
        "pass",
        &format!("slot {SLOT} created"),
    );
    run.assert_status(
        "listeners",
        "ports",
        "pass",
        "8080 on 127.0.0.1, 9464 on 127.0.0.1, 5432 on 10.89.64.1",
    );
    // What `cargo xtask verify` needs for the outside checks; the public URL is not the host's to say.
    assert_eq!(run.json["private_ports"], serde_json::json!([8080, 9464]));
    assert!(run.json.get("public_url").is_none(), "{}", run.json);
    assert_contains(&run.output, "16 checks, 0 failed");
    assert!(!run.output.contains("fix:"), "{}", run.output);
    // The journal is read from the unit's last start on.
    assert_contains(
        &run.calls,
        &format!("journalctl -u {UNIT} --since @{} -o cat", T0 - 600),
    );
}

/// A runner that stopped (its journal is then not read) or that systemd restarted since its last start,
/// and an inactive proxy socket or watchdog timer.
#[test]
fn stopped_restarted_or_inactive_units_fail() {
    // A stopped runner fails, and its journal is not read.
    let mut host = Host::healthy();
    host.set_unit(UNIT, "failed", "failed", 0);
    let run = host.run();
    run.assert_failed(&["unit-active", "journal-errors", "journal-slot"]);
    run.assert_status(
        "unit-active",
        UNIT,
        "fail",
        "failed (failed): systemctl status",
    );

    // Automatic restarts since the last start fail.
    let mut host = Host::healthy();
    host.set_unit(UNIT, "active", "running", 3);
    let run = host.run();
    run.assert_failed(&["unit-restarts"]);
    run.assert_status("unit-restarts", UNIT, "fail", "restarted 3 time(s)");

    // An inactive proxy socket or watchdog timer fails.
    let mut host = Host::healthy();
    host.set_unit("powersync-storage-proxy.socket", "inactive", "dead", 0);
    host.units
        .retain(|(unit, _)| unit != "powersync-slot-watchdog.timer");
    let run = host.run();
    run.assert_failed(&["storage-proxy", "watchdog-timer"]);
}

#[test]
fn an_unhealthy_or_missing_container_fails_and_a_starting_one_warns() {
    let mut host = Host::healthy();
    host.container = Some(container_json(true, "unhealthy", IMAGE_ID, CONFIG, false));
    host.run().assert_failed(&["container-health"]);

    host.container = Some(container_json(true, "starting", IMAGE_ID, CONFIG, false));
    let run = host.run();
    run.assert_failed(&[]);
    run.assert_status(
        "container-health",
        "powersync",
        "warn",
        "run again in a minute",
    );

    host.container = Some(container_json(false, "unhealthy", IMAGE_ID, CONFIG, false));
    host.run().assert_failed(&["container-health"]);

    host.container = None;
    let run = host.run();
    run.assert_failed(&["container-health", "image-pinned", "config-mounted"]);
    run.assert_status(
        "image-pinned",
        "powersync",
        "fail",
        "podman has no container powersync",
    );
}

/// An image without the pinned digest fails, and so does a host with no pin to compare with; a loaded
/// archive is the pin when its image ID runs.
#[test]
fn the_image_carries_the_pinned_digest_or_is_the_loaded_archive() {
    let mut host = Host::healthy();
    host.image = image_json(&[INSTANCE_DIGEST]);
    let run = host.run();
    run.assert_failed(&["image-pinned"]);
    run.assert_status(
        "image-pinned",
        "powersync",
        "fail",
        &format!("is not the pinned {PIN}"),
    );

    let mut host = Host::healthy();
    host.set("imageDigest", Value::Null);
    host.run().assert_failed(&["image-pinned"]);

    // A loaded archive is the pin when its image ID runs, and only then.
    require("tar", "tar");
    let dir = TempDir::new("archive");
    dir.file(
        "content/manifest.json",
        &format!(r#"[{{"Config":"{IMAGE_ID}.json","RepoTags":["docker.io/journeyapps/powersync-service:1.26.1"],"Layers":[]}}]"#),
    );
    let archive = dir.path("image.tar");
    let status = Command::new("tar")
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.path("content"))
        .arg("manifest.json")
        .status()
        .unwrap();
    assert!(status.success());
    let mut host = Host::healthy();
    host.set("imageDigest", Value::Null);
    host.set("imageArchive", json!(archive));
    host.image = image_json(&[]);
    let run = host.run();
    run.assert_failed(&[]);
    run.assert_status("image-pinned", "powersync", "pass", "is the one in");

    host.container = Some(container_json(
        true,
        "healthy",
        &"ab".repeat(32),
        CONFIG,
        false,
    ));
    host.run().assert_failed(&["image-pinned"]);
}

#[test]
fn a_config_from_another_generation_or_a_writable_mount_fails() {
    let mut host = Host::healthy();
    let old = "/nix/store/9y1c0lqf8d4h1w3q3w2x6b4v7n0m1k2j-powersync-service.yaml";
    host.container = Some(container_json(true, "healthy", IMAGE_ID, old, false));
    let run = host.run();
    run.assert_failed(&["config-mounted"]);
    run.assert_status(
        "config-mounted",
        "powersync",
        "fail",
        &format!("/config/service.yaml is {old}, not this generation's {CONFIG}"),
    );

    host.container = Some(container_json(true, "healthy", IMAGE_ID, CONFIG, true));
    let run = host.run();
    run.assert_failed(&["config-mounted"]);
    run.assert_status(
        "config-mounted",
        "powersync",
        "fail",
        "/config/service.yaml is writable",
    );
}

/// No watchdog metrics fail every watchdog check; an unreachable source fails the source's checks.
#[test]
fn no_watchdog_metrics_or_an_unreachable_source_fail() {
    let mut host = Host::healthy();
    host.textfile = None;
    let run = host.run();
    run.assert_failed(&["watchdog-recent", "source-up", "slot-active", "slot-wal"]);
    run.assert_status(
        "watchdog-recent",
        "watchdog",
        "fail",
        "systemctl start powersync-slot-watchdog",
    );

    // An unreachable source.
    let mut host = Host::healthy();
    host.textfile = Some(textfile(T0 - 60, 0, &[]));
    host.run()
        .assert_failed(&["source-up", "slot-active", "slot-wal"]);
}

#[test]
fn a_stale_watchdog_run_fails() {
    let mut host = Host::healthy();
    host.textfile = Some(textfile(T0 - 361, 1, &[(SLOT, 1, 0)]));
    let run = host.run();
    run.assert_failed(&["watchdog-recent"]);
    run.assert_status("watchdog-recent", "watchdog", "fail", "last run 361 s ago");
    host.textfile = Some(textfile(T0 - 360, 1, &[(SLOT, 1, 0)]));
    host.run().assert_failed(&[]);
    // A run from the future is a clock problem, not a fresh run.
    host.textfile = Some(textfile(T0 + 3600, 1, &[(SLOT, 1, 0)]));
    let run = host.run();
    run.assert_failed(&["watchdog-recent"]);
    run.assert_status(
        "watchdog-recent",
        "watchdog",
        "fail",
        "3600 s in the future",
    );
}

#[test]
fn an_inactive_or_missing_slot_or_retained_wal_over_the_limit_fails() {
    let mut host = Host::healthy();
    host.textfile = Some(textfile(T0 - 60, 1, &[(SLOT, 0, 1024)]));
    let run = host.run();
    run.assert_failed(&["slot-active"]);
    run.assert_status(
        "slot-active",
        "source",
        "fail",
        &format!("inactive: {SLOT}"),
    );

    host.textfile = Some(textfile(T0 - 60, 1, &[]));
    let run = host.run();
    run.assert_failed(&["slot-active", "slot-wal"]);
    run.assert_status(
        "slot-active",
        "source",
        "fail",
        "no slot named powersync_selfhost_*",
    );

    // Retained WAL over the limit.
    let mut host = Host::healthy();
    host.textfile = Some(textfile(T0 - 60, 1, &[(SLOT, 1, 2 * 1024 * 1024 * 1024)]));
    let run = host.run();
    run.assert_failed(&["slot-wal"]);
    run.assert_status(
        "slot-wal",
        "source",
        "fail",
        &format!("above the limit of 1024 MiB: {SLOT} 2048 MiB"),
    );
}

#[test]
fn an_absent_or_high_lag_gauge_or_no_metrics_endpoint_fails() {
    let mut host = Host::healthy();
    host.metrics = Some(metrics(None));
    let run = host.run();
    run.assert_failed(&["lag"]);
    assert_contains(&run.output, "replication has not connected");

    host.metrics = Some(metrics(Some("300")));
    host.run().assert_failed(&["lag"]);
    host.metrics = Some(metrics(Some("299.5")));
    host.run().assert_failed(&[]);

    host.metrics = None;
    let run = host.run();
    run.assert_failed(&["lag"]);
    assert_contains(&run.output, "metrics endpoint unreachable");
}

/// The lag as the service's own exporter prints it (tests/oracle/serve-metrics.mjs: the PowerSync Service's
/// OpenTelemetry Prometheus exporter, at the versions it declares), read by verify.sh over real HTTP.
struct ServiceMetrics {
    child: std::process::Child,
    /// One endpoint per case, each its own exporter: http://127.0.0.1:PORT/metrics.
    urls: Vec<String>,
}

impl ServiceMetrics {
    /// One endpoint per `lags` item: the gauge's value as a JavaScript number; None: nothing observed
    /// (replication not connected). One Node.js process serves them all (its start costs more CPU than
    /// everything else a case does).
    fn start(lags: &[Option<&str>]) -> ServiceMetrics {
        require("node", "nodejs");
        let oracle = repo().join("tests/oracle");
        assert!(
            oracle
                .join("node_modules/@opentelemetry/exporter-prometheus/package.json")
                .is_file(),
            "the exporter is not installed: npm ci --prefix tests/oracle --no-audit --no-fund"
        );
        let ports: Vec<u16> = lags.iter().map(|_| free_port()).collect();
        let endpoints = ports.iter().zip(lags).map(|(port, lag)| match lag {
            Some(lag) => format!("{port}={lag}"),
            None => port.to_string(),
        });
        let mut child = Command::new("node")
            .arg(oracle.join("serve-metrics.mjs"))
            .args(endpoints)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut ready,
        )
        .unwrap();
        assert_eq!(ready, "listening\n", "serve-metrics.mjs did not start");
        ServiceMetrics {
            child,
            urls: ports
                .iter()
                .map(|port| format!("http://127.0.0.1:{port}/metrics"))
                .collect(),
        }
    }
}

impl Drop for ServiceMetrics {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 0 is the lag of a healthy idle host; the exporter prints small and huge values in exponent form
/// (1.5e-7, 2e+21); a gauge that observed nothing is missing from the text.
#[test]
fn the_lag_is_read_as_the_services_exporter_prints_it() {
    let cases = [
        (Some("0"), "pass", "0 s, alert at 300 s"),
        (Some("20"), "pass", "20 s, alert at 300 s"),
        (Some("0.000015"), "pass", "0.000015 s"),
        (Some("1.5e-7"), "pass", "1.5e-7 s"),
        (Some("299.5"), "pass", "299.5 s"),
        (Some("300"), "fail", "300 s, at or above"),
        (Some("2e21"), "fail", "2e+21 s, at or above"),
        (None, "fail", "replication has not connected"),
    ];
    let lags: Vec<Option<&str>> = cases.iter().map(|(lag, _, _)| *lag).collect();
    let service = ServiceMetrics::start(&lags);
    for ((_, status, detail), url) in cases.iter().zip(&service.urls) {
        let mut host = Host::healthy();
        host.set("metricsUrls", json!([url]));
        let run = host.run();
        run.assert_status("lag", url, status, detail);
        let expected: &[&str] = if *status == "fail" { &["lag"] } else { &[] };
        run.assert_failed(expected);
    }
}

/// Other writers of the text format: labels (with spaces and braces in their values), a timestamp after the
/// value, exponents with a sign and leading zeros, several series (the largest counts), and values that are
/// no finite number.
#[test]
fn the_lag_is_read_in_every_form_of_the_text_format() {
    let mut host = Host::healthy();
    for (samples, status, detail) in [
        ("powersync_replication_lag_seconds 0\n", "pass", "0 s"),
        (
            "powersync_replication_lag_seconds{instance=\"a b} c\",job=\"x\"} 0 1700000000000\n",
            "pass",
            "0 s",
        ),
        ("powersync_replication_lag_seconds 1.5e-05\n", "pass", "1.5e-05 s"),
        ("powersync_replication_lag_seconds 2e+01\n", "pass", "2e+01 s"),
        ("powersync_replication_lag_seconds 3E+02\n", "fail", "3E+02 s, at or above"),
        (
            "powersync_replication_lag_seconds{runner=\"a\"} 0\npowersync_replication_lag_seconds{runner=\"b\"} 12\n",
            "pass",
            "12 s",
        ),
        ("powersync_replication_lag_seconds +Inf\n", "fail", "is +Inf, not a finite number"),
        ("powersync_replication_lag_seconds NaN\n", "fail", "is NaN, not a finite number"),
        (
            "# HELP powersync_replication_lag_seconds x\n# TYPE powersync_replication_lag_seconds gauge\npowersync_replication_lag_seconds_total 0\n",
            "fail",
            "is absent",
        ),
    ] {
        host.metrics = Some(
            "# HELP powersync_concurrent_connections x\npowersync_concurrent_connections 3\n".to_owned()
                + samples,
        );
        let run = host.run();
        let lag = &run.json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "lag")
            .unwrap()["subject"];
        run.assert_status("lag", lag.as_str().unwrap(), status, detail);
    }
}

/// A secret that straddles the place where a detail is cut must not show in part: the text is scrubbed
/// first, then cut.
#[test]
fn a_password_across_the_cut_does_not_show_in_part() {
    let mut host = Host::healthy();
    // The first error line is cut at 160 characters: the password's first 6 characters come before the cut.
    let before = "[PSYNC_S1141] could not connect: postgresql://powersync_selfhost:";
    let padding = "x".repeat(153 - before.len());
    let journal_line = before.replace(": postgresql", &format!(" {padding}: postgresql"))
        + &format!("{PASSWORD}@db.x.supabase.co:5432/postgres");
    let cut = journal_line.find(PASSWORD).unwrap();
    assert!(
        cut == 154 && cut + PASSWORD.len() > 160,
        "the password must straddle the cut"
    );
    host.journal += &format!("{journal_line}\n");
    // The same for a password the env files did not name (it is scrubbed by pattern, not by value).
    let mut unnamed = Host::healthy();
    unnamed.set("secretFiles", json!(["/nonexistent/source.env"]));
    unnamed.journal = host.journal.clone();
    for host in [host, unnamed] {
        let run = host.run();
        run.assert_failed(&["journal-errors"]);
        let json = run.json.to_string();
        for part in [&PASSWORD[..4], &PASSWORD[..6]] {
            assert!(
                !run.output.contains(part),
                "part of the password leaked:\n{}",
                run.output
            );
            assert!(!json.contains(part), "part of the password leaked:\n{json}");
        }
        run.assert_status(
            "journal-errors",
            UNIT,
            "fail",
            "first: [PSYNC_S1141] could not connect xxx",
        );
    }
}

/// verify.sh keeps no defaults: each key of the manifest the module writes (modules/powersync/verify.nix's
/// `manifest`) is required, so a module that stops writing one is an error, not a silent guess.
#[test]
fn every_value_the_module_passes_is_required() {
    let module = fs::read_to_string(repo().join("modules/powersync/verify.nix")).unwrap();
    let block = module
        .split("  manifest = {\n")
        .nth(1)
        .expect("manifest = { in verify.nix");
    let block = &block[..block.find("\n  };").unwrap()];
    let names: Vec<&str> = block
        .lines()
        .filter_map(|line| line.strip_prefix("    ")?.split_once(" ="))
        .map(|(name, _)| name)
        .filter(|name| name.chars().all(|c| c.is_ascii_alphanumeric()))
        .collect();
    assert!(names.len() >= 18, "{names:?}");
    let host = Host::healthy();
    let dir = TempDir::new("required");
    // Each run stops at the manifest, before anything is checked: no server is needed.
    let env = host.world(&dir, None, "http://127.0.0.1:1/metrics");
    let manifest: serde_json::Map<String, Value> =
        serde_json::from_str(&fs::read_to_string(dir.path("manifest.json")).unwrap()).unwrap();
    let mut keys: Vec<&str> = manifest.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(
        keys, sorted,
        "the test world's manifest and the module's differ"
    );
    for name in &names {
        let mut without = manifest.clone();
        without.remove(*name);
        let file = dir.file(
            &format!("without-{name}.json"),
            &Value::Object(without).to_string(),
        );
        let output = Command::new("bash")
            .arg(verify_script())
            .env_clear()
            .envs(
                env.iter()
                    .filter(|(k, _)| k != "MANIFEST")
                    .map(|(k, v)| (k, v)),
            )
            .env("MANIFEST", &file)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "without {name}: {}",
            text(&output)
        );
        assert_contains(&text(&output), &format!("lacks {name}:"));
    }
}

/// A manifest that is missing or no JSON object is a configuration error, never a partial check.
#[test]
fn an_unreadable_manifest_is_a_configuration_error() {
    let dir = TempDir::new("manifest");
    for (label, content) in [
        ("not-json", Some("runners=powersync\n")),
        ("array", Some("[]")),
        ("absent", None),
    ] {
        let file = match content {
            Some(content) => dir.file(label, content),
            None => dir.path(label),
        };
        let output = Command::new("bash")
            .arg(verify_script())
            .env("MANIFEST", &file)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{label}: {}", text(&output));
        assert_contains(&text(&output), "cannot read the manifest");
    }
}

/// Service errors in the journal fail without showing the password, scrubbed even when the env files that
/// name it cannot be read.
#[test]
fn service_errors_in_the_journal_fail_without_showing_the_password() {
    let mut host = Host::healthy();
    host.journal += &format!(
        "[PSYNC_S1141] could not connect to postgresql://powersync_selfhost:{PASSWORD}@db.x.supabase.co:5432/postgres\n\
         [PSYNC_S1141] retrying, password={PASSWORD}\n"
    );
    let run = host.run();
    run.assert_failed(&["journal-errors"]);
    run.assert_status(
        "journal-errors",
        UNIT,
        "fail",
        "PSYNC_S1141 ×2 since start; first: [PSYNC_S1141] could not connect to <redacted>",
    );

    // The password is scrubbed even when the env files cannot be read.
    let mut host = Host::healthy();
    host.set("secretFiles", json!(["/nonexistent/source.env"]));
    host.journal += &format!("[PSYNC_S1141] postgresql://u:{PASSWORD}@h/db password={PASSWORD}\n");
    host.run().assert_failed(&["journal-errors"]);
}

#[test]
fn the_lock_alone_warns_and_a_journal_without_slot_creation_or_resumption_fails() {
    // The lock alone warns, and client authentication errors do not count.
    let mut host = Host::healthy();
    host.journal = format!(
        "[PSYNC_S1003] Sync rules: {SLOT} [powersync_1] locked by another process\n\
         [{SLOT}] Initial replication already done\n\
         [PSYNC_S2101] Could not find an appropriate key in the keystore\n"
    );
    let run = host.run();
    run.assert_failed(&[]);
    run.assert_status("journal-errors", UNIT, "warn", "PSYNC_S1003 ×1");
    run.assert_status("journal-slot", "journal", "pass", "slot resumed");

    // A journal without slot creation or resumption fails.
    let mut host = Host::healthy();
    host.journal = "Booting PowerSync Service v1.26.1\n[other_prefix_1_ab12] Created replication slot other_prefix_1_ab12\n".into();
    host.run().assert_failed(&["journal-slot"]);
}

/// An API-only host (runners.mode = "api", storage.remote): no slot to see in its journal and no local
/// storage role, so neither is checked; a journal without slot lines then passes.
#[test]
fn an_api_only_host_on_shared_storage_skips_the_slot_and_storage_role() {
    let mut host = Host::healthy();
    host.journal = "Booting PowerSync Service v1.26.1\n".into();
    host.set("replicates", json!(false));
    host.set("storageRole", Value::Null);
    let run = host.run();
    run.assert_failed(&[]);
    let ids: Vec<&str> = run.json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&"journal-slot"), "{ids:?}");
    assert!(!ids.contains(&"storage-role"), "{ids:?}");
}

#[test]
fn a_storage_role_with_superuser_or_replication_fails() {
    let mut host = Host::healthy();
    host.sql
        .push("ALTER ROLE powersync_storage SUPERUSER".into());
    let run = host.run();
    run.assert_failed(&["storage-role"]);
    run.assert_status(
        "storage-role",
        "powersync_storage",
        "fail",
        "superuser=t replication=f",
    );

    let mut host = Host::healthy();
    host.sql
        .push("ALTER ROLE powersync_storage REPLICATION".into());
    let run = host.run();
    run.assert_failed(&["storage-role"]);
    run.assert_status(
        "storage-role",
        "powersync_storage",
        "fail",
        "superuser=f replication=t",
    );

    let mut host = Host::healthy();
    host.set("storageRole", json!("no_such_role"));
    let run = host.run();
    run.assert_failed(&["storage-role"]);
    run.assert_status("storage-role", "no_such_role", "fail", "does not exist");
}

#[test]
fn our_ports_on_other_addresses_fail() {
    let mut host = Host::healthy();
    host.ss = SS.replace("127.0.0.1:8080", "0.0.0.0:8080") + "LISTEN 0 4096 [::]:9464 [::]:*\n";
    let run = host.run();
    run.assert_failed(&["listeners"]);
    run.assert_status("listeners", "ports", "fail", "8080 on 0.0.0.0 9464 on ::");
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [&["--yes"][..], &["--json", "--json"]] {
        let output = Command::new("bash")
            .arg(verify_script())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output));
    }
    let output = Command::new("bash")
        .arg(verify_script())
        .env_remove("MANIFEST")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert_contains(
        &text(&output),
        "run the powersync-verify the NixOS module installs",
    );
}

//! The daily compaction wrapper (modules/powersync/runners/compact.sh), run for real with podman injected:
//! it passes the module's arguments through, records the outcome in a metrics file Prometheus can read
//! (checked with promtool), keeps the last success across a failure, and fails when compaction fails.
//!
//! Needs (Debian): bash, prometheus (promtool), shellcheck. A missing one fails the test with its package.

mod common;
use common::{require, script::assert_shellcheck_clean, TempDir};

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../modules/powersync/runners/compact.sh")
}

struct Scratch(TempDir);

impl Scratch {
    fn new() -> Scratch {
        Scratch(TempDir::new("compact"))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path(name)
    }

    /// A podman stand-in that logs its arguments and exits with `status`, printing what compact prints.
    fn podman(&self, status: i32) -> PathBuf {
        let log = self.path("podman.log");
        self.0.program(
            "podman",
            &format!(
                "printf '%s\\n' \"$@\" > {}\necho 'Successfully compacted storage.'\nexit {status}",
                log.display()
            ),
        )
    }

    fn run(&self, status: i32, args: &[&str]) -> Output {
        Command::new("bash")
            .arg(script())
            .args(args)
            .env("TEXTFILE", self.path("powersync-compact.prom"))
            .env("PODMAN", self.podman(status))
            .output()
            .unwrap()
    }

    fn metrics(&self) -> String {
        fs::read_to_string(self.path("powersync-compact.prom")).unwrap()
    }
}

fn value(metrics: &str, name: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .map(|v| v.parse().unwrap())
}

fn promtool_accepts(file: &Path) {
    require("promtool", "prometheus");
    let output = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(fs::File::open(file).unwrap())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_successful_run_passes_the_arguments_and_records_the_time() {
    let scratch = Scratch::new();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let output = scratch.run(
        0,
        &["--rm", "--name=powersync-compact", "image:1", "compact"],
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        fs::read_to_string(scratch.path("podman.log")).unwrap(),
        "run\n--rm\n--name=powersync-compact\nimage:1\ncompact\n"
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("Successfully compacted storage."));
    let metrics = scratch.metrics();
    assert_eq!(value(&metrics, "powersync_compact_last_exit_code"), Some(0));
    let success = value(&metrics, "powersync_compact_last_success_timestamp_seconds").unwrap();
    assert!(success >= before, "{metrics}");
    promtool_accepts(&scratch.path("powersync-compact.prom"));
}

#[test]
fn a_failed_run_fails_and_keeps_the_last_success() {
    let scratch = Scratch::new();
    assert!(scratch.run(0, &["image:1", "compact"]).status.success());
    let success = value(
        &scratch.metrics(),
        "powersync_compact_last_success_timestamp_seconds",
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let output = scratch.run(1, &["image:1", "compact"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("compaction failed (exit 1)"));
    let metrics = scratch.metrics();
    assert_eq!(value(&metrics, "powersync_compact_last_exit_code"), Some(1));
    assert_eq!(
        value(&metrics, "powersync_compact_last_success_timestamp_seconds"),
        Some(success)
    );
    promtool_accepts(&scratch.path("powersync-compact.prom"));
}

#[test]
fn a_first_run_that_fails_records_no_success() {
    let scratch = Scratch::new();
    let output = scratch.run(3, &["image:1", "compact"]);
    assert_eq!(output.status.code(), Some(3));
    let metrics = scratch.metrics();
    assert_eq!(value(&metrics, "powersync_compact_last_exit_code"), Some(3));
    assert_eq!(
        value(&metrics, "powersync_compact_last_success_timestamp_seconds"),
        None
    );
    promtool_accepts(&scratch.path("powersync-compact.prom"));
    let leftovers: Vec<_> = fs::read_dir(scratch.path(""))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn without_a_metrics_file_it_refuses_to_run() {
    let scratch = Scratch::new();
    let output = Command::new("bash")
        .arg(script())
        .arg("compact")
        .env_remove("TEXTFILE")
        .env("PODMAN", scratch.podman(0))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("TEXTFILE"));
    assert!(!scratch.path("podman.log").exists());
}

#[test]
fn it_passes_shellcheck_as_the_module_embeds_it() {
    assert_shellcheck_clean(
        &script(),
        &[(
            "TEXTFILE",
            "/var/lib/prometheus-node-exporter-text/powersync-compact.prom",
        )],
    );
}

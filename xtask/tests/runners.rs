//! The API runners' rolling restart (modules/powersync/runners/rolling-restart.sh), run for real with
//! `systemctl` and `podman` injected: at boot it only records the generation; on a change it restarts the
//! runners one at a time, each healthy before the next; an unhealthy runner stops the roll.
//!
//! Needs (Debian): bash, shellcheck. A missing one fails the test with its package.

mod common;
use common::{script::assert_shellcheck_clean, text, TempDir};

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../modules/powersync/runners/rolling-restart.sh")
}

struct Host(TempDir);

impl Host {
    /// Stand-ins that log to `calls`: `systemctl restart` always works; `podman healthcheck run <name>`
    /// fails until it has been asked `HEALTHY_AFTER` times for that container, or forever for `never-healthy`.
    fn new() -> Host {
        let dir = TempDir::new("runners");
        let calls = dir.path("calls");
        dir.program(
            "bin/systemctl",
            &format!("echo \"systemctl $*\" >> {}", calls.display()),
        );
        dir.program(
            "bin/podman",
            &format!(
                "echo \"podman $*\" >> {calls}\n[ \"$3\" = never-healthy ] && exit 1\nasked=$(grep -c \"healthcheck run $3\\$\" {calls})\n[ \"$asked\" -ge \"${{HEALTHY_AFTER:-1}}\" ]",
                calls = calls.display()
            ),
        );
        Host(dir)
    }

    fn run(&self, generation: &str, containers: &str) -> Output {
        self.run_without(generation, containers, "")
    }

    /// A run with `missing` (one of the module's variables) left out.
    fn run_without(&self, generation: &str, containers: &str, missing: &str) -> Output {
        let path = format!(
            "{}:{}",
            self.0.path("bin").display(),
            std::env::var("PATH").unwrap()
        );
        Command::new("bash")
            .arg("-euo")
            .arg("pipefail")
            .arg(script())
            .env("PATH", path)
            .env("POWERSYNC_API_GENERATION", generation)
            .env("CONTAINERS", containers)
            .env("STATE_FILE", self.0.path("run/powersync/api-generation"))
            .env("HEALTHY_AFTER", "2")
            .env("HEALTH_TIMEOUT", "6")
            .env_remove(missing)
            .output()
            .unwrap()
    }

    fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.0.path("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn applied(&self) -> String {
        fs::read_to_string(self.0.path("run/powersync/api-generation")).unwrap()
    }
}

#[test]
fn at_boot_it_records_the_generation_and_restarts_nothing() {
    let host = Host::new();
    let output = host.run("gen-1", "powersync-api-1 powersync-api-2");
    assert!(output.status.success(), "{}", text(&output));
    assert!(host.calls().is_empty(), "{:?}", host.calls());
    assert_eq!(host.applied(), "gen-1\n");
}

#[test]
fn the_same_generation_restarts_nothing() {
    let host = Host::new();
    host.run("gen-1", "powersync-api-1 powersync-api-2");
    let output = host.run("gen-1", "powersync-api-1 powersync-api-2");
    assert!(output.status.success(), "{}", text(&output));
    assert!(host.calls().is_empty(), "{:?}", host.calls());
}

#[test]
fn a_new_generation_restarts_one_runner_at_a_time_each_healthy_before_the_next() {
    let host = Host::new();
    host.run("gen-1", "powersync-api-1 powersync-api-2");
    let output = host.run("gen-2", "powersync-api-1 powersync-api-2");
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        host.calls(),
        vec![
            "systemctl restart podman-powersync-api-1.service",
            "podman healthcheck run powersync-api-1",
            "podman healthcheck run powersync-api-1",
            "systemctl restart podman-powersync-api-2.service",
            "podman healthcheck run powersync-api-2",
            "podman healthcheck run powersync-api-2",
        ]
    );
    assert_eq!(host.applied(), "gen-2\n");
}

#[test]
fn an_unhealthy_runner_stops_the_roll_and_keeps_the_old_generation() {
    let host = Host::new();
    host.run("gen-1", "never-healthy powersync-api-2");
    let output = host.run("gen-2", "never-healthy powersync-api-2");
    assert!(!output.status.success());
    assert!(
        text(&output).contains("not healthy 6s after its restart"),
        "{}",
        text(&output)
    );
    assert!(
        !host.calls().iter().any(|c| c.contains("powersync-api-2")),
        "{:?}",
        host.calls()
    );
    assert_eq!(host.applied(), "gen-1\n");
}

#[test]
fn it_passes_shellcheck_as_the_module_embeds_it() {
    assert_shellcheck_clean(
        &script(),
        &[
            ("CONTAINERS", "powersync-api-1 powersync-api-2"),
            ("POWERSYNC_API_GENERATION", "0123abcd"),
            ("STATE_FILE", "/run/powersync/api-generation"),
            ("HEALTH_TIMEOUT", "180"),
        ],
    );
}

/// The module passes every value (runners.nix, runtimeEnv); the script keeps no default of its own, so a
/// missing one stops it before any runner is restarted.
#[test]
fn every_value_the_module_passes_is_required() {
    for var in [
        "POWERSYNC_API_GENERATION",
        "CONTAINERS",
        "STATE_FILE",
        "HEALTH_TIMEOUT",
    ] {
        let host = Host::new();
        host.run("gen-1", "powersync-api-1");
        let output = host.run_without("gen-2", "powersync-api-1", var);
        assert!(!output.status.success(), "{var}: {}", text(&output));
        assert!(text(&output).contains(var), "{var}: {}", text(&output));
        assert!(host.calls().is_empty(), "{var}: {:?}", host.calls());
    }
}

//! The teardown (modules/powersync/operations/teardown.sh), run for real with the container runtime and systemd
//! injected. No output may contain the password.
//!
//! Needs (Debian): bash, nix-bin (nix-instantiate), systemd (systemd-analyze), util-linux (unshare). A
//! missing one fails the test with the package to install.

mod common;
use common::{
    assert_contains, lib_eval,
    ops::{assert_no_secret, script, PASSWORD},
    require, text, TempDir,
};
use std::{
    fs,
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
};

struct Teardown {
    dir: TempDir,
    env_files: [PathBuf; 2],
    /// UNITS as the module sets it: one unified runner unless a test says otherwise.
    units: &'static str,
    /// DECOMMISSIONED_FILE: the mark the units check.
    mark: PathBuf,
}

/// What the teardown printed and the calls it made, one line per fake systemctl/podman call; each
/// call also says whether the mark existed when it was made.
struct Run {
    code: Option<i32>,
    output: String,
    calls: Vec<String>,
    marked_at_call: Vec<bool>,
}

const IMAGE: &str = "docker.io/journeyapps/powersync-service:1.26.1@sha256:abc";
const MOUNTS: &str = "/nix/store/x-service.yaml:/config/service.yaml:ro /nix/store/y-sync.yaml:/config/sync-config.yaml:ro";

impl Teardown {
    fn new() -> Teardown {
        let dir = TempDir::new("teardown");
        let env_files = [
            dir.file(
                "source.env",
                &format!(
                    "PS_SOURCE_DSN=postgresql://u:{PASSWORD}@db.x.supabase.co:5432/postgres\n"
                ),
            ),
            dir.file(
                "storage.env",
                "PS_STORAGE_URI=postgresql://ps@127.0.0.1/ps\n",
            ),
        ];
        let mark = dir.path("state/decommissioned");
        Teardown {
            dir,
            env_files,
            units: "podman-powersync.service",
            mark,
        }
    }

    fn run(&self, args: &[&str], stdin: &str, systemctl_exit: i32, podman_exit: i32) -> Run {
        let log = self.dir.path("calls.log");
        let marks = self.dir.path("marks.log");
        let fake = |name: &str, exit: i32| {
            self.dir.program(
                name,
                &format!(
                    "echo \"{name} $*\" >> {log}\n\
                         if [ -e {mark} ]; then echo y; else echo n; fi >> {marks}\n\
                         exit {exit}",
                    log = log.display(),
                    mark = self.mark.display(),
                    marks = marks.display(),
                ),
            )
        };
        let env_files = format!(
            "{} {}",
            self.env_files[0].display(),
            self.env_files[1].display()
        );
        let mut child = Command::new("bash")
            .arg(script("teardown.sh"))
            .env("UNITS", self.units)
            .env("DECOMMISSIONED_FILE", &self.mark)
            .env("CONTAINER_USER", "901:901")
            .args(args)
            .env("SYSTEMCTL", fake("systemctl", systemctl_exit))
            .env("PODMAN", fake("podman", podman_exit))
            .env("IMAGE", IMAGE)
            .env("NETWORK", "v6egress")
            .env("CONFIG_MOUNTS", MOUNTS)
            .env("ENV_FILES", env_files)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The script may exit before reading: a closed pipe is fine.
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        let output = child.wait_with_output().unwrap();
        let calls = fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        let marked_at_call = fs::read_to_string(&marks)
            .unwrap_or_default()
            .lines()
            .map(|line| line == "y")
            .collect();
        let output_text = text(&output);
        assert_no_secret(&output_text);
        Run {
            code: output.status.code(),
            output: output_text,
            calls,
            marked_at_call,
        }
    }
}

#[test]
fn without_confirmation_nothing_happens() {
    let teardown = Teardown::new();
    for answer in ["no\n", "", "teardown\n", "TEARDOWN NOW\n"] {
        let run = teardown.run(&[], answer, 0, 0);
        assert_eq!(run.code, Some(1), "{answer:?}: {}", run.output);
        assert_contains(&run.output, "Type TEARDOWN");
        assert_contains(&run.output, "Aborted: nothing was changed");
        assert!(run.calls.is_empty(), "{answer:?}: {:?}", run.calls);
        assert!(!teardown.mark.exists(), "{answer:?}: aborted, yet marked");
    }
}

#[test]
fn it_marks_the_host_before_it_stops_anything_and_keeps_the_mark() {
    let teardown = Teardown::new();
    let run = teardown.run(&["--yes"], "", 0, 0);
    assert_eq!(run.code, Some(0), "{}", run.output);
    // Marked before the stop, so nothing (the daily compaction, the watchdog) starts a runner in between.
    assert_eq!(run.marked_at_call, vec![true, true], "{:?}", run.calls);
    assert!(teardown.mark.exists());
    assert_contains(
        &run.output,
        &format!(
            "rm -f {} && systemctl start podman-powersync.service",
            teardown.mark.display()
        ),
    );
}

#[test]
fn a_failed_stop_or_teardown_keeps_the_mark_and_says_how_to_undo_it() {
    for (systemctl_exit, podman_exit) in [(1, 0), (0, 125)] {
        let teardown = Teardown::new();
        let run = teardown.run(&["--yes"], "", systemctl_exit, podman_exit);
        assert_eq!(run.code, Some(1), "{}", run.output);
        assert!(teardown.mark.exists(), "{}", run.output);
        assert_contains(
            &run.output,
            &format!(
                "rm -f {} && systemctl start podman-powersync.service",
                teardown.mark.display()
            ),
        );
    }
}

#[test]
fn a_mark_it_cannot_write_stops_it_before_anything_changes() {
    let mut teardown = Teardown::new();
    teardown.mark = PathBuf::from("/dev/null/decommissioned");
    let run = teardown.run(&["--yes"], "", 0, 0);
    assert_eq!(run.code, Some(1), "{}", run.output);
    assert_contains(&run.output, "nothing was changed");
    assert!(run.calls.is_empty(), "{:?}", run.calls);
}

#[test]
fn every_value_the_module_passes_is_required() {
    for var in ["UNITS", "DECOMMISSIONED_FILE", "CONTAINER_USER", "IMAGE"] {
        let teardown = Teardown::new();
        let output = Command::new("bash")
            .arg(script("teardown.sh"))
            .arg("--yes")
            .env("UNITS", teardown.units)
            .env("DECOMMISSIONED_FILE", &teardown.mark)
            .env("CONTAINER_USER", "901:901")
            .env("IMAGE", IMAGE)
            .env("NETWORK", "v6egress")
            .env("CONFIG_MOUNTS", MOUNTS)
            .env("ENV_FILES", teardown.env_files[0].as_os_str())
            .env("SYSTEMCTL", "false")
            .env("PODMAN", "false")
            .env_remove(var)
            .output()
            .unwrap();
        let all = text(&output);
        assert_eq!(output.status.code(), Some(2), "{var}: {all}");
        assert_contains(&all, &format!("{var} is not set"));
        assert!(!teardown.mark.exists(), "{var}");
    }
}

/// The mark the teardown writes, at the path lib/topology.nix names, makes the condition every guarded
/// unit carries fail, as systemd itself evaluates it: in a private mount namespace, so the host's own
/// /var/lib is never touched.
#[test]
fn after_a_teardown_systemd_skips_every_guarded_unit() {
    require("unshare", "util-linux");
    require("systemd-analyze", "systemd");
    let [mark, condition]: [String; 2] = serde_json::from_value(lib_eval(
        "[lib.decommissionedFile lib.haltedWhenDecommissioned.ConditionPathExists]",
    ))
    .unwrap();
    assert!(mark.starts_with("/var/lib/"), "{mark}");

    let teardown = Teardown::new();
    let inside = r#"set -u
mount -t tmpfs powersync-test /var/lib || exit 90
systemd-analyze condition "ConditionPathExists=$CONDITION" >/dev/null 2>&1; echo "before=$?"
bash "$TEARDOWN" --yes >/dev/null 2>&1; echo "teardown=$?"
systemd-analyze condition "ConditionPathExists=$CONDITION" >/dev/null 2>&1; echo "after=$?"
"#;
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "bash", "-c", inside])
        .env("CONDITION", &condition)
        .env("TEARDOWN", script("teardown.sh"))
        .env("UNITS", teardown.units)
        .env("DECOMMISSIONED_FILE", &mark)
        .env("CONTAINER_USER", "901:901")
        .env("IMAGE", IMAGE)
        .env("NETWORK", "v6egress")
        .env("CONFIG_MOUNTS", MOUNTS)
        .env("ENV_FILES", teardown.env_files[0].as_os_str())
        .env("SYSTEMCTL", "true")
        .env("PODMAN", "true")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "before=0\nteardown=0\nafter=1\n",
        "{}",
        text(&output)
    );
}

#[test]
fn on_a_split_host_it_stops_every_runner_before_the_teardown() {
    let mut teardown = Teardown::new();
    teardown.units =
        "podman-powersync-sync.service podman-powersync-api-1.service podman-powersync-api-2.service";
    let run = teardown.run(&["--yes"], "", 0, 0);
    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(
        run.calls[0],
        "systemctl stop podman-powersync-sync.service podman-powersync-api-1.service podman-powersync-api-2.service"
    );
    assert!(run.calls[1].starts_with("podman run "), "{:?}", run.calls);
}

#[test]
fn the_prompt_explains_what_will_happen() {
    let run = Teardown::new().run(&[], "no\n", 0, 0);
    for part in [
        "stop podman-powersync.service",
        "replication slot",
        "bucket data",
    ] {
        assert_contains(&run.output, part);
    }
}

#[test]
fn confirmed_it_stops_the_unit_first_then_runs_the_images_teardown() {
    let teardown = Teardown::new();
    let run = teardown.run(&[], "TEARDOWN\n", 0, 0);
    assert_eq!(run.code, Some(0), "{}", run.output);
    let expected_podman = format!(
        "podman run --rm --network=v6egress --user=901:901 -e POWERSYNC_CONFIG_PATH=/config/service.yaml \
             --env-file {} --env-file {} \
             -v /nix/store/x-service.yaml:/config/service.yaml:ro -v /nix/store/y-sync.yaml:/config/sync-config.yaml:ro \
             {IMAGE} teardown TEARDOWN",
        teardown.env_files[0].display(),
        teardown.env_files[1].display()
    );
    assert_eq!(
        run.calls,
        vec![
            "systemctl stop podman-powersync.service".to_owned(),
            expected_podman
        ]
    );
    assert_contains(&run.output, "services.powersync.enable = false");
}

#[test]
fn yes_skips_the_prompt() {
    let run = Teardown::new().run(&["--yes"], "", 0, 0);
    assert_eq!(run.code, Some(0), "{}", run.output);
    assert!(!run.output.contains("Type TEARDOWN"), "{}", run.output);
    assert_eq!(run.calls.len(), 2, "{:?}", run.calls);
    assert!(
        run.calls[1].ends_with(" teardown TEARDOWN"),
        "{:?}",
        run.calls
    );
}

#[test]
fn a_failed_teardown_names_the_lock_and_leaves_the_unit_stopped() {
    let run = Teardown::new().run(&["--yes"], "", 0, 125);
    assert_eq!(run.code, Some(1), "{}", run.output);
    assert_contains(&run.output, "PSYNC_S1003");
    assert_contains(&run.output, "wait a minute");
    assert_eq!(run.calls.len(), 2, "{:?}", run.calls);
    assert_eq!(run.calls[0], "systemctl stop podman-powersync.service");
}

#[test]
fn a_unit_that_does_not_stop_skips_the_teardown() {
    let run = Teardown::new().run(&["--yes"], "", 1, 0);
    assert_eq!(run.code, Some(1), "{}", run.output);
    assert_contains(&run.output, "could not stop");
    assert_eq!(run.calls, vec!["systemctl stop podman-powersync.service"]);
}

#[test]
fn an_unreadable_env_file_stops_before_anything_changes() {
    let teardown = Teardown::new();
    fs::remove_file(&teardown.env_files[1]).unwrap();
    let run = teardown.run(&["--yes"], "", 0, 0);
    assert_eq!(run.code, Some(1), "{}", run.output);
    assert_contains(&run.output, "Nothing was changed");
    assert!(run.calls.is_empty(), "{:?}", run.calls);
}

#[test]
fn an_unknown_argument_is_a_usage_error() {
    let run = Teardown::new().run(&["--force"], "TEARDOWN\n", 0, 0);
    assert_eq!(run.code, Some(2), "{}", run.output);
    assert!(run.calls.is_empty(), "{:?}", run.calls);
}

//! `cargo xtask test`: the one test command. Every step runs even after a failure, is timed, and the run ends
//! with the plain `N passed, M failed` line CI reads.

mod env;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use xshell::{cmd, Shell};

use crate::{
    alerts,
    flags::{self, Step},
    fmt, nix, schema, sync_rules, util, vm_scripts,
};

impl flags::Test {
    pub fn run(self, sh: &Shell) -> Result<()> {
        if let Some(step) = self.side_step {
            return run_step(sh, step);
        }
        let steps: Vec<Step> = match self.only {
            Some(step) => vec![step],
            None => Step::value_variants().to_vec(),
        };
        forget_cargo_run_vars();
        let mut scratch = env::Scratch::on_tmpfs();
        env::python_scripts_first(sh);
        env::postgres_programs_first();
        let (side, main): (Vec<Step>, Vec<Step>) = if steps.contains(&Step::CargoTest) {
            steps.iter().partition(|step| is_side_step(**step))
        } else {
            (Vec::new(), steps.clone())
        };
        let side =
            std::thread::spawn(move || side.into_iter().map(run_in_child).collect::<Vec<_>>());
        let mut results = Vec::new();
        for step in main {
            let name = step_name(step);
            println!("==> {name}");
            let started = Instant::now();
            let outcome = run_step(sh, step);
            results.push(report(step, outcome.err(), started.elapsed()));
        }
        for (step, output, error, took) in side.join().expect("the side steps' thread panicked") {
            println!("==> {} (ran beside cargo-test)", step_name(step));
            print!("{output}");
            results.push(report(step, error, took));
        }
        results.sort_by_key(|(step, ..)| steps.iter().position(|s| s == step));
        if !summarize(&results) {
            scratch.remove();
            // Exit here rather than return an error, so the `N passed, M failed` line stays the last line.
            std::process::exit(1);
        }
        Ok(())
    }
}

/// The steps that build nothing and read only the tree: they run beside cargo-test, which mostly waits on
/// clocks, servers and child processes, instead of before or after it. (Clippy builds: it goes first, so
/// that it and the tests' build do not wait on each other's lock.)
fn is_side_step(step: Step) -> bool {
    !matches!(step, Step::Clippy | Step::CargoTest)
}

/// Runs `step` in a process of its own (`xtask test --side-step`) with its output held, so that it does not
/// interleave with cargo-test's: (step, output, error, time taken).
fn run_in_child(step: Step) -> (Step, String, Option<anyhow::Error>, Duration) {
    let started = Instant::now();
    let outcome = (|| -> Result<String> {
        let log = std::env::temp_dir().join(format!(
            "xtask-{}-{}.log",
            step_name(step),
            std::process::id()
        ));
        let file =
            std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        // One file behind stdout and stderr: their lines stay in the order they were written.
        let status =
            std::process::Command::new(std::env::current_exe().context("find the xtask binary")?)
                .args(["test", "--side-step", &step_name(step)])
                .stdout(file.try_clone().context("duplicate the log's handle")?)
                .stderr(file)
                .status()
                .context("start the step's process")?;
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        if status.success() {
            Ok(output)
        } else {
            Err(anyhow::anyhow!("{output}the step failed ({status})"))
        }
    })();
    match outcome {
        Ok(output) => (step, output, None, started.elapsed()),
        Err(error) => (step, String::new(), Some(error), started.elapsed()),
    }
}

/// Prints a step's verdict line: (step, passed, time taken).
fn report(step: Step, error: Option<anyhow::Error>, took: Duration) -> (Step, bool, Duration) {
    let name = step_name(step);
    match &error {
        None => println!("    ok {name} ({})", seconds(took)),
        Some(error) => println!("    FAILED {name} ({}):\n{error:#}", seconds(took)),
    }
    (step, error.is_none(), took)
}

/// `cargo run` hands this process the xtask package's own variables (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`).
/// Dependencies' build scripts (ring's) are fingerprinted on them, so a nested cargo that inherits them rebuilds
/// ring, rustls, ureq and every xtask target, and the next `cargo xtask` rebuilds them back: no run is warm.
fn forget_cargo_run_vars() {
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("CARGO_PKG_") || name.starts_with("CARGO_MANIFEST_") {
            // Still single-threaded: no other thread reads the environment.
            std::env::remove_var(&key);
        }
    }
}

fn step_name(step: Step) -> String {
    step.to_possible_value()
        .expect("no step is hidden")
        .get_name()
        .to_string()
}

fn run_step(sh: &Shell, step: Step) -> Result<()> {
    let root = util::project_root();
    match step {
        Step::Rustfmt => cmd!(sh, "cargo fmt --all -- --check")
            .run()
            .context("rustfmt would change the code above; run `cargo xtask fmt`"),
        Step::Clippy => cmd!(
            sh,
            "cargo clippy --workspace --all-targets --quiet -- -D warnings"
        )
        .run()
        .context("clippy reported the problems above"),
        Step::CargoTest => cargo_test(sh),
        Step::NixParse => nix::parse_all(sh, &root),
        Step::NixFmt => fmt::check(&root, &util::nix_files(sh, &root)?),
        Step::Deadnix => nix::deadnix(sh, &root),
        Step::NixUnit => nix::unit_tests(sh, &root.join("tests/run-unit.nix"), &root),
        Step::FlakeLib => nix::flake_lib(sh, &root).and_then(|()| nix::flake_modules(sh, &root)),
        Step::Schema => schema::check_configs(sh, &root),
        Step::VmScripts => vm_scripts::check(sh, &root),
        Step::SyncRules => sync_rules::check(sh, &root),
        Step::Alerts => alerts::check(sh, &root),
    }
}

/// nextest, not cargo test: it runs the tests of every binary side by side, each in its own process, where
/// cargo test runs one binary after the other; and its JUnit report has each test's time.
fn cargo_test(sh: &Shell) -> Result<()> {
    if cmd!(sh, "cargo nextest --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_err()
    {
        bail!("cargo-nextest is missing: cargo install --locked cargo-nextest");
    }
    // .config/nextest.toml names the report.
    let report = util::target_dir().join("nextest/default/junit.xml");
    let _ = std::fs::remove_file(&report);
    // Four tests per core: many wait on a real clock, a server or a child process rather than compute (on two
    // cores, 8 threads finished in 56 s where 4 took 79 s, at the same CPU time).
    let threads = std::thread::available_parallelism().map_or(2, |cores| 4 * cores.get());
    let threads = threads.to_string();
    let outcome = cmd!(
        sh,
        "cargo nextest run --workspace --no-fail-fast --test-threads {threads}"
    )
    .run()
    .context("cargo nextest failed, see above");
    match std::fs::read_to_string(&report) {
        Ok(junit) => {
            println!("    slowest tests:");
            for (name, took) in slowest(&junit, 10) {
                println!("    {took:>7.1}s  {name}");
            }
        }
        Err(error) => println!("    no test times: {} ({error})", report.display()),
    }
    outcome
}

/// The `count` slowest `<testcase>`s of nextest's JUnit report: (binary and test name, seconds).
fn slowest(junit: &str, count: usize) -> Vec<(String, f64)> {
    let attribute = |element: &str, name: &str| -> Option<String> {
        let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
        let end = start + element[start..].find('"')?;
        Some(element[start..end].to_owned())
    };
    let mut tests: Vec<(String, f64)> = junit
        .split("<testcase")
        .skip(1)
        .filter_map(|case| {
            let element = &case[..case.find('>')?];
            let took = attribute(element, "time")?.parse().ok()?;
            let binary = attribute(element, "classname")?;
            let name = attribute(element, "name")?;
            Some((format!("{binary} {name}"), took))
        })
        .collect();
    tests.sort_by(|a, b| b.1.total_cmp(&a.1));
    tests.truncate(count);
    tests
}

/// Prints the table and the closing line; true when every step passed.
fn summarize(results: &[(Step, bool, Duration)]) -> bool {
    println!("\nsummary:");
    for (step, ok, took) in results {
        let name = step_name(*step);
        let verdict = if *ok { "ok" } else { "FAILED" };
        println!("  {verdict:<7}{name:<12}{:>8}", seconds(*took));
    }
    let failed = results.iter().filter(|result| !result.1).count();
    println!("{} passed, {} failed", results.len() - failed, failed);
    failed == 0
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::slowest;

    /// The shape of cargo-nextest 0.9's report, a failed test (with its child elements) included.
    const JUNIT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="3" skipped="0" failures="1" errors="0" timestamp="2026-12-04T16:22:26.985+00:00" time="12.5">
    <testsuite name="xtask::verify" tests="2" skipped="0" errors="0" failures="1">
        <testcase name="host::a_healthy_host_passes_every_check" classname="xtask::verify" timestamp="2026-12-04T16:22:26.985+00:00" time="2.640">
            <failure message="test failure" type="test failure">thread panicked at time="99"</failure>
        </testcase>
        <testcase name="every_check_has_its_runbook_anchor" classname="xtask::verify" timestamp="2026-12-04T16:22:26.985+00:00" time="0.051"/>
    </testsuite>
    <testsuite name="xtask::healing_time" tests="1" skipped="0" errors="0" failures="0">
        <testcase name="a_frozen_consumer_is_restarted_within_the_scaled_window" classname="xtask::healing_time" timestamp="2026-12-04T16:22:27.036+00:00" time="34.55"/>
    </testsuite>
</testsuites>"#;

    #[test]
    fn the_slowest_tests_come_first_with_their_binary() {
        assert_eq!(
            slowest(JUNIT, 2),
            [
                (
                    "xtask::healing_time a_frozen_consumer_is_restarted_within_the_scaled_window"
                        .to_owned(),
                    34.55
                ),
                (
                    "xtask::verify host::a_healthy_host_passes_every_check".to_owned(),
                    2.64
                ),
            ]
        );
        assert_eq!(slowest(JUNIT, 10).len(), 3);
    }
}

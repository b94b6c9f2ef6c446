//! `cargo xtask test`: the one test command. Every step runs even after a failure, is timed, and the run ends
//! with the plain `N passed, M failed` line CI reads.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::ValueEnum;
use xshell::{cmd, Shell};

use crate::{
    alerts,
    flags::{self, Step},
    fmt, nix, schema, sync_rules, util, vm_scripts,
};

impl flags::Test {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let steps: Vec<Step> = match self.only {
            Some(step) => vec![step],
            None => Step::value_variants().to_vec(),
        };
        forget_cargo_run_vars();
        let mut results = Vec::new();
        for step in steps {
            let name = step_name(step);
            println!("==> {name}");
            let started = Instant::now();
            let outcome = run_step(sh, step);
            let took = started.elapsed();
            match &outcome {
                Ok(()) => println!("    ok {name} ({})", seconds(took)),
                Err(error) => println!("    FAILED {name} ({}):\n{error:#}", seconds(took)),
            }
            results.push((name, outcome.is_ok(), took));
        }
        if !summarize(&results) {
            // Exit here rather than return an error, so the `N passed, M failed` line stays the last line.
            std::process::exit(1);
        }
        Ok(())
    }
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
        Step::CargoTest => cmd!(sh, "cargo test --workspace --quiet --no-fail-fast")
            .run()
            .context("cargo test failed, see above"),
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

/// Prints the table and the closing line; true when every step passed.
fn summarize(results: &[(String, bool, Duration)]) -> bool {
    println!("\nsummary:");
    for (name, ok, took) in results {
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

//! `cargo xtask vm-test`: build the flake's NixOS VM tests (`checks.<this system>.<name>`) with their logs,
//! and say which passed, which failed, and how long each took.

use std::{path::Path, time::Instant};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{flags, flake};

/// Checks that are not VM tests. Keep in sync with `checks` in flake.nix.
const NOT_VM_TESTS: [&str; 2] = ["unit-tests", "render-web-arm"];

impl flags::VmTest {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let flake_dir = self.flake.clone().unwrap_or_else(|| sh.current_dir());
        let system = flake::current_system(sh)?;
        let available = vm_tests(sh, &flake_dir, &system)?;
        if self.list {
            if available.is_empty() {
                println!("no VM tests in checks.{system}");
            }
            let wall_times = wall_times(sh, &flake_dir)?;
            for name in &available {
                match wall_times.get(name).and_then(|t| t.as_str()) {
                    Some(wall_time) => println!("{name:<24} wall time: {wall_time}"),
                    None => println!("{name}"),
                }
            }
            return Ok(());
        }
        let chosen = if self.names.is_empty() {
            available.clone()
        } else {
            self.names.clone()
        };
        if let Some(unknown) = chosen.iter().find(|name| !available.contains(name)) {
            bail!(
                "no VM test `{unknown}` in checks.{system}; there are: {}",
                available.join(", ")
            );
        }
        if chosen.is_empty() {
            bail!("no VM tests in checks.{system}");
        }
        if self.interactive {
            let [name] = chosen.as_slice() else {
                bail!(
                    "--interactive drives one test at a time; name it (one of: {})",
                    available.join(", ")
                );
            };
            return interactive(sh, &flake_dir, &system, name);
        }
        let mut results = Vec::new();
        for name in &chosen {
            let started = Instant::now();
            let outcome = build(sh, &flake_dir, &system, name);
            if let Err(error) = &outcome {
                eprintln!("{error:#}");
            }
            results.push((name.as_str(), outcome.is_ok(), started.elapsed()));
        }
        println!("\nVM tests on {system}:");
        for (name, ok, took) in &results {
            let verdict = if *ok { "passed" } else { "FAILED" };
            println!("  {verdict:<7} {name:<24} {:>7.1}s", took.as_secs_f64());
        }
        let failed: Vec<&str> = results.iter().filter(|r| !r.1).map(|r| r.0).collect();
        if !failed.is_empty() {
            bail!("{} VM test(s) failed: {}", failed.len(), failed.join(", "));
        }
        Ok(())
    }
}

fn vm_tests(sh: &Shell, flake_dir: &Path, system: &str) -> Result<Vec<String>> {
    // `or {}`: a flake without checks for this system has no VM tests, which --list should say plainly.
    let apply = format!("checks: builtins.attrNames (checks.\"{system}\" or {{}})");
    let names: Vec<String> =
        serde_json::from_value(flake::eval_json(sh, flake_dir, "checks", &apply)?)
            .context("check names are not strings")?;
    Ok(names
        .into_iter()
        .filter(|name| !NOT_VM_TESTS.contains(&name.as_str()))
        .collect())
}

/// Each test's recorded wall time from `tests/vm/scripts.nix` (builtins only, so offline), if the flake has one.
fn wall_times(sh: &Shell, flake_dir: &Path) -> Result<serde_json::Map<String, serde_json::Value>> {
    let file = flake_dir.join("tests/vm/scripts.nix");
    if !file.exists() {
        return Ok(serde_json::Map::new());
    }
    let expression = "{file}: builtins.mapAttrs (_: test: test.wallTime) (import file)";
    let json = cmd!(
        sh,
        "nix-instantiate --eval --strict --json --argstr file {file} -E {expression}"
    )
    .quiet()
    .read()
    .context("read the wall times in tests/vm/scripts.nix")?;
    serde_json::from_str(&json).context("the wall times are not a JSON object")
}

fn build(sh: &Shell, flake_dir: &Path, system: &str, name: &str) -> Result<()> {
    let installable = format!("{}#checks.{system}.{name}", flake_dir.display());
    let features = flake::FEATURES;
    let command = cmd!(
        sh,
        "nix {features...} build --print-build-logs --no-link {installable}"
    );
    flake::run_streaming(command, &format!("VM test {name}"))
}

/// Builds the test's interactive driver and hands the terminal to it (`start_all()`, `machine.shell_interact()`).
fn interactive(sh: &Shell, flake_dir: &Path, system: &str, name: &str) -> Result<()> {
    let installable = format!(
        "{}#checks.{system}.{name}.driverInteractive",
        flake_dir.display()
    );
    let link = crate::util::project_root().join(format!("target/vm-test/{name}-driver"));
    std::fs::create_dir_all(link.parent().context("driver link has a parent")?)
        .context("create target/vm-test")?;
    let features = flake::FEATURES;
    let command = cmd!(
        sh,
        "nix {features...} build --print-build-logs --out-link {link} {installable}"
    );
    flake::run_streaming(command, &format!("the interactive driver of {name}"))?;
    let driver = link.join("bin/nixos-test-driver");
    cmd!(sh, "{driver}")
        .run()
        .with_context(|| format!("run {}", driver.display()))
}

#[cfg(test)]
mod fixture_tests {
    //! The plumbing with real Nix on a fixture flake whose checks are plain derivations.

    use super::*;
    use xtask_testkit::Scratch;

    fn vm_test(scratch: &Scratch, names: &[&str], list: bool, interactive: bool) -> Result<()> {
        flags::VmTest {
            names: names.iter().map(|n| n.to_string()).collect(),
            list,
            interactive,
            flake: Some(scratch.root.clone()),
        }
        .run(&Shell::new().unwrap())
    }

    #[test]
    fn list_shows_vm_tests_but_not_the_unit_test_check() {
        let flake = Scratch::fixture("flakes/hosts");
        let sh = Shell::new().unwrap();
        let system = flake::current_system(&sh).unwrap();
        assert_eq!(
            vm_tests(&sh, &flake.root, &system).unwrap(),
            vec!["failing", "passing"]
        );
        vm_test(&flake, &[], true, false).unwrap();
    }

    #[test]
    fn list_reads_the_recorded_wall_times_of_this_repository() {
        let sh = Shell::new().unwrap();
        let times = wall_times(&sh, &crate::util::project_root()).unwrap();
        assert!(times.contains_key("powersync-e2e"), "{times:?}");
        assert!(times.values().all(|t| t.is_string()), "{times:?}");
    }

    #[test]
    fn a_passing_test_passes() {
        let flake = Scratch::fixture("flakes/hosts");
        vm_test(&flake, &["passing"], false, false).unwrap();
    }

    #[test]
    fn a_failing_test_fails_the_run_and_is_named() {
        let flake = Scratch::fixture("flakes/hosts");
        let err = format!("{:#}", vm_test(&flake, &[], false, false).unwrap_err());
        assert!(err.contains("1 VM test(s) failed: failing"), "{err}");
    }

    #[test]
    fn an_unknown_test_lists_the_tests() {
        let flake = Scratch::fixture("flakes/hosts");
        let err = format!(
            "{:#}",
            vm_test(&flake, &["powersync-e3e"], false, false).unwrap_err()
        );
        assert!(err.contains("no VM test `powersync-e3e`"), "{err}");
        assert!(err.contains("failing, passing"), "{err}");
    }

    #[test]
    fn interactive_builds_and_starts_the_driver_of_one_test() {
        let flake = Scratch::fixture("flakes/hosts");
        vm_test(&flake, &["passing"], false, true).unwrap();
        let err = format!("{:#}", vm_test(&flake, &[], false, true).unwrap_err());
        assert!(err.contains("one test at a time"), "{err}");
    }

    #[test]
    fn offline_it_says_the_inputs_could_not_be_fetched() {
        let flake = Scratch::fixture("flakes/offline");
        let err = format!("{:#}", vm_test(&flake, &[], true, false).unwrap_err());
        assert!(err.contains("inputs could not be fetched"), "{err}");
    }
}

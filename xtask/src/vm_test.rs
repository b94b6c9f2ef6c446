//! `cargo xtask vm-test`: build the flake's NixOS VM tests (`checks.<this system>.<name>`) with their logs,
//! and say which passed, which failed, and how long each took.

use std::{path::Path, time::Instant};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{flags, flake};

impl flags::VmTest {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let flake_dir = self.flake.clone().unwrap_or_else(|| sh.current_dir());
        let system = flake::current_system(sh)?;
        let hashes = image_hashes(sh, &flake_dir, &system)?;
        let declared = declared_vm_tests(sh, &flake_dir)?;
        let available = vm_tests(sh, &flake_dir, &system, &declared)?;
        if self.list {
            if available.is_empty() {
                println!("no VM tests in checks.{system}");
            }
            if let Some(hashes) = &hashes {
                println!("{}", hashes.summary());
            }
            for name in &available {
                match declared.get(name).and_then(|t| t.as_str()) {
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
        if let Some(hint) = hashes.as_ref().and_then(ImageHashes::needed_here) {
            bail!("{hint}");
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

/// Which archive hashes of the pinned image `tests/vm/image.nix` has, for the systems the VM tests run on.
struct ImageHashes {
    system: String,
    digest: String,
    /// (system, the hint that computes its hash) for each system without one.
    missing: Vec<(String, String)>,
}

impl ImageHashes {
    /// The error for a VM test run on this system without this system's hash: the only one it evaluates.
    fn needed_here(&self) -> Option<String> {
        let (_, hint) = self.missing.iter().find(|(s, _)| *s == self.system)?;
        Some(format!(
            "`cargo xtask vm-test` builds checks.{} only, so it needs exactly one image hash, which is missing:\n{hint}",
            self.system
        ))
    }

    /// One line per system for `--list`: known, or missing and which command needs it.
    fn summary(&self) -> String {
        let mut lines = vec![format!(
            "image archive hashes in tests/vm/image.nix for {}:",
            self.digest
        )];
        for system in SYSTEMS {
            let missing = self.missing.iter().any(|(s, _)| s == system);
            let state = match (missing, system == self.system) {
                (false, _) => "present".to_string(),
                (true, true) => "MISSING: every VM test here needs it (`cargo xtask vm-test` says how to compute it)".to_string(),
                (true, false) => "missing: not needed by `cargo xtask vm-test` here; `nix flake check` before Nix 2.17 needs it on every machine".to_string(),
            };
            lines.push(format!("  {system:<14} {state}"));
        }
        lines.join("\n")
    }
}

/// The systems the VM tests run on (lib/image.nix's `architectures`).
const SYSTEMS: [&str; 2] = ["x86_64-linux", "aarch64-linux"];

/// Reads the pin and the hashes with builtins only (so offline); None for a flake without VM test images.
fn image_hashes(sh: &Shell, flake_dir: &Path, system: &str) -> Result<Option<ImageHashes>> {
    let files = [
        "lib/image.nix",
        "modules/powersync/image.nix",
        "tests/vm/image.nix",
    ];
    if !files.iter().all(|file| flake_dir.join(file).is_file()) {
        return Ok(None);
    }
    let dir = flake_dir.display().to_string();
    let systems = serde_json::to_string(&SYSTEMS)?;
    let expression = r#"{dir, systems}: let
      image = import (/. + dir + "/lib/image.nix");
      pin = /. + dir + "/modules/powersync/image.nix";
      digest = (image.imagePin pin).digest;
      known = (import (/. + dir + "/tests/vm/image.nix")).${digest} or {};
      missing = builtins.filter (system: !(known ? ${system})) (builtins.fromJSON systems);
    in {
      inherit digest;
      missing = map (system: {inherit system; hint = image.imageHashHint {inherit pin system;};}) missing;
    }"#;
    let json = cmd!(
        sh,
        "nix-instantiate --eval --strict --json --argstr dir {dir} --argstr systems {systems} -E {expression}"
    )
    .quiet()
    .read()
    .context("read the image pin and tests/vm/image.nix")?;
    let value: serde_json::Value = serde_json::from_str(&json).context("read the image hashes")?;
    let missing = value["missing"]
        .as_array()
        .context("`missing` is not a list")?
        .iter()
        .map(|entry| {
            Ok((
                entry["system"].as_str().context("system")?.to_string(),
                entry["hint"].as_str().context("hint")?.to_string(),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(ImageHashes {
        system: system.to_string(),
        digest: value["digest"].as_str().context("digest")?.to_string(),
        missing,
    }))
}

/// The checks of this system that are VM tests: those `tests/vm/scripts.nix` declares (the flake builds its
/// VM tests from that file, so no second list of names exists to drift).
fn vm_tests(
    sh: &Shell,
    flake_dir: &Path,
    system: &str,
    declared: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<String>> {
    // `or {}`: a flake without checks for this system has no VM tests, which --list should say plainly.
    let apply = format!("checks: builtins.attrNames (checks.\"{system}\" or {{}})");
    let names: Vec<String> =
        serde_json::from_value(flake::eval_json(sh, flake_dir, "checks", &apply)?)
            .context("check names are not strings")?;
    Ok(names
        .into_iter()
        .filter(|name| declared.contains_key(name))
        .collect())
}

/// The VM tests `tests/vm/scripts.nix` declares, each with its recorded wall time (builtins only, so
/// offline); none for a flake without that file.
fn declared_vm_tests(
    sh: &Shell,
    flake_dir: &Path,
) -> Result<serde_json::Map<String, serde_json::Value>> {
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
    .context("read the VM tests in tests/vm/scripts.nix")?;
    serde_json::from_str(&json).context("tests/vm/scripts.nix does not give an object")
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
        let declared = declared_vm_tests(&sh, &flake.root).unwrap();
        assert_eq!(
            vm_tests(&sh, &flake.root, &system, &declared).unwrap(),
            vec!["failing", "passing"]
        );
        vm_test(&flake, &[], true, false).unwrap();
    }

    #[test]
    fn list_reads_the_recorded_wall_times_of_this_repository() {
        let sh = Shell::new().unwrap();
        let times = declared_vm_tests(&sh, &crate::util::project_root()).unwrap();
        assert!(times.contains_key("powersync-e2e"), "{times:?}");
        assert!(times.values().all(|t| t.is_string()), "{times:?}");
    }

    /// This repository's pin, with `hashes` as tests/vm/image.nix.
    fn pinned(hashes: &str) -> Scratch {
        let root = crate::util::project_root();
        let scratch = Scratch::new("vm-test-hashes");
        for file in [
            "lib/image.nix",
            "lib/image-pin.json",
            "modules/powersync/image.nix",
        ] {
            scratch.write(file, &std::fs::read_to_string(root.join(file)).unwrap());
        }
        scratch.write("tests/vm/image.nix", hashes);
        scratch
    }

    #[test]
    fn without_hashes_vm_test_needs_exactly_this_systems() {
        let sh = Shell::new().unwrap();
        let scratch = pinned("{}\n");
        let hashes = image_hashes(&sh, &scratch.root, "aarch64-linux")
            .unwrap()
            .unwrap();
        let needed = hashes.needed_here().unwrap();
        assert!(needed.contains("needs exactly one image hash"), "{needed}");
        assert!(needed.contains("on aarch64-linux"), "{needed}");
        assert!(needed.contains("--arch arm64"), "{needed}");
        assert!(!needed.contains("--arch amd64"), "{needed}");
        let summary = hashes.summary();
        assert!(
            summary.contains("aarch64-linux  MISSING: every VM test here"),
            "{summary}"
        );
        assert!(summary.contains("x86_64-linux   missing: not needed by `cargo xtask vm-test` here; `nix flake check` before Nix 2.17"), "{summary}");
    }

    #[test]
    fn with_this_systems_hash_only_flake_check_before_2_17_lacks_one() {
        let sh = Shell::new().unwrap();
        let digest = image_hashes(&sh, &pinned("{}\n").root, "x86_64-linux")
            .unwrap()
            .unwrap()
            .digest;
        let hash = format!("sha256-{}=", "A".repeat(43));
        let scratch = pinned(&format!(
            "{{\n  \"{digest}\".x86_64-linux = \"{hash}\";\n}}\n"
        ));
        let hashes = image_hashes(&sh, &scratch.root, "x86_64-linux")
            .unwrap()
            .unwrap();
        assert_eq!(hashes.needed_here(), None);
        let summary = hashes.summary();
        assert!(summary.contains("x86_64-linux   present"), "{summary}");
        assert!(
            summary.contains("aarch64-linux  missing: not needed"),
            "{summary}"
        );
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

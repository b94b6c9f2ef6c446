//! The Nix checks of `cargo xtask test`: parse, deadnix, unit tests, flake `lib`. Each takes the repository
//! root so the tests below can point it at a scratch repository.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;
use xshell::{cmd, Shell};

use crate::{tools, util};

/// Every `.nix` file git knows goes through Nix's own parser; all failures are reported, not just the first.
pub fn parse_all(sh: &Shell, root: &Path) -> Result<()> {
    tools::NIX_INSTANTIATE.require()?;
    let files = util::nix_files(sh, root)?;
    let _dir = sh.push_dir(root);
    // One process parses them all; it stops at the first error, so only a failure is retried file by file, to
    // name every broken one.
    let every = &files;
    let all_parse = cmd!(sh, "nix-instantiate --parse {every...}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok();
    if !all_parse {
        let mut broken = Vec::new();
        for file in &files {
            let output = cmd!(sh, "nix-instantiate --parse {file}")
                .ignore_status()
                .quiet()
                .output()
                .with_context(|| format!("run nix-instantiate --parse {}", file.display()))?;
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr);
                broken.push(format!("{}:\n{}", file.display(), stderr.trim_end()));
            }
        }
        bail!(
            "{} of {} .nix files do not parse:\n{}",
            broken.len(),
            files.len(),
            broken.join("\n")
        );
    }
    println!("    {} .nix files parse", files.len());
    Ok(())
}

/// `deadnix --fail` over every `.nix` file: unused bindings and lambda arguments are errors.
pub fn deadnix(sh: &Shell, root: &Path) -> Result<()> {
    tools::DEADNIX.require()?;
    let files = util::nix_files(sh, root)?;
    let _dir = sh.push_dir(root);
    let count = files.len();
    cmd!(sh, "deadnix --fail {files...}").run().context(
        "deadnix found unused code (it names each binding above); remove it or prefix it with `_`",
    )?;
    println!("    {count} .nix files are free of dead code");
    Ok(())
}

/// Evaluates each unit-test file with `tests/run-unit.nix` and reports every failing case with expected and
/// actual values. `runner` is the repository's runner; `root` is where the test files are.
pub fn unit_tests(sh: &Shell, runner: &Path, root: &Path) -> Result<()> {
    tools::NIX_INSTANTIATE.require()?;
    let files = crate::util::nix_files_in(&root.join("tests/unit"))?;
    if files.is_empty() {
        bail!("no unit-test files under {}/tests/unit", root.display());
    }
    let mut total = 0;
    let mut problems = Vec::new();
    for file in &files {
        let shown = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        match run_unit_file(sh, runner, file) {
            Ok(report) => {
                total += report.cases;
                for failure in report.failures {
                    problems.push(format!("{shown}: {failure}"));
                }
                println!("    {shown}: {} cases", report.cases);
            }
            Err(error) => problems.push(format!("{shown}: {error:#}")),
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} problem(s) in {} unit-test cases:\n{}",
            problems.len(),
            total,
            problems.join("\n")
        );
    }
    println!("    {total} cases passed in {} files", files.len());
    Ok(())
}

struct UnitReport {
    cases: usize,
    failures: Vec<String>,
}

fn run_unit_file(sh: &Shell, runner: &Path, file: &Path) -> Result<UnitReport> {
    let output = cmd!(
        sh,
        "nix-instantiate --eval --strict --json {runner} --arg file {file}"
    )
    .ignore_status()
    .quiet()
    .output()
    .context("run nix-instantiate --eval")?;
    if !output.status.success() {
        bail!(
            "evaluation failed:\n{}",
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    let report: Value =
        serde_json::from_slice(&output.stdout).context("read the runner's JSON report")?;
    let cases = report["cases"]
        .as_u64()
        .context("the report has no `cases` count")? as usize;
    let failures = report["failures"]
        .as_array()
        .context("the report has no `failures` list")?
        .iter()
        .map(describe_failure)
        .collect();
    Ok(UnitReport { cases, failures })
}

fn describe_failure(failure: &Value) -> String {
    let name = failure["name"].as_str().unwrap_or("?");
    match failure["kind"].as_str() {
        Some("threw") => format!("{name} threw (see the trace above, if any)"),
        Some("did-not-throw") => format!(
            "{name} was expected to throw, but evaluated to {}",
            failure["actual"]
        ),
        _ => format!(
            "{name}\n      expected: {}\n      actual:   {}",
            failure["expected"], failure["actual"]
        ),
    }
}

/// The flake's `lib` must evaluate with the committed lock and no network: it proves both that flake.lock is
/// a lock Nix accepts and that `lib` does not touch nixpkgs.
pub fn flake_lib(sh: &Shell, root: &Path) -> Result<()> {
    tools::NIX.require()?;
    let _dir = sh.push_dir(root);
    let features = crate::flake::FEATURES;
    let names = cmd!(
        sh,
        "nix {features...} eval --offline --no-update-lock-file --json .#lib --apply builtins.attrNames"
    )
    .read()
    .context("evaluate the flake's `lib` offline (does flake.lock match flake.nix, and is `lib` free of nixpkgs?)")?;
    println!("    lib = {names}");
    Ok(())
}

/// `nix flake check`, as the Nix on this machine runs it, on the flake's `nixosModules`: its checker refuses a
/// module that is not a function or an attribute set (Nix before 2.14 refuses bare paths). The rest of the
/// flake needs nixpkgs, so a wrapper flake evaluates the real `flake.nix` (a copy of the tracked files) with
/// inputs that throw if touched, and re-exports only `nixosModules`.
pub fn flake_modules(sh: &Shell, root: &Path) -> Result<()> {
    tools::NIX.require()?;
    let copy = util::fresh_temp_dir("flake-modules")?;
    let real = copy.join("real");
    for file in cmd!(sh, "git -C {root} ls-files")
        .read()
        .context("list the tracked files")?
        .lines()
    {
        let target = real.join(file);
        std::fs::create_dir_all(target.parent().context("a tracked file has no parent")?)
            .with_context(|| format!("create the directory of {}", target.display()))?;
        std::fs::copy(root.join(file), &target).with_context(|| format!("copy {file}"))?;
    }
    std::fs::write(copy.join("flake.nix"), MODULES_WRAPPER).context("write the wrapper flake")?;
    let features = crate::flake::FEATURES;
    let installable = format!("path:{}", copy.display());
    let output = cmd!(sh, "nix {features...} flake check --offline {installable}")
        .ignore_status()
        .quiet()
        .output()
        .context("run nix flake check")?;
    let _ = std::fs::remove_dir_all(&copy);
    if !output.status.success() {
        bail!(
            "`nix flake check` refuses the flake's nixosModules:\n{}",
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    let version = cmd!(sh, "nix --version").read().unwrap_or_default();
    println!("    nix flake check accepts nixosModules ({version})");
    Ok(())
}

const MODULES_WRAPPER: &str = r#"{
  outputs = _: let
    flake = import ./real/flake.nix;
    inputs = builtins.mapAttrs (name: _: throw "nixosModules must not need the input ${name}") (flake.inputs or {});
    real = flake.outputs (inputs // {self = real;});
  in {inherit (real) nixosModules;};
}
"#;

/// What `expression`, a function of `{file}`, evaluates to for `file` (relative to `root`), read as JSON:
/// for the steps that read tests/vm/scripts.nix. An evaluation error is reported with Nix's own message.
pub fn eval_file_json(
    sh: &Shell,
    root: &Path,
    file: &str,
    expression: &str,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let path = root.join(file);
    let output = cmd!(
        sh,
        "nix-instantiate --eval --strict --json --argstr file {path} -E {expression}"
    )
    .ignore_status()
    .quiet()
    .output()
    .with_context(|| format!("run nix-instantiate on {file}"))?;
    if !output.status.success() {
        anyhow::bail!(
            "{file} does not evaluate:\n{}",
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    serde_json::from_slice(&output.stdout).with_context(|| format!("read what {file} evaluates to"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use xtask_testkit::Scratch;

    use crate::util::project_root;

    fn runner() -> PathBuf {
        project_root().join("tests/run-unit.nix")
    }

    #[test]
    fn a_syntax_error_fails_the_parse_check_and_names_the_file() {
        let scratch = Scratch::new("parse");
        scratch
            .write("good.nix", "{ a = 1; }\n")
            .write("hosts/bad.nix", "{ a = ; }\n");
        let sh = Shell::new().unwrap();
        let err = format!("{:#}", parse_all(&sh, &scratch.root).unwrap_err());
        assert!(err.contains("hosts/bad.nix"), "{err}");
        assert!(!err.contains("good.nix"), "{err}");
    }

    #[test]
    fn clean_files_pass_the_parse_check() {
        let scratch = Scratch::new("parse-ok");
        scratch.write("good.nix", "{ a = 1; }\n");
        parse_all(&Shell::new().unwrap(), &scratch.root).unwrap();
    }

    #[test]
    fn an_unused_binding_fails_deadnix() {
        let scratch = Scratch::new("deadnix");
        scratch.write("dead.nix", "let unused = 1; in 2\n");
        let sh = Shell::new().unwrap();
        assert!(deadnix(&sh, &scratch.root).is_err());
        scratch.write("dead.nix", "let used = 1; in used\n");
        deadnix(&sh, &scratch.root).unwrap();
    }

    #[test]
    fn a_wrong_unit_case_fails_with_expected_and_actual() {
        let scratch = Scratch::new("unit");
        scratch.write(
            "tests/unit/sums.nix",
            "_: {\n  testRight = { expr = 1 + 1; expected = 2; };\n  testWrong = { expr = 2 + 2; expected = 5; };\n}\n",
        );
        let sh = Shell::new().unwrap();
        let err = format!(
            "{:#}",
            unit_tests(&sh, &runner(), &scratch.root).unwrap_err()
        );
        assert!(err.contains("testWrong"), "{err}");
        assert!(err.contains("expected: 5"), "{err}");
        assert!(err.contains("actual:   4"), "{err}");
        assert!(!err.contains("testRight"), "{err}");
    }

    #[test]
    fn throwing_cases_are_reported_per_case_and_expected_throws_pass() {
        let scratch = Scratch::new("unit-throw");
        scratch.write(
            "tests/unit/throws.nix",
            "_: {\n  testExpected = { expr = throw \"no\"; expectThrow = true; };\n  testSurprise = { expr = throw \"boom\"; expected = 1; };\n  testQuiet = { expr = 1; expectThrow = true; };\n}\n",
        );
        let sh = Shell::new().unwrap();
        let err = format!(
            "{:#}",
            unit_tests(&sh, &runner(), &scratch.root).unwrap_err()
        );
        assert!(err.contains("testSurprise threw"), "{err}");
        assert!(err.contains("testQuiet was expected to throw"), "{err}");
        assert!(!err.contains("testExpected"), "{err}");
    }

    #[test]
    fn a_file_without_tests_is_an_error_not_a_pass() {
        let scratch = Scratch::new("unit-empty");
        scratch.write("tests/unit/empty.nix", "_: { notATest = 1; }\n");
        let sh = Shell::new().unwrap();
        let err = format!(
            "{:#}",
            unit_tests(&sh, &runner(), &scratch.root).unwrap_err()
        );
        assert!(err.contains("empty.nix"), "{err}");
    }

    fn flake_with_modules(modules: &str) -> Scratch {
        let scratch = Scratch::new("flake-modules");
        scratch
            .write(
                "flake.nix",
                &format!("{{\n  inputs.nixpkgs.url = \"github:NixOS/nixpkgs/nixos-26.05\";\n  outputs = {{self, nixpkgs}}: {{\n    nixosModules = {modules};\n  }};\n}}\n"),
            )
            .write("modules/a/default.nix", "{ lib, ... }: { }\n");
        let sh = Shell::new().unwrap();
        let _dir = sh.push_dir(&scratch.root);
        cmd!(sh, "git add -A").run().unwrap();
        scratch
    }

    #[test]
    fn flake_check_on_path_valued_modules_follows_the_nix_version() {
        // Nix before 2.14 (Debian 12's 2.8, in CI) refuses bare paths; NixOS/nix#7559 made later ones accept them.
        let sh = Shell::new().unwrap();
        let version = cmd!(sh, "nix --version").read().unwrap();
        let number = version.rsplit(' ').next().unwrap();
        let mut parts = number.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap(), parts.next().unwrap());
        let outcome = flake_modules(&sh, &flake_with_modules("{ a = ./modules/a; }").root);
        if (major, minor) < (2, 14) {
            let err = format!("{:#}", outcome.unwrap_err());
            assert!(
                err.contains("module must be a function or an attribute set"),
                "{err}"
            );
        } else {
            outcome.unwrap();
        }
    }

    #[test]
    fn flake_check_accepts_modules_that_import_their_file() {
        let sh = Shell::new().unwrap();
        let scratch = flake_with_modules(
            "{ a = { imports = [ ./modules/a ]; }; default = self.nixosModules.a; }",
        );
        flake_modules(&sh, &scratch.root).unwrap();
    }
}

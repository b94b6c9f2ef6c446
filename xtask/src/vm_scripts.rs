//! The `vm-scripts` step: each VM test's `testScript` checked offline the way the NixOS test driver's build
//! checks it before any VM boots.
//!
//! The scripts are built by real Nix from `tests/vm/scripts.nix`, the same function the VM tests call, with
//! placeholder store paths, so what is checked is the very string the driver receives: preamble, script and
//! Nix's own string handling. Then, as `nixos/lib/testing/driver.nix` does:
//! - type check: our typed stand-ins for the driver's symbols (`tests/vm/driver/prepend.py`), one line
//!   declaring each machine, then the script, through `ty` and `mypy`;
//! - lint: that same file through `ruff check --select F` (nixpkgs#509615's form), and the script alone,
//!   with the machines and the driver's symbols as builtins, through `pyflakes` (the form before it).
//!
//! nixpkgs#509615 (merged April 2026) moved the driver from mypy + pyflakes to ty + ruff. Which pair the
//! pinned nixos-26.05 runs could not be read here, so all four run; their versions are pinned in
//! `tests/vm/driver/requirements.txt`. Two project rules ride along: no `| grep -q` (SIGPIPE under the
//! driver's `pipefail`), and no `boot.initrd.*Commands` in the Nix the tests or hosts use (systemd stage 1,
//! the 26.05 default, asserts them empty).

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use xshell::{cmd, Shell};

use crate::{nix, tools, util};

/// The names `Driver.test_symbols()` puts in a script's scope besides the machines and vlans (nixpkgs
/// nixos/lib/test-driver/src/test_driver/driver.py); the linters treat them as builtins, as the driver's
/// build does with PYFLAKES_BUILTINS.
const DRIVER_SYMBOLS: [&str; 19] = [
    "start_all",
    "test_script",
    "machines_qemu",
    "machines_nspawn",
    "vlans",
    "driver",
    "log",
    "os",
    "create_machine",
    "subtest",
    "run_tests",
    "join_all",
    "retry",
    "serial_stdout_off",
    "serial_stdout_on",
    "polling_condition",
    "BaseMachine",
    "t",
    "debug",
];

/// The stage-1 hooks the systemd initrd module asserts empty (nixpkgs
/// nixos/modules/system/boot/systemd/initrd.nix).
const SCRIPTED_INITRD_HOOKS: [&str; 8] = [
    "preFailCommands",
    "preDeviceCommands",
    "preLVMCommands",
    "postDeviceCommands",
    "postResumeCommands",
    "postMountCommands",
    "extraUtilsCommands",
    "extraUdevRulesCommands",
];

/// The Python the driver of nixos-26.05 runs on.
const PYTHON_VERSION: &str = "3.13";

struct VmScript {
    name: String,
    machines: Vec<String>,
    script: String,
}

pub fn check(sh: &Shell, root: &Path) -> Result<()> {
    for tool in [
        &tools::NIX_INSTANTIATE,
        &tools::TY,
        &tools::RUFF,
        &tools::MYPY,
        &tools::PYFLAKES,
    ] {
        tool.require()?;
    }
    let mut problems = scripted_initrd_hooks(sh, root)?;
    let scripts = assemble(sh, root)?;
    let prepend = fs::read_to_string(root.join("tests/vm/driver/prepend.py"))
        .context("read tests/vm/driver/prepend.py")?;
    let work = util::fresh_temp_dir("vm-scripts")?;
    let mypy_cache = mypy_cache(sh, &work, &prepend)?;
    for script in &scripts {
        problems.extend(check_script(sh, &work, &mypy_cache, &prepend, script)?);
    }
    // What is kept for a look is the scripts, not mypy's cache.
    fs::remove_dir_all(&mypy_cache).with_context(|| format!("remove {}", mypy_cache.display()))?;
    if !problems.is_empty() {
        bail!(
            "{} problem(s) in the VM tests' scripts as the driver would get them (kept in {}):\n{}",
            problems.len(),
            work.display(),
            problems.join("\n")
        );
    }
    fs::remove_dir_all(&work).with_context(|| format!("remove {}", work.display()))?;
    let names: Vec<&str> = scripts.iter().map(|s| s.name.as_str()).collect();
    println!(
        "    {} assembled scripts pass ty, mypy, ruff and pyflakes: {}",
        scripts.len(),
        names.join(", ")
    );
    Ok(())
}

/// Evaluates every entry of `tests/vm/scripts.nix` with a placeholder of store-path shape for each global.
fn assemble(sh: &Shell, root: &Path) -> Result<Vec<VmScript>> {
    let expression = r#"{file}: let
      placeholder = name: "/nix/store/00000000000000000000000000000000-${name}";
      build = spec: {
        inherit (spec) machines;
        script = spec.script (builtins.listToAttrs (map (name: {inherit name; value = placeholder name;}) spec.globals));
      };
    in builtins.mapAttrs (_: build) (import file)"#;
    let tests = nix::eval_file_json(sh, root, "tests/vm/scripts.nix", expression)?;
    if tests.is_empty() {
        bail!("tests/vm/scripts.nix names no VM test");
    }
    tests
        .into_iter()
        .map(|(name, test)| {
            let machines = test["machines"]
                .as_array()
                .context("`machines` is not a list")?
                .iter()
                .map(|m| {
                    m.as_str()
                        .map(str::to_string)
                        .context("a machine is not a string")
                })
                .collect::<Result<Vec<_>>>()?;
            let script = test["script"]
                .as_str()
                .context("`script` is not a string")?
                .to_string();
            Ok(VmScript {
                name,
                machines,
                script,
            })
        })
        .collect()
}

/// mypy's options, the same for the run that fills its cache and for each script.
fn mypy_options() -> [&'static str; 5] {
    [
        "--python-version",
        PYTHON_VERSION,
        "--no-implicit-optional",
        "--no-color-output",
        "--no-error-summary",
    ]
}

/// A cache of what the typed stand-ins import (typeshed's builtins, typing, ...) for this check's mypy runs:
/// analysing typeshed is most of a cold mypy run (~1.7 s a script). It is filled once per mypy, options and
/// prepend.py, kept under the target directory, and each check gets its own copy in `work`, so no two mypy
/// processes ever write one cache. mypy's incremental mode re-checks every cached module whose source,
/// options or mypy version differ, and always checks the script itself (its text is new each time), so a warm
/// cache changes how fast mypy is, not what it reports.
fn mypy_cache(sh: &Shell, work: &Path, prepend: &str) -> Result<PathBuf> {
    let options = mypy_options();
    let mypy = tools::MYPY.path()?;
    let mypy = mypy.canonicalize().unwrap_or(mypy);
    let stamp = fs::metadata(&mypy)
        .and_then(|m| m.modified())
        .with_context(|| format!("read {}", mypy.display()))?;
    let mut key = Sha256::new();
    for part in [
        mypy.display().to_string(),
        format!("{stamp:?}"),
        options.join(" "),
        prepend.to_string(),
    ] {
        key.update(part.len().to_le_bytes());
        key.update(part);
    }
    let kept = util::target_dir()
        .join("vm-scripts")
        .join(format!("mypy-cache-{:.16x}", key.finalize()));
    if !kept.is_dir() {
        let warm = work.join("mypy_warm.py");
        fs::write(&warm, prepend).with_context(|| format!("write {}", warm.display()))?;
        // Beside its place (a rename does not cross file systems), named after this check's own directory.
        let filling = kept.with_extension(work.file_name().context("a work directory")?);
        let _ = fs::remove_dir_all(&filling);
        // Its verdict does not matter here: each script's own run reports on the stand-ins too.
        let output = cmd!(sh, "mypy {options...} --cache-dir={filling} {warm}")
            .ignore_status()
            .quiet()
            .output()
            .context("run mypy to fill its cache")?;
        if fs::rename(&filling, &kept).is_err() {
            // Another check filled it first; either is whole.
            let _ = fs::remove_dir_all(&filling);
        }
        if !kept.is_dir() {
            bail!(
                "mypy left no cache in {}: {}{}",
                filling.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    let copy = work.join("mypy-cache");
    copy_dir(&kept, &copy)?;
    Ok(copy)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("create {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)
                .with_context(|| format!("copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

fn check_script(
    sh: &Shell,
    work: &Path,
    mypy_cache: &Path,
    prepend: &str,
    test: &VmScript,
) -> Result<Vec<String>> {
    let names = machine_names(&test.machines);
    let typed = work.join(format!("{}.typed.py", test.name));
    let declarations: String = names
        .iter()
        .map(|name| format!("{name} = Machine()\n"))
        .collect();
    fs::write(&typed, format!("{prepend}\n{declarations}{}", test.script))
        .with_context(|| format!("write {}", typed.display()))?;
    let script = work.join(format!("{}.py", test.name));
    fs::write(&script, &test.script).with_context(|| format!("write {}", script.display()))?;

    let mut builtins: Vec<String> = names.clone();
    builtins.extend(DRIVER_SYMBOLS.iter().map(|s| s.to_string()));
    // vlan1 is every node's network unless a test says otherwise.
    builtins.push("vlan1".to_string());
    let pyflakes_builtins = builtins.join(",");
    let target = format!("py{}", PYTHON_VERSION.replace('.', ""));
    let mypy_options = mypy_options();

    let _dir = sh.push_dir(work);
    let runs = [
        (
            "ty",
            cmd!(
                sh,
                "ty check --python-version {PYTHON_VERSION} --output-format concise --color never {typed}"
            ),
        ),
        (
            "mypy",
            cmd!(
                sh,
                "mypy {mypy_options...} --cache-dir={mypy_cache} {typed}"
            ),
        ),
        (
            "ruff",
            cmd!(
                sh,
                "ruff check --isolated --select F --target-version {target} --output-format concise --no-cache {typed}"
            ),
        ),
        (
            "pyflakes",
            cmd!(sh, "pyflakes {script}").env("PYFLAKES_BUILTINS", &pyflakes_builtins),
        ),
    ];
    let mut problems = Vec::new();
    for (checker, command) in runs {
        let output = command
            .ignore_status()
            .quiet()
            .output()
            .with_context(|| format!("run {checker}"))?;
        if !output.status.success() {
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            problems.push(format!(
                "  {}: {checker} refuses it:\n{}",
                test.name,
                indent(said.trim_end())
            ));
        }
    }
    problems.extend(piped_grep_quiet(&test.name, &test.script));
    Ok(problems)
}

/// The Python names the driver gives the machines: its `pythonizeName`, plus `machine` for a lone node.
fn machine_names(machines: &[String]) -> Vec<String> {
    let mut names: Vec<String> = machines.iter().map(|m| pythonize(m)).collect();
    if machines.len() == 1 && !machines.iter().any(|m| m == "machine") {
        names.push("machine".to_string());
    }
    names
}

fn pythonize(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            let allowed = c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit());
            if allowed {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `cmd | grep -q …` fails at random under the driver's `set -o pipefail`: grep exits at the first match and
/// the writer may die of SIGPIPE. Comment lines are skipped.
fn piped_grep_quiet(name: &str, script: &str) -> Vec<String> {
    script
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with('#'))
        .filter(|(_, line)| {
            line.split('|').skip(1).any(|after| {
                let mut words = after.split_whitespace();
                words.next() == Some("grep")
                    && words
                        .take_while(|w| w.starts_with('-'))
                        .any(|w| !w.starts_with("--") && w.contains('q'))
            })
        })
        .map(|(index, line)| {
            format!(
                "  {name}: line {} pipes into `grep -q`, which can fail the writer with SIGPIPE under the driver's pipefail; let grep read everything (`grep … >/dev/null`):\n      {}",
                index + 1,
                line.trim()
            )
        })
        .collect()
}

/// Scripted stage-1 hooks in the Nix the VM tests and hosts evaluate; comment lines are skipped.
fn scripted_initrd_hooks(sh: &Shell, root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for file in util::nix_files(sh, root)? {
        let text = fs::read_to_string(root.join(&file))
            .with_context(|| format!("read {}", file.display()))?;
        for (index, line) in text.lines().enumerate() {
            if line.trim_start().starts_with('#') {
                continue;
            }
            if let Some(hook) = SCRIPTED_INITRD_HOOKS.iter().find(|h| line.contains(*h)) {
                problems.push(format!(
                    "  {}:{}: boot.initrd.{hook} is refused by systemd stage 1 (the nixos-26.05 default); use an activation script or a unit instead",
                    file.display(),
                    index + 1
                ));
            }
        }
    }
    Ok(problems)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("      {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use xtask_testkit::Scratch;

    use crate::util::project_root;

    /// A scratch repository with the real typed stand-ins and a one-test `scripts.nix` written like ours.
    fn repository(script: &str) -> Scratch {
        let scratch = Scratch::new("vm-scripts");
        let prepend =
            fs::read_to_string(project_root().join("tests/vm/driver/prepend.py")).unwrap();
        scratch
            .write("tests/vm/driver/prepend.py", &prepend)
            .write(
                "tests/vm/scripts.nix",
                r#"{
  probe = {
    machines = ["server" "client"];
    globals = ["domain"];
    script = {domain}: "domain = ${builtins.toJSON domain}\n" + builtins.readFile ./probe.py;
  };
}
"#,
            )
            .write("tests/vm/probe.py", script);
        scratch
    }

    fn refused(scratch: &Scratch) -> String {
        let sh = Shell::new().unwrap();
        format!("{:#}", check(&sh, &scratch.root).unwrap_err())
    }

    const GOOD: &str = r#"start_all()
with subtest("the unit runs"):
    server.wait_for_unit("podman-powersync.service", timeout=60)
    status, output = client.execute(f"curl -fsS https://{domain}/probes/liveness")
    t.assertEqual(status, 0, output)
"#;

    #[test]
    fn a_script_the_driver_accepts_passes() {
        let sh = Shell::new().unwrap();
        check(&sh, &repository(GOOD).root).unwrap();
    }

    #[test]
    fn a_preamble_indented_unlike_the_script_fails() {
        // The defect once shipped: after Nix strips the common indentation of a `''` string, a preamble line
        // indented deeper than the rest makes the whole script start indented.
        let scratch = repository(GOOD);
        scratch.write(
            "tests/vm/scripts.nix",
            "{\n  probe = {\n    machines = [\"server\" \"client\"];\n    globals = [\"domain\"];\n    script = {domain}:\n      ''\n          domain = \"${domain}\"\n        other = 1\n      ''\n      + builtins.readFile ./probe.py;\n  };\n}\n",
        );
        let err = refused(&scratch);
        assert!(err.contains("ty refuses it"), "{err}");
        assert!(err.contains("mypy refuses it"), "{err}");
        assert!(err.contains("ruff refuses it"), "{err}");
        assert!(err.contains("pyflakes refuses it"), "{err}");
        assert!(err.to_lowercase().contains("indent"), "{err}");
    }

    #[test]
    fn an_unknown_machine_method_fails_the_type_checkers() {
        let err = refused(&repository(&format!(
            "{GOOD}server.wait_for_units(\"x\")\n"
        )));
        assert!(err.contains("ty refuses it"), "{err}");
        assert!(err.contains("mypy refuses it"), "{err}");
        assert!(err.contains("wait_for_units"), "{err}");
    }

    #[test]
    fn a_wrong_argument_type_fails_the_type_checkers() {
        let err = refused(&repository(&format!(
            "{GOOD}server.wait_for_open_port(\"8080\")\n"
        )));
        assert!(err.contains("ty refuses it"), "{err}");
        assert!(err.contains("mypy refuses it"), "{err}");
    }

    #[test]
    fn an_unused_local_name_fails_the_linters() {
        let err = refused(&repository(&format!(
            "{GOOD}\n\ndef slot():\n    name = server.succeed(\"true\")\n"
        )));
        assert!(err.contains("ruff refuses it"), "{err}");
        assert!(err.contains("pyflakes refuses it"), "{err}");
        assert!(err.contains("name"), "{err}");
    }

    #[test]
    fn a_machine_the_test_does_not_have_fails() {
        let err = refused(&repository(&format!("{GOOD}source.succeed(\"true\")\n")));
        assert!(err.contains("ty refuses it"), "{err}");
        assert!(err.contains("pyflakes refuses it"), "{err}");
        assert!(err.contains("source"), "{err}");
    }

    #[test]
    fn a_lone_machine_is_also_called_machine() {
        let scratch = repository("start_all()\nmachine.succeed(\"true\")\n");
        scratch.write(
            "tests/vm/scripts.nix",
            "{ probe = { machines = [\"server\"]; globals = []; script = _: builtins.readFile ./probe.py; }; }\n",
        );
        let sh = Shell::new().unwrap();
        check(&sh, &scratch.root).unwrap();
    }

    #[test]
    fn a_pipe_into_grep_quiet_fails() {
        let err = refused(&repository(&format!(
            "{GOOD}server.succeed(\"curl -fsS http://127.0.0.1:9464/metrics | grep -Fq lag\")\n"
        )));
        assert!(err.contains("grep -q"), "{err}");
        assert!(err.contains("line 7"), "{err}");
    }

    #[test]
    fn a_scripted_initrd_hook_fails() {
        let scratch = repository(GOOD);
        scratch.write(
            "tests/vm/node.nix",
            "{\n  # postDeviceCommands in a comment is fine\n  boot.initrd.postDeviceCommands = \"cp key /run\";\n}\n",
        );
        let err = refused(&scratch);
        assert!(err.contains("tests/vm/node.nix:3"), "{err}");
        assert!(err.contains("postDeviceCommands"), "{err}");
        assert!(!err.contains("node.nix:2"), "{err}");
    }

    #[test]
    fn globals_other_than_the_declared_ones_fail_evaluation() {
        let scratch = repository(GOOD);
        scratch.write(
            "tests/vm/scripts.nix",
            "{ probe = { machines = [\"server\" \"client\"]; globals = [\"domain\"]; script = {domain, extra}: domain + extra; }; }\n",
        );
        let err = refused(&scratch);
        assert!(err.contains("does not evaluate"), "{err}");
    }

    #[test]
    fn the_drivers_names_for_machines() {
        assert_eq!(pythonize("web-arm"), "web_arm");
        assert_eq!(pythonize("1st"), "_st");
        assert_eq!(
            machine_names(&["server".to_string()]),
            vec!["server".to_string(), "machine".to_string()]
        );
    }
}

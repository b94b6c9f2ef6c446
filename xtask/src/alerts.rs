//! The `alerts` step: the alert rules services.powersync installs (lib.alertRules, rendered by
//! tests/alerts/rules.nix) checked by promtool, then unit-tested with promtool's own runner against
//! the test files in tests/alerts (`*.test.yml`): which series make which alert fire, when, with which text.

use std::{fs, path::Path};

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use crate::tools::{self, Tool};

const PROMTOOL: Tool = Tool {
    program: "promtool",
    install: "`apt-get install prometheus` (it ships promtool), or run inside `nix develop`",
};

pub fn check(sh: &Shell, root: &Path) -> Result<()> {
    tools::NIX_INSTANTIATE.require()?;
    PROMTOOL.require()?;
    let rules_nix = root.join("tests/alerts/rules.nix");
    let json = cmd!(sh, "nix-instantiate --eval --strict --json {rules_nix}")
        .read()
        .context("render the alert rules")?;
    let rules: String =
        serde_json::from_str(&json).context("tests/alerts/rules.nix must evaluate to text")?;
    // promtool resolves rule_files next to the test file, so both go to one directory.
    let out = root.join("target/alerts");
    fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let rules_file = out.join("powersync.rules.json");
    fs::write(&rules_file, rules).with_context(|| format!("write {}", rules_file.display()))?;
    let mut test_files = Vec::new();
    for name in test_file_names(&root.join("tests/alerts"))? {
        let copy = out.join(&name);
        fs::copy(root.join("tests/alerts").join(&name), &copy)
            .with_context(|| format!("copy tests/alerts/{name}"))?;
        test_files.push(copy);
    }
    cmd!(sh, "promtool check rules {rules_file}")
        .run()
        .context("promtool refuses the alert rules")?;
    cmd!(sh, "promtool test rules {test_files...}")
        .run()
        .context("an alert does not behave as the tests in tests/alerts say (details above)")
}

/// The promtool unit test files in `dir`, sorted: every `*.test.yml`, so a new one cannot be left out.
fn test_file_names(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".test.yml") {
            names.push(name);
        }
    }
    names.sort();
    anyhow::ensure!(!names.is_empty(), "no *.test.yml in {}", dir.display());
    Ok(names)
}

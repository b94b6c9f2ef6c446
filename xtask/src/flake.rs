//! Running Nix against a flake: the flags every call needs, and the failure an offline machine gets.

use std::{path::Path, process::Output};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::tools;

/// Flakes are still experimental in Nix 2.8: ask for them on the command line, so no nix.conf is needed.
pub const FEATURES: [&str; 2] = ["--extra-experimental-features", "nix-command flakes"];

/// `nix eval --json <flake>#<attr>` with `--apply`, read as JSON.
pub fn eval_json(sh: &Shell, flake: &Path, attr: &str, apply: &str) -> Result<serde_json::Value> {
    tools::NIX.require()?;
    let installable = format!("{}#{attr}", flake.display());
    let output = cmd!(
        sh,
        "nix {FEATURES...} eval --json {installable} --apply {apply}"
    )
    .ignore_status()
    .quiet()
    .output()
    .with_context(|| format!("run nix eval {installable}"))?;
    let stdout = checked(&output, &format!("evaluate {installable}"))?;
    serde_json::from_str(&stdout).with_context(|| format!("read the JSON of {installable}"))
}

/// The system this machine builds for, as Nix names it (e.g. x86_64-linux).
pub fn current_system(sh: &Shell) -> Result<String> {
    tools::NIX.require()?;
    let system = cmd!(
        sh,
        "nix {FEATURES...} eval --impure --raw --expr builtins.currentSystem"
    )
    .quiet()
    .read()
    .context("ask nix for builtins.currentSystem")?;
    Ok(system)
}

/// Stdout of a finished Nix command, or an error carrying Nix's own message, plus a plain explanation when
/// the cause is that the flake's inputs could not be fetched.
pub fn checked(output: &Output, what: &str) -> Result<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        match explain_fetch_failure(&stderr) {
            Some(explanation) => bail!(
                "{what} failed: {explanation}\n\nNix said:\n{}",
                stderr.trim_end()
            ),
            None => bail!("{what} failed; Nix said:\n{}", stderr.trim_end()),
        }
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Nix's wording when a download fails, across the versions we meet (2.8 on Debian, current on NixOS).
fn explain_fetch_failure(stderr: &str) -> Option<&'static str> {
    const SIGNS: [&str; 6] = [
        "unable to download",
        "Could not resolve host",
        "Couldn't resolve host",
        "Failed to connect",
        "cannot fetch input",
        "unable to fetch",
    ];
    SIGNS.iter().any(|sign| stderr.contains(sign)).then_some(
        "the flake's inputs could not be fetched (no network?). This command needs GitHub for nixpkgs and \
         sops-nix and, to avoid building everything, cache.nixos.org; run it on a machine that reaches them.",
    )
}

/// Runs a Nix command with its stderr (where Nix logs) shown as it comes and also kept, so a failure can
/// still be explained.
pub fn run_streaming(command: xshell::Cmd<'_>, what: &str) -> Result<()> {
    use std::io::{BufRead, BufReader};
    let mut command: std::process::Command = command.into();
    let mut child = command
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("start {what}"))?;
    let mut kept = String::new();
    let stderr = child.stderr.take().context("nix's stderr")?;
    for line in BufReader::new(stderr).lines() {
        let line = line.with_context(|| format!("read the output of {what}"))?;
        eprintln!("{line}");
        kept.push_str(&line);
        kept.push('\n');
    }
    let status = child.wait().with_context(|| format!("wait for {what}"))?;
    if status.success() {
        return Ok(());
    }
    match explain_fetch_failure(&kept) {
        Some(explanation) => bail!("{what} failed: {explanation}"),
        None => bail!("{what} failed ({status}); Nix's output is above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_failures_are_explained_and_others_are_not() {
        let offline =
            "error: unable to download 'https://github.com/NixOS/nixpkgs/archive/0d9e.tar.gz': \
                       Couldn't resolve host name (6)";
        assert!(explain_fetch_failure(offline)
            .unwrap()
            .contains("could not be fetched"));
        assert_eq!(
            explain_fetch_failure("error: undefined variable 'pkgs'"),
            None
        );
    }
}

//! `cargo xtask dry-build`: would a host's system build, and what would it cost? The equivalent of
//! `nixos-rebuild dry-build --flake .#host`, with a short summary.

use std::path::Path;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{flags, flake};

impl flags::DryBuild {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let flake_dir = self.flake.unwrap_or_else(|| sh.current_dir());
        let known = hosts(sh, &flake_dir)?;
        let chosen = if self.all { known.clone() } else { self.hosts };
        if chosen.is_empty() {
            bail!(
                "name a host or pass --all; hosts in this flake: {}",
                list(&known)
            );
        }
        if let Some(unknown) = chosen.iter().find(|host| !known.contains(host)) {
            bail!(
                "no host `{unknown}` in nixosConfigurations; hosts in this flake: {}",
                list(&known)
            );
        }
        let mut failed = Vec::new();
        for host in &chosen {
            match dry_build(sh, &flake_dir, host, self.show_trace) {
                Ok(plan) => println!("{host}: {}", plan.summary()),
                Err(error) => {
                    eprintln!("{host}: {error:#}");
                    failed.push(host.as_str());
                }
            }
        }
        if !failed.is_empty() {
            bail!("dry-build failed for {}", failed.join(", "));
        }
        Ok(())
    }
}

fn list(hosts: &[String]) -> String {
    if hosts.is_empty() {
        "(none)".to_string()
    } else {
        hosts.join(", ")
    }
}

/// The names under `nixosConfigurations`; reading them evaluates no system.
fn hosts(sh: &Shell, flake_dir: &Path) -> Result<Vec<String>> {
    let names = flake::eval_json(sh, flake_dir, "nixosConfigurations", "builtins.attrNames")?;
    serde_json::from_value(names).context("nixosConfigurations names are not strings")
}

/// What `nix build --dry-run` says it would do.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub derivations: usize,
    pub fetched: usize,
    pub download: Option<String>,
}

impl Plan {
    fn summary(&self) -> String {
        let mut text = format!(
            "evaluates; {} derivation(s) to build, {} path(s) to fetch",
            self.derivations, self.fetched
        );
        if let Some(size) = &self.download {
            text.push_str(&format!(" ({size} download)"));
        }
        text
    }
}

fn dry_build(sh: &Shell, flake_dir: &Path, host: &str, show_trace: bool) -> Result<Plan> {
    let installable = format!(
        "{}#nixosConfigurations.{host}.config.system.build.toplevel",
        flake_dir.display()
    );
    let trace = show_trace.then_some("--show-trace");
    let features = flake::FEATURES;
    let output = cmd!(
        sh,
        "nix {features...} build --dry-run --no-link {trace...} {installable}"
    )
    .ignore_status()
    .quiet()
    .output()
    .context("run nix build --dry-run")?;
    flake::checked(&output, &format!("dry-build of {host}"))?;
    Ok(parse_plan(&String::from_utf8_lossy(&output.stderr)))
}

/// Reads Nix's dry-run report: "these 12 derivations will be built:" / "this derivation will be built:" and
/// "these 3 paths will be fetched (1.20 MiB download, 5.00 MiB unpacked):" / "this path will be fetched (…)".
pub fn parse_plan(stderr: &str) -> Plan {
    let mut plan = Plan::default();
    for line in stderr.lines().map(str::trim) {
        if line.ends_with("will be built:") {
            plan.derivations = count(line);
        } else if line.contains("will be fetched") {
            plan.fetched = count(line);
            plan.download = line
                .split_once('(')
                .and_then(|(_, rest)| rest.split_once(" download"))
                .map(|(size, _)| size.to_string());
        }
    }
    plan
}

fn count(line: &str) -> usize {
    if line.starts_with("this ") {
        return 1;
    }
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_read_from_nix_2_8_and_current_wording() {
        let many = "these 12 derivations will be built:\n  /nix/store/a.drv\nthese 3 paths will be fetched (1.20 MiB download, 5.00 MiB unpacked):\n  /nix/store/b\n";
        assert_eq!(
            parse_plan(many),
            Plan {
                derivations: 12,
                fetched: 3,
                download: Some("1.20 MiB".into())
            }
        );
        let one = "this derivation will be built:\n  /nix/store/a.drv\n";
        assert_eq!(
            parse_plan(one),
            Plan {
                derivations: 1,
                fetched: 0,
                download: None
            }
        );
        assert_eq!(parse_plan(""), Plan::default());
    }
}

#[cfg(test)]
mod fixture_tests {
    //! The plumbing with real Nix on fixture flakes that need no nixpkgs.

    use super::*;
    use xtask_testkit::Scratch;

    fn dry_build(scratch: &Scratch, hosts: &[&str], all: bool) -> Result<()> {
        flags::DryBuild {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            all,
            show_trace: false,
            flake: Some(scratch.root.clone()),
        }
        .run(&Shell::new().unwrap())
    }

    #[test]
    fn a_host_that_evaluates_dry_builds() {
        let flake = Scratch::fixture("flakes/hosts");
        dry_build(&flake, &["good"], false).unwrap();
        let plan = super::dry_build(&Shell::new().unwrap(), &flake.root, "good", false).unwrap();
        assert_eq!(plan.derivations, 1, "{plan:?}");
    }

    #[test]
    fn an_evaluation_error_fails_with_nixs_message() {
        let flake = Scratch::fixture("flakes/hosts");
        let err = format!("{:#}", dry_build(&flake, &["broken"], false).unwrap_err());
        assert!(err.contains("dry-build failed for broken"), "{err}");
        let err = format!(
            "{:#}",
            super::dry_build(&Shell::new().unwrap(), &flake.root, "broken", true).unwrap_err()
        );
        assert!(err.contains("broken on purpose"), "{err}");
    }

    #[test]
    fn all_dry_builds_every_host_and_fails_if_one_fails() {
        let flake = Scratch::fixture("flakes/hosts");
        let err = format!("{:#}", dry_build(&flake, &[], true).unwrap_err());
        assert!(err.contains("failed for broken"), "{err}");
        assert!(!err.contains("good"), "{err}");
    }

    #[test]
    fn an_unknown_host_lists_the_hosts() {
        let flake = Scratch::fixture("flakes/hosts");
        let err = format!("{:#}", dry_build(&flake, &["web-amr"], false).unwrap_err());
        assert!(err.contains("no host `web-amr`"), "{err}");
        assert!(err.contains("broken, good"), "{err}");
    }

    #[test]
    fn offline_it_says_the_inputs_could_not_be_fetched() {
        let flake = Scratch::fixture("flakes/offline");
        let err = format!("{:#}", dry_build(&flake, &["host"], false).unwrap_err());
        assert!(err.contains("inputs could not be fetched"), "{err}");
    }
}

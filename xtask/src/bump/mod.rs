//! `cargo xtask bump`: move the image pin to a newer stable tag, verified, as a reviewable two-line diff.
//! It speaks the OCI distribution API itself (registry.rs), applies the version policy (version.rs), checks
//! the index serves web-arm's arm64 and amd64, then rewrites the pin (pin.rs) atomically. Every failure
//! leaves the pin file byte for byte as it was.

pub mod local_registry;
mod pin;
mod registry;
mod version;

#[cfg(test)]
mod tests;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{flags, util};
use pin::{Pin, VmPin};
use registry::{Manifest, Registry};
use version::{Policy, Version};

/// Platforms the index must serve: web-arm is aarch64, CI and most VM test runners x86_64.
const REQUIRED_PLATFORMS: [&str; 2] = ["linux/arm64", "linux/amd64"];

pub const DEFAULT_PIN: &str = "modules/powersync/image.nix";
pub const DEFAULT_VM_PIN: &str = "tests/vm/image.nix";

impl flags::Bump {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let pin_path = self
            .pin
            .clone()
            .unwrap_or_else(|| util::project_root().join(DEFAULT_PIN));
        let pin = Pin::read(&pin_path)?;
        // The VM tests' copy of the pin moves with it; with a --pin of your own, name its twin explicitly.
        let vm_pin_path = match (&self.vm_pin, &self.pin) {
            (Some(path), _) => Some(path.clone()),
            (None, None) => Some(util::project_root().join(DEFAULT_VM_PIN)),
            (None, Some(_)) => None,
        };
        let vm_pin = vm_pin_path.as_deref().map(VmPin::read).transpose()?;
        let repository = self
            .repository
            .clone()
            .unwrap_or_else(|| pin.repository().to_string());
        let mut registry = Registry::new(&self.registry, &repository);
        if let Some(page_size) = self.page_size {
            registry.page_size = page_size;
        }
        let policy = Policy {
            allow_minor: self.allow_minor,
            allow_major: self.allow_major,
        };
        let outcome = choose(&mut registry, &pin, self.tag.as_deref(), policy);
        let requests = registry.requests;
        let target = match outcome? {
            Choice::UpToDate(message) => {
                println!("{message} ({requests} registry requests)");
                return Ok(());
            }
            Choice::Target(target) => target,
        };
        check_platforms(&target)?;
        if target.tag == pin.tag && target.manifest.digest == pin.digest {
            println!(
                "already pinned: {}@{} ({requests} registry requests)",
                pin.tag, pin.digest
            );
            return Ok(());
        }
        println!("{repository}: {} -> {}", pin.tag, target.tag);
        println!(
            "  index digest {} (serves {})",
            target.manifest.digest,
            REQUIRED_PLATFORMS.join(", ")
        );
        println!("  {requests} registry requests");
        if self.dry_run {
            println!("dry run: {} left unchanged", pin_path.display());
            return Ok(());
        }
        // Both files are prepared and checked before either is written.
        let vm_text = vm_pin
            .as_ref()
            .map(|vm| vm.updated(&target.tag, &target.manifest.digest))
            .transpose()?;
        pin.write(&target.tag, &target.manifest.digest)?;
        println!("updated {}", pin_path.display());
        let mut files = vec![pin_path.clone()];
        if let (Some(vm), Some(text)) = (&vm_pin, vm_text) {
            vm.write(&text)?;
            println!("updated {} (imageDigest, finalImageTag)", vm.path.display());
            println!(
                "  could not refresh the VM image hashes for {}: they can only be learnt by a networked build; \
                 see the comment in that file",
                pin::VM_SYSTEMS.join(", ")
            );
            files.push(vm.path.clone());
        }
        let message = commit_message(&target.tag);
        if self.commit {
            commit(sh, &files, &message)?;
            println!("committed: {message}");
        } else {
            println!(
                "commit it with: git commit -m '{message}' -- {}",
                pin_path.display()
            );
        }
        Ok(())
    }
}

pub fn commit_message(tag: &str) -> String {
    format!("chore(web-arm): bump powersync-service to {tag}")
}

struct Target {
    tag: String,
    manifest: Manifest,
}

enum Choice {
    UpToDate(String),
    Target(Target),
}

fn choose(registry: &mut Registry, pin: &Pin, tag: Option<&str>, policy: Policy) -> Result<Choice> {
    match tag {
        Some("latest") => resolve_latest(registry, pin, policy).map(Choice::Target),
        Some(tag) => {
            let version = Version::parse_stable(tag).with_context(|| {
                format!("{tag} is not a stable X.Y.Z tag; pre-releases (-next) and aliases are never pinned")
            })?;
            refuse_by_policy(policy, pin.version, version)?;
            let manifest = registry
                .manifest(tag)
                .with_context(|| format!("tag {tag}"))?;
            Ok(Choice::Target(Target {
                tag: tag.to_string(),
                manifest,
            }))
        }
        None => {
            let tags = registry.tags()?;
            let Some((tag, _)) = policy.newest(pin.version, &tags) else {
                return Ok(Choice::UpToDate(up_to_date(pin.version, &tags)));
            };
            let manifest = registry
                .manifest(tag)
                .with_context(|| format!("tag {tag}"))?;
            Ok(Choice::Target(Target {
                tag: tag.to_string(),
                manifest,
            }))
        }
    }
}

fn refuse_by_policy(policy: Policy, current: Version, target: Version) -> Result<()> {
    match policy.refusal(current, target) {
        Some(reason) => bail!("{reason}"),
        None => Ok(()),
    }
}

/// "already at newest patch", with a hint when a bigger move exists.
fn up_to_date(current: Version, tags: &[String]) -> String {
    let newest = Policy {
        allow_minor: true,
        allow_major: true,
    }
    .newest(current, tags);
    match newest {
        Some((tag, version)) if version.major != current.major => {
            format!("already at newest patch: {current} ({tag} exists: --allow-major)")
        }
        Some((tag, _)) => {
            format!("already at newest patch: {current} ({tag} exists: --allow-minor)")
        }
        None => format!("already at newest patch: {current}"),
    }
}

/// `latest` is an alias that moves: pin the concrete X.Y.Z with the same digest instead.
fn resolve_latest(registry: &mut Registry, pin: &Pin, policy: Policy) -> Result<Target> {
    let manifest = registry.manifest("latest").context("tag latest")?;
    let mut stable: Vec<(Version, String)> = registry
        .tags()?
        .into_iter()
        .filter_map(|tag| Version::parse_stable(&tag).map(|version| (version, tag)))
        .collect();
    stable.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    for (version, tag) in stable {
        if registry.digest_of(&tag)? == manifest.digest {
            refuse_by_policy(policy, pin.version, version).context("latest")?;
            return Ok(Target { tag, manifest });
        }
    }
    bail!(
        "latest points at {}, which no stable X.Y.Z tag carries; name a tag with --tag",
        manifest.digest
    )
}

fn check_platforms(target: &Target) -> Result<()> {
    if !registry::is_index(&target.manifest.json) {
        bail!(
            "{} is a single-platform manifest, not a multi-arch index; web-arm (arm64) needs the index. Nothing was pinned.",
            target.tag
        );
    }
    let served = registry::platforms(&target.manifest.json);
    let missing: Vec<&str> = REQUIRED_PLATFORMS
        .iter()
        .copied()
        .filter(|p| !served.iter().any(|s| s == p))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} does not serve {} (it serves {}); web-arm is aarch64. Nothing was pinned.",
            target.tag,
            missing.join(" and "),
            served.join(", ")
        );
    }
    Ok(())
}

fn commit(sh: &Shell, files: &[std::path::PathBuf], message: &str) -> Result<()> {
    let dir = files[0].parent().context("the pin file has no directory")?;
    let _dir = sh.push_dir(dir);
    cmd!(sh, "git commit --quiet -m {message} -- {files...}")
        .run()
        .context("commit the pin (the file is updated; commit it by hand)")
}

//! `cargo xtask bump`: move the image pin to another stable tag, verified, as a reviewable two-line diff.
//! It speaks the OCI distribution API itself (registry.rs), through the proxies and CA store the environment
//! names, as curl reads them (network.rs), checks the index serves web-arm's arm64 and amd64 as plain image
//! manifests, applies the version policy (version.rs: newer patches by default; minor, major and downgrades only
//! when asked), then rewrites the one pin file (pin.rs) with a single rename. The VM tests' archive hashes
//! (tests/vm/image.nix) are keyed by index digest, so there is no second file that could disagree with it: a moved pin
//! misses its hash there, and the VM tests say how to compute it. Every failure leaves the pin byte for byte
//! as it was; with --commit, git is checked before anything is written.

mod network;
mod pin;
mod registry;
mod version;

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{flags, tls::Roots, util};
use network::{Env, Proxies, Trust};
use pin::Pin;
use registry::{Manifest, Net, Registry};
use version::{Policy, Version};

/// Platforms the index must serve: web-arm is aarch64, CI and most VM test runners x86_64.
const REQUIRED_PLATFORMS: [&str; 2] = ["linux/arm64", "linux/amd64"];

pub const DEFAULT_PIN: &str = "modules/powersync/image.nix";
pub const VM_HASHES: &str = "tests/vm/image.nix";

impl flags::Bump {
    pub fn run(self, sh: &Shell) -> Result<()> {
        self.run_in(sh, &Env::from_process())
    }

    /// The bump in the network `env` describes (proxies, the system CA store).
    fn run_in(self, sh: &Shell, env: &Env) -> Result<()> {
        let pin_path = self
            .pin
            .clone()
            .unwrap_or_else(|| util::project_root().join(DEFAULT_PIN));
        if !(self.timeout.is_finite() && self.timeout > 0.0) {
            bail!(
                "--timeout {} is not a positive number of seconds",
                self.timeout
            );
        }
        let pin = Pin::read(&pin_path)?;
        if self.commit {
            check_git(sh, &pin_path)?;
        }
        let repository = self
            .repository
            .clone()
            .unwrap_or_else(|| pin.repository().to_string());
        let extra_roots = self.ca_file.as_deref().map(Roots::ca_file).transpose()?;
        let net = Net {
            proxies: Proxies::from_env(env),
            trust: Arc::new(Trust::new(
                network::system_bundle(env)?,
                extra_roots,
                self.verbose,
            )),
            verbose: self.verbose,
        };
        let mut registry = Registry::with_net(
            &self.registry,
            &repository,
            Duration::from_secs_f64(self.timeout),
            net,
        );
        if let Some(page_size) = self.page_size {
            registry.page_size = page_size;
        }
        let policy = Policy {
            allow_minor: self.allow_minor,
            allow_major: self.allow_major,
            allow_downgrade: self.allow_downgrade,
        };
        let outcome = choose(
            &mut registry,
            &pin,
            self.tag.as_deref(),
            policy,
            self.allow_repush,
        );
        let requests = registry.requests;
        let (outcome, odd) = outcome?;
        if !odd.is_empty() {
            println!(
                "skipped {} odd tag(s), shaped like versions but not X.Y.Z as a pin allows (no leading zero, at \
                 most nine digits a part): {}",
                odd.len(),
                odd.join(", ")
            );
        }
        let target = match outcome {
            Choice::UpToDate(message) => {
                println!("{message} ({requests} registry requests)");
                return Ok(());
            }
            Choice::Target(target) => target,
        };
        let change = Change::between(&pin, &target);
        if change == Change::None {
            println!(
                "already pinned: {}@{} ({requests} registry requests)",
                pin.tag, pin.digest
            );
            return Ok(());
        }
        match change {
            Change::Repush => {
                eprintln!(
                    "WARNING: RE-PUSHED TAG {}: the registry now serves {} under it, the pin has {}. The same \
                     tag with other bytes is a supply-chain signal: find out why before deploying it.",
                    pin.tag, target.manifest.digest, pin.digest
                );
                println!("{repository}: re-pin {} (re-pushed tag)", pin.tag);
            }
            Change::Downgrade => {
                println!("{repository}: downgrade {} -> {}", pin.tag, target.tag)
            }
            _ => println!("{repository}: {} -> {}", pin.tag, target.tag),
        }
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
        let text = pin.updated(&target.tag, &target.manifest.digest)?;
        pin.write(&text)?;
        println!("updated {}", pin_path.display());
        println!(
            "  the VM tests need the new image's archive hashes in {VM_HASHES} (keyed by {}); they fail with \
             the command that computes them until then. `cargo xtask vm-test` needs this system's only; \
             `nix flake check` before Nix 2.17 needs both x86_64-linux and aarch64-linux on any machine",
            target.manifest.digest
        );
        let message = commit_message(change, &pin.tag, &target.tag);
        if self.commit {
            commit(sh, &pin_path, &message)?;
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

/// What a new pin does to the old one; it names the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    Bump,
    Downgrade,
    Repush,
}

impl Change {
    fn between(pin: &Pin, target: &Target) -> Change {
        let version = Version::parse_stable(&target.tag).expect("targets are stable tags");
        if target.tag == pin.tag {
            if target.manifest.digest == pin.digest {
                Change::None
            } else {
                Change::Repush
            }
        } else if version < pin.version {
            Change::Downgrade
        } else {
            Change::Bump
        }
    }
}

pub fn commit_message(change: Change, from: &str, tag: &str) -> String {
    match change {
        Change::Downgrade => {
            format!("chore(web-arm): downgrade powersync-service from {from} to {tag}")
        }
        Change::Repush => {
            format!("chore(web-arm): re-pin powersync-service {tag} (re-pushed tag, new digest)")
        }
        Change::None | Change::Bump => format!("chore(web-arm): bump powersync-service to {tag}"),
    }
}

struct Target {
    tag: String,
    manifest: Manifest,
}

enum Choice {
    UpToDate(String),
    Target(Target),
}

/// The choice, and the odd tags skipped on the way (version-shaped, refused by the grammar).
fn choose(
    registry: &mut Registry,
    pin: &Pin,
    tag: Option<&str>,
    policy: Policy,
    allow_repush: bool,
) -> Result<(Choice, Vec<String>)> {
    let mut odd = Vec::new();
    let target = match tag {
        Some("latest") => match resolve_latest(registry, pin, &mut odd)? {
            Some(target) => target,
            None => {
                return Ok((
                    Choice::UpToDate(format!("latest is the pinned {}@{}", pin.tag, pin.digest)),
                    odd,
                ))
            }
        },
        Some(tag) => {
            let version = Version::parse_stable(tag).with_context(|| {
                format!("{tag} is not a stable X.Y.Z tag; pre-releases (-next) and aliases are never pinned")
            })?;
            let manifest = registry
                .manifest(tag)
                .with_context(|| format!("tag {tag}"))?;
            let target = Target {
                tag: tag.to_string(),
                manifest,
            };
            // Both reasons at once: a flag would not help an index that lacks arm64.
            let mut problems = index_problems(&target);
            problems.extend(policy.refusal(pin.version, version));
            if !problems.is_empty() {
                bail!("{}. Nothing was pinned.", problems.join("; and "));
            }
            target
        }
        None => {
            let tags = registry.tags()?;
            odd = version::odd_tags(&tags);
            let Some((tag, _)) = policy.newest(pin.version, &tags) else {
                let pinned = registry
                    .manifest(&pin.tag)
                    .with_context(|| format!("check the pinned tag {} is unchanged", pin.tag))?;
                if pinned.digest != pin.digest {
                    bail!("{}", repushed(pin, &pinned.digest));
                }
                return Ok((Choice::UpToDate(up_to_date(pin.version, &tags)), odd));
            };
            let manifest = registry
                .manifest(tag)
                .with_context(|| format!("tag {tag}"))?;
            Target {
                tag: tag.to_string(),
                manifest,
            }
        }
    };
    let problems = index_problems(&target);
    if !problems.is_empty() {
        bail!("{}. Nothing was pinned.", problems.join("; and "));
    }
    if tag == Some("latest") {
        let version = Version::parse_stable(&target.tag).expect("a stable tag");
        if let Some(reason) = policy.refusal(pin.version, version) {
            bail!("latest is {}: {reason}", target.tag);
        }
    }
    if target.tag == pin.tag && target.manifest.digest != pin.digest && !allow_repush {
        bail!("{}", repushed(pin, &target.manifest.digest));
    }
    Ok((Choice::Target(target), odd))
}

fn repushed(pin: &Pin, served: &str) -> String {
    format!(
        "RE-PUSHED TAG: {} now points at {served}, but the pin has {} for it. The same tag with other bytes \
         is a supply-chain signal; nothing was pinned. Find out why (release notes, the publisher), then take \
         it with `cargo xtask bump --tag {} --allow-repush`.",
        pin.tag, pin.digest, pin.tag
    )
}

/// "already at newest patch", naming the next step each flag would allow.
fn up_to_date(current: Version, tags: &[String]) -> String {
    let minor = Policy {
        allow_minor: true,
        ..Policy::default()
    }
    .newest(current, tags);
    let major = Policy {
        allow_major: true,
        ..Policy::default()
    }
    .newest(current, tags);
    let mut hints = Vec::new();
    if let Some((tag, _)) = minor {
        hints.push(format!("{tag} with --allow-minor"));
    }
    if let Some((tag, _)) = major.filter(|(_, version)| version.major != current.major) {
        hints.push(format!("{tag} with --allow-major"));
    }
    if hints.is_empty() {
        format!("already at newest patch: {current}")
    } else {
        format!(
            "already at newest patch: {current} (next: {})",
            hints.join("; ")
        )
    }
}

/// `latest` is an alias that moves: pin the concrete X.Y.Z with the same digest instead. None when latest is
/// the pinned image. Each candidate's manifest is fetched and hashed, newest first, never taken from a HEAD
/// answer: the tag pinned must carry exactly the bytes pinned. The floor: the challenge, the token, latest's
/// manifest, then (only when it moved) the tag list and the newest stable tag's manifest, the one match when
/// latest is the newest release.
fn resolve_latest(
    registry: &mut Registry,
    pin: &Pin,
    odd: &mut Vec<String>,
) -> Result<Option<Target>> {
    let manifest = registry.manifest("latest").context("tag latest")?;
    if manifest.digest == pin.digest {
        return Ok(None);
    }
    let tags = registry.tags()?;
    *odd = version::odd_tags(&tags);
    let mut stable: Vec<(Version, String)> = tags
        .into_iter()
        .filter_map(|tag| Version::parse_stable(&tag).map(|version| (version, tag)))
        .collect();
    stable.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    for (_, tag) in stable {
        let candidate = registry
            .manifest(&tag)
            .with_context(|| format!("tag {tag}"))?;
        if candidate.digest == manifest.digest {
            return Ok(Some(Target {
                tag,
                manifest: candidate,
            }));
        }
    }
    bail!(
        "latest points at {}, which no stable X.Y.Z tag carries; name a tag with --tag",
        manifest.digest
    )
}

/// Why `target` cannot be pinned for web-arm and CI: it is not an index, or an entry for a platform the pin
/// promises is missing or not a plain image manifest with a well-formed digest and size.
fn index_problems(target: &Target) -> Vec<String> {
    let tag = &target.tag;
    let media_type = match registry::media_type(&target.manifest) {
        Ok(media_type) => media_type,
        Err(why) => return vec![format!("{tag} is not a usable index: {why}")],
    };
    if !registry::INDEX_TYPES.contains(&media_type.as_str()) {
        return vec![format!(
            "{tag} is a single-platform manifest ({media_type}), not a multi-arch index; web-arm (arm64) \
             needs the index"
        )];
    }
    if !target.manifest.json["manifests"].is_array() || target.manifest.json["schemaVersion"] != 2 {
        return vec![format!(
            "{tag} is labelled {media_type} but is not one (schemaVersion 2 and a `manifests` list)"
        )];
    }
    let served = registry::platforms(&target.manifest.json);
    let missing: Vec<&str> = REQUIRED_PLATFORMS
        .iter()
        .copied()
        .filter(|p| !served.iter().any(|s| s == p))
        .collect();
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "{tag} does not serve {} (it serves {}); web-arm is aarch64",
            missing.join(" and "),
            served.join(", ")
        ));
    }
    for platform in REQUIRED_PLATFORMS {
        problems.extend(
            registry::entry_problems(&target.manifest.json, platform)
                .into_iter()
                .map(|problem| format!("{tag}: {problem}")),
        );
    }
    problems
}

/// --commit needs a work tree that tracks the pin; checked before any request, so a refusal changes nothing.
/// Through a symlink, it is the file the link points to that changes and is committed.
fn check_git(sh: &Shell, pin: &Path) -> Result<()> {
    let pin = &std::fs::canonicalize(pin).with_context(|| format!("resolve {}", pin.display()))?;
    let dir = pin.parent().context("the pin file has no directory")?;
    let file = pin.file_name().context("the pin file has no name")?;
    let _dir = sh.push_dir(dir);
    cmd!(sh, "git ls-files --error-unmatch -- {file}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .with_context(|| {
            format!(
                "--commit needs {} tracked in a git work tree; nothing was changed (run without --commit to \
                 only rewrite the file)",
                pin.display()
            )
        })
}

fn commit(sh: &Shell, pin: &Path, message: &str) -> Result<()> {
    let pin = &std::fs::canonicalize(pin).with_context(|| format!("resolve {}", pin.display()))?;
    let dir = pin.parent().context("the pin file has no directory")?;
    let _dir = sh.push_dir(dir);
    // Quiet: the command line would only repeat the message printed after it.
    cmd!(sh, "git commit --quiet -m {message} -- {pin}")
        .quiet()
        .run()
        .with_context(|| {
            format!(
                "commit the pin ({} is updated; commit it with: git commit -m '{message}' -- {})",
                pin.display(),
                pin.display()
            )
        })
}

/// Issue 13's keep-alive fronts without TCP_NODELAY, timed in-process so the bound is the bump's own time, not a
/// process start's; every other case runs the built binary (xtask/tests/bump.rs).
#[cfg(test)]
mod tests {
    use std::time::Instant;

    use xtask_testkit::{
        registry::{Front, LocalRegistry, Proxy, Push, TestCa},
        Scratch,
    };

    use super::*;

    const REPO: &str = "test/powersync-service";

    fn pin_text(tag: &str, digest: &str) -> String {
        format!(
            "# The pin.\n{{\n  name = \"docker.io/journeyapps/powersync-service\";\n  tag = \"{tag}\";\n  digest = \"{digest}\";\n}}\n"
        )
    }

    #[test]
    fn a_keep_alive_front_without_nodelay_gets_a_connection_per_request_over_plain_http() {
        let (registry, _) = LocalRegistry::seeded(&[Push::History(REPO)]);
        let front = Proxy::start_front(&registry.url, Front::KeepAliveNagle);
        let scratch = Scratch::new("keepalive");
        let digest = Registry::new(&registry.url, REPO, Duration::from_secs(10))
            .manifest("1.26.1")
            .unwrap()
            .digest;
        scratch.write("image.nix", &pin_text("1.26.1", &digest));
        let flags = flags::Bump {
            tag: None,
            allow_minor: false,
            allow_major: false,
            allow_downgrade: false,
            allow_repush: false,
            dry_run: true,
            commit: false,
            registry: front.url.clone(),
            repository: Some(REPO.into()),
            pin: Some(scratch.path("image.nix")),
            ca_file: None,
            verbose: false,
            timeout: 60.0,
            page_size: None,
        };
        let started = Instant::now();
        flags.run(&Shell::new().unwrap()).unwrap();
        let elapsed = started.elapsed();
        assert_eq!(front.requests(), 4);
        // A reused connection would stall on the front's Nagle delay meeting our delayed ACK, about 40 ms each.
        assert_eq!(front.connections(), 4);
        assert!(elapsed < Duration::from_millis(1000), "{elapsed:?}");
    }

    #[test]
    fn a_keep_alive_tls_front_without_nodelay_keeps_one_connection_without_stalling() {
        let (registry, _) = LocalRegistry::seeded(&[Push::History(REPO)]);
        let ca = TestCa::generate();
        let front = Proxy::start_tls(&registry.url, &ca);
        let scratch = Scratch::new("tls");
        let digest = Registry::new(&registry.url, REPO, Duration::from_secs(10))
            .manifest("1.26.1")
            .unwrap()
            .digest;
        scratch.write("image.nix", &pin_text("1.26.1", &digest));
        let run = || {
            let flags = flags::Bump {
                tag: None,
                allow_minor: false,
                allow_major: false,
                allow_downgrade: false,
                allow_repush: false,
                dry_run: true,
                commit: false,
                registry: front.url.clone(),
                repository: Some(REPO.into()),
                pin: Some(scratch.path("image.nix")),
                ca_file: Some(ca.ca.clone()),
                verbose: false,
                timeout: 60.0,
                page_size: None,
            };
            front.reset_requests();
            let started = Instant::now();
            flags.run(&Shell::new().unwrap()).unwrap();
            started.elapsed()
        };
        let fastest = (0..3).map(|_| run()).min().unwrap();
        assert_eq!(front.requests(), 4);
        // Keep-alive is kept over TLS: one handshake for the four requests.
        assert_eq!(front.connections(), 1);
        // Three reused-connection responses would each wait ~40 ms for a delayed ACK without TCP_QUICKACK.
        assert!(fastest < Duration::from_millis(100), "{fastest:?}");
    }
}

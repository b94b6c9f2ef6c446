//! `bump` against a real registry (see local_registry.rs): each policy case and each failure, and that a
//! failure leaves the pin file byte for byte as it was.

use std::collections::HashMap;

use xshell::{cmd, Shell};

use super::{
    local_registry::{Fault, LocalRegistry, Proxy},
    *,
};
use crate::util::testing::Scratch;

const REPO: &str = "test/powersync-service";
const BOTH: &[&str] = &["amd64", "arm64"];

struct World {
    _registry: LocalRegistry,
    proxy: Proxy,
    digests: HashMap<&'static str, String>,
    scratch: Scratch,
}

/// Tags 1.26.1 (pinned), 1.26.2, 1.26.3, 1.26.4-next, 1.27.0, 2.0.0, latest (= 2.0.0); plus a repository
/// whose newer patch lacks arm64 and one whose newer patch is a single-platform manifest.
fn world() -> World {
    let registry = LocalRegistry::start();
    let mut digests = registry.push_release_history(REPO);
    assert_eq!(
        digests["latest"], digests["2.0.0"],
        "latest must be the same index as 2.0.0"
    );
    digests.insert(
        "noarm-1.26.1",
        registry.push_index("test/noarm", "1.26.1", "noarm-1", BOTH),
    );
    registry.push_index("test/noarm", "1.26.2", "noarm-2", &["amd64"]);
    digests.insert(
        "single-1.26.1",
        registry.push_index("test/single", "1.26.1", "single-1", BOTH),
    );
    registry.push_single("test/single", "1.26.2", "single-2");
    let proxy = Proxy::start(&registry.url);
    let scratch = Scratch::new("bump");
    let world = World {
        _registry: registry,
        proxy,
        digests,
        scratch,
    };
    world.pin("1.26.1", "1.26.1");
    let vm_pin = std::fs::read_to_string(crate::util::project_root().join(DEFAULT_VM_PIN)).unwrap();
    world.scratch.write("vm-image.nix", &vm_pin);
    world
}

impl World {
    fn pin(&self, tag: &str, digest_of: &str) {
        self.scratch
            .write("image.nix", &pin_text(tag, &self.digests[digest_of]));
    }

    fn pin_file(&self) -> String {
        self.scratch.read("image.nix")
    }

    fn bump(&self, repository: &str, configure: impl FnOnce(&mut flags::Bump)) -> Result<()> {
        let mut flags = flags::Bump {
            tag: None,
            allow_minor: false,
            allow_major: false,
            dry_run: false,
            commit: false,
            registry: self.proxy.url.clone(),
            repository: Some(repository.to_string()),
            pin: Some(self.scratch.path("image.nix")),
            vm_pin: Some(self.scratch.path("vm-image.nix")),
            page_size: None,
        };
        configure(&mut flags);
        flags.run(&Shell::new().unwrap())
    }

    /// Runs a bump that must fail, and checks it left the pin untouched.
    fn refused(&self, repository: &str, configure: impl FnOnce(&mut flags::Bump)) -> String {
        let before = self.pin_file();
        let err = format!("{:#}", self.bump(repository, configure).unwrap_err());
        assert_eq!(
            self.pin_file(),
            before,
            "a failed bump changed the pin file: {err}"
        );
        err
    }
}

fn pin_text(tag: &str, digest: &str) -> String {
    format!(
        "# The pin.\n{{\n  name = \"docker.io/journeyapps/powersync-service\";\n  tag = \"{tag}\";\n  digest = \"{digest}\";\n}}\n"
    )
}

#[test]
fn by_default_it_pins_the_newest_stable_patch_by_its_index_digest() {
    let world = world();
    world.bump(REPO, |_| {}).unwrap();
    assert_eq!(
        world.pin_file(),
        pin_text("1.26.3", &world.digests["1.26.3"])
    );
}

#[test]
fn a_patch_bump_takes_four_requests() {
    // The floor: the challenge (401), the token, the tag list, the chosen index.
    let world = world();
    world.bump(REPO, |f| f.dry_run = true).unwrap();
    assert_eq!(world.proxy.requests(), 4);
}

#[test]
fn dry_run_changes_nothing() {
    let world = world();
    let before = world.pin_file();
    world.bump(REPO, |f| f.dry_run = true).unwrap();
    assert_eq!(world.pin_file(), before);
}

#[test]
fn minor_and_major_moves_need_their_flags() {
    let world = world();
    world.bump(REPO, |f| f.allow_minor = true).unwrap();
    assert_eq!(
        world.pin_file(),
        pin_text("1.27.0", &world.digests["1.27.0"])
    );
    world.bump(REPO, |f| f.allow_major = true).unwrap();
    assert_eq!(world.pin_file(), pin_text("2.0.0", &world.digests["2.0.0"]));
}

#[test]
fn at_the_newest_patch_it_says_so_and_changes_nothing() {
    let world = world();
    world.pin("1.26.3", "1.26.3");
    let before = world.pin_file();
    world.bump(REPO, |_| {}).unwrap();
    assert_eq!(world.pin_file(), before);
    let pin = Pin::read(&world.scratch.path("image.nix")).unwrap();
    let mut registry = Registry::new(&world.proxy.url, REPO);
    let policy = Policy {
        allow_minor: false,
        allow_major: false,
    };
    match choose(&mut registry, &pin, None, policy).unwrap() {
        Choice::UpToDate(message) => assert_eq!(
            message,
            "already at newest patch: 1.26.3 (2.0.0 exists: --allow-major)"
        ),
        Choice::Target(target) => panic!("chose {}", target.tag),
    }
}

#[test]
fn latest_resolves_to_the_concrete_tag_with_its_digest() {
    let world = world();
    let err = world.refused(REPO, |f| f.tag = Some("latest".into()));
    assert!(
        err.contains("2.0.0 is a major move") && err.contains("--allow-major"),
        "{err}"
    );
    world
        .bump(REPO, |f| {
            f.tag = Some("latest".into());
            f.allow_major = true;
        })
        .unwrap();
    assert_eq!(world.pin_file(), pin_text("2.0.0", &world.digests["2.0.0"]));
}

#[test]
fn an_explicit_tag_is_pinned_when_the_policy_allows_it() {
    let world = world();
    world.bump(REPO, |f| f.tag = Some("1.26.2".into())).unwrap();
    assert_eq!(
        world.pin_file(),
        pin_text("1.26.2", &world.digests["1.26.2"])
    );
}

#[test]
fn next_tags_are_never_pinned() {
    let world = world();
    let err = world.refused(REPO, |f| f.tag = Some("1.26.4-next".into()));
    assert!(err.contains("not a stable X.Y.Z tag"), "{err}");
}

#[test]
fn a_missing_tag_is_reported() {
    let world = world();
    let err = world.refused(REPO, |f| f.tag = Some("1.26.9".into()));
    assert!(err.contains("tag 1.26.9") && err.contains("404"), "{err}");
}

#[test]
fn a_refused_token_is_reported() {
    let world = world();
    world.proxy.set_fault(Fault::DenyToken);
    let err = world.refused(REPO, |_| {});
    assert!(err.contains("get a token") && err.contains("401"), "{err}");
}

#[test]
fn rate_limiting_is_named() {
    let world = world();
    world.proxy.set_fault(Fault::RateLimit);
    let err = world.refused(REPO, |_| {});
    assert!(
        err.contains("rate limited by the registry (429) (Retry-After: 30s)"),
        "{err}"
    );
}

#[test]
fn server_errors_are_reported() {
    let world = world();
    world.proxy.set_fault(Fault::ServerError);
    let err = world.refused(REPO, |_| {});
    assert!(err.contains("failed with 503"), "{err}");
}

#[test]
fn a_registry_that_is_down_is_reported() {
    let world = world();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let before = world.pin_file();
    let err = format!(
        "{:#}",
        world
            .bump(REPO, |f| f.registry = format!("http://{closed}"))
            .unwrap_err()
    );
    assert!(err.contains("cannot reach the registry"), "{err}");
    assert_eq!(world.pin_file(), before);
}

#[test]
fn altered_manifest_bytes_are_caught_by_the_digest() {
    let world = world();
    world.proxy.set_fault(Fault::TamperManifests);
    let err = world.refused(REPO, |_| {});
    assert!(err.contains("digest mismatch for 1.26.3"), "{err}");
}

#[test]
fn an_index_without_arm64_is_refused() {
    let world = world();
    world.pin("1.26.1", "noarm-1.26.1");
    let err = world.refused("test/noarm", |_| {});
    assert!(err.contains("does not serve linux/arm64"), "{err}");
}

#[test]
fn a_single_platform_manifest_is_refused() {
    let world = world();
    world.pin("1.26.1", "single-1.26.1");
    let err = world.refused("test/single", |_| {});
    assert!(err.contains("not a multi-arch index"), "{err}");
}

#[test]
fn a_malformed_pin_file_is_refused_untouched() {
    let world = world();
    world
        .scratch
        .write("image.nix", "{\n  tag = \"1.26.1\";\n}\n");
    let err = world.refused(REPO, |_| {});
    assert!(
        err.contains("malformed pin file") && err.contains("no `name"),
        "{err}"
    );
    assert_eq!(
        world.proxy.requests(),
        0,
        "a malformed pin must fail before any request"
    );
}

#[test]
fn tags_are_paginated() {
    let world = world();
    world.bump(REPO, |f| f.page_size = Some(2)).unwrap();
    assert_eq!(
        world.pin_file(),
        pin_text("1.26.3", &world.digests["1.26.3"])
    );
    // 7 tags in pages of 2: 4 pages, plus the challenge, the token and the manifest.
    assert_eq!(world.proxy.requests(), 7);
}

#[test]
fn commit_creates_the_conventional_commit() {
    let world = world();
    let sh = Shell::new().unwrap();
    let _dir = sh.push_dir(&world.scratch.root);
    let _name = sh.push_env("GIT_AUTHOR_NAME", "test");
    let _mail = sh.push_env("GIT_AUTHOR_EMAIL", "test@example.invalid");
    let _cname = sh.push_env("GIT_COMMITTER_NAME", "test");
    let _cmail = sh.push_env("GIT_COMMITTER_EMAIL", "test@example.invalid");
    cmd!(sh, "git add image.nix vm-image.nix").run().unwrap();
    cmd!(sh, "git commit --quiet -m initial").run().unwrap();
    world.bump(REPO, |f| f.commit = true).unwrap();
    let subject = cmd!(sh, "git log -1 --format=%s").read().unwrap();
    assert_eq!(subject, "chore(web-arm): bump powersync-service to 1.26.3");
    let changed = cmd!(sh, "git show --format= --numstat HEAD")
        .read()
        .unwrap();
    assert_eq!(changed, "2\t2\timage.nix\n2\t2\tvm-image.nix");
}

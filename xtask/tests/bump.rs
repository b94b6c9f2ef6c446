//! `cargo xtask bump`, the built binary as an operator runs it, against a real registry (see
//! xtask/testkit/src/registry.rs): each policy case and each failure, and that a failure leaves the pin file
//! byte for byte as it was; the hostile fronts of issue 13 (another host's Link, a Link loop, a redirect, a
//! slow-loris, an oversize body, a re-pushed tag); and the cases of issue 19 (index entries, HEAD answers, odd
//! tags, what a registry may send, pages, the pin file, the environment's proxies, SSL_CERT_FILE, strace).
//! Each run gets exactly the network variables a test gives it. The keep-alive fronts are timed in-process in
//! src/bump/mod.rs, and the tag cap (no flag sets it) in src/bump/registry.rs.

use std::{
    collections::HashMap,
    process::{Command, Output},
    time::{Duration, Instant, SystemTime},
};

use serde_json::json;

use xshell::{cmd, Shell};

use xtask_testkit::{
    registry::{Collector, Fault, IndexEdit, LocalRegistry, Proxy, Push, TestCa},
    tools::Tool,
    ForwardProxy, Scratch,
};

const REPO: &str = "test/powersync-service";
const BOTH: &[&str] = &["amd64", "arm64"];

struct World {
    registry: LocalRegistry,
    proxy: Proxy,
    digests: HashMap<String, String>,
    scratch: Scratch,
}

/// Tags 1.26.1 (pinned), 1.26.2, 1.26.3, 1.26.4-next, 1.27.0, 2.0.0, latest (= 2.0.0); plus a repository
/// whose newer patch lacks arm64 and one whose newer patch is a single-platform manifest.
const SEED: &[Push] = &[
    Push::History(REPO),
    Push::Index("test/noarm", "1.26.1", "noarm-1", BOTH),
    Push::Index("test/noarm", "1.26.2", "noarm-2", &["amd64"]),
    Push::Index("test/single", "1.26.1", "single-1", BOTH),
    Push::Single("test/single", "1.26.2", "single-2"),
];

/// The registry of [`SEED`] behind a front, and a scratch repository pinned at 1.26.1. `digests` has each tag
/// of REPO by its name, and the other repositories' pinned tags as `noarm-1.26.1` and `single-1.26.1`.
fn world() -> World {
    let (registry, pushed) = LocalRegistry::seeded(SEED);
    let mut digests: HashMap<String, String> = pushed
        .iter()
        .filter_map(|(name, digest)| {
            let tag = name.strip_prefix(REPO)?.strip_prefix(':')?;
            Some((tag.to_string(), digest.clone()))
        })
        .collect();
    assert_eq!(
        digests["latest"], digests["2.0.0"],
        "latest must be the same index as 2.0.0"
    );
    for other in ["noarm", "single"] {
        digests.insert(
            format!("{other}-1.26.1"),
            pushed[&format!("test/{other}:1.26.1")].clone(),
        );
    }
    let proxy = Proxy::start(&registry.url);
    let scratch = Scratch::new("bump");
    let world = World {
        registry,
        proxy,
        digests,
        scratch,
    };
    world.pin("1.26.1", "1.26.1");
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

    /// `xtask bump ARGS` in a process of its own, against the front, on the scratch pin unless ARGS name
    /// another registry or pin, with no proxy and no SSL_CERT_FILE from the machine running the tests (those
    /// have their own tests): its stdout, or its stderr when it fails.
    fn bump(&self, repository: &str, args: &[&str]) -> Result<String, String> {
        let given = |flag: &str| args.iter().any(|arg| arg.starts_with(&format!("{flag}=")));
        let mut command_line = vec![format!("--repository={repository}")];
        if !given("--registry") {
            command_line.push(format!("--registry={}", self.proxy.url));
        }
        if !given("--pin") {
            command_line.push(format!(
                "--pin={}",
                self.scratch.path("image.nix").display()
            ));
        }
        command_line.extend(args.iter().map(|arg| arg.to_string()));
        let command_line: Vec<&str> = command_line.iter().map(String::as_str).collect();
        let output = bump_process(&command_line, &GIT_IDENTITY, &[]);
        if output.status.success() {
            Ok(text(&output.stdout))
        } else {
            Err(text(&output.stderr))
        }
    }

    /// Runs a bump that must fail, and checks it left the pin untouched.
    fn refused(&self, repository: &str, args: &[&str]) -> String {
        let before = self.pin_file();
        let err = self.bump(repository, args).unwrap_err();
        assert_eq!(
            self.pin_file(),
            before,
            "a failed bump changed the pin file: {err}"
        );
        err
    }
}

/// Who commits in the scratch repositories.
const GIT_IDENTITY: [(&str, &str); 4] = [
    ("GIT_AUTHOR_NAME", "test"),
    ("GIT_AUTHOR_EMAIL", "test@example.invalid"),
    ("GIT_COMMITTER_NAME", "test"),
    ("GIT_COMMITTER_EMAIL", "test@example.invalid"),
];

fn pin_text(tag: &str, digest: &str) -> String {
    format!(
        "# The pin.\n{{\n  name = \"docker.io/journeyapps/powersync-service\";\n  tag = \"{tag}\";\n  digest = \"{digest}\";\n}}\n"
    )
}

#[test]
fn by_default_it_pins_the_newest_stable_patch_by_its_index_digest() {
    let world = world();
    world.bump(REPO, &[]).unwrap();
    assert_eq!(
        world.pin_file(),
        pin_text("1.26.3", &world.digests["1.26.3"])
    );
}

#[test]
fn a_patch_bump_takes_four_requests() {
    // The floor: the challenge (401), the token, the tag list, the chosen index.
    let world = world();
    world.bump(REPO, &["--dry-run"]).unwrap();
    assert_eq!(world.proxy.requests(), 4);
}

#[test]
fn dry_run_changes_nothing() {
    let world = world();
    let before = world.pin_file();
    world.bump(REPO, &["--dry-run"]).unwrap();
    assert_eq!(world.pin_file(), before);
}

#[test]
fn minor_and_major_moves_need_their_flags() {
    let world = world();
    world.bump(REPO, &["--allow-minor"]).unwrap();
    assert_eq!(
        world.pin_file(),
        pin_text("1.27.0", &world.digests["1.27.0"])
    );
    world.bump(REPO, &["--allow-major"]).unwrap();
    assert_eq!(world.pin_file(), pin_text("2.0.0", &world.digests["2.0.0"]));
}

#[test]
fn at_the_newest_patch_it_says_so_and_changes_nothing() {
    let world = world();
    world.pin("1.26.3", "1.26.3");
    let before = world.pin_file();
    let stdout = world.bump(REPO, &[]).unwrap();
    assert_eq!(world.pin_file(), before);
    // The message, then the request count in parentheses.
    let message = stdout
        .lines()
        .find_map(|line| line.strip_suffix(" registry requests)")?.rsplit_once(" ("))
        .map(|(message, _)| message);
    // The hint names the next step each flag allows, not only the newest tag.
    assert_eq!(
        message,
        Some(
            "already at newest patch: 1.26.3 (next: 1.27.0 with --allow-minor; 2.0.0 with --allow-major)"
        ),
        "{stdout}"
    );
}

#[test]
fn latest_resolves_to_the_concrete_tag_with_its_digest() {
    let world = world();
    let err = world.refused(REPO, &["--tag=latest"]);
    assert!(
        err.contains("latest is 2.0.0: 2.0.0 is a major move") && err.contains("--allow-major"),
        "{err}"
    );
    world
        .bump(REPO, &["--tag=latest", "--allow-major"])
        .unwrap();
    assert_eq!(world.pin_file(), pin_text("2.0.0", &world.digests["2.0.0"]));
}

#[test]
fn an_explicit_tag_is_pinned_when_the_policy_allows_it() {
    let world = world();
    world.bump(REPO, &["--tag=1.26.2"]).unwrap();
    assert_eq!(
        world.pin_file(),
        pin_text("1.26.2", &world.digests["1.26.2"])
    );
}

#[test]
fn next_tags_are_never_pinned() {
    let world = world();
    let err = world.refused(REPO, &["--tag=1.26.4-next"]);
    assert!(err.contains("not a stable X.Y.Z tag"), "{err}");
}

#[test]
fn a_missing_tag_is_reported() {
    let world = world();
    let err = world.refused(REPO, &["--tag=1.26.9"]);
    assert!(err.contains("tag 1.26.9") && err.contains("404"), "{err}");
}

#[test]
fn a_refused_token_is_reported() {
    let world = world();
    world.proxy.set_fault(Fault::DenyToken);
    let err = world.refused(REPO, &[]);
    assert!(err.contains("get a token") && err.contains("401"), "{err}");
}

#[test]
fn rate_limiting_past_the_deadline_is_named_at_once() {
    let world = world();
    world.proxy.set_fault(Fault::RateLimit);
    let started = Instant::now();
    let err = world.refused(REPO, &["--timeout=10"]);
    assert!(
        err.contains(
            "rate limited by the registry (429): it asks to retry after 30s; retried 0 times"
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn server_errors_are_reported() {
    let world = world();
    world.proxy.set_fault(Fault::ServerError);
    let err = world.refused(REPO, &[]);
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
            .bump(REPO, &[&format!("--registry=http://{closed}")])
            .unwrap_err()
    );
    assert!(err.contains("cannot reach the registry"), "{err}");
    assert_eq!(world.pin_file(), before);
}

#[test]
fn altered_manifest_bytes_are_caught_by_the_digest() {
    let world = world();
    world.proxy.set_fault(Fault::TamperManifests);
    let err = world.refused(REPO, &[]);
    assert!(err.contains("digest mismatch for 1.26.3"), "{err}");
}

#[test]
fn an_index_without_arm64_is_refused() {
    let world = world();
    world.pin("1.26.1", "noarm-1.26.1");
    let err = world.refused("test/noarm", &[]);
    assert!(err.contains("does not serve linux/arm64"), "{err}");
}

#[test]
fn a_single_platform_manifest_is_refused() {
    let world = world();
    world.pin("1.26.1", "single-1.26.1");
    let err = world.refused("test/single", &[]);
    assert!(err.contains("not a multi-arch index"), "{err}");
}

#[test]
fn a_malformed_pin_file_is_refused_untouched() {
    let world = world();
    world
        .scratch
        .write("image.nix", "{\n  tag = \"1.26.1\";\n}\n");
    let err = world.refused(REPO, &[]);
    assert!(
        err.contains("malformed pin file") && err.contains("`name` is missing"),
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
    world.bump(REPO, &["--page-size=2"]).unwrap();
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
    cmd!(sh, "git add image.nix").run().unwrap();
    cmd!(sh, "git commit --quiet -m initial").run().unwrap();
    world.bump(REPO, &["--commit"]).unwrap();
    let subject = cmd!(sh, "git log -1 --format=%s").read().unwrap();
    assert_eq!(subject, "chore(web-arm): bump powersync-service to 1.26.3");
    let changed = cmd!(sh, "git show --format= --numstat HEAD")
        .read()
        .unwrap();
    assert_eq!(changed, "2\t2\timage.nix");
}

// Issue 13, security.

#[test]
fn a_next_page_on_another_host_is_refused_and_gets_no_token() {
    let world = world();
    let other = Collector::start();
    world
        .proxy
        .set_fault(Fault::CrossHostLink(other.url.clone()));
    let err = world.refused(REPO, &["--page-size=2"]);
    assert!(
        err.contains("off the registry's origin") && err.contains(&other.url),
        "{err}"
    );
    assert!(other.requests().is_empty(), "{:?}", other.requests());
}

#[test]
fn a_next_page_loop_is_detected() {
    let world = world();
    world.proxy.set_fault(Fault::LinkLoop);
    let err = world.refused(REPO, &["--page-size=2"]);
    assert!(err.contains("loop back to"), "{err}");
    // The challenge, the token, the first page and the page that links to itself once more.
    assert!(world.proxy.requests() <= 4, "{}", world.proxy.requests());
}

#[test]
fn five_thousand_tags_at_a_hundred_a_page_are_read() {
    // Issue 19: a cap of 50 pages refused this; the cap is on tags, far above it.
    let world = world();
    world.proxy.set_fault(Fault::ExtraTags(5_000));
    world.bump(REPO, &["--page-size=100"]).unwrap();
    assert_eq!(
        world.pin_file(),
        pin_text("1.26.3", &world.digests["1.26.3"])
    );
    // 5,007 tags in pages of 100: 51 pages, plus the challenge, the token and the manifest.
    assert_eq!(world.proxy.requests(), 54);
}

#[test]
fn endless_empty_pages_run_into_the_deadline() {
    let world = world();
    world.proxy.set_fault(Fault::EndlessPages);
    let started = Instant::now();
    let err = world.refused(REPO, &["--timeout=1.5"]);
    assert!(
        err.contains("deadline of 1.5s ran out") && err.contains("list the tags (page"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn a_manifest_redirected_to_another_host_is_refused() {
    let world = world();
    // The other host serves the same registry, so its bytes would match their own digest.
    let mirror = Proxy::start(&world.registry.url);
    let collector = Collector::start();
    for other in [&mirror.url, &collector.url] {
        world
            .proxy
            .set_fault(Fault::RedirectManifests(other.clone()));
        let err = world.refused(REPO, &[]);
        assert!(
            err.contains("redirected (307)") && err.contains("follows no redirects"),
            "{err}"
        );
    }
    assert_eq!(mirror.requests(), 0);
    assert!(collector.requests().is_empty());
}

#[test]
fn a_slow_loris_registry_runs_into_the_deadline_which_names_the_request() {
    let world = world();
    world.proxy.set_fault(Fault::SlowLoris);
    let started = Instant::now();
    let err = world.refused(REPO, &["--timeout=1.5"]);
    assert!(
        err.contains("deadline of 1.5s ran out")
            && err.contains("list the tags")
            && err.contains("/tags/list"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_body_that_trickles_runs_into_the_same_deadline() {
    let world = world();
    world.proxy.set_fault(Fault::SlowBody);
    let started = Instant::now();
    let err = world.refused(REPO, &["--timeout=1.5"]);
    assert!(
        err.contains("deadline of 1.5s ran out") && err.contains("list the tags"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_timeout_that_is_not_a_positive_number_is_refused() {
    let world = world();
    for timeout in [0.0, -1.0, f64::NAN] {
        let err = world.refused(REPO, &[&format!("--timeout={timeout}")]);
        assert!(err.contains("is not a positive number of seconds"), "{err}");
    }
    assert_eq!(world.proxy.requests(), 0);
}

#[test]
fn an_oversize_manifest_is_called_too_large() {
    let world = world();
    world.proxy.set_fault(Fault::OversizeManifests);
    let err = world.refused(REPO, &[]);
    assert!(err.contains("response too large (limit 4 MiB)"), "{err}");
}

// Issue 13, policy.

#[test]
fn an_older_explicit_tag_is_a_downgrade_that_needs_its_flag() {
    let world = world();
    world.pin("1.26.3", "1.26.3");
    let err = world.refused(REPO, &["--tag=1.26.1"]);
    assert!(
        err.contains("1.26.1 is a patch downgrade") && err.contains("--allow-downgrade"),
        "{err}"
    );
    world.pin("1.27.0", "1.27.0");
    let err = world.refused(REPO, &["--tag=1.26.3", "--allow-minor"]);
    assert!(
        err.contains("minor downgrade") && err.contains("--allow-downgrade"),
        "{err}"
    );
    world
        .bump(
            REPO,
            &["--tag=1.26.3", "--allow-minor", "--allow-downgrade"],
        )
        .unwrap();
    assert_eq!(
        world.pin_file(),
        pin_text("1.26.3", &world.digests["1.26.3"])
    );
}

#[test]
fn latest_older_than_the_pin_is_a_downgrade() {
    let world = world();
    world.pin("2.0.0", "2.0.0");
    // latest moves back to 1.26.3's index (a publisher's rollback).
    world.registry.push_index(REPO, "latest", "1.26.3", BOTH);
    let err = world.refused(REPO, &["--tag=latest", "--allow-major"]);
    assert!(
        err.contains("latest is 1.26.3")
            && err.contains("downgrade")
            && err.contains("--allow-downgrade"),
        "{err}"
    );
}

#[test]
fn a_downgrade_is_named_so_in_the_commit() {
    let world = world();
    let sh = Shell::new().unwrap();
    let _dir = sh.push_dir(&world.scratch.root);
    world.pin("1.26.3", "1.26.3");
    cmd!(sh, "git add image.nix").run().unwrap();
    cmd!(
        sh,
        "git -c user.name=t -c user.email=t@example.invalid commit --quiet -m initial"
    )
    .run()
    .unwrap();
    let _name = sh.push_env("GIT_AUTHOR_NAME", "test");
    let _mail = sh.push_env("GIT_AUTHOR_EMAIL", "test@example.invalid");
    let _cname = sh.push_env("GIT_COMMITTER_NAME", "test");
    let _cmail = sh.push_env("GIT_COMMITTER_EMAIL", "test@example.invalid");
    world
        .bump(REPO, &["--tag=1.26.2", "--allow-downgrade", "--commit"])
        .unwrap();
    let subject = cmd!(sh, "git log -1 --format=%s").read().unwrap();
    assert_eq!(
        subject,
        "chore(web-arm): downgrade powersync-service from 1.26.3 to 1.26.2"
    );
}

#[test]
fn a_re_pushed_pinned_tag_is_reported_loudly_and_needs_its_flag() {
    let world = world();
    world.pin("1.26.3", "1.26.3");
    let repushed = world
        .registry
        .push_index(REPO, "1.26.3", "1.26.3 rebuilt", BOTH);
    assert_ne!(repushed, world.digests["1.26.3"]);
    // Up to date by version, but the pinned tag moved: checked, with one HEAD (still four requests).
    let err = world.refused(REPO, &[]);
    assert!(
        err.contains("RE-PUSHED TAG") && err.contains(&repushed),
        "{err}"
    );
    assert_eq!(world.proxy.requests(), 4);
    let err = world.refused(REPO, &["--tag=1.26.3"]);
    assert!(
        err.contains("RE-PUSHED TAG") && err.contains("--allow-repush"),
        "{err}"
    );
    world
        .bump(REPO, &["--tag=1.26.3", "--allow-repush"])
        .unwrap();
    assert_eq!(world.pin_file(), pin_text("1.26.3", &repushed));
}

#[test]
fn an_amd64_only_tag_is_refused_for_its_platform_and_its_policy_together() {
    let world = world();
    world
        .registry
        .push_index(REPO, "1.27.1", "amd64 only", &["amd64"]);
    let err = world.refused(REPO, &["--tag=1.27.1"]);
    assert!(
        err.contains("does not serve linux/arm64")
            && err.contains("minor move")
            && err.contains("--allow-minor"),
        "{err}"
    );
}

// Issue 13, one atomic change.

#[test]
fn commit_outside_a_repository_changes_nothing_and_asks_nothing_of_the_registry() {
    let world = world();
    let outside = std::env::temp_dir().join(format!("xtask-no-git-{}", std::process::id()));
    std::fs::create_dir_all(&outside).unwrap();
    let pin = outside.join("image.nix");
    std::fs::write(&pin, pin_text("1.26.1", &world.digests["1.26.1"])).unwrap();
    let err = format!(
        "{:#}",
        world
            .bump(REPO, &[&format!("--pin={}", pin.display()), "--commit"])
            .unwrap_err()
    );
    assert!(
        err.contains("--commit needs") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&pin).unwrap(),
        pin_text("1.26.1", &world.digests["1.26.1"])
    );
    assert_eq!(world.proxy.requests(), 0);
    let _ = std::fs::remove_dir_all(outside);
}

// Issue 13, performance (the keep-alive fronts are timed in src/bump/mod.rs).

#[test]
fn latest_takes_five_requests_and_three_when_it_is_the_pin() {
    // The floor: the challenge, the token, latest's index, the tag list, and one HEAD on the newest stable
    // tag (latest is usually the newest release); the index already fetched is the one pinned.
    let world = world();
    world
        .bump(REPO, &["--tag=latest", "--allow-major", "--dry-run"])
        .unwrap();
    assert_eq!(world.proxy.requests(), 5);
    world.pin("2.0.0", "2.0.0");
    world.proxy.reset_requests();
    world.bump(REPO, &["--tag=latest"]).unwrap();
    assert_eq!(world.proxy.requests(), 3);
}

// Issue 19: what gets pinned.

#[test]
fn index_entries_that_are_not_plain_image_manifests_are_refused_by_name() {
    let world = world();
    let oci_index = json!("application/vnd.oci.image.index.v1+json");
    let cases = [
        (
            IndexEdit::Arm64Entry("mediaType", oci_index),
            "its linux/arm64 entry (manifests[1]) is a nested index (application/vnd.oci.image.index.v1+json)",
        ),
        (
            IndexEdit::Arm64Entry("mediaType", json!("application/vnd.oci.image.config.v1+json")),
            "its linux/arm64 entry (manifests[1]) has media type application/vnd.oci.image.config.v1+json, \
             not an image manifest",
        ),
        (
            IndexEdit::Arm64Entry("digest", json!("md5:0123456789abcdef")),
            "its linux/arm64 entry (manifests[1]) has digest `md5:0123456789abcdef`, not sha256",
        ),
        (
            IndexEdit::Arm64Entry("digest", json!(format!("sha256:{}", "A".repeat(64)))),
            "not sha256:<64 hex> or sha512:<128 hex>",
        ),
        (
            IndexEdit::Arm64Entry("size", json!(-1)),
            "its linux/arm64 entry (manifests[1]) has size -1, not a manifest's byte count",
        ),
        (
            IndexEdit::Arm64Entry("size", json!("512")),
            "has size \"512\"",
        ),
        (
            IndexEdit::LabelledAsImage,
            "1.26.3 is not a usable index: the registry labels it application/vnd.oci.image.manifest.v1+json \
             but the document says application/vnd.oci.image.index.v1+json",
        ),
    ];
    for (edit, expected) in cases {
        world.proxy.set_fault(Fault::EditIndex(edit.clone()));
        let err = world.refused(REPO, &[]);
        assert!(
            err.contains(expected) && err.contains("Nothing was pinned"),
            "{edit:?}: {err}"
        );
        // The explicit-tag path checks the same.
        let err = world.refused(REPO, &["--tag=1.26.2"]);
        assert!(err.contains("1.26.2"), "{edit:?}: {err}");
    }
}

#[test]
fn an_index_without_a_media_type_anywhere_is_refused() {
    let world = world();
    world
        .proxy
        .set_fault(Fault::EditIndex(IndexEdit::Unlabelled));
    let err = world.refused(REPO, &[]);
    assert!(
        err.contains("1.26.3 is not a usable index: it declares no media type (no mediaType field; served as \
             application/json)"),
        "{err}"
    );
}

#[test]
fn latest_is_resolved_from_fetched_bytes_not_from_head_answers() {
    let world = world();
    // latest moves to 1.26.2's index; the front's HEAD answers claim every tag is latest.
    let latest = world.registry.push_index(REPO, "latest", "1.26.2", BOTH);
    assert_eq!(latest, world.digests["1.26.2"]);
    world.proxy.set_fault(Fault::LyingHead(latest.clone()));
    world
        .bump(REPO, &["--tag=latest", "--allow-major"])
        .unwrap();
    // Before issue 19 this was tag 2.0.0 with 1.26.2's digest.
    assert_eq!(world.pin_file(), pin_text("1.26.2", &latest));
}

#[test]
fn the_re_push_check_does_not_trust_head_either() {
    let world = world();
    world.pin("1.26.3", "1.26.3");
    world
        .proxy
        .set_fault(Fault::LyingHead(world.digests["1.26.3"].clone()));
    let repushed = world
        .registry
        .push_index(REPO, "1.26.3", "1.26.3 rebuilt", BOTH);
    let err = world.refused(REPO, &[]);
    assert!(
        err.contains("RE-PUSHED TAG") && err.contains(&repushed),
        "{err}"
    );
}

#[test]
fn odd_tags_are_skipped_and_counted_never_fatal_nor_aliased() {
    let world = world();
    for tag in ["1.26.05", "1.26.1234567890"] {
        world.registry.push_index(REPO, tag, tag, BOTH);
    }
    // Before issue 19: 1.26.1234567890 was chosen and its pin refused (while --dry-run said it was fine), or
    // 1.26.05 was pinned as if it were 1.26.5.
    let stdout = world.bump(REPO, &[]).unwrap();
    // The odd tags, listed after the count.
    let odd = stdout
        .lines()
        .find(|line| line.starts_with("skipped 2 odd tag(s)"))
        .and_then(|line| line.rsplit_once("): "))
        .map(|(_, odd)| odd);
    assert_eq!(odd, Some("1.26.05, 1.26.1234567890"), "{stdout}");
    assert_eq!(
        world.pin_file(),
        pin_text("1.26.3", &world.digests["1.26.3"])
    );
    let err = world.refused(REPO, &["--tag=1.26.05"]);
    assert!(err.contains("1.26.05 is not a stable X.Y.Z tag"), "{err}");
}

// Issue 19: what a registry may send.

#[test]
fn a_manifest_without_docker_content_digest_is_pinned_by_the_hash_of_its_bytes() {
    let world = world();
    world.proxy.set_fault(Fault::NoDigestHeader);
    world.bump(REPO, &[]).unwrap();
    assert_eq!(
        world.pin_file(),
        pin_text("1.26.3", &world.digests["1.26.3"])
    );
}

#[test]
fn a_sha512_docker_content_digest_is_checked_and_the_sha256_pinned() {
    let world = world();
    world.proxy.set_fault(Fault::Sha512Digest);
    world.bump(REPO, &[]).unwrap();
    assert_eq!(
        world.pin_file(),
        pin_text("1.26.3", &world.digests["1.26.3"])
    );
}

#[test]
fn an_unasked_gzip_body_is_decoded_before_it_is_hashed() {
    let world = world();
    world.proxy.set_fault(Fault::GzipManifests);
    world.bump(REPO, &[]).unwrap();
    assert_eq!(
        world.pin_file(),
        pin_text("1.26.3", &world.digests["1.26.3"])
    );
}

#[test]
fn a_429_is_retried_after_its_retry_after_in_seconds() {
    let world = world();
    world.proxy.set_fault(Fault::RateLimitUntil(
        Instant::now() + Duration::from_secs(1),
        "1".into(),
    ));
    let started = Instant::now();
    world.bump(REPO, &["--timeout=20"]).unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        world.pin_file(),
        pin_text("1.26.3", &world.digests["1.26.3"])
    );
}

#[test]
fn a_429_is_retried_after_its_retry_after_as_an_http_date() {
    let world = world();
    let at = SystemTime::now() + Duration::from_secs(2);
    world.proxy.set_fault(Fault::RateLimitUntil(
        Instant::now() + Duration::from_secs(1),
        http_date(at),
    ));
    let started = Instant::now();
    world.bump(REPO, &["--timeout=20"]).unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        world.pin_file(),
        pin_text("1.26.3", &world.digests["1.26.3"])
    );
}

#[test]
fn a_retry_after_date_past_the_deadline_is_printed_as_a_date() {
    let world = world();
    let date = http_date(SystemTime::now() + Duration::from_secs(120));
    world.proxy.set_fault(Fault::RateLimitUntil(
        Instant::now() + Duration::from_secs(60),
        date.clone(),
    ));
    let err = world.refused(REPO, &["--timeout=10"]);
    assert!(
        err.contains(&format!("it asks to retry at {date} (in 1")) && !err.contains("GMTs"),
        "{err}"
    );
}

/// IMF-fixdate, as a registry sends it.
fn http_date(at: SystemTime) -> String {
    let output = std::process::Command::new("date")
        .args([
            "-u",
            "-d",
            &format!(
                "@{}",
                at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
            ),
            "+%a, %d %b %Y %H:%M:%S GMT",
        ])
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

// Issue 19: the pin file.

#[test]
fn a_symlinked_pin_stays_a_symlink_and_its_target_is_rewritten() {
    let world = world();
    let target = world.scratch.path("pins/image.nix");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::rename(world.scratch.path("image.nix"), &target).unwrap();
    std::os::unix::fs::symlink("pins/image.nix", world.scratch.path("image.nix")).unwrap();
    world.bump(REPO, &[]).unwrap();
    let link = world.scratch.path("image.nix");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        std::path::Path::new("pins/image.nix")
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        pin_text("1.26.3", &world.digests["1.26.3"])
    );
}

#[test]
fn commit_through_a_symlinked_pin_commits_the_file_it_points_to() {
    let world = world();
    let sh = Shell::new().unwrap();
    let _dir = sh.push_dir(&world.scratch.root);
    std::fs::create_dir_all(world.scratch.path("pins")).unwrap();
    std::fs::rename(
        world.scratch.path("image.nix"),
        world.scratch.path("pins/image.nix"),
    )
    .unwrap();
    std::os::unix::fs::symlink("pins/image.nix", world.scratch.path("image.nix")).unwrap();
    cmd!(sh, "git add image.nix pins/image.nix").run().unwrap();
    let _name = sh.push_env("GIT_AUTHOR_NAME", "test");
    let _mail = sh.push_env("GIT_AUTHOR_EMAIL", "test@example.invalid");
    let _cname = sh.push_env("GIT_COMMITTER_NAME", "test");
    let _cmail = sh.push_env("GIT_COMMITTER_EMAIL", "test@example.invalid");
    cmd!(sh, "git commit --quiet -m initial").run().unwrap();
    world.bump(REPO, &["--commit"]).unwrap();
    let changed = cmd!(sh, "git show --format= --numstat HEAD")
        .read()
        .unwrap();
    assert_eq!(changed, "2\t2\tpins/image.nix");
    assert_eq!(cmd!(sh, "git status --porcelain").read().unwrap(), "");
}

// Issue 19: the command as an operator runs it, in its own process: its environment, its stderr, its syscalls.

const STRACE: Tool = Tool {
    program: "strace",
    install: "`apt-get install strace` (in `nix develop` it is there)",
};

/// Variables a bump reads from its environment, removed from the child's unless a test sets them.
const NETWORK_VARIABLES: [&str; 9] = [
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "SSL_CERT_FILE",
];

/// `xtask bump ARGS`, the built binary, with exactly the network variables in `env` (and the registry
/// variables of none). `wrapper` runs it under another program (strace).
fn bump_process(args: &[&str], env: &[(&str, &str)], wrapper: &[&str]) -> Output {
    let exe = env!("CARGO_BIN_EXE_xtask");
    let mut command = match wrapper {
        [] => Command::new(exe),
        [program, rest @ ..] => {
            let mut command = Command::new(program);
            command.args(rest).arg(exe);
            command
        }
    };
    command.arg("bump").args(args);
    for variable in NETWORK_VARIABLES
        .iter()
        .chain(&["POWERSYNC_REGISTRY", "POWERSYNC_REPOSITORY"])
    {
        command.env_remove(variable);
    }
    command.envs(env.iter().copied()).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn commit_does_not_echo_its_git_command_line() {
    let world = world();
    let sh = Shell::new().unwrap();
    let _dir = sh.push_dir(&world.scratch.root);
    cmd!(sh, "git add image.nix").run().unwrap();
    cmd!(
        sh,
        "git -c user.name=t -c user.email=t@example.invalid commit --quiet -m initial"
    )
    .run()
    .unwrap();
    let pin = world.scratch.path("image.nix");
    let output = bump_process(
        &[
            "--commit",
            "--registry",
            &world.proxy.url,
            "--repository",
            REPO,
            "--pin",
            pin.to_str().unwrap(),
        ],
        &[
            ("GIT_AUTHOR_NAME", "test"),
            ("GIT_AUTHOR_EMAIL", "test@example.invalid"),
            ("GIT_COMMITTER_NAME", "test"),
            ("GIT_COMMITTER_EMAIL", "test@example.invalid"),
        ],
        &[],
    );
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("committed: chore(web-arm): bump powersync-service to 1.26.3"),
        "{stdout}"
    );
    assert!(!stderr.contains("git commit"), "{stderr}");
}

#[test]
fn bump_goes_through_the_environments_proxy_and_no_proxy_skips_it() {
    let world = world();
    let forward = ForwardProxy::start();
    let ca = TestCa::generate();
    let tls = Proxy::start_tls(&world.registry.url, &ca);
    let pin = world.scratch.path("image.nix");
    let args = |registry: &str| -> Vec<String> {
        [
            "--dry-run",
            "--verbose",
            "--registry",
            registry,
            "--repository",
            REPO,
            "--pin",
            pin.to_str().unwrap(),
            "--ca-file",
            ca.ca.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let run = |registry: &str, env: &[(&str, &str)]| {
        let args = args(registry);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = bump_process(&args, env, &[]);
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        assert!(output.status.success(), "{env:?}\n{stdout}\n{stderr}");
        assert!(stdout.contains("1.26.1 -> 1.26.3"), "{stdout}");
        stderr
    };

    // HTTPS through the proxy (a CONNECT tunnel): every connection reaches the registry from the proxy.
    let stderr = run(&tls.url, &[("HTTPS_PROXY", &forward.url)]);
    assert!(
        stderr.contains(&format!(
            "bump: {}: via proxy {} (from HTTPS_PROXY)",
            tls.url, forward.url
        )),
        "{stderr}"
    );
    let peers = tls.peers();
    assert!(
        !peers.is_empty() && peers.iter().all(|p| *p == ForwardProxy::SOURCE),
        "{peers:?}"
    );
    let port = tls.url.rsplit(':').next().unwrap();
    assert!(
        forward.log().contains(&format!("CONNECT 127.0.0.1:{port}")),
        "{}",
        forward.log()
    );

    // NO_PROXY names the registry's host: straight there.
    tls.reset_requests();
    let stderr = run(
        &tls.url,
        &[
            ("HTTPS_PROXY", &forward.url),
            ("NO_PROXY", "localhost,127.0.0.1"),
        ],
    );
    assert!(
        stderr.contains("direct (NO_PROXY entry `127.0.0.1` matches 127.0.0.1)"),
        "{stderr}"
    );
    let peers = tls.peers();
    assert!(
        !peers.is_empty()
            && peers
                .iter()
                .all(|p| p.is_loopback() && *p != ForwardProxy::SOURCE),
        "{peers:?}"
    );

    // Plain HTTP takes HTTP_PROXY; HTTPS_PROXY is not for it.
    world.proxy.reset_requests();
    let stderr = run(
        &world.proxy.url,
        &[
            ("HTTP_PROXY", &forward.url),
            ("HTTPS_PROXY", "http://127.0.0.1:9"),
        ],
    );
    assert!(stderr.contains("(from HTTP_PROXY)"), "{stderr}");
    let peers = world.proxy.peers();
    assert!(
        !peers.is_empty() && peers.iter().all(|p| *p == ForwardProxy::SOURCE),
        "{peers:?}"
    );
}

#[test]
fn a_proxy_that_is_down_is_named_in_the_error() {
    let world = world();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let pin = world.scratch.path("image.nix");
    let before = world.pin_file();
    let output = bump_process(
        &[
            "--registry",
            &world.proxy.url,
            "--repository",
            REPO,
            "--pin",
            pin.to_str().unwrap(),
        ],
        &[("http_proxy", &format!("http://user:secret@{closed}"))],
        &[],
    );
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!(
            "through the proxy http://{closed} (from http_proxy)"
        )) && !stderr.contains("secret"),
        "{stderr}"
    );
    assert_eq!(world.pin_file(), before);
    assert_eq!(world.proxy.requests(), 0);
}

#[test]
fn tls_trusts_the_system_store_that_ssl_cert_file_names() {
    let world = world();
    let ca = TestCa::generate();
    let tls = Proxy::start_tls(&world.registry.url, &ca);
    let pin = world.scratch.path("image.nix");
    let args = [
        "--dry-run",
        "--registry",
        &tls.url,
        "--repository",
        REPO,
        "--pin",
        pin.to_str().unwrap(),
    ];
    let output = bump_process(&args, &[("SSL_CERT_FILE", ca.ca.to_str().unwrap())], &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    // Without it, the test CA is in no store bump reads.
    let output = bump_process(&args, &[], &[]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("UnknownIssuer"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn the_new_pin_reaches_the_disk_before_the_rename_makes_it_the_pin() {
    STRACE.require().unwrap();
    let world = world();
    let pin = world.scratch.path("image.nix");
    let trace = world.scratch.path("strace.log");
    let output = bump_process(
        &[
            "--registry",
            &world.proxy.url,
            "--repository",
            REPO,
            "--pin",
            pin.to_str().unwrap(),
        ],
        &[],
        &[
            "strace",
            "-f",
            "-qq",
            "-y",
            "-e",
            "trace=fsync,fdatasync,rename,renameat,renameat2",
            "-o",
            trace.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let trace = std::fs::read_to_string(&trace).unwrap();
    let position = |needle: &str| {
        trace
            .lines()
            .position(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} in:\n{trace}"))
    };
    let dir = world.scratch.root.canonicalize().unwrap();
    let file_synced = position(&format!("{}/.image.nix.xtask-tmp>)", dir.display()));
    let renamed = position(".image.nix.xtask-tmp\", ");
    let dir_synced = trace
        .lines()
        .skip(renamed)
        .any(|line| line.contains("fsync(") && line.contains(&format!("<{}>)", dir.display())));
    assert!(file_synced < renamed, "{trace}");
    assert!(
        dir_synced,
        "no fsync of the directory after the rename:\n{trace}"
    );
    assert_eq!(
        world.pin_file(),
        pin_text("1.26.3", &world.digests["1.26.3"])
    );
}

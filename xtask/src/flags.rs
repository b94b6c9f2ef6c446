//! The whole command line. Each subcommand gets a typed struct; its `run` lives in the module of the same name.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "Tasks for powersync-nix: a Nix flake that self-hosts the PowerSync Service on NixOS",
    arg_required_else_help = true
)]
pub struct Xtask {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run every check offline: Rust, Nix, the config schema, the VM test scripts and the alert rules.
    ///
    /// Each step is named and timed, and a failing step does not stop the others, so one run shows every
    /// problem. The run ends with `N passed, M failed` and exits non-zero if any step failed.
    ///
    /// Example: `cargo xtask test`, or `cargo xtask test --only nix-unit` while iterating.
    Test(Test),
    /// Dry-build hosts: evaluate `nixosConfigurations.<host>` and report what building it would take.
    ///
    /// Runs `nix build --dry-run` on the host's `config.system.build.toplevel` (what `nixos-rebuild
    /// dry-build` does) and prints how many derivations would be built and paths fetched. An evaluation
    /// error exits non-zero with Nix's own message. Needs the network (GitHub, cache.nixos.org).
    ///
    /// Example: `cargo xtask dry-build web-arm`, or `cargo xtask dry-build --all --show-trace`.
    DryBuild(DryBuild),
    /// Run the NixOS VM tests (`checks.<this system>.<name>`) with build logs, then summarize.
    ///
    /// Without names it runs every VM test. Needs the network, and KVM to be quick.
    ///
    /// Example: `cargo xtask vm-test --list`, `cargo xtask vm-test powersync-e2e`, or
    /// `cargo xtask vm-test powersync-e2e --interactive` for a Python prompt driving the VMs.
    VmTest(VmTest),
    /// Print the exact service config a host runs (offline), or check it with `--check`.
    ///
    /// Evaluates `hosts/<host>/modules/powersync/instance.nix` with the flake's `lib.renderInstance`, the
    /// function the module goes through, so the text is byte for byte the file the container mounts.
    /// `--check` also applies the config contract and validates against `@powersync/service-schema`.
    ///
    /// Example: `cargo xtask render web-arm`, or `cargo xtask render web-arm --check`.
    Render(Render),
    /// Move the image pin to a newer stable tag, verified: a two-line diff in modules/powersync/image.nix.
    ///
    /// Only that file moves: the VM tests' archive hashes (tests/vm/image.nix) are keyed by index digest, and
    /// the VM tests print the command that computes a missing one. Speaks the OCI distribution API (anonymous
    /// bearer token, paginated tag list, manifest by tag), follows no redirects and sends the token to the
    /// registry's own host only. By default only a newer patch of the pinned X.Y; never a `-next`
    /// pre-release; an older version only with --allow-downgrade; a pinned tag that moved (re-pushed) only
    /// with --allow-repush; `--tag latest` pins the X.Y.Z that has latest's digest. The pinned digest is the
    /// sha256 of the index bytes bump fetched (a Docker-Content-Digest, when sent, must match), and the index's
    /// linux/arm64 and linux/amd64 entries must be plain image manifests. Proxies come from HTTPS_PROXY,
    /// HTTP_PROXY, ALL_PROXY and NO_PROXY as curl reads them; TLS trusts the system CA store too. Any failure
    /// leaves the pin as it was. Needs the network (Docker Hub) unless --registry points elsewhere.
    ///
    /// Example: `cargo xtask bump --dry-run`, then `cargo xtask bump --commit`;
    /// `cargo xtask bump --tag 1.27.0 --allow-minor`.
    Bump(Bump),
    /// Measure `bump --dry-run` beside the curl+jq script it replaces (local registry, offline).
    ///
    /// Starts a local registry behind a token endpoint (as Docker Hub is) and reports the median wall time,
    /// registry requests and connections per bump of both (the built xtask binary, run directly), through
    /// three fronts: HTTP closing each connection, HTTP keep-alive without TCP_NODELAY, and the same over TLS.
    /// Needs docker-registry, curl, jq and openssl.
    ///
    /// Example: `cargo xtask bench --runs 20`.
    Bench(Bench),
    /// Check a deployed host: its own checks over SSH, plus those only the outside can make.
    ///
    /// Runs `powersync-verify --json` on the host (SSH to --target, default root@<host>; keys from your agent
    /// or ~/.ssh/config) and, at the same time, checks the public endpoint (--url, or https://<domain> from
    /// the host's instance.nix; never what the host reports): /probes/liveness answers 200
    /// over TLS, the certificate chain is valid (issuer and days to expiry; a warning under 14 days), HSTS
    /// is sent, the sync endpoint answers (401 without a token), the API and metrics ports do not answer
    /// from here, and with --jwt-file a real sync stream delivers a checkpoint. One table; each failure
    /// names its section in docs/runbook.md. Exits non-zero if any check fails (warnings pass).
    ///
    /// Example: `cargo xtask verify web-arm`, or `cargo xtask verify web-arm --jwt-file token.jwt --json`.
    Verify(Verify),
    /// Format the Nix files with alejandra (the pinned library, no binary needed) and the Rust code with rustfmt.
    ///
    /// Without paths it formats every tracked `.nix` file and runs `cargo fmt`; with paths (files or
    /// directories) it formats only the `.nix` files among them, which is what `nix fmt` passes.
    ///
    /// Example: `cargo xtask fmt`, or `cargo xtask fmt --check modules/`.
    Fmt(Fmt),
    /// Probe a running service with N concurrent sync streams and report what they saw.
    ///
    /// Opens the streams as the client SDKs do (`POST <url>/sync/stream`, a JWT from --jwt-file), inserts
    /// nothing itself, holds them for --duration, then reports connect time and time to the first
    /// `checkpoint_complete` (p50/p95/p99), refused and dropped streams and, with --write-cmd, how long a
    /// source write takes to reach every stream, with the machine it ran on. It answers "how many clients
    /// does this deployment hold?" before a cutover. Exits non-zero when no stream was accepted.
    ///
    /// Example: `cargo xtask load https://powersync.example.org --jwt-file tokens.txt --streams 150
    /// --write-cmd ./insert-marker.sh --write-every 5`, where the script inserts a row containing
    /// $POWERSYNC_LOAD_MARKER into a table the tokens' users sync.
    Load(Load),
    /// Compare what two services send the same users, bucket by bucket and row by row (for a cutover).
    ///
    /// For each token in --jwt-file (one user each), opens a sync stream on both URLs as the client SDKs do
    /// and reads it to `checkpoint_complete`, applying each operation as the SDK does. Per bucket it compares
    /// the rows a client ends up with (object type, id, data) and names every row missing or different on
    /// either side. A bucket on one side only is a difference, and so is a bucket whose operations do not add
    /// up to its checkpoint's checksum (the check the SDKs make). Checksums and counts are shown but not
    /// compared across the two services: they sum a bucket's whole history, which differs between instances
    /// holding the same rows. Bucket names are matched without the sync config version that
    /// `versioned_bucket_ids` puts in front (`3#lists["u1"]`). While the two differ, both streams stay open
    /// for up to --settle seconds and every new checkpoint is compared again, so a write still replicating on
    /// one side is not reported as a difference; the report says what moved while it waited. One table (user,
    /// buckets, rows, result); exits non-zero if any user got different data or could not be compared.
    /// Tokens are never printed: a user is named by the token's `sub` claim.
    ///
    /// Example: `cargo xtask compare https://old.example.org https://powersync.example.org
    /// --jwt-file sample-users.txt --settle 30`, where A is the service in use and B its replacement.
    Compare(Compare),
}

#[derive(Parser, Debug)]
pub struct Test {
    /// Run only this step.
    #[arg(long, value_enum)]
    pub only: Option<Step>,
    /// Run one step with no header or summary: how a run starts each side step in a process of its own.
    #[arg(long, value_enum, hide = true, conflicts_with = "only")]
    pub side_step: Option<Step>,
}

/// The steps of `cargo xtask test`, in the order they run.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `cargo fmt --check`.
    Rustfmt,
    /// `cargo clippy` with `-D warnings`.
    Clippy,
    /// `cargo nextest run --workspace --no-fail-fast`: every test runs, so one failure hides no other.
    CargoTest,
    /// Every tracked `.nix` file through Nix's own parser (`nix-instantiate --parse`).
    NixParse,
    /// The alejandra format check.
    NixFmt,
    /// `deadnix --fail`: no unused bindings or arguments.
    Deadnix,
    /// The Nix unit tests under `tests/unit/`, evaluated with real Nix, builtins only.
    NixUnit,
    /// The flake's `lib` evaluates offline with the committed flake.lock, and `nix flake check` accepts its
    /// `nixosModules`.
    FlakeLib,
    /// Rendered configs validated against the pinned official `@powersync/service-schema`.
    Schema,
    /// Each VM test's assembled `testScript` through the driver's checkers (ty, mypy, ruff, pyflakes).
    VmScripts,
    /// The sync configs through the service's own sync-rules engine, and each VM test's awaited rows
    /// evaluated for its token: a row the token cannot receive fails.
    SyncRules,
    /// The alert rules through `promtool check rules` and `promtool test rules`.
    Alerts,
}

#[derive(Parser, Debug)]
pub struct DryBuild {
    /// Hosts to dry-build (names under `nixosConfigurations`).
    pub hosts: Vec<String>,
    /// Dry-build every host.
    #[arg(long, conflicts_with = "hosts")]
    pub all: bool,
    /// Pass `--show-trace` to Nix for the full evaluation trace.
    #[arg(long)]
    pub show_trace: bool,
    /// The flake to use (default: this repository).
    #[arg(long, value_name = "DIR")]
    pub flake: Option<PathBuf>,
}

#[derive(Parser, Debug)]
pub struct VmTest {
    /// VM tests to run (default: all of them).
    pub names: Vec<String>,
    /// List the VM tests for this system and exit.
    #[arg(long)]
    pub list: bool,
    /// Build the test's interactive driver and start it (one test).
    #[arg(long)]
    pub interactive: bool,
    /// The flake to use (default: this repository).
    #[arg(long, value_name = "DIR")]
    pub flake: Option<PathBuf>,
}

#[derive(Parser, Debug)]
pub struct Render {
    /// The host whose config to print.
    pub host: String,
    /// Check the config (contract and official schema) instead of only printing it.
    #[arg(long)]
    pub check: bool,
    /// The repository to read the host from (default: this one).
    #[arg(long, value_name = "DIR")]
    pub flake: Option<PathBuf>,
}

#[derive(Parser, Debug)]
pub struct Bump {
    /// Pin this tag (X.Y.Z, or `latest` for the X.Y.Z it points at) instead of the newest allowed patch.
    #[arg(long)]
    pub tag: Option<String>,
    /// Allow moving to a newer minor version (X.Y+1.*).
    #[arg(long)]
    pub allow_minor: bool,
    /// Allow moving to a newer major version (implies --allow-minor).
    #[arg(long)]
    pub allow_major: bool,
    /// Allow moving to an older version (with --tag or `latest`); named a downgrade in the output and commit.
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Accept a pinned tag that now points at another digest (a re-pushed tag; look into it first).
    #[arg(long)]
    pub allow_repush: bool,
    /// Show what would be pinned; change nothing.
    #[arg(long, conflicts_with = "commit")]
    pub dry_run: bool,
    /// Commit the pin as `chore(web-arm): bump powersync-service to <tag>` (or `downgrade …`); checks git first.
    #[arg(long)]
    pub commit: bool,
    /// Registry base URL (for mirrors and tests).
    #[arg(
        long,
        env = "POWERSYNC_REGISTRY",
        default_value = "https://registry-1.docker.io"
    )]
    pub registry: String,
    /// Repository on the registry (default: the pin's name without `docker.io/`).
    #[arg(long, env = "POWERSYNC_REPOSITORY")]
    pub repository: Option<String>,
    /// The pin file to update (default: modules/powersync/image.nix).
    #[arg(long, value_name = "FILE")]
    pub pin: Option<PathBuf>,
    /// Also trust the CA certificates in this PEM file (a mirror's or a TLS-inspecting proxy's own CA), beside
    /// the public roots and the system store (SSL_CERT_FILE, else the distribution's bundle).
    #[arg(long, value_name = "FILE", alias = "ca-cert")]
    pub ca_file: Option<PathBuf>,
    /// Say how each registry host is reached (directly, or through which proxy from HTTPS_PROXY/HTTP_PROXY/
    /// ALL_PROXY, minus NO_PROXY), what TLS trusts, and each retry, on stderr.
    #[arg(long, short)]
    pub verbose: bool,
    /// Seconds the whole bump may take; when they run out, the error names the request that stalled.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub timeout: f64,
    /// Tags per page when listing (the registry may cap it).
    #[arg(long, hide = true)]
    pub page_size: Option<usize>,
}

#[derive(Parser, Debug)]
pub struct Bench {
    /// Runs of each side; the median is reported.
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
}

#[derive(Parser, Debug)]
pub struct Fmt {
    /// Report files that would change, change nothing, and fail if any would.
    #[arg(long)]
    pub check: bool,
    /// Files or directories to format (only `.nix` files are touched). Default: the whole repository.
    pub paths: Vec<PathBuf>,
}

#[derive(Parser, Debug)]
pub struct Load {
    /// The service's base URL, http or https (streams go to `<url>/sync/stream`).
    pub url: String,
    /// JWTs, one per line (blank lines and `#` comments skipped), handed out in turn across the streams.
    #[arg(long, value_name = "FILE")]
    pub jwt_file: PathBuf,
    /// Concurrent streams to open (1 to 1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub streams: u32,
    /// Seconds the run lasts, counted from the first stream's start; then every stream is closed (more than 0,
    /// at most 3600; decimals allowed, e.g. 0.5).
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = crate::load::parse_duration)]
    pub duration: std::time::Duration,
    /// Streams opened per second (1 to 1000) in the ramped mode; the ramp must end before the run does.
    #[arg(long, value_name = "PER_SEC", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub ramp: u32,
    /// Burst mode: open every stream at once (all released together) instead of ramping; the report names
    /// the mode, as burst and ramped figures are not comparable.
    #[arg(long, conflicts_with = "ramp")]
    pub burst: bool,
    /// Trust the CA certificates in this PEM file instead of the built-in roots (a test CA); verification stays on.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// A shell command (`sh -c`) that makes one source write whose synced row carries $POWERSYNC_LOAD_MARKER.
    #[arg(long, value_name = "SHELL")]
    pub write_cmd: Option<String>,
    /// Repeat the write every SECS seconds instead of once.
    #[arg(long, value_name = "SECS", requires = "write_cmd", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub write_every: Option<u64>,
    /// Seconds a write's marker has to arrive; no write starts later than this before the end (1 to 600).
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub write_timeout: u64,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Parser, Debug)]
pub struct Verify {
    /// The host (a name under hosts/), shown in the report and the default SSH target.
    pub host: String,
    /// Where to run powersync-verify over SSH (default: root@<host>).
    #[arg(long, env = "POWERSYNC_VERIFY_TARGET", value_name = "[USER@]HOST")]
    pub target: Option<String>,
    /// The public URL (default: https://<powersync.nginx.domain> of hosts/<host>/modules/powersync/instance.nix).
    /// Never taken from the host's report: --jwt-file's token goes to this URL.
    #[arg(long, env = "POWERSYNC_VERIFY_URL", value_name = "https://HOST[:PORT]")]
    pub url: Option<String>,
    /// The repository to read the host's public URL from (default: this one).
    #[arg(long, value_name = "DIR")]
    pub flake: Option<std::path::PathBuf>,
    /// A client JWT (one line) to open a real sync stream with; it is sent, never printed.
    #[arg(long, value_name = "FILE")]
    pub jwt_file: Option<std::path::PathBuf>,
    /// Trust this CA (PEM) instead of the public roots, e.g. for a staging certificate.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// A port that must not answer from outside (repeatable; default: the host's API and metrics ports).
    #[arg(long = "private-port", value_name = "PORT")]
    pub private_ports: Vec<u16>,
    /// Only the outside checks: no SSH.
    #[arg(long)]
    pub outside_only: bool,
    /// The SSH program.
    #[arg(
        long,
        env = "POWERSYNC_VERIFY_SSH",
        default_value = "ssh",
        value_name = "PROGRAM"
    )]
    pub ssh: String,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for a connection or an answer.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub timeout: u64,
    /// Seconds the sync stream has to deliver its first checkpoint.
    #[arg(long, default_value_t = 20, value_name = "SECONDS")]
    pub stream_timeout: u64,
}

#[derive(Parser, Debug)]
pub struct Compare {
    /// Base URL of one service (A), http or https (streams go to `<url>/sync/stream`).
    pub url_a: String,
    /// Base URL of the other service (B).
    pub url_b: String,
    /// JWTs, one per line (blank lines and `#` comments skipped): one user each, sent to both services.
    #[arg(long, value_name = "FILE")]
    pub jwt_file: PathBuf,
    /// Also trust the CA certificates in this PEM file, beside the public roots (a staging CA).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Seconds to wait, while the two differ, for new checkpoints that make them agree (0 to 600).
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub settle: u64,
    /// Seconds each side has to deliver a user's first complete checkpoint (1 to 3600).
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

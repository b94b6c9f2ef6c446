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
    /// Run every check offline: Rust format, clippy and tests; Nix parse, format, deadnix and unit tests.
    ///
    /// Each step is named and timed, and a failing step does not stop the others, so one run shows every
    /// problem. The run ends with `N passed, M failed` and exits non-zero if any step failed.
    ///
    /// Example: `cargo xtask test`, or `cargo xtask test --only nix-unit` while iterating.
    Test(Test),
    /// Format the Nix files with alejandra (the pinned library, no binary needed) and the Rust code with rustfmt.
    ///
    /// Without paths it formats every tracked `.nix` file and runs `cargo fmt`; with paths (files or
    /// directories) it formats only the `.nix` files among them, which is what `nix fmt` passes.
    ///
    /// Example: `cargo xtask fmt`, or `cargo xtask fmt --check modules/`.
    Fmt(Fmt),
}

#[derive(Parser, Debug)]
pub struct Test {
    /// Run only this step.
    #[arg(long, value_enum)]
    pub only: Option<Step>,
}

/// The steps of `cargo xtask test`, in the order they run.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `cargo fmt --check`.
    Rustfmt,
    /// `cargo clippy` with `-D warnings`.
    Clippy,
    /// `cargo test --workspace`.
    CargoTest,
    /// Every tracked `.nix` file through Nix's own parser (`nix-instantiate --parse`).
    NixParse,
    /// The alejandra format check.
    NixFmt,
    /// `deadnix --fail`: no unused bindings or arguments.
    Deadnix,
    /// The Nix unit tests under `tests/unit/`, evaluated with real Nix, builtins only.
    NixUnit,
    /// The flake's `lib` evaluates offline with the committed flake.lock.
    FlakeLib,
    /// Rendered configs validated against the pinned official `@powersync/service-schema`.
    Schema,
}

#[derive(Parser, Debug)]
pub struct Fmt {
    /// Report files that would change, change nothing, and fail if any would.
    #[arg(long)]
    pub check: bool,
    /// Files or directories to format (only `.nix` files are touched). Default: the whole repository.
    pub paths: Vec<PathBuf>,
}

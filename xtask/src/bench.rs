//! `cargo xtask bench`: measures the built `xtask bump --dry-run` against the curl+jq script it replaces. The
//! bench and the local registry it runs against are test machinery (xtask/testkit), so this binary only hands
//! itself to the testkit's `bench`, which cargo builds when asked for.

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use crate::flags;

impl flags::Bench {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let xtask = std::env::current_exe().context("find this binary")?;
        let runs = self.runs.to_string();
        cmd!(
            sh,
            "cargo run --quiet --package xtask-testkit --bin bench -- --runs {runs} --xtask {xtask}"
        )
        .run()
        .context("the bench failed")
    }
}

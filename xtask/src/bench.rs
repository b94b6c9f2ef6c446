//! `cargo xtask bench`: `bump --dry-run` against a local registry behind a token endpoint (as Docker Hub is),
//! side by side with the curl+jq script it replaces (xtask/bench/update-curl.sh): wall time and registry
//! requests per bump. A measurement, not a test: it prints numbers and asserts nothing.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use xshell::Shell;

use crate::{
    bump::local_registry::{LocalRegistry, Proxy},
    flags,
    tools::Tool,
    util,
};

const REPO: &str = "bench/powersync-service";
const CURL: Tool = Tool {
    program: "curl",
    install: "`apt-get install curl`",
};
const JQ: Tool = Tool {
    program: "jq",
    install: "`apt-get install jq`",
};

impl flags::Bench {
    pub fn run(self, _sh: &Shell) -> Result<()> {
        CURL.require()?;
        JQ.require()?;
        let registry = LocalRegistry::start();
        let digests = registry.push_release_history(REPO);
        let proxy = Proxy::start(&registry.url);
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).context("create the bench directory")?;
        let pin = dir.join("image.nix");
        std::fs::write(
            &pin,
            format!(
                "{{\n  name = \"docker.io/journeyapps/powersync-service\";\n  tag = \"1.26.1\";\n  digest = \"{}\";\n}}\n",
                digests["1.26.1"]
            ),
        )
        .context("write the bench pin")?;
        let xtask = std::env::current_exe().context("find this binary")?;
        let script = util::project_root().join("xtask/bench/update-curl.sh");
        let ours = measure(self.runs, &proxy, || {
            Command::new(&xtask)
                .args([
                    "bump",
                    "--dry-run",
                    "--registry",
                    &proxy.url,
                    "--repository",
                    REPO,
                    "--pin",
                ])
                .arg(&pin)
                .output()
        })?;
        let theirs = measure(self.runs, &proxy, || {
            Command::new("bash")
                .arg(&script)
                .env("REGISTRY", &proxy.url)
                .env("REPO", REPO)
                .env("PIN", &pin)
                .output()
        })?;
        let _ = std::fs::remove_dir_all(&dir);
        println!(
            "bump to the newest patch (1.26.1 -> 1.26.3), {} runs each, median wall time:",
            self.runs
        );
        println!("  {:<34} {:>8} {:>10}", "", "time", "requests");
        println!(
            "  {:<34} {:>6.1}ms {:>10}",
            "cargo xtask bump --dry-run",
            ms(ours.0),
            ours.1
        );
        println!(
            "  {:<34} {:>6.1}ms {:>10}",
            "curl+jq (xtask/bench/update-curl.sh)",
            ms(theirs.0),
            theirs.1
        );
        println!(
            "  ratio (curl+jq / xtask): {:.2}x time, {:.2}x requests",
            ms(theirs.0) / ms(ours.0),
            theirs.1 as f64 / ours.1 as f64
        );
        println!(
            "  on {} ({} cores)",
            machine(),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        Ok(())
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Median wall time and the requests of one run (they do not vary between runs).
fn measure(
    runs: usize,
    proxy: &Proxy,
    mut run: impl FnMut() -> std::io::Result<std::process::Output>,
) -> Result<(Duration, usize)> {
    let mut times = Vec::new();
    let mut requests = 0;
    for _ in 0..runs.max(1) {
        proxy.reset_requests();
        let started = Instant::now();
        let output = run().context("run a bump")?;
        times.push(started.elapsed());
        if !output.status.success() {
            bail!(
                "a bump failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        requests = proxy.requests();
    }
    times.sort();
    Ok((times[times.len() / 2], requests))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    format!("{cpu}, {}", std::env::consts::ARCH)
}

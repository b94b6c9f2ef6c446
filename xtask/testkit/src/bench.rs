//! `cargo xtask bench`: the built `xtask bump --dry-run` binary (run directly, so cargo's own start-up is not
//! counted) against a local registry behind a token endpoint (as Docker Hub is), side by side with the curl+jq
//! script it replaces (xtask/bench/update-curl.sh): wall time, registry requests and TCP connections per bump.
//! It runs through three fronts: plain HTTP closing every connection; plain HTTP keeping connections alive and
//! writing each response's head and body separately without TCP_NODELAY (where a client that reuses the
//! connection waits for Nagle to meet its delayed ACK, about 40 ms a request); and the latter over TLS. A measurement, not a test: it
//! prints numbers and asserts nothing.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use clap::Parser;

use xtask_testkit::{
    registry::{Front, LocalRegistry, Proxy, TestCa, OPENSSL},
    tools::Tool,
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

/// `cargo xtask bench` runs this with the xtask binary it was started as.
#[derive(Parser)]
struct Bench {
    /// Runs of each side; the median is reported.
    #[arg(long)]
    runs: usize,
    /// The built xtask binary to measure.
    #[arg(long)]
    xtask: PathBuf,
}

fn main() -> Result<()> {
    Bench::parse().run()
}

impl Bench {
    fn run(self) -> Result<()> {
        CURL.require()?;
        JQ.require()?;
        OPENSSL.require()?;
        let ca = TestCa::generate();
        let registry = LocalRegistry::start();
        let digests = registry.push_release_history(REPO);
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
        let xtask = &self.xtask;
        let script = xtask_testkit::project_root().join("xtask/bench/update-curl.sh");
        println!(
            "bump to the newest patch (1.26.1 -> 1.26.3), {} runs each, median wall time",
            self.runs
        );
        println!(
            "  on {} ({} cores), registry and front on 127.0.0.1",
            machine(),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        for (front, label) in [
            (Front::Closing, "HTTP front closing each connection"),
            (
                Front::KeepAliveNagle,
                "HTTP keep-alive front without TCP_NODELAY",
            ),
            (
                Front::TlsKeepAliveNagle,
                "TLS keep-alive front without TCP_NODELAY",
            ),
        ] {
            let proxy = match front {
                Front::TlsKeepAliveNagle => Proxy::start_tls(&registry.url, &ca),
                _ => Proxy::start_front(&registry.url, front),
            };
            let ours = measure(self.runs, &proxy, || {
                Command::new(xtask)
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
                    .arg("--ca-file")
                    .arg(&ca.ca)
                    .output()
            })?;
            // curl reads its extra CA from the environment; the script stays as it was.
            let theirs = measure(self.runs, &proxy, || {
                Command::new("bash")
                    .arg(&script)
                    .env("REGISTRY", &proxy.url)
                    .env("REPO", REPO)
                    .env("PIN", &pin)
                    .env("CURL_CA_BUNDLE", &ca.ca)
                    .output()
            })?;
            println!("{label}:");
            println!(
                "  {:<40} {:>8} {:>9} {:>12}",
                "", "time", "requests", "connections"
            );
            for (name, (time, requests, connections)) in [
                ("xtask bump --dry-run (built binary)", ours),
                ("curl+jq (xtask/bench/update-curl.sh)", theirs),
            ] {
                println!(
                    "  {name:<40} {:>6.1}ms {requests:>9} {connections:>12}",
                    ms(time)
                );
            }
            println!(
                "  xtask / curl+jq: {:.2}x the wall time",
                ms(ours.0) / ms(theirs.0)
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Median wall time, and the requests and connections of one run (they do not vary between runs).
fn measure(
    runs: usize,
    proxy: &Proxy,
    mut run: impl FnMut() -> std::io::Result<std::process::Output>,
) -> Result<(Duration, usize, usize)> {
    let mut times = Vec::new();
    let mut requests = 0;
    let mut connections = 0;
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
        connections = proxy.connections();
    }
    times.sort();
    Ok((times[times.len() / 2], requests, connections))
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

//! `cargo xtask verify <host>`: the post-deploy checklist as one command. The host's own checks come from
//! `powersync-verify --json` over SSH; the checks that must come from outside (TLS, HSTS, the public
//! probe, the sync endpoint, ports that must stay closed, optionally a real sync stream) run here, each on
//! its own thread while SSH runs. One table, every failure with the runbook section that fixes it.

mod checks;
mod host;
mod tls;

use std::{
    fs, thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context, Result};
use serde_json::json;
use xshell::Shell;

use crate::{flags, render};
use checks::{Check, Endpoint, Status};

/// Ports the module publishes on 127.0.0.1 by default, when the host does not say.
const DEFAULT_PRIVATE_PORTS: [u16; 2] = [8080, 9464];
const PORT_TIMEOUT: Duration = Duration::from_secs(3);

impl flags::Verify {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let started = Instant::now();
        let tls = tls::client_config(self.ca_file.as_deref())?;
        let token = self.token()?;
        let timeout = Duration::from_secs(self.timeout);
        let stream_deadline = Duration::from_secs(self.stream_timeout);
        let target = self
            .target
            .clone()
            .unwrap_or_else(|| format!("root@{}", self.host));
        let url = self.public_url(sh)?;
        if self.outside_only && url.is_none() {
            bail!("--outside-only needs a public URL: --url, or powersync.nginx.domain in the host's instance.nix");
        }
        let endpoint = url
            .as_deref()
            .map(|url| Endpoint::parse(url, tls.clone(), timeout))
            .transpose()?;

        let (report, outside) = thread::scope(|scope| -> Result<_> {
            // The checks that need only the URL start at once, while SSH runs on this thread.
            let early = endpoint.as_ref().map(|endpoint| {
                scope.spawn(|| endpoint_checks(endpoint, token.as_deref(), stream_deadline))
            });
            let report = (!self.outside_only).then(|| host::report(sh, &self.ssh, &target));
            let ports = if !self.private_ports.is_empty() {
                self.private_ports.clone()
            } else {
                match &report {
                    Some(report) if !report.private_ports.is_empty() => {
                        report.private_ports.clone()
                    }
                    _ => DEFAULT_PRIVATE_PORTS.to_vec(),
                }
            };
            let port_checks: Vec<_> = endpoint
                .as_ref()
                .map(|endpoint| {
                    ports
                        .iter()
                        .map(|&port| {
                            let host = endpoint.host.clone();
                            scope.spawn(move || checks::private_port(&host, port, PORT_TIMEOUT))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut outside = Vec::new();
            let stream = match early {
                Some(handle) => {
                    let (checks, stream) = join(handle);
                    outside.extend(checks);
                    Some(stream)
                }
                None => {
                    outside.push(Check::new(
                        Status::Fail,
                        "host-report",
                        &target,
                        format!(
                            "no public URL: hosts/{}/{} sets no powersync.nginx.domain (nginx off?) and --url was not given",
                            self.host,
                            render::INSTANCE
                        ),
                    ));
                    None
                }
            };
            // The table's order: the TLS and HTTP checks, the closed ports, then the stream.
            outside.extend(port_checks.into_iter().map(join));
            outside.extend(stream);
            Ok((report, outside))
        })?;

        let mut all = report.map(|report| report.checks).unwrap_or_default();
        all.extend(outside);
        let seconds = started.elapsed().as_secs_f64();
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&to_json(&self.host, &all, seconds))?
            );
        } else {
            print!("{}", table(&all, seconds));
        }
        let failed = all.iter().filter(|c| c.status == Status::Fail).count();
        if failed > 0 {
            bail!(
                "{failed} check(s) failed on {}: see the fix under each",
                self.host
            );
        }
        Ok(())
    }

    /// --url, else the one this repository's instance of the host names: never the host's own report, which
    /// a wrong or compromised host could point at a server that collects the --jwt-file token.
    fn public_url(&self, sh: &Shell) -> Result<Option<String>> {
        if let Some(url) = &self.url {
            return Ok(Some(url.clone()));
        }
        let root = self.flake.clone().unwrap_or_else(|| sh.current_dir());
        let instance = render::instance_file(&root, &self.host).with_context(|| {
            format!(
                "no --url, and {} names no instance to read the public URL from",
                self.host
            )
        })?;
        let url = render::evaluate(sh, &root, &instance, "publicUrl instance")?;
        Ok(url.as_str().map(str::to_owned))
    }

    /// The client JWT from --jwt-file, trimmed; it is used as a header only and never printed.
    fn token(&self) -> Result<Option<String>> {
        let Some(path) = &self.jwt_file else {
            return Ok(None);
        };
        let token = fs::read_to_string(path)
            .with_context(|| format!("read the JWT file {}", path.display()))?
            .trim()
            .to_owned();
        if token.is_empty() || token.contains(char::is_whitespace) {
            bail!("{} must hold one JWT and nothing else", path.display());
        }
        Ok(Some(token))
    }
}

/// The checks that need only the endpoint, each on its own thread; the sync stream's apart, as it goes last.
fn endpoint_checks(
    endpoint: &Endpoint,
    token: Option<&str>,
    stream_deadline: Duration,
) -> (Vec<Check>, Check) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    thread::scope(|scope| {
        let probe = scope.spawn(|| checks::liveness_and_hsts(endpoint));
        let certificate = scope.spawn(|| checks::certificate(endpoint, now));
        let sync = scope.spawn(|| checks::sync_reachable(endpoint));
        let stream = scope.spawn(|| match token {
            Some(token) => checks::sync_stream(endpoint, token, stream_deadline),
            None => Check::new(
                Status::Skip,
                "sync-stream",
                &format!("{}/sync/stream", endpoint.base),
                "no --jwt-file: a real stream was not opened",
            ),
        });
        let [liveness, hsts] = join(probe);
        (
            vec![liveness, join(certificate), hsts, join(sync)],
            join(stream),
        )
    })
}

fn join<T>(handle: thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn to_json(host: &str, all: &[Check], seconds: f64) -> serde_json::Value {
    json!({
        "host": host,
        "ok": all.iter().all(|c| c.status != Status::Fail),
        "seconds": (seconds * 100.0).round() / 100.0,
        "checks": all.iter().map(|c| json!({
            "status": c.status.as_str(),
            "id": c.id,
            "subject": c.subject,
            "detail": c.detail,
            "fix": c.fix(),
        })).collect::<Vec<_>>(),
    })
}

fn table(all: &[Check], seconds: f64) -> String {
    let width =
        |f: fn(&Check) -> usize, title: &str| all.iter().map(f).max().unwrap_or(0).max(title.len());
    let id_width = width(|c| c.id.len(), "CHECK");
    let subject_width = width(|c| c.subject.len(), "SUBJECT");
    let mut out = format!(
        "{:<6}  {:<id_width$}  {:<subject_width$}  DETAIL\n",
        "STATUS", "CHECK", "SUBJECT"
    );
    for check in all {
        out += &format!(
            "{:<6}  {:<id_width$}  {:<subject_width$}  {}\n",
            check.status.as_str(),
            check.id,
            check.subject,
            check.detail
        );
        if matches!(check.status, Status::Fail | Status::Warn) {
            out += &format!(
                "{:<6}  {:<id_width$}  {:<subject_width$}  fix: {}\n",
                "",
                "",
                "",
                check.fix()
            );
        }
    }
    let count = |status| all.iter().filter(|c| c.status == status).count();
    out += &format!(
        "{} checks: {} pass, {} warn, {} fail, {} skipped, in {seconds:.1} s\n",
        all.len(),
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail),
        count(Status::Skip)
    );
    out
}

//! The host's side of `verify`: `powersync-verify --json` over SSH. The SSH program is replaceable (--ssh,
//! POWERSYNC_VERIFY_SSH) for jump hosts and for the tests, whose stand-in runs the host script locally.

use anyhow::{Context, Result};
use serde_json::Value;
use xshell::{cmd, Shell};

use super::checks::{Check, Status};

/// What the host reported: its checks, and the ports that must be closed from outside. The public URL is
/// not the host's to say (verify.rs takes it from this repository).
pub struct Report {
    pub checks: Vec<Check>,
    pub private_ports: Vec<u16>,
}

/// Runs powersync-verify on `target`; a failure to get a report is itself a failed check.
pub fn report(sh: &Shell, ssh: &str, target: &str) -> Report {
    let failed = |detail: String| Report {
        checks: vec![Check::new(Status::Fail, "host-report", target, detail)],
        private_ports: Vec::new(),
    };
    // BatchMode: never prompt (a password prompt would hang the run); the key comes from the agent or
    // ~/.ssh/config, never from this repository. `--`: a target starting with `-` is a host name, not an option.
    let output = match cmd!(
        sh,
        "{ssh} -o BatchMode=yes -o ConnectTimeout=10 -- {target} powersync-verify --json"
    )
    .quiet()
    .ignore_status()
    .output()
    {
        Ok(output) => output,
        Err(error) => return failed(format!("cannot run {ssh}: {error}")),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    match parse(&stdout) {
        Ok(report) => report,
        Err(error) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let said = stderr.trim().lines().last().unwrap_or("").to_owned();
            let code = output
                .status
                .code()
                .map_or("a signal".to_owned(), |c| c.to_string());
            failed(format!(
                "{ssh} {target} powersync-verify --json exited with {code} and no report ({error:#}){}",
                if said.is_empty() { String::new() } else { format!(": {said}") }
            ))
        }
    }
}

/// Reads powersync-verify's JSON (modules/powersync/verify/verify.sh, the `--json` branch).
pub fn parse(text: &str) -> Result<Report> {
    let value: Value = serde_json::from_str(text).context("not JSON")?;
    let checks = value["checks"]
        .as_array()
        .context("no `checks` list")?
        .iter()
        .map(|check| {
            let field = |name: &str| {
                check[name]
                    .as_str()
                    .with_context(|| format!("a check without `{name}`"))
            };
            let status = field("status")?;
            Ok(Check::reported(
                Status::parse(status).with_context(|| format!("unknown status {status:?}"))?,
                field("id")?,
                field("subject")?,
                field("detail")?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let private_ports = value["private_ports"]
        .as_array()
        .map(|ports| {
            ports
                .iter()
                .filter_map(|port| port.as_u64().and_then(|p| u16::try_from(p).ok()))
                .collect()
        })
        .unwrap_or_default();
    Ok(Report {
        checks,
        private_ports,
    })
}

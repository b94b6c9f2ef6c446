//! `cargo xtask render <host>`: the exact service config a host runs, offline. It evaluates the host's
//! `hosts/<host>/modules/powersync/instance.nix` with `lib.renderInstance`, the function the module's
//! `finalSettings` goes through, so the text is the file the container mounts.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use xshell::{cmd, Shell};

use crate::{flags, schema, tools};

pub const INSTANCE: &str = "modules/powersync/instance.nix";

impl flags::Render {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let root = self.flake.unwrap_or_else(|| sh.current_dir());
        let instance = instance_file(&root, &self.host)?;
        let text = render(sh, &root, &instance)?;
        if !self.check {
            print!("{text}");
            return Ok(());
        }
        let contract = evaluate(
            sh,
            &root,
            &instance,
            "checkSettings (lib.instanceSettings instance)",
        )?;
        for warning in strings(&contract["warnings"]) {
            eprintln!("warning: {warning}");
        }
        let errors = strings(&contract["errors"]);
        if !errors.is_empty() {
            bail!(
                "{} breaks the config contract:\n- {}",
                instance.display(),
                errors.join("\n- ")
            );
        }
        let out = root.join("target/render");
        fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
        let file = out.join(format!("{}.yaml", self.host));
        fs::write(&file, &text).with_context(|| format!("write {}", file.display()))?;
        schema::validate(sh, &crate::util::project_root(), &[file])?;
        println!(
            "{}: the config contract holds and the schema accepts it",
            self.host
        );
        Ok(())
    }
}

pub fn instance_file(root: &Path, host: &str) -> Result<PathBuf> {
    let file = root.join("hosts").join(host).join(INSTANCE);
    if file.is_file() {
        return Ok(file);
    }
    let mut hosts: Vec<String> = fs::read_dir(root.join("hosts"))
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok())
                .filter(|entry| entry.path().join(INSTANCE).is_file())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    hosts.sort();
    let known = if hosts.is_empty() {
        "(none)".to_string()
    } else {
        hosts.join(", ")
    };
    bail!("no hosts/{host}/{INSTANCE}; hosts with a PowerSync instance: {known}")
}

/// The rendered config text.
pub fn render(sh: &Shell, root: &Path, instance: &Path) -> Result<String> {
    let value = evaluate(sh, root, instance, "renderInstance instance")?;
    value
        .as_str()
        .map(str::to_owned)
        .context("renderInstance did not return text")
}

/// Evaluates `lib.<call>` with `lib` = `<root>/lib` and `instance` = the instance file, as JSON.
pub fn evaluate(sh: &Shell, root: &Path, instance: &Path, call: &str) -> Result<Value> {
    tools::NIX_INSTANTIATE.require()?;
    let expr = format!(
        "let lib = import (/. + {}); instance = import (/. + {}); in lib.{call}",
        json_string(&root.join("lib")),
        json_string(instance),
    );
    let output = cmd!(sh, "nix-instantiate --eval --strict --json --expr {expr}")
        .ignore_status()
        .quiet()
        .output()
        .context("run nix-instantiate")?;
    if !output.status.success() {
        bail!(
            "evaluating {} failed:\n{}",
            instance.display(),
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    serde_json::from_slice(&output.stdout).context("read nix-instantiate's JSON")
}

fn json_string(path: &Path) -> String {
    Value::String(path.display().to_string()).to_string()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use xtask_testkit::Scratch;

    use crate::util::project_root;

    /// A scratch repository with this repository's lib and one host instance.
    fn repo_with(instance: &str) -> Scratch {
        let scratch = Scratch::new("render");
        std::os::unix::fs::symlink(project_root().join("lib"), scratch.path("lib")).unwrap();
        scratch.write(&format!("hosts/example/{INSTANCE}"), instance);
        scratch
    }

    fn run(scratch: &Scratch, host: &str, check: bool) -> Result<()> {
        flags::Render {
            host: host.into(),
            check,
            flake: Some(scratch.root.clone()),
        }
        .run(&Shell::new().unwrap())
    }

    #[test]
    fn renders_the_text_the_container_mounts() {
        let scratch = repo_with(
            r#"{ powersync = { replication.hostname = "db.example.supabase.co"; metrics.enable = false; }; v6egress.subnet4 = "10.1.2.0/24"; }"#,
        );
        let instance = scratch.path(&format!("hosts/example/{INSTANCE}"));
        let text = render(&Shell::new().unwrap(), &scratch.root, &instance).unwrap();
        let expected = "\
# PowerSync Service config generated by powersync-nix (lib.renderConfig): do not edit.
# Change services.powersync.settings instead.
port: 8080
replication:
  connections:
    - hostname: \"db.example.supabase.co\"
      port: 5432
      slot_name_prefix: \"powersync_selfhost_\"
      sslmode: \"verify-full\"
      type: \"postgresql\"
      uri: !env PS_SOURCE_DSN
storage:
  database: \"powersync_storage\"
  hostname: \"10.1.2.1\"
  password: !env PS_STORAGE_PASSWORD
  port: 5432
  sslmode: \"disable\"
  type: \"postgresql\"
  username: \"powersync_storage\"
sync_config:
  path: \"/config/sync-config.yaml\"
telemetry:
  disable_telemetry_sharing: true
";
        assert_eq!(text, expected);
        run(&scratch, "example", true).unwrap();
    }

    /// docs/commands.md shows the start of web-arm's config, up to its `…`: it must be what render prints.
    #[test]
    fn the_documented_render_of_web_arm_is_what_render_prints() {
        let root = project_root();
        let docs = fs::read_to_string(root.join("docs/commands.md")).unwrap();
        let shown = docs
            .split_once("$ cargo xtask render web-arm\n")
            .and_then(|(_, rest)| rest.split_once("…\n"))
            .expect("docs/commands.md shows `cargo xtask render web-arm` up to a `…` line")
            .0;
        let instance = root.join(format!("hosts/web-arm/{INSTANCE}"));
        let text = render(&Shell::new().unwrap(), &root, &instance).unwrap();
        assert!(
            shown.lines().count() >= 3 && text.starts_with(shown),
            "docs/commands.md shows:\n{shown}\nrender prints:\n{text}"
        );
    }

    #[test]
    fn an_unknown_host_lists_the_hosts_with_an_instance() {
        let scratch = repo_with("{ }");
        let err = format!("{:#}", run(&scratch, "web-amr", false).unwrap_err());
        assert!(
            err.contains("hosts with a PowerSync instance: example"),
            "{err}"
        );
    }

    #[test]
    fn check_refuses_a_contract_breach() {
        let scratch = repo_with("{ powersync.settings.api.port = 9000; }");
        let err = format!("{:#}", run(&scratch, "example", true).unwrap_err());
        assert!(err.contains("api.port is ignored"), "{err}");
    }

    #[test]
    fn check_refuses_what_the_schema_refuses() {
        // Present, so the contract is satisfied, but not a boolean: only the schema sees it.
        let scratch =
            repo_with(r#"{ powersync.settings.telemetry.disable_telemetry_sharing = "yes"; }"#);
        let err = format!("{:#}", run(&scratch, "example", true).unwrap_err());
        assert!(
            err.contains("does not match @powersync/service-schema"),
            "{err}"
        );
    }

    /// The first user's facts, read from the settings web-arm renders (not from the instance file), and the
    /// rendered text checked against the contract and the official schema.
    #[test]
    fn web_arm_renders_the_hosts_facts() {
        let sh = Shell::new().unwrap();
        let root = project_root();
        let instance = instance_file(&root, "web-arm").unwrap();
        let settings = evaluate(&sh, &root, &instance, "instanceSettings instance").unwrap();
        let source = &settings["replication"]["connections"][0];
        assert_eq!(source["hostname"], "db.majxbigjafpzayzboxsf.supabase.co");
        assert_eq!(source["port"], 5432);
        assert_eq!(source["uri"]["_env"], "PS_SOURCE_DSN");
        assert_eq!(source["sslmode"], "verify-full");
        assert_eq!(source["slot_name_prefix"], "powersync_selfhost_");
        assert_eq!(
            settings["client_auth"]["jwks_uri"],
            "https://majxbigjafpzayzboxsf.supabase.co/auth/v1/.well-known/jwks.json"
        );
        assert_eq!(
            settings["client_auth"]["audience"],
            serde_json::json!(["authenticated"])
        );
        assert_eq!(settings["port"], 8080);
        assert_eq!(settings["sync_config"]["path"], "/config/sync-config.yaml");
        assert_eq!(settings["telemetry"]["disable_telemetry_sharing"], true);
        let text = render(&sh, &root, &instance).unwrap();
        assert!(!text.contains("pooler"), "{text}");
        flags::Render {
            host: "web-arm".into(),
            check: true,
            flake: Some(root),
        }
        .run(&sh)
        .unwrap();
    }

    #[test]
    fn a_typo_in_the_instance_is_an_error() {
        let scratch = repo_with("{ powersync.replication.hostnme = \"x\"; }");
        let err = format!("{:#}", run(&scratch, "example", false).unwrap_err());
        assert!(err.contains("unknown key(s) hostnme"), "{err}");
    }
}

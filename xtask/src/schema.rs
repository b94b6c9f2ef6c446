//! The `schema` step: rendered configs validated against the official `@powersync/service-schema` (pinned in
//! tests/schema/package.json) by tests/schema/validate.mjs. The schema is weak (additionalProperties
//! everywhere), so this is the floor; lib.checkSettings and its unit tests are the real contract.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::tools;

/// Renders every `tests/schema/configs/*.nix` (each evaluates to the config text) and validates them all.
pub fn check_configs(sh: &Shell, root: &Path) -> Result<()> {
    tools::NIX_INSTANTIATE.require()?;
    let configs = crate::util::nix_files_in(&root.join("tests/schema/configs"))?;
    if configs.is_empty() {
        bail!("no configs to validate under tests/schema/configs");
    }
    let out_dir = root.join("target/schema");
    fs::create_dir_all(&out_dir).with_context(|| format!("create {}", out_dir.display()))?;
    let mut rendered = Vec::new();
    for config in &configs {
        let json = cmd!(sh, "nix-instantiate --eval --strict --json {config}")
            .read()
            .with_context(|| format!("render {}", config.display()))?;
        let text: String = serde_json::from_str(&json)
            .with_context(|| format!("{} must evaluate to the config text", config.display()))?;
        let stem = config.file_stem().context("config file without a name")?;
        let yaml = out_dir.join(stem).with_extension("yaml");
        fs::write(&yaml, text).with_context(|| format!("write {}", yaml.display()))?;
        rendered.push(yaml);
    }
    validate(sh, root, &rendered)
}

/// Runs the validator on YAML files; fails naming every invalid file and why.
pub fn validate(sh: &Shell, root: &Path, files: &[PathBuf]) -> Result<()> {
    tools::NODE.require()?;
    let schema_dir = root.join("tests/schema");
    if !schema_dir
        .join("node_modules/@powersync/service-schema")
        .is_dir()
    {
        bail!(
            "the pinned schema is not installed; run `npm ci --prefix {}`",
            schema_dir.display()
        );
    }
    let script = schema_dir.join("validate.mjs");
    cmd!(sh, "node {script} {files...}")
        .run()
        .context("a rendered config does not match @powersync/service-schema (details above)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use xtask_testkit::Scratch;

    use crate::util::project_root;

    fn validate_text(text: &str) -> Result<()> {
        let scratch = Scratch::new("schema");
        scratch.write("config.yaml", text);
        validate(
            &Shell::new().unwrap(),
            &project_root(),
            &[scratch.path("config.yaml")],
        )
    }

    #[test]
    fn telemetry_without_the_sharing_flag_is_invalid() {
        let config = "storage:\n  type: postgresql\ntelemetry:\n  prometheus_port: 9464\n";
        assert!(validate_text(config).is_err());
    }

    #[test]
    fn a_connection_without_type_is_invalid() {
        let config = "replication:\n  connections:\n    - uri: !env PS_SOURCE_DSN\n";
        assert!(validate_text(config).is_err());
    }

    #[test]
    fn env_without_the_ps_prefix_is_invalid() {
        assert!(validate_text("port: !env PORT::number\n").is_err());
    }

    #[test]
    fn env_placeholders_are_typed() {
        // The sharing flag is a boolean in the schema: a bare `!env` (a string) must fail, `::boolean` pass.
        assert!(
            validate_text("telemetry:\n  disable_telemetry_sharing: !env PS_NO_SHARING\n").is_err()
        );
        validate_text("telemetry:\n  disable_telemetry_sharing: !env PS_NO_SHARING::boolean\n")
            .unwrap();
    }
}

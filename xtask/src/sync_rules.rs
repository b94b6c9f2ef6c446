//! The `sync-rules` step: the sync configs and the VM tests' streams through the service's own sync-rules
//! engine, npm `@powersync/service-sync-rules` (pinned in tests/oracle/package.json), by
//! tests/oracle/sync-rules.mjs.
//!
//! - Every sync config the project ships or shows is parsed as the service parses it at start: a YAML file
//!   git knows whose top level has `bucket_definitions:` or `streams:`, and every fenced `yaml` block of
//!   that kind in a Markdown file. A `fatal` error (the service refuses the config) fails the step; warnings
//!   (the service logs them and runs) are printed.
//! - Every VM test that declares `sync` in tests/vm/scripts.nix (its server's sync config, its token's claims,
//!   the rows it writes, by marker) is evaluated: each row it waits for (all but those marked
//!   `awaited = false`, e.g. a membership row a parameter query reads) must land in a bucket the token
//!   receives, with the marker among the synced values the test greps for. Otherwise the VM test would wait
//!   until its timeout, so the step fails naming the row, its buckets and the token's. A row a test script
//!   writes by hand (SQL that writes, outside tests/vm/sync-rows.py) fails the step too: the engine never sees it.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use xshell::{cmd, Shell};

use crate::{nix, tools, util};

/// A VM test's stream as tests/vm/scripts.nix declares it.
struct Stream {
    test: String,
    config: PathBuf,
    claims: Value,
    /// marker → {table, values}
    rows: Map<String, Value>,
}

pub fn check(sh: &Shell, root: &Path) -> Result<()> {
    check_repository(sh, &root.join("tests/oracle"), root)
}

/// Checks the repository at `root` with the engine installed under `oracle` (its `sync-rules.mjs`).
fn check_repository(sh: &Shell, oracle: &Path, root: &Path) -> Result<()> {
    tools::NODE.require()?;
    tools::NIX_INSTANTIATE.require()?;
    if !oracle
        .join("node_modules/@powersync/service-sync-rules")
        .is_dir()
    {
        bail!(
            "the sync-rules engine is not installed; run `npm ci --prefix {}`",
            oracle.display()
        );
    }
    let streams = declared_streams(sh, root)?;
    let mut configs = shipped_configs(sh, root)?;
    for stream in &streams {
        let name = relative(root, &stream.config);
        if let std::collections::btree_map::Entry::Vacant(entry) = configs.entry(name) {
            let yaml = fs::read_to_string(&stream.config).with_context(|| {
                format!("read {} (the sync config of {})", entry.key(), stream.test)
            })?;
            entry.insert(yaml);
        }
    }
    if configs.is_empty() {
        bail!("no sync config found: no YAML file or Markdown block with `bucket_definitions:` or `streams:`");
    }
    let request = json!({
        "configs": configs.iter().map(|(name, yaml)| json!({"name": name, "yaml": yaml})).collect::<Vec<_>>(),
        "checks": streams.iter().map(|s| json!({
            "name": s.test,
            "config": relative(root, &s.config),
            "claims": s.claims,
            "rows": s.rows.values().collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let script = oracle.join("sync-rules.mjs");
    let answer = cmd!(sh, "node {script}")
        .stdin(request.to_string())
        .read()
        .context("run the sync-rules engine (tests/oracle/sync-rules.mjs)")?;
    let answer: Value = serde_json::from_str(&answer).context("read the engine's answer")?;

    let (mut problems, warnings) = config_verdicts(&answer["configs"]);
    problems.extend(undeclared_writes(root)?);
    for (stream, verdict) in streams
        .iter()
        .zip(answer["checks"].as_array().into_iter().flatten())
    {
        problems.extend(stream_problems(stream, verdict));
    }
    for warning in &warnings {
        println!("    warning: {warning}");
    }
    if !problems.is_empty() {
        bail!(
            "{} problem(s) found by the service's sync-rules engine:\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
    let rows: usize = streams.iter().map(|s| s.rows.len()).sum();
    println!(
        "    {} sync config(s) parse ({}); {} row(s) of {} VM test(s) reach their tokens",
        configs.len(),
        configs.keys().cloned().collect::<Vec<_>>().join(", "),
        rows,
        streams.len()
    );
    Ok(())
}

/// The `sync` declarations of tests/vm/scripts.nix.
fn declared_streams(sh: &Shell, root: &Path) -> Result<Vec<Stream>> {
    let expression = r#"{file}: let
      stream = spec: if spec.sync or null == null then null else {
        config = toString spec.sync.config;
        inherit (spec.sync) claims rows;
      };
    in builtins.mapAttrs (_: stream) (import file)"#;
    let tests = nix::eval_file_json(sh, root, "tests/vm/scripts.nix", expression)?;
    let mut streams = Vec::new();
    for (test, sync) in tests {
        if sync.is_null() {
            continue;
        }
        let rows = sync["rows"]
            .as_object()
            .with_context(|| format!("{test}: sync.rows is not an attribute set"))?
            .clone();
        for (marker, row) in &rows {
            if !row["table"].is_string() || !row["values"].is_object() {
                bail!("{test}: sync.rows.{marker} must be {{table = \"…\"; values = {{…}}; [awaited = false;]}}");
            }
        }
        streams.push(Stream {
            config: PathBuf::from(sync["config"].as_str().context("sync.config")?),
            claims: sync["claims"].clone(),
            rows,
            test,
        });
    }
    Ok(streams)
}

/// A row written by hand in a VM test's script escapes the check: rows are written only by
/// tests/vm/sync-rows.py, from the declaration. Comment lines are skipped.
fn undeclared_writes(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("tests/vm");
    let mut problems = Vec::new();
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(problems);
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "py"))
        .filter(|path| path.file_name().is_some_and(|name| name != "sync-rows.py"))
        .collect();
    files.sort();
    for file in files {
        let text = fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
        for (index, line) in text.lines().enumerate() {
            let upper = line.to_ascii_uppercase();
            if !line.trim_start().starts_with('#')
                && ["INSERT INTO", "UPDATE ", "DELETE FROM", "COPY "]
                    .iter()
                    .any(|sql| upper.contains(sql))
            {
                problems.push(format!(
                    "  {}:{}: a row written by hand, which the sync-rules engine never sees; declare it in tests/vm/scripts.nix (`sync.rows`) and write it with write_row:\n      {}",
                    relative(root, &file),
                    index + 1,
                    line.trim()
                ));
            }
        }
    }
    Ok(problems)
}

/// Every sync config in the repository: name (path, `:line` for a Markdown block) → YAML.
fn shipped_configs(sh: &Shell, root: &Path) -> Result<BTreeMap<String, String>> {
    let mut configs = BTreeMap::new();
    for file in util::known_files(sh, root, &["*.yaml", "*.yml"])? {
        let text = fs::read_to_string(root.join(&file))
            .with_context(|| format!("read {}", file.display()))?;
        if is_sync_config(&text) {
            configs.insert(file.display().to_string(), text);
        }
    }
    for file in util::known_files(sh, root, &["*.md"])? {
        let text = fs::read_to_string(root.join(&file))
            .with_context(|| format!("read {}", file.display()))?;
        for (line, block) in yaml_blocks(&text) {
            if is_sync_config(&block) {
                configs.insert(format!("{}:{line}", file.display()), block);
            }
        }
    }
    Ok(configs)
}

fn is_sync_config(yaml: &str) -> bool {
    yaml.lines()
        .any(|line| line.starts_with("bucket_definitions:") || line.starts_with("streams:"))
}

/// The fenced ```yaml blocks of a Markdown text, each with the line its first YAML line is on.
fn yaml_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    // Inside a fence: Some(Some(block)) for a YAML block, Some(None) for another language's.
    let mut inside: Option<Option<(usize, String)>> = None;
    for (index, line) in markdown.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        match (&mut inside, fence) {
            (Some(block), true) => {
                blocks.extend(block.take());
                inside = None;
            }
            (Some(Some((_, text))), false) => {
                text.push_str(line);
                text.push('\n');
            }
            (Some(None), false) | (None, false) => {}
            (None, true) => {
                let info = line.trim_start().trim_start_matches('`').trim();
                let yaml = info == "yaml" || info == "yml";
                inside = Some(yaml.then(|| (index + 2, String::new())));
            }
        }
    }
    blocks
}

/// Problems (fatal errors) and warnings the engine reported for the configs, each with file and line.
fn config_verdicts(configs: &Value) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    for config in configs.as_array().into_iter().flatten() {
        let name = config["name"].as_str().unwrap_or("?");
        for error in config["errors"].as_array().into_iter().flatten() {
            let at = match error["line"].as_u64() {
                Some(line) => format!("{name}, line {line}"),
                None => name.to_string(),
            };
            let message = error["message"].as_str().unwrap_or("?");
            if error["type"] == "warning" {
                warnings.push(format!("{at}: {message} (the service logs this and runs)"));
            } else {
                problems.push(format!(
                    "  {at}: {message} (the service refuses this sync config)"
                ));
            }
        }
    }
    (problems, warnings)
}

/// What keeps a VM test from receiving the rows it waits for.
fn stream_problems(stream: &Stream, verdict: &Value) -> Vec<String> {
    let test = &stream.test;
    let mut problems: Vec<String> = verdict["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|error| format!("  {test}: {}", error.as_str().unwrap_or("?")))
        .collect();
    let received: Vec<&str> = verdict["tokenBuckets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let rows = verdict["rows"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    for ((marker, row), evaluated) in stream.rows.iter().zip(rows) {
        if row["awaited"] == false {
            continue;
        }
        let buckets: Vec<&str> = evaluated["buckets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let data = evaluated["data"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let delivered: Vec<&Value> = buckets
            .iter()
            .zip(data)
            .filter(|(bucket, _)| received.contains(bucket))
            .map(|(_, data)| data)
            .collect();
        let what = format!(
            "waits for `{marker}` after writing {} {}",
            row["table"].as_str().unwrap_or("?"),
            row["values"]
        );
        if delivered.is_empty() {
            problems.push(format!(
                "  {test}: {what}, which lands in [{}], but the token {} receives only [{}]",
                buckets.join(", "),
                stream.claims,
                received.join(", ")
            ));
        } else if !delivered.iter().any(|data| mentions(data, marker)) {
            problems.push(format!(
                "  {test}: {what}; the token receives it, but as {} without the marker the test greps for",
                delivered[0]
            ));
        }
    }
    problems
}

fn mentions(data: &Value, marker: &str) -> bool {
    data.as_object()
        .into_iter()
        .flatten()
        .any(|(_, value)| match value {
            Value::String(text) => text.contains(marker),
            other => other.to_string().contains(marker),
        })
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::project_root;
    use xtask_testkit::Scratch;

    const CONFIG: &str = "bucket_definitions:
  user_data:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT * FROM profiles WHERE id = bucket.user_id
";

    /// A scratch repository with one sync config and one VM test declaring `rows` (Nix) for `sub = user-1`.
    fn repository(config: &str, rows: &str) -> Scratch {
        let scratch = Scratch::new("sync-rules");
        scratch.write("hosts/h/sync-config.yaml", config).write(
            "tests/vm/scripts.nix",
            &format!(
                r#"{{
  probe = {{
    machines = ["server"];
    sync = {{
      config = ../../hosts/h/sync-config.yaml;
      claims = {{sub = "user-1"; aud = "authenticated";}};
      rows = {{ {rows} }};
    }};
  }};
  other.machines = ["server"];
}}
"#
            ),
        );
        scratch
    }

    fn run(scratch: &Scratch) -> Result<()> {
        check_repository(
            &Shell::new().unwrap(),
            &project_root().join("tests/oracle"),
            &scratch.root,
        )
    }

    fn refused(scratch: &Scratch) -> String {
        format!("{:#}", run(scratch).unwrap_err())
    }

    const OWN_ROW: &str =
        r#"mine = {table = "profiles"; values = {id = "user-1"; name = "mine";};};"#;

    #[test]
    fn a_row_the_token_receives_passes() {
        run(&repository(CONFIG, OWN_ROW)).unwrap();
    }

    #[test]
    fn a_row_the_token_cannot_receive_fails() {
        // The split test's mistake: the row's id is its marker, while the config syncs the row whose id is sub.
        let err = refused(&repository(
            CONFIG,
            r#"through-nginx = {table = "profiles"; values = {id = "through-nginx"; name = "through-nginx";};};"#,
        ));
        assert!(err.contains("probe: waits for `through-nginx`"), "{err}");
        assert!(err.contains(r#"user_data["through-nginx"]"#), "{err}");
        assert!(
            err.contains(r#"receives only [user_data["user-1"]]"#),
            "{err}"
        );
    }

    #[test]
    fn a_row_of_a_table_the_config_does_not_sync_fails() {
        let err = refused(&repository(
            CONFIG,
            r#"note = {table = "notes"; values = {id = "user-1"; body = "note";};};"#,
        ));
        assert!(err.contains("lands in []"), "{err}");
    }

    #[test]
    fn a_marker_outside_the_synced_columns_fails() {
        let config = CONFIG.replace("SELECT *", "SELECT id");
        let err = refused(&repository(&config, OWN_ROW));
        assert!(err.contains("without the marker"), "{err}");
    }

    #[test]
    fn a_config_the_service_refuses_fails_with_its_line() {
        let config = CONFIG.replace("bucket.user_id", "bucket.owner");
        let err = refused(&repository(&config, OWN_ROW));
        assert!(err.contains("hosts/h/sync-config.yaml, line 5"), "{err}");
        assert!(err.contains("bucket parameters"), "{err}");
        assert!(
            err.contains("the service refuses this sync config"),
            "{err}"
        );
    }

    #[test]
    fn a_config_in_a_markdown_block_is_parsed() {
        let scratch = repository(CONFIG, OWN_ROW);
        scratch.write(
            "README.md",
            "# Example\n\n```nix\nbucket_definitions = 1;\n```\n\n```yaml\nbucket_definitions:\n  all:\n    data:\n      - SELECT name FROM profiles\n```\n",
        );
        let err = refused(&scratch);
        assert!(err.contains("README.md:8, line 4"), "{err}");
        assert!(err.contains("\"id\""), "{err}");
    }

    #[test]
    fn a_token_parameter_from_a_written_row_is_looked_up() {
        // A dynamic parameter query: the token reaches the team's bucket through a membership row the test
        // also writes, and nothing else.
        let config = "bucket_definitions:
  team:
    parameters: SELECT team_id FROM members WHERE user_id = request.user_id()
    data:
      - SELECT * FROM notes WHERE team_id = bucket.team_id
";
        let member = r#"member = {table = "members"; values = {id = "m1"; user_id = "user-1"; team_id = "t1";}; awaited = false;};"#;
        let note = |team: &str| {
            format!(
                r#"note = {{table = "notes"; values = {{id = "n1"; team_id = "{team}"; body = "note";}};}};"#
            )
        };
        run(&repository(config, &format!("{member} {}", note("t1")))).unwrap();
        let err = refused(&repository(config, &format!("{member} {}", note("t2"))));
        assert!(err.contains("waits for `note`"), "{err}");
        assert!(err.contains(r#"receives only [team["t1"]]"#), "{err}");
    }

    #[test]
    fn a_row_written_by_hand_in_a_vm_test_fails() {
        let scratch = repository(CONFIG, OWN_ROW);
        scratch.write(
            "tests/vm/probe.py",
            "# INSERT INTO in a comment is fine\nsource.succeed(\"psql -c \\\"insert into profiles (id) values ('x')\\\"\")\n",
        );
        scratch.write("tests/vm/sync-rows.py", "sql = 'INSERT INTO t'\n");
        let err = refused(&scratch);
        assert!(
            err.contains("tests/vm/probe.py:2: a row written by hand"),
            "{err}"
        );
        assert!(!err.contains("probe.py:1"), "{err}");
        assert!(!err.contains("sync-rows.py"), "{err}");
    }

    #[test]
    fn markdown_yaml_blocks_and_their_lines() {
        let blocks = yaml_blocks("a\n```sh\nx: 1\n```\n```yaml\nk: v\n```\n");
        assert_eq!(blocks, vec![(6, "k: v\n".to_string())]);
    }
}

//! The image pin file (modules/powersync/image.nix), the one file a bump rewrites. Its grammar is declared once,
//! in lib/image-pin.json, which lib/image.nix reads too: lines that are blank or `#` comments, then `{`, then
//! exactly the fields name, tag and digest, one per line as `  field = "value";` (two spaces), then `}`; the
//! file ends with a newline; each value matches its field's pattern. xtask/tests/fixtures/pins/ is the corpus on
//! which the tests below run both readers.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use anyhow::{bail, Context, Result};
use regex_lite::Regex;
use serde_json::Value;

use super::version::Version;
use crate::util;

/// The grammar as lib/image.nix reads it (`builtins.fromJSON (readFile ./image-pin.json)`).
const GRAMMAR: &str = include_str!("../../../lib/image-pin.json");

/// lib/image-pin.json's patterns, each anchored at both ends as `builtins.match` is.
#[derive(Debug)]
pub struct Grammar {
    ignored_line: Regex,
    field_line: Regex,
    /// (field, pattern, what a value should be).
    fields: Vec<(String, Regex, String)>,
}

impl Grammar {
    /// The grammar built into this binary.
    pub fn get() -> &'static Grammar {
        static BUILT: OnceLock<Grammar> = OnceLock::new();
        BUILT.get_or_init(|| {
            Grammar::from_json(GRAMMAR).expect("lib/image-pin.json is a valid grammar")
        })
    }

    fn from_json(text: &str) -> Result<Grammar> {
        let json: Value = serde_json::from_str(text).context("parse the pin grammar")?;
        let pattern = |value: &Value, what: &str| -> Result<Regex> {
            let pattern = value
                .as_str()
                .with_context(|| format!("{what} is not a string"))?;
            Regex::new(&format!("^(?:{pattern})$")).with_context(|| format!("compile {what}"))
        };
        let fields = json["fields"]
            .as_object()
            .context("`fields` is not an object")?
            .iter()
            .map(|(field, spec)| {
                let hint = spec["hint"]
                    .as_str()
                    .with_context(|| format!("{field}'s hint is not a string"))?;
                Ok((
                    field.clone(),
                    pattern(&spec["pattern"], field)?,
                    hint.to_string(),
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Grammar {
            ignored_line: pattern(&json["ignoredLine"], "ignoredLine")?,
            field_line: pattern(&json["fieldLine"], "fieldLine")?,
            fields,
        })
    }

    /// Whether `value` is a valid `field` (false for a field the grammar does not know).
    pub fn matches(&self, field: &str, value: &str) -> bool {
        self.field(field)
            .is_some_and(|(_, pattern, _)| pattern.is_match(value))
    }

    fn field(&self, field: &str) -> Option<&(String, Regex, String)> {
        self.fields.iter().find(|(name, _, _)| name == field)
    }

    /// `  field = "value";` → (field, value).
    fn assignment<'a>(&self, line: &'a str) -> Option<(&'a str, &'a str)> {
        let captures = self.field_line.captures(line)?;
        Some((captures.get(1)?.as_str(), captures.get(2)?.as_str()))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pin {
    pub path: PathBuf,
    text: String,
    pub name: String,
    pub tag: String,
    pub version: Version,
    pub digest: String,
}

impl Pin {
    pub fn read(path: &Path) -> Result<Pin> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        Pin::parse(path, text).with_context(|| format!("malformed pin file {}", path.display()))
    }

    fn parse(path: &Path, text: String) -> Result<Pin> {
        Pin::parse_with(Grammar::get(), path, text)
    }

    fn parse_with(grammar: &Grammar, path: &Path, text: String) -> Result<Pin> {
        let values = layout(grammar, &text)?;
        let value = |field: &str| -> Result<String> {
            values
                .iter()
                .find(|(key, _)| key == field)
                .map(|(_, value)| value.clone())
                .with_context(|| format!("`{field}` is missing"))
        };
        let unknown: Vec<&str> = values
            .iter()
            .map(|(key, _)| key.as_str())
            .filter(|key| grammar.field(key).is_none())
            .collect();
        if !unknown.is_empty() {
            bail!("unknown field(s) {}", unknown.join(", "));
        }
        let checked = |field: &str| -> Result<String> {
            let value = value(field)?;
            let (_, pattern, hint) = grammar
                .field(field)
                .with_context(|| format!("lib/image-pin.json has no field `{field}`"))?;
            if !pattern.is_match(&value) {
                bail!("`{field}` = \"{value}\" is not {hint}");
            }
            Ok(value)
        };
        let name = checked("name")?;
        let tag = checked("tag")?;
        let digest = checked("digest")?;
        let version = Version::parse_stable(&tag)
            .with_context(|| format!("`tag` = \"{tag}\" is not a stable X.Y.Z tag"))?;
        Ok(Pin {
            path: path.to_path_buf(),
            text,
            name,
            tag,
            version,
            digest,
        })
    }

    /// The repository on its registry: the name without Docker Hub's host.
    pub fn repository(&self) -> &str {
        self.name.strip_prefix("docker.io/").unwrap_or(&self.name)
    }

    /// The file with the tag and digest lines rewritten; every other byte stays as it was.
    pub fn updated(&self, tag: &str, digest: &str) -> Result<String> {
        let mut out = String::with_capacity(self.text.len());
        for line in self.text.split_inclusive('\n') {
            match Grammar::get().assignment(line.trim_end_matches('\n')) {
                Some(("tag", _)) => out.push_str(&format!("  tag = \"{tag}\";\n")),
                Some(("digest", _)) => out.push_str(&format!("  digest = \"{digest}\";\n")),
                _ => out.push_str(line),
            }
        }
        Pin::parse(&self.path, out.clone())
            .context("the rewritten pin would not parse; nothing was written")?;
        Ok(out)
    }

    /// Replaces the file in one rename: readers see the old pin or the new one, never a mix.
    pub fn write(&self, text: &str) -> Result<()> {
        util::write_atomically(&self.path, text)
    }
}

/// The layout above → the (field, value) pairs in file order; any other line is an error naming it.
fn layout(grammar: &Grammar, text: &str) -> Result<Vec<(String, String)>> {
    let Some(text) = text.strip_suffix('\n') else {
        bail!("the file does not end with a newline");
    };
    let significant: Vec<(usize, &str)> = text
        .split('\n')
        .enumerate()
        .map(|(index, line)| (index + 1, line))
        .filter(|(_, line)| !grammar.ignored_line.is_match(line))
        .collect();
    match significant.as_slice() {
        [(_, "{"), body @ .., (_, "}")] => {
            let mut values: Vec<(String, String)> = Vec::new();
            for (number, line) in body {
                let Some((key, value)) = grammar.assignment(line) else {
                    bail!("line {number}: `{line}` is not a `  field = \"value\";` line (two spaces, one field a line)");
                };
                if values.iter().any(|(seen, _)| seen == key) {
                    bail!("`{key}` is set on more than one line; keep one");
                }
                values.push((key.to_string(), value.to_string()));
            }
            Ok(values)
        }
        [(_, "{"), ..] => bail!("expected `}}` as the last line that is not blank or a comment"),
        _ => bail!("expected `{{` as the first line that is not blank or a comment"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xtask_testkit::Scratch;

    use crate::tools;

    pub const PIN: &str = "# comment\n{\n  name = \"docker.io/journeyapps/powersync-service\";\n  tag = \"1.26.1\";\n  digest = \"sha256:413a0c813e96935ebe7203b5759f8a594a7b7cd8aa42134713e63af637e0f079\";\n}\n";

    #[test]
    fn the_committed_pin_parses() {
        let pin = Pin::read(&util::project_root().join("modules/powersync/image.nix")).unwrap();
        assert_eq!(pin.repository(), "journeyapps/powersync-service");
        assert_eq!(pin.version, Version::parse_stable("1.26.1").unwrap());
    }

    /// The corpus lib/image.nix reads too (tests/unit/image.nix): `good-*` files are accepted, `bad-*` refused.
    #[test]
    fn every_pin_in_the_corpus_is_judged_as_lib_image_nix_judges_it() {
        let corpus = util::project_root().join("xtask/tests/fixtures/pins");
        let mut verdicts = Vec::new();
        for entry in std::fs::read_dir(&corpus).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let accepted = Pin::read(&path).is_ok();
            assert!(
                name.starts_with("good-") || name.starts_with("bad-"),
                "{name}"
            );
            if accepted != name.starts_with("good-") {
                verdicts.push(format!("{name}: accepted = {accepted}"));
            }
        }
        assert!(verdicts.is_empty(), "pin.rs disagrees: {verdicts:#?}");
    }

    /// The same corpus through real Nix, so the two readers are compared on one run, not two claims.
    #[test]
    fn nix_and_pin_rs_accept_exactly_the_same_corpus_files() {
        tools::NIX_INSTANTIATE.require().unwrap();
        let root = util::project_root();
        let corpus = root.join("xtask/tests/fixtures/pins");
        let expr = format!(
            "let image = import {}/lib/image.nix; dir = {}; in builtins.listToAttrs (map (f: {{ name = f; \
             value = (builtins.tryEval (builtins.deepSeq (image.imagePin (dir + \"/${{f}}\")) true)).success; }}) \
             (builtins.attrNames (builtins.readDir dir)))",
            root.display(),
            corpus.display()
        );
        let output = std::process::Command::new("nix-instantiate")
            .args(["--eval", "--strict", "--json", "-E", &expr])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let nix: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let nix = nix.as_object().unwrap();
        assert!(nix.len() > 20, "{nix:?}");
        for (file, accepted) in nix {
            let ours = Pin::read(&corpus.join(file)).is_ok();
            assert_eq!(
                Some(ours),
                accepted.as_bool(),
                "{file}: pin.rs {ours}, Nix {accepted}"
            );
        }
    }

    /// One grammar, not two kept alike: with a lib/image-pin.json that also allows uppercase hex digests, Nix
    /// (a copy of lib/image.nix beside it) and pin.rs both accept the corpus file they both refuse today.
    #[test]
    fn both_readers_take_the_grammar_from_lib_image_pin_json() {
        tools::NIX_INSTANTIATE.require().unwrap();
        let root = util::project_root();
        let file = root.join("xtask/tests/fixtures/pins/bad-uppercase-digest.pin");
        let text = std::fs::read_to_string(&file).unwrap();
        let strict = "\"sha256:[0-9a-f]{64}\"";
        assert!(GRAMMAR.contains(strict), "{GRAMMAR}");
        let lenient = GRAMMAR.replace(strict, "\"sha256:[0-9a-fA-F]{64}\"");
        let scratch = Scratch::new("pin-grammar");
        scratch
            .write(
                "lib/image.nix",
                &std::fs::read_to_string(root.join("lib/image.nix")).unwrap(),
            )
            .write("lib/image-pin.json", &lenient);
        let nix_accepts = |lib: &Path| {
            let expr = format!(
                "builtins.deepSeq ((import {}/image.nix).imagePin {}) true",
                lib.display(),
                file.display()
            );
            std::process::Command::new("nix-instantiate")
                .args(["--eval", "--strict", "-E", &expr])
                .output()
                .unwrap()
                .status
                .success()
        };
        assert!(!nix_accepts(&root.join("lib")));
        assert!(Pin::parse(&file, text.clone()).is_err());
        assert!(nix_accepts(&scratch.path("lib")));
        let grammar = Grammar::from_json(&lenient).unwrap();
        Pin::parse_with(&grammar, &file, text).unwrap();
    }

    #[test]
    fn the_vm_tests_throw_the_exact_hint_for_a_missing_hash() {
        tools::NIX_INSTANTIATE.require().unwrap();
        let root = util::project_root();
        for (system, arch) in [("x86_64-linux", "amd64"), ("aarch64-linux", "arm64")] {
            let expr = format!(
                "(import {}/tests/vm/lib.nix {{ pkgs = {{ stdenv.hostPlatform.system = \"{system}\"; \
                 dockerTools.pullImage = a: a; lib = {{}}; }}; self = {{}}; sops-nix = {{}}; }}).image",
                root.display()
            );
            let output = std::process::Command::new("nix-instantiate")
                .args(["--eval", "--strict", "-E", &expr])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            let pin = Pin::read(&root.join("modules/powersync/image.nix")).unwrap();
            let (name, tag, digest) = (&pin.name, &pin.tag, &pin.digest);
            let command = format!(
                "nix --extra-experimental-features 'nix-command flakes' shell nixpkgs#nix-prefetch-docker \
                 nixpkgs#jq --command sh -c 'nix --extra-experimental-features nix-command hash to-sri \
                 --type sha256 \"$(nix-prefetch-docker --quiet --json --image-name {name} \
                 --image-digest {digest} --final-image-name {name} --final-image-tag {tag} --arch {arch} \
                 --os linux | jq -r \".hash // .sha256\")\"'"
            );
            assert!(!output.status.success());
            assert!(
                stderr.contains(&command)
                    && stderr.contains(&format!("\"{digest}\".{system} = \"sha256-...\";")),
                "{system}: {stderr}"
            );
        }
    }

    #[test]
    fn a_rewrite_changes_exactly_the_tag_and_digest_lines() {
        let scratch = Scratch::new("pin");
        scratch.write("image.nix", PIN);
        let pin = Pin::read(&scratch.path("image.nix")).unwrap();
        let digest = format!("sha256:{}", "b".repeat(64));
        pin.write(&pin.updated("1.26.3", &digest).unwrap()).unwrap();
        let after = scratch.read("image.nix");
        let changed: Vec<(&str, &str)> = PIN
            .lines()
            .zip(after.lines())
            .filter(|(before, after)| before != after)
            .collect();
        assert_eq!(
            changed,
            vec![
                ("  tag = \"1.26.1\";", "  tag = \"1.26.3\";"),
                (
                    "  digest = \"sha256:413a0c813e96935ebe7203b5759f8a594a7b7cd8aa42134713e63af637e0f079\";",
                    &*format!("  digest = \"{digest}\";")
                ),
            ]
        );
        assert_eq!(PIN.lines().count(), after.lines().count());
    }

    #[test]
    fn malformed_pins_are_refused_with_the_reason() {
        let cases = [
            (PIN.replace("  tag = \"1.26.1\";\n", ""), "`tag` is missing"),
            (PIN.replace("1.26.1", "1.26.1-next"), "not a stable X.Y.Z"),
            (
                PIN.replace("sha256:413a", "sha256:413A"),
                "64 lowercase hex",
            ),
            (
                PIN.replace("}\n", "  tag = \"1.0.0\";\n}\n"),
                "more than one line",
            ),
            (
                PIN.replace("}\n", "  platform = \"linux/arm64\";\n}\n"),
                "unknown field(s) platform",
            ),
        ];
        for (text, reason) in cases {
            let scratch = Scratch::new("pin-bad");
            scratch.write("image.nix", &text);
            let err = format!("{:#}", Pin::read(&scratch.path("image.nix")).unwrap_err());
            assert!(
                err.contains("malformed pin file") && err.contains(reason),
                "{reason}: {err}"
            );
        }
    }

    /// The hint's command after `nix shell … --command`, run for real by `sh` with jq and a Nix that has no
    /// experimental feature switched on, nix-prefetch-docker standing in as a script printing each form it
    /// prints (older: base32 `sha256`, newer: SRI `hash`): each must give the SRI hash of the same archive.
    #[test]
    fn the_hint_turns_either_prefetcher_output_into_the_same_sri_hash() {
        tools::NIX_INSTANTIATE.require().unwrap();
        let scratch = Scratch::new("hint");
        scratch.write("archive", "a docker archive stands in here");
        let archive = scratch.path("archive");
        let output = |command: &mut std::process::Command| {
            let output = command
                .output()
                .unwrap_or_else(|e| panic!("{command:?}: {e} (apt-get install jq nix-bin)"));
            let said = String::from_utf8_lossy(&output.stderr).to_string();
            assert!(output.status.success(), "{command:?}: {said}");
            String::from_utf8(output.stdout).unwrap().trim().to_string()
        };
        let root = crate::util::project_root();
        let hint: String = serde_json::from_str(&output(
            std::process::Command::new("nix-instantiate").args([
                "--eval",
                "--json",
                "-E",
                &format!(
                    "(import {0}/lib/image.nix).imageHashHint {{ pin = {0}/modules/powersync/image.nix; system = \"x86_64-linux\"; }}",
                    root.display()
                ),
            ]),
        ))
        .unwrap();
        let inner = hint
            .lines()
            .find_map(|line| line.split_once(" --command ").map(|(_, inner)| inner))
            .expect("the hint runs its command inside `nix shell … --command`");
        let path = archive.to_str().unwrap();
        let base32 = output(
            std::process::Command::new("nix-hash")
                .args(["--flat", "--type", "sha256", "--base32", path]),
        );
        let expected = output(
            std::process::Command::new("nix")
                .args(crate::flake::FEATURES)
                .args(["hash", "file", "--type", "sha256", "--sri", path]),
        );
        // Only the experimental features go: the rest of the configuration is the machine's.
        let config: String = std::env::var("NIX_CONFIG")
            .unwrap_or_default()
            .lines()
            .filter(|line| !line.trim_start().starts_with("experimental-features"))
            .map(|line| format!("{line}\n"))
            .collect();
        for printed in [
            format!("{{\"sha256\": \"{base32}\"}}"),
            format!("{{\"hash\": \"{expected}\"}}"),
        ] {
            scratch.write(
                "bin/nix-prefetch-docker",
                &format!("#!/bin/sh\ncat <<'EOF'\n{printed}\nEOF\n"),
            );
            let stub = scratch.path("bin/nix-prefetch-docker");
            std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
            let search_path = format!(
                "{}:{}",
                scratch.path("bin").display(),
                std::env::var("PATH").unwrap()
            );
            let sri = output(
                std::process::Command::new("sh")
                    .args(["-c", inner])
                    .env("PATH", search_path)
                    .env("NIX_CONFIG", &config),
            );
            assert_eq!(sri, expected, "{printed}");
        }
    }
}

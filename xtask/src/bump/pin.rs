//! The image pin file (modules/powersync/image.nix): three `field = "value";` lines. Keep in sync with
//! lib/image.nix, which validates the same fields when Nix evaluates the file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::version::Version;
use crate::util;

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
        let name = field(&text, "name")?;
        let tag = field(&text, "tag")?;
        let digest = field(&text, "digest")?;
        let version = Version::parse_stable(&tag)
            .with_context(|| format!("tag = \"{tag}\" is not a stable X.Y.Z tag"))?;
        if !is_digest(&digest) {
            bail!("digest = \"{digest}\" is not sha256: and 64 lowercase hex digits");
        }
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

    /// Rewrites the tag and digest lines in place, atomically; every other byte stays as it was.
    pub fn write(&self, tag: &str, digest: &str) -> Result<()> {
        let mut out = String::with_capacity(self.text.len());
        for line in self.text.split_inclusive('\n') {
            let replaced = match assignment(line) {
                Some(("tag", _)) => {
                    line.replacen(&format!("\"{}\"", self.tag), &format!("\"{tag}\""), 1)
                }
                Some(("digest", _)) => {
                    line.replacen(&format!("\"{}\"", self.digest), &format!("\"{digest}\""), 1)
                }
                _ => line.to_string(),
            };
            out.push_str(&replaced);
        }
        Pin::parse(&self.path, out.clone())
            .context("the rewritten pin would not parse; nothing was written")?;
        util::write_atomically(&self.path, &out)
    }
}

/// The VM tests' image pin (tests/vm/image.nix): the same index digest and tag for `dockerTools.pullImage`,
/// plus one fixed-output hash per system. Keep in sync with that file's layout.
pub struct VmPin {
    pub path: PathBuf,
    text: String,
}

/// The systems whose archive hash the VM pin holds.
pub const VM_SYSTEMS: [&str; 2] = ["x86_64-linux", "aarch64-linux"];

impl VmPin {
    pub fn read(path: &Path) -> Result<VmPin> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let pin = VmPin {
            path: path.to_path_buf(),
            text,
        };
        pin.updated("0.0.0", &format!("sha256:{}", "0".repeat(64)))
            .with_context(|| format!("malformed VM image pin {}", path.display()))?;
        Ok(pin)
    }

    /// The file with the new digest and tag, and every archive hash reset to null: a hash belongs to one
    /// image, and only a networked build can learn the new one.
    pub fn updated(&self, tag: &str, digest: &str) -> Result<String> {
        let mut seen = Vec::new();
        let mut out = String::with_capacity(self.text.len());
        for line in self.text.split_inclusive('\n') {
            let key = line.trim().split_once('=').map(|(key, _)| key.trim());
            let indent = &line[..line.len() - line.trim_start().len()];
            let replaced = match key {
                Some("imageDigest") => format!("{indent}imageDigest = \"{digest}\";\n"),
                Some("finalImageTag") => format!("{indent}finalImageTag = \"{tag}\";\n"),
                Some(system) if VM_SYSTEMS.contains(&system) => {
                    format!("{indent}{system} = null;\n")
                }
                _ => line.to_string(),
            };
            if let Some(key) = key.filter(|key| {
                *key == "imageDigest" || *key == "finalImageTag" || VM_SYSTEMS.contains(key)
            }) {
                seen.push(key.to_string());
            }
            out.push_str(&replaced);
        }
        for needed in ["imageDigest", "finalImageTag"]
            .iter()
            .chain(VM_SYSTEMS.iter())
        {
            let count = seen.iter().filter(|key| key == needed).count();
            if count != 1 {
                bail!("expected one `{needed} = …;` line, found {count}");
            }
        }
        Ok(out)
    }

    pub fn write(&self, text: &str) -> Result<()> {
        util::write_atomically(&self.path, text)
    }
}

pub fn is_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `  field = "value";` → (field, value); anything else is not an assignment line.
fn assignment(line: &str) -> Option<(&str, &str)> {
    let (key, rest) = line.trim().split_once('=')?;
    let value = rest
        .trim()
        .strip_suffix(';')?
        .trim()
        .strip_prefix('"')?
        .strip_suffix('"')?;
    if value.contains('"') {
        return None;
    }
    Some((key.trim(), value))
}

fn field(text: &str, name: &str) -> Result<String> {
    let values: Vec<&str> = text
        .lines()
        .filter_map(assignment)
        .filter(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .collect();
    match values.as_slice() {
        [value] => Ok(value.to_string()),
        [] => bail!("no `{name} = \"…\";` line"),
        _ => bail!("`{name}` is set on {} lines; keep one", values.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::Scratch;

    pub const PIN: &str = "# comment\n{\n  name = \"docker.io/journeyapps/powersync-service\";\n  tag = \"1.26.1\";\n  digest = \"sha256:413a0c813e96935ebe7203b5759f8a594a7b7cd8aa42134713e63af637e0f079\";\n}\n";

    #[test]
    fn the_committed_pin_parses() {
        let pin = Pin::read(&util::project_root().join("modules/powersync/image.nix")).unwrap();
        assert_eq!(pin.repository(), "journeyapps/powersync-service");
        assert_eq!(pin.version, Version::parse_stable("1.26.1").unwrap());
    }

    #[test]
    fn a_rewrite_changes_exactly_the_tag_and_digest_lines() {
        let scratch = Scratch::new("pin");
        scratch.write("image.nix", PIN);
        let pin = Pin::read(&scratch.path("image.nix")).unwrap();
        let digest = format!("sha256:{}", "b".repeat(64));
        pin.write("1.26.3", &digest).unwrap();
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
    fn the_vm_pin_follows_the_tag_and_digest_and_forgets_its_hashes() {
        let scratch = Scratch::new("vm-pin");
        let committed =
            std::fs::read_to_string(util::project_root().join("tests/vm/image.nix")).unwrap();
        let with_hash =
            committed.replacen("x86_64-linux = null;", "x86_64-linux = \"sha256-AAAA\";", 1);
        scratch.write("vm-image.nix", &with_hash);
        let pin = VmPin::read(&scratch.path("vm-image.nix")).unwrap();
        let digest = format!("sha256:{}", "c".repeat(64));
        let after = pin.updated("1.26.3", &digest).unwrap();
        assert!(
            after.contains(&format!("  imageDigest = \"{digest}\";\n")),
            "{after}"
        );
        assert!(after.contains("  finalImageTag = \"1.26.3\";\n"), "{after}");
        assert!(
            after.contains("    x86_64-linux = null;\n")
                && after.contains("    aarch64-linux = null;\n"),
            "{after}"
        );
        assert_eq!(with_hash.lines().count(), after.lines().count());
    }

    #[test]
    fn a_vm_pin_without_its_hash_lines_is_malformed() {
        let scratch = Scratch::new("vm-pin-bad");
        let committed =
            std::fs::read_to_string(util::project_root().join("tests/vm/image.nix")).unwrap();
        scratch.write(
            "vm-image.nix",
            &committed.replace("    aarch64-linux = null;\n", ""),
        );
        let err = format!(
            "{:#}",
            VmPin::read(&scratch.path("vm-image.nix")).err().unwrap()
        );
        assert!(
            err.contains("malformed VM image pin") && err.contains("aarch64-linux"),
            "{err}"
        );
    }

    #[test]
    fn malformed_pins_are_refused_with_the_reason() {
        let cases = [
            (PIN.replace("  tag = \"1.26.1\";\n", ""), "no `tag"),
            (PIN.replace("1.26.1", "1.26.1-next"), "not a stable X.Y.Z"),
            (
                PIN.replace("sha256:413a", "sha256:413A"),
                "64 lowercase hex",
            ),
            (
                PIN.replace("}\n", "  tag = \"1.0.0\";\n}\n"),
                "set on 2 lines",
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
}

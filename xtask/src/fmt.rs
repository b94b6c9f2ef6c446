//! `cargo xtask fmt`: alejandra for Nix (the pinned crate, in memory) and rustfmt for Rust. The test step
//! `nix-fmt` uses the same check, so `fmt` and `test` can never disagree.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{flags, util};

impl flags::Fmt {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let root = sh.current_dir();
        let files = if self.paths.is_empty() {
            util::nix_files(sh, &root)?
        } else {
            expand_paths(&self.paths)?
        };
        if self.check {
            check(&root, &files)?;
        } else {
            let changed = format_in_place(&root, &files)?;
            println!(
                "alejandra: {changed} of {} .nix files reformatted",
                files.len()
            );
        }
        if self.paths.is_empty() {
            let check = self.check.then_some("--check");
            cmd!(sh, "cargo fmt --all -- {check...}")
                .run()
                .context("run rustfmt")?;
        }
        Ok(())
    }
}

enum Outcome {
    Unchanged,
    Reformatted(String),
}

fn format_file(path: &Path) -> Result<Outcome> {
    let before = fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let (status, after) = alejandra::format::in_memory(path.display().to_string(), before);
    match status {
        alejandra::format::Status::Error(error) => {
            bail!("{}: cannot format: {error}", path.display())
        }
        alejandra::format::Status::Changed(false) => Ok(Outcome::Unchanged),
        alejandra::format::Status::Changed(true) => Ok(Outcome::Reformatted(after)),
    }
}

/// Fails, naming every file alejandra would change (or cannot read), and changes nothing.
pub fn check(root: &Path, files: &[PathBuf]) -> Result<()> {
    let mut problems = Vec::new();
    for file in files {
        match format_file(&root.join(file)) {
            Ok(Outcome::Unchanged) => {}
            Ok(Outcome::Reformatted(_)) => {
                problems.push(format!("{}: not formatted", file.display()))
            }
            Err(error) => problems.push(format!("{error:#}")),
        }
    }
    if !problems.is_empty() {
        bail!(
            "alejandra would change {} file(s); run `cargo xtask fmt`:\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
    println!("    {} .nix files are formatted", files.len());
    Ok(())
}

fn format_in_place(root: &Path, files: &[PathBuf]) -> Result<usize> {
    let mut changed = 0;
    for file in files {
        let path = root.join(file);
        if let Outcome::Reformatted(after) = format_file(&path)? {
            util::write_atomically(&path, &after)?;
            println!("formatted {}", file.display());
            changed += 1;
        }
    }
    Ok(changed)
}

/// Files stay as given; directories become the `.nix` files below them (build outputs and VCS data skipped).
fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            collect_nix_files(path, &mut files)?;
        } else if path.extension().is_some_and(|ext| ext == "nix") {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn collect_nix_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("read {}", dir.display()))?
            .path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_dir() {
            if !matches!(name.as_str(), ".git" | "target" | "node_modules")
                && !name.starts_with("result")
            {
                collect_nix_files(&path, files)?;
            }
        } else if name.ends_with(".nix") {
            files.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use xtask_testkit::Scratch;

    const UNFORMATTED: &str = "{a=1;b=[1 2];}\n";

    #[test]
    fn check_fails_on_unformatted_files_and_changes_nothing() {
        let scratch = Scratch::new("fmt-check");
        scratch.write("ugly.nix", UNFORMATTED);
        let err = format!(
            "{:#}",
            check(&scratch.root, &[PathBuf::from("ugly.nix")]).unwrap_err()
        );
        assert!(err.contains("ugly.nix: not formatted"), "{err}");
        assert_eq!(scratch.read("ugly.nix"), UNFORMATTED);
    }

    #[test]
    fn formatting_in_place_makes_the_check_pass() {
        let scratch = Scratch::new("fmt-fix");
        scratch.write("ugly.nix", UNFORMATTED);
        let files = [PathBuf::from("ugly.nix")];
        assert_eq!(format_in_place(&scratch.root, &files).unwrap(), 1);
        assert_eq!(scratch.read("ugly.nix"), "{\n  a = 1;\n  b = [1 2];\n}\n");
        check(&scratch.root, &files).unwrap();
        assert_eq!(format_in_place(&scratch.root, &files).unwrap(), 0);
    }

    #[test]
    fn a_syntax_error_is_reported_not_formatted() {
        let scratch = Scratch::new("fmt-broken");
        scratch.write("broken.nix", "{ a = ; }\n");
        let err = format!(
            "{:#}",
            check(&scratch.root, &[PathBuf::from("broken.nix")]).unwrap_err()
        );
        assert!(err.contains("broken.nix: cannot format"), "{err}");
        assert!(format_in_place(&scratch.root, &[PathBuf::from("broken.nix")]).is_err());
        assert_eq!(scratch.read("broken.nix"), "{ a = ; }\n");
    }

    #[test]
    fn directories_expand_to_their_nix_files() {
        let scratch = Scratch::new("fmt-dirs");
        scratch
            .write("m/a.nix", "1\n")
            .write("m/b.txt", "x\n")
            .write("m/result/c.nix", "1\n");
        let files = expand_paths(&[scratch.path("m")]).unwrap();
        assert_eq!(files, vec![scratch.path("m/a.nix")]);
    }
}

//! The module's scripts as a host gets them. lib/script.nix gives writeShellApplication each script's text
//! (evaluated here by real Nix: it is builtins only); nixpkgs' writeShellApplication
//! (pkgs/build-support/trivial-builders/default.nix) writes above it the shebang, one `set -o` per bash
//! option, each runtimeEnv value as `NAME=<escapeShellArg value>` and `export NAME`, and the PATH of its
//! runtimeInputs. The tests shellcheck exactly that.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use super::{require, text, TempDir};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `lib.scriptText source`: the text the module gives writeShellApplication for this script.
pub fn script_text(source: &Path) -> String {
    serde_json::from_value(super::lib_eval(&format!(
        "lib.scriptText {}",
        source.display()
    )))
    .unwrap()
}

/// The installed script: writeShellApplication's header with these runtimeEnv values, then the text.
/// escapeShellArg leaves some values bare; quoting every one is the same to bash and to shellcheck.
pub fn installed(text: &str, runtime_env: &[(&str, &str)]) -> String {
    let env: String = runtime_env
        .iter()
        .map(|(name, value)| format!("{name}='{}'\nexport {name}\n", value.replace('\'', r"'\''")))
        .collect();
    format!(
        "#!/bin/bash\nset -o errexit\nset -o nounset\nset -o pipefail\n{env}\nexport PATH=\"/x:$PATH\"\n\n{text}\n"
    )
}

/// Shellcheck on the script as installed and on the file as it runs from the repository (following what it
/// sources from beside itself).
pub fn assert_shellcheck_clean(source: &Path, runtime_env: &[(&str, &str)]) {
    require("shellcheck", "shellcheck");
    let body = script_text(source);
    assert!(
        body.contains("\nset -euo pipefail\n"),
        "{}: set -euo pipefail",
        source.display()
    );
    let dir = TempDir::new("shellcheck");
    let embedded = dir.file("installed", &installed(&body, runtime_env));
    for (file, what) in [(&embedded, "as installed"), (&source.to_path_buf(), "")] {
        let output = Command::new("shellcheck")
            .arg("-x")
            .arg(file)
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{} {what}:\n{}",
            source.display(),
            text(&output)
        );
    }
}

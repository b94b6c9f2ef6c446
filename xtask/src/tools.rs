//! External programs the tasks need, each with the line that installs it. A missing tool is an error that says
//! how to get it, never a skipped step.

use std::{env, path::PathBuf};

use anyhow::{bail, Result};

pub struct Tool {
    pub program: &'static str,
    pub install: &'static str,
}

pub const NIX_INSTANTIATE: Tool = Tool {
    program: "nix-instantiate",
    install: "`apt-get install nix-bin` on Debian 12, or run inside `nix develop`",
};

pub const NIX: Tool = Tool {
    program: "nix",
    install: "`apt-get install nix-bin` on Debian 12, or run inside `nix develop`",
};

pub const DEADNIX: Tool = Tool {
    program: "deadnix",
    install: "`cargo install --locked deadnix`, or run inside `nix develop`",
};

pub const NODE: Tool = Tool {
    program: "node",
    install: "`apt-get install nodejs npm` on Debian 12, or run inside `nix develop`",
};

pub const GIT: Tool = Tool {
    program: "git",
    install: "`apt-get install git`",
};

// The NixOS test driver's checkers, pinned to versions of nixos-26.05's time (see vm_scripts.rs).
const DRIVER_CHECKERS: &str = "`pip install -r tests/vm/driver/requirements.txt`";

pub const TY: Tool = Tool {
    program: "ty",
    install: DRIVER_CHECKERS,
};

pub const RUFF: Tool = Tool {
    program: "ruff",
    install: DRIVER_CHECKERS,
};

pub const MYPY: Tool = Tool {
    program: "mypy",
    install: DRIVER_CHECKERS,
};

pub const PYFLAKES: Tool = Tool {
    program: "pyflakes",
    install: DRIVER_CHECKERS,
};

impl Tool {
    /// Fails with the install line when the program is not on PATH.
    pub fn require(&self) -> Result<()> {
        self.path().map(drop)
    }

    /// Where PATH finds the program, or the error with the install line.
    pub fn path(&self) -> Result<PathBuf> {
        let Some(path) = find_on_path(self.program) else {
            bail!(
                "`{}` is not on PATH; install it with {}",
                self.program,
                self.install
            );
        };
        Ok(path)
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_fails_with_its_install_line() {
        let ghost = Tool {
            program: "surely-not-installed-powersync-nix",
            install: "`apt-get install ghost`",
        };
        let err = ghost.require().unwrap_err().to_string();
        assert!(err.contains("surely-not-installed-powersync-nix"), "{err}");
        assert!(err.contains("apt-get install ghost"), "{err}");
    }

    #[test]
    fn a_present_tool_is_found() {
        GIT.require().unwrap();
    }
}

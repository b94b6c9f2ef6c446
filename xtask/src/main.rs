//! powersync-nix's task runner, in the cargo-xtask convention
//! (<https://github.com/matklad/cargo-xtask>): `cargo xtask --help` lists the tasks.

mod alerts;
mod bench;
mod bump;
mod compare;
mod dry_build;
mod flags;
mod flake;
mod fmt;
mod load;
mod nix;
mod render;
mod schema;
mod sync_client;
mod sync_rules;
mod test;
mod tls;
mod tools;
mod util;
mod verify;
mod vm_scripts;
mod vm_test;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    // Errors here are for people, not debuggers: no backtrace unless asked for with RUST_LIB_BACKTRACE=1.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let flags = flags::Xtask::parse();
    let sh = xshell::Shell::new()?;
    // Paths on the command line are the caller's, relative to where they stand, not to the root.
    let caller_dir = sh.current_dir();
    sh.change_dir(util::project_root());
    match flags.command {
        flags::Command::Test(cmd) => cmd.run(&sh),
        flags::Command::DryBuild(mut cmd) => {
            cmd.flake = cmd.flake.map(|dir| caller_dir.join(dir));
            cmd.run(&sh)
        }
        flags::Command::Bench(cmd) => cmd.run(&sh),
        flags::Command::Bump(mut cmd) => {
            cmd.pin = cmd.pin.map(|file| caller_dir.join(file));
            cmd.ca_file = cmd.ca_file.map(|file| caller_dir.join(file));
            cmd.run(&sh)
        }
        flags::Command::Render(mut cmd) => {
            cmd.flake = cmd.flake.map(|dir| caller_dir.join(dir));
            cmd.run(&sh)
        }
        flags::Command::VmTest(mut cmd) => {
            cmd.flake = cmd.flake.map(|dir| caller_dir.join(dir));
            cmd.run(&sh)
        }
        flags::Command::Verify(mut cmd) => {
            cmd.jwt_file = cmd.jwt_file.map(|file| caller_dir.join(file));
            cmd.ca_file = cmd.ca_file.map(|file| caller_dir.join(file));
            cmd.run(&sh)
        }
        flags::Command::Fmt(mut cmd) => {
            cmd.paths = cmd.paths.iter().map(|path| caller_dir.join(path)).collect();
            cmd.run(&sh)
        }
        flags::Command::Load(cmd) => cmd.run(&caller_dir),
        flags::Command::Compare(cmd) => cmd.run(&caller_dir),
    }
}

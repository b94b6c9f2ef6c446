# The NixOS VM tests, exposed as checks.<system>.<name> and run by `cargo xtask vm-test`. The names are
# literal so `cargo xtask vm-test --list` needs no nixpkgs. Each test script is a separate .py file, read as
# documentation of how the system behaves (and syntax-checked offline by `cargo xtask test`).
{
  pkgs,
  self,
  sops-nix,
}: let
  vm = import ./lib.nix {inherit pkgs self sops-nix;};
  # The xtask built by the flake: the load probe and `verify`'s outside checks run on the test clients.
  inherit (self.packages.${pkgs.stdenv.hostPlatform.system}) xtask;
in {
  powersync-e2e = import ./powersync-e2e.nix {inherit pkgs vm xtask;};
  powersync-preflight = import ./powersync-preflight.nix {inherit pkgs vm;};
  powersync-restart = import ./powersync-restart.nix {inherit pkgs vm;};
  powersync-split = import ./powersync-split.nix {inherit pkgs vm xtask;};
}

# The NixOS VM tests, exposed as checks.<system>.<name> and run by `cargo xtask vm-test`. A VM test is an
# entry of tests/vm/scripts.nix (its machines and script, builtins only) with a <name>.nix beside it (its
# nodes and test); the names come from scripts.nix alone, so the flake's checks, `cargo xtask vm-test` (which
# tells VM tests from other checks by them) and its `--list` (no nixpkgs needed) agree by construction. Each
# test script is a separate .py file, read as documentation of how the system behaves (and syntax-checked
# offline by `cargo xtask test`).
{
  pkgs,
  self,
  sops-nix,
}: let
  vm = import ./lib.nix {inherit pkgs self sops-nix;};
  # The xtask built by the flake: the load probe and `verify`'s outside checks run on the test clients.
  inherit (self.packages.${pkgs.stdenv.hostPlatform.system}) xtask;
in
  builtins.mapAttrs (name: _: import (./. + "/${name}.nix") {inherit pkgs vm xtask;}) (import ./scripts.nix)

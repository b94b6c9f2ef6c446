# powersync-nix's pure helpers: builtins only (no nixpkgs, no lib), so `nix eval .#lib.<name>` and the unit
# tests under tests/unit/ run offline. The NixOS modules call these same functions.
{}

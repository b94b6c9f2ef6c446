# The archive hashes of the PowerSync image for the VM tests, which have no registry: the fixed-output hash
# dockerTools.pullImage checks, per system, keyed by the index digest of modules/powersync/image.nix they were
# computed for. A bump moves only that pin; the VM tests then miss the new digest here and fail at evaluation
# with the command that computes its hash (lib/image.nix, imageHashHint), so an old hash is never paired with
# a new image. `cargo xtask vm-test` needs only the current system's hash (and names it); `nix flake check`
# before Nix 2.17 evaluates every system's checks, so it needs both, on any machine. Only a networked machine
# can compute a hash, so none is known yet:
#   "sha256:<index digest>" = { x86_64-linux = "sha256-…"; aarch64-linux = "sha256-…"; };
{
}

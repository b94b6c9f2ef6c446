# Secrets: sops-nix, decrypted at activation with the host's SSH host key (as age).
#
# The encrypted hosts/web-arm/secrets.yaml is the operator's and is not in this repository's public
# history. With it in place (the normal case), sops-nix checks it at build time. Without it (a fresh clone,
# CI), the flake still evaluates and dry-builds honestly: nothing is faked, validation is off, secrets are
# read at activation from /var/lib/sops-nix/web-arm-secrets.yaml on the host, and a warning says so.
#
# Upstream options used: sops.{defaultSopsFile,validateSopsFiles,age.sshKeyPaths}
# (Mic92/sops-nix modules/sops/default.nix).
{lib, ...}: let
  inRepo = ../secrets.yaml;
  present = builtins.pathExists inRepo;
  fallback = "/var/lib/sops-nix/web-arm-secrets.yaml";
in {
  sops = {
    defaultSopsFile =
      if present
      then inRepo
      else fallback;
    validateSopsFiles = present;
    age.sshKeyPaths = ["/etc/ssh/ssh_host_ed25519_key"];
  };

  warnings = lib.optional (!present) ''
    web-arm: hosts/web-arm/secrets.yaml is not in this checkout, so sops-nix cannot check it at build time
    and will read ${fallback} on the host at activation. Put the operator's encrypted secrets.yaml in
    hosts/web-arm/ before deploying.
  '';
}

# SSH: how web-arm is deployed, and where sops-nix's age key comes from (/etc/ssh/ssh_host_ed25519_key, which
# sshd generates on first start). Keys only: no passwords, no keyboard-interactive, root by key alone.
#
# Upstream options used: services.openssh.{enable,openFirewall,settings.{PasswordAuthentication,
# KbdInteractiveAuthentication,PermitRootLogin}}, users.users.<name>.openssh.authorizedKeys.keys
# (nixos/modules/services/networking/ssh/sshd.nix; openFirewall defaults to true).
{
  config,
  lib,
  ...
}: let
  cfg = config.webArm.ssh;
in {
  options.webArm.ssh.rootAuthorizedKeys = lib.mkOption {
    type = lib.types.listOf lib.types.str;
    default = [];
    example = ["ssh-ed25519 AAAAC3Nza… deploy@laptop"];
    description = "Public keys allowed to log in as root (the deploy user) on web-arm.";
  };

  config = {
    services.openssh = {
      enable = true;
      settings = {
        PasswordAuthentication = false;
        KbdInteractiveAuthentication = false;
        PermitRootLogin = "prohibit-password";
      };
    };

    users.users.root.openssh.authorizedKeys.keys = cfg.rootAuthorizedKeys;

    warnings = lib.optional (config.users.users.root.openssh.authorizedKeys.keys == []) ''
      web-arm: no SSH key may log in as root (webArm.ssh.rootAuthorizedKeys is empty), and password logins
      are off: add the deploy key before deploying, or the host can only be reached on its console.
    '';
  };
}

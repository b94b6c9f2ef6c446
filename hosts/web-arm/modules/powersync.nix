# PowerSync at powersync.reptide.eu: the instance's values (./powersync/instance.nix), the sync config, the
# source DSN from sops, and the public vhost.
#
# Upstream options used: sops.secrets.<name>.{restartUnits}, sops.templates.<name>.{content,restartUnits,path},
# sops.placeholder (Mic92/sops-nix modules/sops/default.nix, modules/sops/templates/default.nix).
{config, ...}: let
  instance = import ./powersync/instance.nix;
  dsn = "reptide-powersync-source-dsn";
  runnerUnits = map (runner: runner.unit) config.services.powersync.runners.all;
in {
  # Every section of the instance at its options' path (services.powersync, networking.v6egress).
  imports = [((import ../../../lib).instanceConfig instance)];

  services.powersync = {
    enable = true;
    syncConfig = ./powersync/sync-config.yaml;
    sourceEnvironmentFile = config.sops.templates."powersync-source.env".path;
    # The slot watchdog logs in as the replication role: it verifies Supabase as the service does, against
    # the root the service bundles (Supabase Root 2021 CA, until 2031-04-26; public, also offered by the
    # dashboard under Database → SSL; SHA-256 80:70:25:AD:…:72:E6:CA:FA).
    operations.watchdog.sourceCaCertificate = ./powersync/supabase-root-2021.crt;
    nginx = {
      # The domain is the instance's (./powersync/instance.nix), where `cargo xtask verify` reads it too.
      enable = true;
      # 443 for clients; 80 only redirects to it.
      openFirewall = true;
    };
  };

  # The secret holds the bare DSN as the operator stored it
  # (postgresql://powersync_selfhost:<pw>@db.majxbigjafpzayzboxsf.supabase.co:5432/postgres?sslmode=require);
  # the template turns it into the env file the container reads. The service ignores ?sslmode=: TLS follows
  # the connection's sslmode key (verify-full).
  # Every runner reads the DSN (one, podman-powersync.service, unless runners.mode is changed).
  sops.secrets.${dsn}.restartUnits = runnerUnits;
  sops.templates."powersync-source.env" = {
    content = ''
      PS_SOURCE_DSN=${config.sops.placeholder.${dsn}}
    '';
    restartUnits = runnerUnits;
  };
}

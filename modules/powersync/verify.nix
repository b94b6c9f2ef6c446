# `powersync-verify`: the post-deploy checklist as one command on the host (ops/verify.sh), fed with what this
# generation deployed: the runners' units, the pinned digest, the rendered config's store path, the
# watchdog's metrics file and limits, the ports and the addresses they may listen on. `cargo xtask verify`
# runs it over SSH with --json and adds the checks that must come from outside.
#
# Upstream options used (nixpkgs nixos-26.05):
#   services.postgresql.{package,settings.port}  nixos/modules/services/databases/postgresql.nix
#   environment.systemPackages                   nixos/modules/config/system-path.nix
{
  config,
  lib,
  pkgs,
  ...
}: let
  inherit (lib) concatStringsSep escapeShellArg getExe mkIf optional optionalString;
  cfg = config.services.powersync;
  ops = cfg.operations;
  pure = import ../../lib;
  # What every container mounts (container.nix).
  container = cfg.container.spec;
  replicating = pure.replicatingRunner cfg.runners.all;
  localStorage = cfg.storage.remote == null;
  ports = builtins.concatMap (r: lib.optional r.serves r.apiPort ++ optional cfg.metrics.enable r.metricsPort) cfg.runners.all;
  v6egress = config.networking.v6egress;
  pg = config.services.postgresql;

  # One unified runner, or a sync runner and API runners (runners.nix).
  runners = map (r: "${r.unit}=${r.name}") cfg.runners.all;
  # The digest of `image` is the pin (the default is modules/powersync/image.nix's); an archive has none.
  digest = lib.last (lib.splitString "@" cfg.image);

  checks = pkgs.writeShellApplication {
    name = "powersync-verify-checks";
    runtimeInputs = [
      pkgs.coreutils
      pkgs.gawk
      pkgs.gnugrep
      pkgs.gnused
      pkgs.gnutar
      pkgs.jq
      pkgs.curl
      pkgs.iproute2 # ss
      pkgs.util-linux # runuser
      pg.package
      config.systemd.package
      config.virtualisation.podman.package
    ];
    # See operations.nix: writeShellApplication writes its own shebang.
    text = lib.removePrefix "#!/usr/bin/env bash\n" (builtins.readFile ./ops/verify.sh);
  };

  env = {
    RUNNERS = concatStringsSep " " runners;
    SOCKETS = optionalString localStorage "powersync-storage-proxy.socket";
    TIMERS = optionalString ops.watchdog.enable "powersync-slot-watchdog.timer";
    IMAGE_DIGEST = optionalString (cfg.imageFile == null && lib.hasInfix "@" cfg.image) digest;
    IMAGE_ARCHIVE = optionalString (cfg.imageFile != null) "${cfg.imageFile}";
    CONFIG_MOUNTS = concatStringsSep " " container.volumes;
    TEXTFILE = optionalString ops.watchdog.enable ops.watchdog.textfile;
    WATCHDOG_INTERVAL = toString ops.watchdog.intervalSeconds;
    MAX_RETAINED_BYTES = toString ops.watchdog.maxRetainedBytes;
    # The lag gauge lives on the replicating runner; an API-only host has none.
    METRICS_URLS = optionalString (cfg.metrics.enable && replicating != null) "http://127.0.0.1:${toString replicating.metricsPort}/metrics";
    REPLICATES =
      if replicating == null
      then "no"
      else "yes";
    MAX_LAG_SECONDS = toString ops.alerts.maxLagSeconds;
    SLOT_PREFIX = cfg.replication.slotNamePrefix;
    # Shared storage (storage.remote) lives on another host: its role is not this host's to check.
    STORAGE_ROLE = optionalString localStorage "powersync_storage";
    PGPORT = toString pg.settings.port;
    OUR_PORTS = concatStringsSep " " (map toString (ports ++ optional localStorage cfg.storage.proxyPort));
    ALLOWED_ADDRESSES = "127.0.0.1 ::1 ${v6egress.gateway4}";
    SECRET_FILES = concatStringsSep " " container.environmentFiles;
    PRIVATE_PORTS = concatStringsSep " " (map toString ports);
  };

  command = pkgs.writeShellApplication {
    name = "powersync-verify";
    text = ''
      ${concatStringsSep "\n" (lib.mapAttrsToList (name: value: "export ${name}=${escapeShellArg value}") env)}
      exec ${getExe checks} "$@"
    '';
  };
in {
  config = mkIf cfg.enable {
    environment.systemPackages = [command];
  };
}

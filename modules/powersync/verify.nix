# `powersync-verify`: the post-deploy checklist as one command on the host (verify/verify.sh), fed with one
# JSON manifest of what this generation deployed: the runners' units, the pinned digest, the rendered
# config's store path, the watchdog's metrics file and limits, the ports and the addresses they may listen
# on. `cargo xtask verify` runs it over SSH with --json and adds the checks that must come from outside.
#
# Upstream options used (nixpkgs nixos-26.05):
#   services.postgresql.{package,settings.port}  nixos/modules/services/databases/postgresql.nix
#   environment.systemPackages                   nixos/modules/config/system-path.nix
#   pkgs.writeShellApplication {runtimeInputs, runtimeEnv}, pkgs.writeText
#     pkgs/build-support/trivial-builders/default.nix (through lib/script.nix)
{
  config,
  lib,
  pkgs,
  ...
}: let
  inherit (lib) mkIf optional;
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

  # The digest of `image` is the pin (the default is modules/powersync/image.nix's); an archive has none.
  digest = lib.last (lib.splitString "@" cfg.image);
  orNull = condition: value:
    if condition
    then value
    else null;

  # What verify/verify.sh checks the host against, one JSON file; its header says what each key means.
  manifest = {
    # One unified runner, or a sync runner and API runners (runners.nix).
    runners =
      map (r: {
        inherit (r) unit;
        container = r.name;
      })
      cfg.runners.all;
    sockets = optional localStorage "powersync-storage-proxy.socket";
    timers = optional ops.watchdog.enable "powersync-slot-watchdog.timer";
    imageDigest = orNull (cfg.imageFile == null && lib.hasInfix "@" cfg.image) digest;
    imageArchive = orNull (cfg.imageFile != null) "${cfg.imageFile}";
    configMounts = container.volumes;
    textfile = orNull ops.watchdog.enable ops.watchdog.textfile;
    watchdogInterval = ops.watchdog.intervalSeconds;
    maxRetainedBytes = ops.watchdog.maxRetainedBytes;
    # The lag gauge lives on the replicating runner; an API-only host has none.
    metricsUrls = optional (cfg.metrics.enable && replicating != null) "http://127.0.0.1:${toString replicating.metricsPort}/metrics";
    replicates = replicating != null;
    maxLagSeconds = ops.alerts.maxLagSeconds;
    slotPrefix = cfg.replication.slotNamePrefix;
    # Shared storage (storage.remote) lives on another host: its role is not this host's to check.
    storageRole = orNull localStorage "powersync_storage";
    pgport = pg.settings.port;
    ourPorts = ports ++ optional localStorage cfg.storage.proxyPort;
    allowedAddresses = ["127.0.0.1" "::1" v6egress.gateway4];
    secretFiles = container.environmentFiles;
    privatePorts = ports;
  };

  command = pure.shellApplication pkgs {
    name = "powersync-verify";
    source = ./verify/verify.sh;
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
    runtimeEnv.MANIFEST = "${pkgs.writeText "powersync-verify.json" (builtins.toJSON manifest)}";
  };
in {
  config = mkIf cfg.enable {
    environment.systemPackages = [command];
  };
}

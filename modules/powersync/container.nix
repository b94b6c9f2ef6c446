# The PowerSync containers and their units, one per runner (runners.nix; one unified container by default):
# podman on the v6egress network, read-only and unprivileged, memory-bounded with Node's heap at 80 % of it
# (lib/topology.nix), published on 127.0.0.1 only, started after their network and their storage.
#
# Upstream options used (nixpkgs nixos-26.05):
#   virtualisation.oci-containers.{backend,containers.<name>.*}  nixos/modules/virtualisation/oci-containers.nix
#     (unit podman-<name>.service; `pull` defaults to "missing"; extraOptions go to `podman run` verbatim)
#   systemd.services.<name>.{after,requires,startLimitIntervalSec,serviceConfig}
#     nixos/lib/systemd-unit-options.nix (startLimitIntervalSec lands in [Unit]); RestartSteps= and
#     RestartMaxDelaySec= need systemd >= 254 (systemd.service(5))
#   podman run --read-write-tmpfs, --tmpfs, --memory, --memory-swap, --stop-timeout
#     containers/podman docs/source/markdown/options/*.md
{
  config,
  lib,
  ...
}: let
  inherit (lib) mkOption types;
  pure = import ../../lib;
  cfg = config.services.powersync;
  settings = cfg.finalSettings;
  prometheusPort = settings.telemetry.prometheus_port or null;

  # The image is node:24-trixie-slim based: no curl, but node. Exit 0 only on a 200 from liveness.
  liveness = "require('http').get('http://127.0.0.1:${toString settings.port}/probes/liveness', (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))";
  # A sync runner opens no HTTP port: its probes are files in <cwd>/.probes, `poll` rewritten about every 2 s
  # while its replication loop runs. Healthy while that file is younger than 60 s.
  probeFileFresh = "try { process.exit(Date.now() - require('fs').statSync('/app/.probes/poll').mtimeMs < 60000 ? 0 : 1) } catch (e) { process.exit(1) }";

  # One runner's container: every runner runs the same image, config, secrets and hardening; they differ in
  # the command (the runner type), the host ports and the health check.
  container = runner: {
    inherit (cfg) image imageFile;
    # "missing" is enough for a digest pin (a digest never moves); an archive is loaded, never pulled.
    pull =
      if cfg.imageFile == null
      then "missing"
      else "never";
    cmd = runner.command;
    environment = {
      POWERSYNC_CONFIG_PATH = pure.configPath;
      NODE_OPTIONS = pure.nodeOptions cfg.container.memoryMiB;
    };
    environmentFiles = [
      cfg.sourceEnvironmentFile
      config.services.powersync.storage.environmentFile
    ];
    volumes = [
      "${cfg.configFile}:${pure.configPath}:ro"
      "${cfg.syncConfig}:${pure.syncConfigPath}:ro"
    ];
    # Published ports bypass the NixOS firewall: bind them to loopback only; nginx is the public face.
    # Each runner has its own network namespace, so inside they all use the config's ports.
    ports =
      lib.optional (runner.apiPort != null) "127.0.0.1:${toString runner.apiPort}:${toString settings.port}"
      ++ lib.optional (cfg.metrics.enable && builtins.isInt prometheusPort)
      "127.0.0.1:${toString runner.metricsPort}:${toString prometheusPort}";
    # The image's own user; stated so a changed image default cannot silently run us as root.
    user = "901:901";
    networks = ["v6egress"];
    extraOptions = [
      # Hardening: nothing in the image is written at run time except these tmpfs, each noexec and
      # size-limited. --read-write-tmpfs=false drops podman's default writable /run, /tmp and /var/tmp
      # under --read-only, which are neither (and leaves /dev, /dev/shm read-only).
      "--read-only"
      "--read-write-tmpfs=false"
      "--tmpfs=/tmp:rw,nosuid,nodev,noexec,size=64m,mode=1777"
      "--tmpfs=/app/.probes:rw,nosuid,nodev,noexec,size=1m,mode=1777"
      "--memory=${toString cfg.container.memoryMiB}m"
      # Equal to --memory: no swap on top, so the limit is the limit.
      "--memory-swap=${toString cfg.container.memoryMiB}m"
      "--stop-timeout=${toString cfg.container.stopTimeoutSeconds}"
      "--cap-drop=all"
      "--security-opt=no-new-privileges"
      # A podman health check that fits the runner; a container that fails it is killed, and the unit's
      # Restart=always (oci-containers' setting for a container with autoStart, the default here) brings it
      # back.
      "--health-cmd=${builtins.toJSON [
        "node"
        "-e"
        (
          if runner.role == "sync"
          then probeFileFresh
          else liveness
        )
      ]}"
      "--health-interval=30s"
      "--health-timeout=5s"
      "--health-retries=3"
      "--health-start-period=60s"
      "--health-on-failure=kill"
    ];
  };

  unit = {
    after = cfg.runners.needs;
    requires = cfg.runners.needs;
    # A decommissioned host (powersync-teardown) keeps its runners stopped through deploys and reboots.
    unitConfig = pure.haltedWhenDecommissioned;
    # Keep trying, ever more slowly, instead of giving up. A start that fails (a preflight refusing a
    # missing env file, a JWKS endpoint answering 429, storage not yet up) would otherwise hit the default
    # start limit (5 starts in 10 s) and leave the unit failed for good: nothing restarts a failed unit,
    # the slot watchdog only restarts a live one. So no start limit, and a backoff from 5 s to 2 min over
    # 5 steps (oci-containers already sets Restart=always for a container with autoStart, as these are;
    # on-failure only without it, nixpkgs PR #485421). The cap is kept short because systemd counts
    # automatic restarts across healthy runs: a crash after weeks of uptime may wait the full 2 min.
    startLimitIntervalSec = 0;
    serviceConfig = {
      RestartSec = "5s";
      RestartSteps = 5;
      RestartMaxDelaySec = "2min";
    };
  };
in {
  options.services.powersync.container = {
    memoryMiB = mkOption {
      type = types.ints.between 512 65536;
      default = 1024;
      description = ''
        Memory limit of the container in MiB (`podman run --memory`, swap included). PowerSync suggests about
        1 GB per container; a fresh process takes ~360 MB and 200 idle sync streams ~15 MB more. Node's heap
        is capped at 80 % of it (`NODE_OPTIONS=--max-old-space-size`).
      '';
    };

    stopTimeoutSeconds = mkOption {
      type = types.ints.between 1 90;
      default = 20;
      description = ''
        Seconds `podman stop` waits after SIGTERM before it kills the container (`podman run --stop-timeout`).
        A healthy service exits within a second; while replication is stuck (a half-open source connection)
        it ignores SIGTERM, so this bounds how long every restart, the watchdog's included, takes. At most
        90, so podman is done before the unit's TimeoutStopSec (120 s, oci-containers.nix) kills it.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    virtualisation.oci-containers.backend = "podman";

    virtualisation.oci-containers.containers = lib.listToAttrs (map (runner: {
        inherit (runner) name;
        value = container runner;
      })
      cfg.runners.all);

    # Nothing upstream orders a container after a custom network or a database, so say it here.
    systemd.services = lib.listToAttrs (map (runner: {
        name = "podman-${runner.name}";
        value = unit;
      })
      cfg.runners.all);
  };
}

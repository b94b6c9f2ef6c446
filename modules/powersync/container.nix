# The PowerSync containers and their units, one per runner (runners.nix; one unified container by default):
# podman on the v6egress network, read-only and unprivileged, memory-bounded with Node's heap at 80 % of it
# (lib/topology.nix), published on 127.0.0.1 only, started after their network and their storage.
#
# Upstream options used (nixpkgs nixos-26.05):
#   virtualisation.oci-containers.{backend,containers.<name>.*}  nixos/modules/virtualisation/oci-containers.nix
#     (`serviceName`, default podman-<name>, set from the runner record; `pull` defaults to "missing";
#     extraOptions go to `podman run` verbatim)
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

  spec = cfg.container.spec;

  # One runner's container: every runner runs the same image and `spec` (lib/topology.nix: user, network,
  # secrets, mounts, memory, hardening); they differ in the command (the runner type), the host ports and
  # the health check.
  container = runner: {
    inherit (cfg) image imageFile;
    inherit (runner) serviceName;
    # "missing" is enough for a digest pin (a digest never moves); an archive is loaded, never pulled.
    pull =
      if cfg.imageFile == null
      then "missing"
      else "never";
    cmd = runner.command;
    inherit (spec) environment environmentFiles volumes user;
    # Published ports bypass the NixOS firewall: bind them to loopback only; nginx is the public face.
    # Each runner has its own network namespace, so inside they all use the config's ports.
    ports =
      lib.optional runner.serves "127.0.0.1:${toString runner.apiPort}:${toString settings.port}"
      ++ lib.optional (cfg.metrics.enable && builtins.isInt prometheusPort)
      "127.0.0.1:${toString runner.metricsPort}:${toString prometheusPort}";
    networks = [spec.network];
    extraOptions =
      spec.readOnlyRoot
      ++ ["--tmpfs=/app/.probes:rw,nosuid,nodev,noexec,size=1m,mode=1777"]
      ++ spec.memoryLimit
      ++ ["--stop-timeout=${toString cfg.container.stopTimeoutSeconds}"]
      ++ spec.privileges
      ++ [
        # A podman health check that fits the runner; a container that fails it is killed, and the unit's
        # Restart=always (oci-containers' setting for a container with autoStart, the default here) brings it
        # back.
        "--health-cmd=${builtins.toJSON [
          "node"
          "-e"
          (
            if runner.serves
            then liveness
            else probeFileFresh
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

    spec = mkOption {
      type = types.attrs;
      internal = true;
      readOnly = true;
      default = pure.containerSpec {
        inherit (cfg.container) memoryMiB;
        environmentFiles = [cfg.sourceEnvironmentFile cfg.storage.environmentFile];
        inherit (cfg) configFile syncConfig;
      };
      description = "What every PowerSync container shares, the compaction's included (`lib.containerSpec`).";
    };

    entries = mkOption {
      type = types.attrsOf types.attrs;
      internal = true;
      readOnly = true;
      default = lib.listToAttrs (map (runner: {
          inherit (runner) name;
          value = container runner;
        })
        cfg.runners.all);
      description = "The runners' oci-containers entries, by container name, as this module declares them.";
    };
  };

  config = lib.mkIf cfg.enable {
    virtualisation.oci-containers.backend = "podman";

    virtualisation.oci-containers.containers = cfg.container.entries;

    # Nothing upstream orders a container after a custom network or a database, so say it here.
    systemd.services = lib.listToAttrs (map (runner: {
        name = runner.serviceName;
        value = unit;
      })
      cfg.runners.all);
  };
}

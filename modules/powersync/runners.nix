# How many PowerSync processes a host runs: one unified container (the default, `podman-powersync.service`),
# or PowerSync's production layout, one replication runner (`start -r sync`) and N API runners
# (`start -r api`) behind nginx. Also the rolling restart of the API runners on a change, and the daily
# storage compaction. The topology itself is pure (lib/topology.nix); container.nix builds the containers.
#
# Upstream options used (nixpkgs nixos-26.05):
#   systemd.services.<name>.{restartIfChanged,restartTriggers,environment,path,serviceConfig,after,requires,wants}
#   systemd.timers.<name>.{wantedBy,timerConfig}             nixos/lib/systemd-unit-options.nix
#     (restartIfChanged = false: switch-to-configuration leaves a changed unit running and says so)
#   OnCalendar=, RandomizedDelaySec=, Persistent=            systemd.timer(5)
#   pkgs.writeShellApplication {runtimeInputs, runtimeEnv}   pkgs/build-support/trivial-builders/default.nix
#     (through lib/script.nix; the scripts are ./runners/*.sh)
{
  config,
  lib,
  pkgs,
  ...
}: let
  inherit (lib) mkIf mkMerge mkOption types;
  pure = import ../../lib;
  cfg = config.services.powersync;
  podman = config.virtualisation.podman.package;

  topology = {
    inherit (cfg.runners) mode apiRunners;
    listenPort = cfg.listen.port;
    metricsPort = cfg.metrics.port;
  };
  runners = pure.runners topology;
  # The runners that a rolling restart takes down one at a time: those that serve and hold no slot.
  apiRunners = builtins.filter (r: r.serves && !r.replicates) runners;
  containers = cfg.container.entries;

  # What a change to any API runner changes: its whole container definition (container.nix). The rolling
  # unit's script carries it, so switch-to-configuration restarts the rolling unit, not the runners themselves.
  apiGeneration = builtins.hashString "sha256" (builtins.toJSON (map (r: {
      inherit (containers.${r.name}) image cmd environment environmentFiles volumes ports extraOptions;
      imageFile = toString containers.${r.name}.imageFile;
    })
    apiRunners));

  # How long one API runner may take to answer its health check again after a restart: a fresh process is
  # up in seconds; the rest is room for a slow storage connection and podman's health-start-period (60 s).
  rollingHealthTimeoutSeconds = 180;
  rollingRestart = pure.shellApplication pkgs {
    name = "powersync-api-rolling-restart";
    source = ./runners/rolling-restart.sh;
    runtimeInputs = [pkgs.coreutils config.systemd.package podman];
    runtimeEnv = {
      POWERSYNC_API_GENERATION = apiGeneration;
      CONTAINERS = lib.concatMapStringsSep " " (r: r.name) apiRunners;
      STATE_FILE = "/run/powersync/api-generation";
      HEALTH_TIMEOUT = toString rollingHealthTimeoutSeconds;
    };
  };

  compactScript = pure.shellApplication pkgs {
    inherit (pure.compaction) name;
    source = ./runners/compact.sh;
    runtimeInputs = [pkgs.coreutils pkgs.gnused podman];
    runtimeEnv.TEXTFILE = "${dirOf cfg.operations.watchdog.textfile}/${pure.compaction.textfile}";
  };
  compactArguments = pure.compactArguments {
    inherit (cfg) image;
    runnerSpec = cfg.container.spec;
    inherit (cfg.compact) memoryMiB;
  };
in {
  options.services.powersync = {
    runners = {
      mode = mkOption {
        type = types.enum ["unified" "split" "api"];
        default = "unified";
        description = ''
          `unified`: one container replicates and serves clients (`podman-powersync.service`), enough for a
          small deployment. `split`: PowerSync's production layout, one replication runner
          (`podman-powersync-sync.service`, `start -r sync`) and `apiRunners` API runners
          (`podman-powersync-api-<n>.service`, `start -r api`) behind nginx, each with its own memory limit.
          Split when one process no longer keeps up, or to restart API runners without dropping every
          client: add one API runner per ~100 concurrent connections. `api`: API runners only, for further
          hosts on shared storage (`storage.remote`) while one host replicates.
        '';
      };

      apiRunners = mkOption {
        type = types.ints.unsigned;
        default = 2;
        description = ''
          API runners in split and api modes. They publish on 127.0.0.1 at `listen.port`, `listen.port + 1`, …, and
          their metrics at `metrics.port + 1`, …; the sync runner's metrics (the lag gauge) stay on
          `metrics.port`.
        '';
      };

      needs = mkOption {
        type = types.listOf types.str;
        readOnly = true;
        default =
          ["init-v6egress-network.service"]
          ++ lib.optionals (cfg.storage.remote == null) [
            # Where current nixpkgs runs ensureDatabases/ensureUsers (postgresql.nix).
            "postgresql-setup.service"
            "powersync-storage-password.service"
            "powersync-storage-proxy.socket"
          ];
        description = "Units every runner and the compaction start after and require: their network and their storage.";
      };

      all = mkOption {
        type = types.listOf types.attrs;
        readOnly = true;
        default = runners;
        defaultText = lib.literalExpression "lib.runners { … }";
        description = "The runners this host runs (`lib.runners`): name, serviceName, unit, role, whether it replicates and serves, command and host ports.";
      };
    };

    compact = {
      enable = mkOption {
        type = types.bool;
        default = cfg.runners.mode != "api";
        defaultText = lib.literalExpression ''services.powersync.runners.mode != "api"'';
        description = ''
          Run the image's `compact` daily (`${pure.compaction.name}.timer`). Compaction folds the operations clients
          have already been sent into fewer rows, so bucket storage stops growing with every update; PowerSync
          recommends it daily. It reads and writes storage only, never the source, and is safe while the
          service runs. Its outcome goes to `${pure.compaction.textfile}` beside the watchdog's textfile. Off by
          default on API-only hosts: the replicating host compacts the shared storage.
        '';
      };

      schedule = mkOption {
        type = types.str;
        default = "daily";
        description = "When to compact, as a systemd calendar expression (`OnCalendar=`).";
      };

      randomizedDelay = mkOption {
        type = types.str;
        default = "1h";
        description = "A random delay added to each run (`RandomizedDelaySec=`), so fleets do not compact at once.";
      };

      memoryMiB = mkOption {
        type = types.ints.between 512 65536;
        default = cfg.container.memoryMiB;
        defaultText = lib.literalExpression "services.powersync.container.memoryMiB";
        description = "Memory limit of the one-off compaction container; Node's heap gets 80 % of it.";
      };
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      assertions =
        map (message: {
          assertion = false;
          inherit message;
        }) (pure.checkTopology (topology
          // {
            metricsEnabled = cfg.metrics.enable;
            inherit (cfg.container) memoryMiB;
            compactMemoryMiB =
              if cfg.compact.enable
              then cfg.compact.memoryMiB
              else null;
          }))
        ++ [
          {
            # Its own storage would be one nothing ever replicates into: every client would sync nothing.
            assertion = cfg.runners.mode == "api" -> cfg.storage.remote != null;
            message = "services.powersync.runners.mode = \"api\" serves clients from storage another host replicates into: set services.powersync.storage.remote to that shared storage.";
          }
        ];
    }

    (mkIf (apiRunners != []) {
      # switch-to-configuration would stop every changed API runner at once, leaving clients with no server.
      # So a change leaves them running, and this unit, whose environment changes with them, restarts them one
      # at a time, each healthy before the next. At boot it only records the generation: nothing to roll.
      systemd.services =
        lib.listToAttrs (map (r: {
            name = r.serviceName;
            value.restartIfChanged = false;
          })
          apiRunners)
        // {
          powersync-api-rolling-restart = {
            description = "Restart the PowerSync API runners one at a time after a change";
            wantedBy = ["multi-user.target"];
            after = map (r: r.unit) apiRunners;
            unitConfig = pure.haltedWhenDecommissioned;
            serviceConfig = {
              Type = "oneshot";
              RemainAfterExit = true;
              ExecStart = lib.getExe rollingRestart;
              TimeoutStartSec = "30min";
            };
          };
        };
    })

    (mkIf cfg.compact.enable {
      systemd.services.${pure.compaction.name} =
        pure.compactUnit {
          inherit runners;
          inherit (cfg.runners) needs;
        }
        // {
          description = "PowerSync storage compaction (the image's compact, in a one-off container)";
          serviceConfig = {
            Type = "oneshot";
            ExecStart = "${lib.getExe compactScript} ${pure.escapeSystemdExecArgs compactArguments}";
            TimeoutStartSec = "2h";
          };
        };
      systemd.timers.${pure.compaction.name} = {
        wantedBy = ["timers.target"];
        timerConfig = {
          OnCalendar = cfg.compact.schedule;
          RandomizedDelaySec = cfg.compact.randomizedDelay;
          # A host that was off at the scheduled time compacts when it comes back.
          Persistent = true;
        };
      };
      systemd.tmpfiles.rules = ["d ${dirOf cfg.operations.watchdog.textfile} 0755 root root -"];
    })
  ]);
}

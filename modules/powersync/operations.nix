# Operating PowerSync safely: the checks that stop a bad start, the slot watchdog that sees what liveness
# cannot (a replication slot nobody consumes makes the source keep WAL without bound), Prometheus scraping
# and alerts, and a clean decommission. The scripts live in ./ops and are tested there on their own.
#
# Upstream options used (nixpkgs nixos-26.05):
#   systemd.services.<name>.{serviceConfig.ExecStartPre,path,environment,startAt}, systemd.timers
#     nixos/modules/system/boot/systemd.nix; ExecStartPre is a list in oci-containers.nix, so mkBefore runs
#     ours before its podman rm/load.
#   services.prometheus.{enable,scrapeConfigs,ruleFiles}  nixos/modules/services/monitoring/prometheus/default.nix
#   environment.systemPackages                         nixos/modules/config/system-path.nix
{
  config,
  lib,
  pkgs,
  ...
}: let
  inherit (lib) mkEnableOption mkIf mkOption types;
  pure = import ../../lib;
  defaults = pure.defaults.operations;
  cfg = config.services.powersync;
  ops = cfg.operations;
  unit = "podman-powersync.service";

  # writeShellApplication writes its own shebang and `set -euo pipefail`, then the text; the scripts' own
  # shebang (kept for running them directly and in the tests) would land mid-file, where shellcheck, run at
  # build time, rejects it (SC1128).
  script = name: runtimeInputs:
    pkgs.writeShellApplication {
      inherit name runtimeInputs;
      text = lib.removePrefix "#!/usr/bin/env bash\n" (builtins.readFile ./ops/${name}.sh);
    };

  preflightDsn = script "preflight-dsn" [pkgs.coreutils pkgs.gnugrep pkgs.gnused];
  preflightJwks = script "preflight-jwks" [pkgs.coreutils pkgs.curl pkgs.jq];
  # bash: RESTART_CMD and LIVE_CMD run through `bash -c`; a unit's default PATH has no bash.
  watchdog = script "slot-watchdog" [pkgs.bash pkgs.coreutils pkgs.gnugrep pkgs.gnused config.services.postgresql.package config.systemd.package];
  teardown = script "teardown" [pkgs.coreutils config.systemd.package config.virtualisation.podman.package];

  # The command operators type: the image's teardown with exactly the service's config, env and network.
  teardownCommand = pkgs.writeShellApplication {
    name = "powersync-teardown";
    text = ''
      export UNIT=${unit}
      export IMAGE=${lib.escapeShellArg cfg.image}
      export NETWORK=v6egress
      export CONTAINER_USER=901:901
      export CONFIG_MOUNTS=${lib.escapeShellArg (lib.concatStringsSep " " config.virtualisation.oci-containers.containers.powersync.volumes)}
      export ENV_FILES=${lib.escapeShellArg (lib.concatStringsSep " " [cfg.sourceEnvironmentFile cfg.storage.environmentFile])}
      exec ${lib.getExe teardown} "$@"
    '';
  };

  alertRules = pure.alertRules {
    inherit (cfg.replication) slotNamePrefix;
    inherit (ops.alerts) maxLagSeconds;
    inherit (ops.watchdog) maxRetainedBytes intervalSeconds;
    watchdog = ops.watchdog.enable;
    jwks = ops.preflight.jwks;
    inherit (cfg.auth) jwksUri;
  };
in {
  options.services.powersync.operations = {
    preflight = {
      dsn = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Before the container starts, refuse a PS_SOURCE_DSN that is missing, points at Supabase's pooler
          (*.pooler.supabase.com, or port 6543) instead of the direct endpoint, or carries
          `replication=database`. The unit then fails with the reason; the secret is never printed.
        '';
      };

      jwks = mkOption {
        type = types.bool;
        default = cfg.auth.jwksUri != null;
        defaultText = lib.literalExpression "services.powersync.auth.jwksUri != null";
        description = ''
          Before the container starts, fetch auth.jwksUri and refuse a JWKS with no usable key (what a
          Supabase project still on the legacy HS256 secret publishes: the service would start green and
          refuse every client). Network failures only warn, so an outage cannot block a restart.
        '';
      };
    };

    watchdog = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = ''
          A timer that asks the source itself, with the same DSN, about the slots with our prefix (active,
          wal_status, WAL retained behind confirmed_flush_lsn), writes them as Prometheus metrics to
          `textfile`, and restarts ${unit} when a slot stays inactive or its retained WAL keeps growing past
          the limit while the container claims to be live: the self-heal for a half-open source connection
          (powersync-ja/powersync-service#700), which liveness and the lag gauge do not show.
        '';
      };

      intervalSeconds = mkOption {
        type = types.ints.positive;
        default = defaults.watchdog.intervalSeconds;
        description = "How often the watchdog runs.";
      };

      maxInactiveSeconds = mkOption {
        type = types.ints.positive;
        default = defaults.watchdog.maxInactiveSeconds;
        description = "Restart when a slot has been inactive this long while the container is up.";
      };

      maxRetainedBytes = mkOption {
        type = types.ints.positive;
        default = defaults.watchdog.maxRetainedBytes;
        description = "Retained-WAL limit per slot (bytes); above it and still growing counts as stuck.";
      };

      growthChecks = mkOption {
        type = types.ints.positive;
        default = defaults.watchdog.growthChecks;
        description = "Consecutive runs the retained WAL must grow above the limit before a restart.";
      };

      minRestartIntervalSeconds = mkOption {
        type = types.ints.positive;
        default = defaults.watchdog.minRestartIntervalSeconds;
        description = "At most one watchdog restart in this period; later ones are logged and suppressed.";
      };

      textfile = mkOption {
        type = types.str;
        default = "/var/lib/prometheus-node-exporter-text/powersync.prom";
        description = ''
          Where the watchdog writes its metrics, for the node exporter's textfile collector (point
          `--collector.textfile.directory` at its directory).
        '';
      };
    };

    alerts = {
      enable = mkOption {
        type = types.bool;
        default = config.services.prometheus.enable;
        defaultText = lib.literalExpression "config.services.prometheus.enable";
        description = "Add the metrics scrape job and the PowerSync alert rules to this host's Prometheus.";
      };

      maxLagSeconds = mkOption {
        type = types.ints.positive;
        default = defaults.alerts.maxLagSeconds;
        description = "Replication lag above which PowerSyncReplicationLagHigh fires.";
      };
    };

    teardown = mkEnableOption "the `powersync-teardown` command, which decommissions cleanly (drops the slots on the source)" // {default = true;};
  };

  config = mkIf cfg.enable (lib.mkMerge [
    {
      systemd.services.podman-powersync.serviceConfig.ExecStartPre = lib.mkBefore (
        lib.optional ops.preflight.dsn "${lib.getExe preflightDsn} ${cfg.sourceEnvironmentFile}"
        ++ lib.optional ops.preflight.jwks "${lib.getExe preflightJwks} ${cfg.auth.jwksUri}"
      );

      assertions = [
        {
          assertion = ops.preflight.jwks -> cfg.auth.jwksUri != null;
          message = "services.powersync.operations.preflight.jwks needs services.powersync.auth.jwksUri.";
        }
        {
          assertion = ops.alerts.enable -> cfg.metrics.enable;
          message = "services.powersync.operations.alerts.enable needs services.powersync.metrics.enable.";
        }
      ];

      environment.systemPackages = lib.optional ops.teardown teardownCommand;
    }

    (mkIf ops.watchdog.enable {
      systemd.services.powersync-slot-watchdog = {
        description = "PowerSync replication slot watchdog";
        after = ["network-online.target"];
        wants = ["network-online.target"];
        environment =
          {
            POWERSYNC_ENV_FILE = cfg.sourceEnvironmentFile;
            SLOT_PREFIX = cfg.replication.slotNamePrefix;
            STATE_DIR = "/var/lib/powersync-watchdog";
            TEXTFILE = ops.watchdog.textfile;
            MAX_INACTIVE_SECONDS = toString ops.watchdog.maxInactiveSeconds;
            MAX_RETAINED_BYTES = toString ops.watchdog.maxRetainedBytes;
            GROWTH_CHECKS = toString ops.watchdog.growthChecks;
            MIN_RESTART_INTERVAL_SECONDS = toString ops.watchdog.minRestartIntervalSeconds;
            RESTART_CMD = "systemctl restart ${unit}";
            LIVE_CMD = "systemctl is-active --quiet ${unit}";
          }
          // lib.optionalAttrs ops.preflight.jwks {
            JWKS_URI = cfg.auth.jwksUri;
            JWKS_CHECK = lib.getExe preflightJwks;
          };
        serviceConfig = {
          Type = "oneshot";
          ExecStart = lib.getExe watchdog;
          StateDirectory = "powersync-watchdog";
          # Runs as root: it reads the DSN's env file and restarts the container unit.
          UMask = "0022";
        };
      };
      systemd.timers.powersync-slot-watchdog = {
        wantedBy = ["timers.target"];
        timerConfig = {
          OnBootSec = "5min";
          OnUnitActiveSec = "${toString ops.watchdog.intervalSeconds}s";
        };
      };
      systemd.tmpfiles.rules = ["d ${dirOf ops.watchdog.textfile} 0755 root root -"];
    })

    (mkIf ops.alerts.enable {
      services.prometheus.scrapeConfigs = [
        {
          job_name = "powersync";
          static_configs = [{targets = ["127.0.0.1:${toString cfg.metrics.port}"];}];
        }
      ];
      # A file of its own (JSON is YAML): `rules` strings are joined into one file with everyone else's,
      # and each entry of ruleFiles is checked with promtool at build time.
      services.prometheus.ruleFiles = [(pkgs.writeText "powersync-alerts.rules.json" (builtins.toJSON alertRules))];
    })
  ]);
}

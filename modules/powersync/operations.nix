# Operating PowerSync safely: the checks that stop a bad start, the slot watchdog that sees what liveness
# cannot (a replication slot nobody consumes makes the source keep WAL without bound), Prometheus scraping
# and alerts, and a clean decommission. The scripts live in ./operations and are tested there on their own.
#
# Upstream options used (nixpkgs nixos-26.05):
#   systemd.services.<name>.{serviceConfig.ExecStartPre,path,environment,startAt}, systemd.timers
#     nixos/modules/system/boot/systemd.nix; ExecStartPre is a list in oci-containers.nix, so mkBefore runs
#     ours before its podman rm/load.
#   services.prometheus.{enable,scrapeConfigs,ruleFiles}  nixos/modules/services/monitoring/prometheus/default.nix
#   environment.systemPackages                         nixos/modules/config/system-path.nix
#   pkgs.writeShellApplication {runtimeInputs, runtimeEnv}  pkgs/build-support/trivial-builders/default.nix
#     (through lib/script.nix)
{
  config,
  lib,
  pkgs,
  ...
}: let
  inherit (lib) mkIf mkOption types;
  pure = import ../../lib;
  defaults = pure.defaults.operations;
  cfg = config.services.powersync;
  ops = cfg.operations;
  # The runners (runners.nix): the one that replicates holds the slot, the watchdog restarts it and the DSN
  # preflight guards it; the ones that serve clients need the JWKS. A unified container is both.
  runners = cfg.runners.all;
  replicating = pure.replicatingRunner runners;
  unit =
    if replicating == null
    then "the replicating runner"
    else replicating.unit;
  # What every container shares: user, network, secrets and mounts (container.nix).
  container = cfg.container.spec;

  # Each script with the values it needs (runtimeEnv), built the one way lib/script.nix says.
  script = name: runtimeInputs: runtimeEnv:
    pure.shellApplication pkgs {
      inherit name runtimeInputs runtimeEnv;
      source = ./operations + "/${name}.sh";
    };

  # The rendered source connection's own keys win over PS_SOURCE_DSN in the service, so the preflight and the
  # watchdog get them too (operations/source-connection.sh): a literal value as SOURCE_<KEY>, an `!env PS_X` key as
  # SOURCE_<KEY>_VAR = "PS_X", read from the same env files the container gets.
  connections = cfg.finalSettings.replication.connections or [];
  connection =
    if connections == []
    then {}
    else builtins.head connections;
  envName = value: builtins.head (lib.splitString "::" value._env);
  sourceKeys =
    lib.concatMapAttrs (
      key: value: let
        var = "SOURCE_${lib.toUpper key}";
      in
        if pure.isEnv value
        then {"${var}_VAR" = envName value;}
        # A literal password is refused by the config contract (lib/contract.nix): never passed on.
        else lib.optionalAttrs (key != "password") {${var} = toString value;}
    )
    (lib.filterAttrs (key: value: builtins.elem key ["hostname" "port" "username" "database" "password"] && value != null) connection);
  containerEnvFiles = container.environmentFiles;
  # The service's own default when the key is absent (or an `!env` value the host cannot read).
  sourceSslmode =
    if builtins.isString (connection.sslmode or null)
    then connection.sslmode
    else "verify-full";

  # The env files are its arguments, as the container gets them.
  preflightDsn = script "preflight-dsn" [] sourceKeys;
  jwksBounds = pure.defaults.operations.preflight.jwks;
  preflightJwks = script "preflight-jwks" [pkgs.coreutils pkgs.curl pkgs.jq] {
    JWKS_CONNECT_TIMEOUT = toString jwksBounds.connectTimeoutSeconds;
    JWKS_MAX_TIME = toString jwksBounds.maxTimeSeconds;
  };
  # What bounds one watchdog run: psql's connect and query, and the JWKS check's whole fetch.
  watchdogBounds = pure.defaults.operations.watchdog;
  watchdogRunSeconds = watchdogBounds.connectTimeoutSeconds + watchdogBounds.statementTimeoutSeconds + jwksBounds.maxTimeSeconds;
  # The watchdog's psql needs libpq >= 16 (require_auth, operations/slot-watchdog.sh). The host's own PostgreSQL
  # serves when it is new enough; web-arm's is 14, so its client is postgresql_17 (the NixOS default since
  # stateVersion 25.11, nixos/modules/services/databases/postgresql.nix): a client talks to any server.
  psqlClient = let
    hostPostgresql = config.services.postgresql.package;
  in
    if lib.versionAtLeast (lib.getVersion hostPostgresql) "16"
    then hostPostgresql
    else pkgs.postgresql_17;
  # bash: RESTART_CMD and LIVE_CMD run through `bash -c`; a unit's default PATH has no bash.
  watchdog = script "slot-watchdog" [pkgs.bash pkgs.coreutils pkgs.gnugrep pkgs.gnused psqlClient config.systemd.package] (
    sourceKeys
    // pure.watchdogCommands unit
    // {
      POWERSYNC_ENV_FILES = lib.concatStringsSep " " containerEnvFiles;
      SOURCE_SSLMODE = sourceSslmode;
      SLOT_PREFIX = cfg.replication.slotNamePrefix;
      STATE_DIR = "/var/lib/powersync-watchdog";
      TEXTFILE = ops.watchdog.textfile;
      MAX_INACTIVE_SECONDS = toString ops.watchdog.maxInactiveSeconds;
      MAX_RETAINED_BYTES = toString ops.watchdog.maxRetainedBytes;
      GROWTH_CHECKS = toString ops.watchdog.growthChecks;
      MIN_RESTART_INTERVAL_SECONDS = toString ops.watchdog.minRestartIntervalSeconds;
      PGCONNECT_TIMEOUT = toString watchdogBounds.connectTimeoutSeconds;
      STATEMENT_TIMEOUT_SECONDS = toString watchdogBounds.statementTimeoutSeconds;
    }
    // lib.optionalAttrs (ops.watchdog.sourceCaCertificate != null) {
      # Interpolated, so a path in the configuration's tree is copied to the store the host gets.
      SOURCE_CA_FILE = "${ops.watchdog.sourceCaCertificate}";
    }
    // lib.optionalAttrs ops.preflight.jwks {
      JWKS_URI = cfg.auth.jwksUri;
      JWKS_CHECK = lib.getExe preflightJwks;
    }
  );

  # What the teardown stops: every runner, and a compaction that may be running (it would race the wipe).
  teardownUnits = map (r: r.unit) runners ++ lib.optional cfg.compact.enable pure.compaction.unit;
  # The command operators type: the image's teardown with exactly the service's config, env and network.
  teardown = pure.shellApplication pkgs {
    name = "powersync-teardown";
    source = ./operations/teardown.sh;
    runtimeInputs = [pkgs.coreutils config.systemd.package config.virtualisation.podman.package];
    runtimeEnv = {
      UNITS = lib.concatStringsSep " " teardownUnits;
      DECOMMISSIONED_FILE = pure.decommissionedFile;
      IMAGE = cfg.image;
      NETWORK = container.network;
      CONTAINER_USER = container.user;
      CONFIG_MOUNTS = lib.concatStringsSep " " container.volumes;
      ENV_FILES = lib.concatStringsSep " " container.environmentFiles;
    };
  };

  alertRules = pure.alertRules {
    compact = cfg.compact.enable;
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
          Before the container starts, refuse a PS_SOURCE_DSN that is missing or quoted in its env file (podman
          would pass the quotes on), points at Supabase's pooler (*.pooler.supabase.com, or port 6543) instead
          of the direct endpoint, carries `replication=database`, or that the service would read differently
          from psql: it does not percent-decode, so a user or password with `%` or a character its URI parser
          alters, and `?password=`, are refused (operations/source-connection.sh). The connection's own rendered keys
          (`hostname`, `port`, `password: !env …`) win over the DSN, as in the service. The unit then fails
          with the reason; the secret is never printed.
        '';
      };

      jwks = mkOption {
        type = types.bool;
        default = cfg.auth.jwksUri != null;
        defaultText = lib.literalExpression "services.powersync.auth.jwksUri != null";
        description = ''
          Before the container starts, fetch auth.jwksUri and refuse a JWKS with no usable key (what a
          Supabase project still on the legacy HS256 secret publishes: the service would start green and
          refuse every client), a key whose key_ops lacks verify, or an HTTP 404. Transient answers (401, 403,
          429, 5xx, timeouts, network failures) only warn, so an outage cannot block a restart.
        '';
      };
    };

    watchdog = {
      enable = mkOption {
        type = types.bool;
        default = replicating != null;
        defaultText = lib.literalExpression ''services.powersync.runners.mode != "api"'';
        description = ''
          A timer that asks the source itself, with the connection the service uses (its rendered hostname
          and port, the DSN's credentials read as the service reads them), about the slots with our prefix (active,
          wal_status, WAL retained behind confirmed_flush_lsn), writes them as Prometheus metrics to
          `textfile`, and restarts ${unit} when every slot with the prefix stays inactive, or an active one's
          retained WAL keeps growing past the limit, while the container claims to be live: the self-heal for
          a half-open source connection (powersync-ja/powersync-service#700), which liveness and the lag gauge
          do not show. An inactive slot beside an active one is an orphan (an earlier instance's, or a sync
          config no longer in use): reported (`powersync_slot_orphaned`, alert PowerSyncSlotOrphaned), never a
          reason to restart, since a restart drops every client and cannot make it active.
        '';
      };

      intervalSeconds = mkOption {
        type = types.ints.positive;
        default = defaults.watchdog.intervalSeconds;
        description = ''
          How often the watchdog runs. The defaults (20 s, with `maxInactiveSeconds` 100 s) heal a half-open
          source connection within 5 minutes: the source drops the stalled walsender after its
          `wal_sender_timeout` (60 s; the slot turned inactive ~63 s after the stall), the watchdog sees it at
          its next run (≤ 21 s, the timer's accuracy included) and asks for a restart once it has been inactive
          for 100 s (5 runs, ≤ 105 s): at most ~189 s after the stall. The new container then waits up to
          60 s for the old one's storage lock (seen: ~45 s) after the old one is stopped: replication is back
          within ~280 s if stopping and starting the container take no more than 30 s. A restarted container
          gets the full 100 s to take its slot back before the watchdog counts again, and the restart rate
          limit (`minRestartIntervalSeconds`) still bounds how often this happens. xtask/tests/healing_time.rs checks
          this arithmetic and, ten times faster, the timing with a frozen consumer
          against a real PostgreSQL.
        '';
      };

      maxInactiveSeconds = mkOption {
        type = types.ints.positive;
        default = defaults.watchdog.maxInactiveSeconds;
        description = ''
          Restart when a slot has been inactive this long while the container is up, counted from the later
          of the first inactive sighting and the watchdog's last restart (a restarted container gets the full
          time to take its slot back).
        '';
      };

      maxRetainedBytes = mkOption {
        type = types.ints.positive;
        default = defaults.watchdog.maxRetainedBytes;
        description = "Retained-WAL limit per slot (bytes); above it and still growing counts as stuck.";
      };

      growthChecks = mkOption {
        type = types.ints.positive;
        default = defaults.watchdog.growthChecks;
        description = "Consecutive runs the retained WAL must grow above the limit before a restart (18 runs of 20 s: 6 min).";
      };

      minRestartIntervalSeconds = mkOption {
        type = types.ints.positive;
        default = defaults.watchdog.minRestartIntervalSeconds;
        description = "At most one watchdog restart in this period; later ones are logged and suppressed.";
      };

      sourceCaCertificate = mkOption {
        type = types.nullOr types.path;
        default =
          if builtins.isString (connection.cacert or null)
          then pkgs.writeText "powersync-source-ca.pem" connection.cacert
          else null;
        defaultText = lib.literalMD "the source connection's `cacert`, when the settings give it literally; else `null`";
        example = lib.literalExpression "./supabase-ca.crt";
        description = ''
          The CA certificate (PEM) that signed the source's server certificate; for Supabase, the root
          certificate the dashboard offers under Database → SSL (Supabase Root 2021 CA, the one the service
          bundles). It is public and goes to the Nix store. With it, the watchdog verifies the source's
          certificate and name as the service does (the connection's `sslmode`). Where the service verifies
          (`sslmode` verify-full, the default, or verify-ca), a watchdog without it is an evaluation error
          unless `allowUnverifiedSource` is set: the service's bundled CAs are in its image, not on the host.
        '';
      };

      allowUnverifiedSource = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Let the watchdog reach a source the service verifies without verifying it itself (no
          `sourceCaCertificate`). It still encrypts, and accepts only SCRAM-SHA-256 (libpq's `require_auth`):
          an endpoint that asks for the password in clear text, for an md5 answer, or for nothing is refused
          before anything is sent. What an endpoint in the path can still do: relay the SCRAM login to the
          source and act as the replication role for that session (query, or drop the slot), or answer with
          its own challenge (e.g. an iteration count of 1) and guess the password offline from the reply.
          Only verification stops both: prefer `sourceCaCertificate`.
        '';
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

    teardown = mkOption {
      type = types.bool;
      default = pure.tearsDown runners;
      defaultText = lib.literalExpression ''services.powersync.runners.mode != "api"'';
      description = ''
        Install `powersync-teardown`, which decommissions cleanly: it stops the runners, drops the slots on
        the source, wipes the bucket storage, and leaves `${pure.decommissionedFile}`, which keeps every
        runner, the compaction and the watchdog from starting again (through deploys and reboots) until it is
        deleted. Only on the host that replicates: on an API-only host the slot is another host's and the
        storage the fleet's.
      '';
    };
  };

  config = mkIf cfg.enable (lib.mkMerge [
    {
      # Each check where it matters: the DSN before the runner that replicates, the JWKS before those that
      # serve clients.
      systemd.services = lib.listToAttrs (map (runner: {
          name = runner.serviceName;
          value.serviceConfig.ExecStartPre = lib.mkBefore (
            # Escaped for systemd's command-line syntax: a `%` in the URI would otherwise be a specifier
            # (the unit fails to load) and a space would split the argument.
            lib.optional (ops.preflight.dsn && runner.replicates) (pure.escapeSystemdExecArgs ([(lib.getExe preflightDsn)] ++ containerEnvFiles))
            ++ lib.optional (ops.preflight.jwks && runner.serves) (pure.escapeSystemdExecArgs [(lib.getExe preflightJwks) cfg.auth.jwksUri])
          );
        })
        runners);

      assertions =
        [
          {
            assertion = ops.preflight.jwks -> cfg.auth.jwksUri != null;
            message = "services.powersync.operations.preflight.jwks needs services.powersync.auth.jwksUri.";
          }
          {
            assertion = ops.watchdog.enable -> replicating != null;
            message = "services.powersync.operations.watchdog.enable: an API-only host (runners.mode = \"api\") holds no slot to watch; the replicating host runs the watchdog.";
          }
        ]
        ++ map (message: {
          assertion = !ops.watchdog.enable;
          inherit message;
        }) (pure.watchdogTlsProblems {
          sslmode = sourceSslmode;
          caCertificate = ops.watchdog.sourceCaCertificate;
          allowUnverified = ops.watchdog.allowUnverifiedSource;
        })
        ++ [
          {
            assertion = ops.teardown -> pure.tearsDown runners;
            message = "services.powersync.operations.teardown: an API-only host (runners.mode = \"api\") must not tear down: it would drop the replicating host's slot and wipe the fleet's shared storage. Run powersync-teardown on the host that replicates, and set operations.teardown = false here.";
          }
          {
            assertion = ops.alerts.enable -> cfg.metrics.enable;
            message = "services.powersync.operations.alerts.enable needs services.powersync.metrics.enable.";
          }
        ];

      environment.systemPackages = lib.optional ops.teardown teardown;
    }

    (mkIf ops.watchdog.enable {
      systemd.services.powersync-slot-watchdog = {
        description = "PowerSync replication slot watchdog";
        # Nothing to watch on a decommissioned host, and nothing it may restart.
        unitConfig = pure.haltedWhenDecommissioned;
        after = ["network-online.target"];
        wants = ["network-online.target"];
        serviceConfig = {
          Type = "oneshot";
          ExecStart = lib.getExe watchdog;
          # A run is bounded by psql's connect and query and the JWKS check (watchdogRunSeconds, 45 s at
          # lib's bounds); one that hangs anyway is killed, with room to spare, instead of holding back the next.
          TimeoutStartSec = "${toString (2 * watchdogRunSeconds)}s";
          # Its memory of slots and restarts is its own: no one else reads or writes it.
          StateDirectory = "powersync-watchdog";
          StateDirectoryMode = "0700";
          UMask = "0077";
          # Hardening. It runs as root because it reads the service's env files (root's, mode 0400, or the
          # operator's owner: hence CAP_DAC_READ_SEARCH) and asks systemd to restart the container unit.
          # It writes only its state and the metrics file (made world-readable by the script itself).
          ProtectSystem = "strict";
          ReadWritePaths = [(dirOf ops.watchdog.textfile)];
          ProtectHome = true;
          PrivateTmp = true;
          PrivateDevices = true;
          CapabilityBoundingSet = ["CAP_DAC_READ_SEARCH"];
          NoNewPrivileges = true;
          ProtectKernelTunables = true;
          ProtectKernelModules = true;
          ProtectKernelLogs = true;
          ProtectControlGroups = true;
          ProtectClock = true;
          ProtectHostname = true;
          ProtectProc = "invisible";
          # AF_UNIX for systemctl, AF_INET/AF_INET6 for the source and the JWKS, AF_NETLINK for getaddrinfo.
          RestrictAddressFamilies = ["AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK"];
          RestrictNamespaces = true;
          RestrictRealtime = true;
          RestrictSUIDSGID = true;
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          SystemCallArchitectures = "native";
          SystemCallFilter = ["@system-service" "~@privileged"];
        };
      };
      systemd.timers.powersync-slot-watchdog = {
        wantedBy = ["timers.target"];
        timerConfig = {
          OnBootSec = "5min";
          OnUnitActiveSec = "${toString ops.watchdog.intervalSeconds}s";
          # The default (1 min) would add up to a minute to every interval, and so to the healing time.
          AccuracySec = "1s";
        };
      };
      systemd.tmpfiles.rules = ["d ${dirOf ops.watchdog.textfile} 0755 root root -"];
    })

    (mkIf ops.alerts.enable {
      services.prometheus.scrapeConfigs = [
        {
          job_name = pure.scrapeJob;
          # One target per runner, labelled, so the alerts can tell the replicating runner from the API ones.
          static_configs =
            map (runner: {
              targets = ["127.0.0.1:${toString runner.metricsPort}"];
              labels = {
                runner = runner.name;
                inherit (runner) role;
              };
            })
            runners;
        }
      ];
      # A file of its own (JSON is YAML): `rules` strings are joined into one file with everyone else's,
      # and each entry of ruleFiles is checked with promtool at build time.
      services.prometheus.ruleFiles = [(pkgs.writeText "powersync-alerts.rules.json" (builtins.toJSON alertRules))];
    })
  ]);
}

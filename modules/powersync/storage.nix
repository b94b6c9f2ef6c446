# Bucket storage in this host's PostgreSQL, reachable from the container over TCP with a password (the service
# speaks TCP only and needs one): a root-only password made on the host and set on the role as a SCRAM
# verifier (./storage/), a FreeBind socket on the v6egress gateway whose systemd-socket-proxyd forwards at most
# `maxConnections` connections to PostgreSQL's Unix socket as a dynamic user that is no PostgreSQL role, and
# one scram pg_hba line; any other `local` line with a password or trust method is refused, since the proxy
# makes every connection `local`. Why this shape, in full: docs/module.md ("Bucket storage").
#
# Upstream options used (nixpkgs nixos-26.05):
#   services.postgresql.{enable,ensureDatabases,ensureUsers,authentication,package,settings.port}
#     nixos/modules/services/databases/postgresql.nix (ensure* run in postgresql-setup.service)
#   systemd.sockets.<name>.{listenStreams,socketConfig,wantedBy}  nixos/modules/system/boot/systemd.nix
#     IPAddressAllow=/IPAddressDeny= on a socket unit filter the sockets it creates, i.e. the listening
#     socket passed to the proxy (systemd.resource-control(5)); MaxConnections= would only act with
#     Accept=yes (systemd.socket(5)), so the limit is the proxy's own --connections-max
#     (systemd-socket-proxyd(8)).
#   pkgs.writers.writePython3                                      pkgs/build-support/writers/scripts.nix
#   pkgs.writeShellApplication {runtimeInputs, runtimeEnv}        pkgs/build-support/trivial-builders/default.nix
#     (through lib/script.nix)
#   networking.firewall.interfaces.<if>.allowedTCPPorts           nixos/modules/services/networking/firewall.nix
{
  config,
  lib,
  pkgs,
  ...
}: let
  inherit (lib) mkIf mkOption types;
  inherit (import ../../lib/contract.nix) exposedLocalHbaLines remoteStorageErrors storageProxyCollides;
  pure = import ../../lib;
  cfg = config.services.powersync;
  inherit (cfg.storage) remote;
  v6egress = config.networking.v6egress;
  pg = config.services.postgresql;
  role = "powersync_storage";
  stateDir = "/var/lib/powersync";
  pgSocket = "/run/postgresql/.s.PGSQL.${toString pg.settings.port}";
  # Shared with xtask/tests/storage.rs, which runs the proxy with this limit against a real PostgreSQL.

  ownHbaLine = "local ${role} ${role} scram-sha-256";
  exposedHbaLines = exposedLocalHbaLines {
    authentication = pg.authentication;
    own = lib.splitString " " ownHbaLine;
  };

  poolSize = cfg.finalSettings.storage.max_pool_size or null;
  # Every runner holds its own pools, and so does the compaction container while it runs.
  pools =
    builtins.length cfg.runners.all
    + (
      if cfg.compact.enable
      then 1
      else 0
    );

  poolSizeOrDefault =
    if poolSize == null
    then 8
    else poolSize;
  serviceConnections = pure.storageProxyLimit {
    processes = pools;
    maxPoolSize = poolSize;
  };
  # PostgreSQL's own default when the host does not set it.
  pgMaxConnections = let
    value = pg.settings.max_connections or 100;
  in
    if builtins.isInt value
    then value
    else lib.toInt (toString value);

  scramVerifier = pkgs.writers.writePython3 "powersync-scram-verifier" {flakeIgnore = ["E501"];} (
    lib.removePrefix "#!/usr/bin/env python3\n" (builtins.readFile ./storage/scram-verifier.py)
  );
  setPassword = pure.shellApplication pkgs {
    name = "powersync-storage-set-password";
    source = ./storage/set-password.sh;
    runtimeInputs = [pg.package pkgs.coreutils pkgs.util-linux];
    runtimeEnv = {
      STATE_DIR = stateDir;
      ENV_FILE = cfg.storage.environmentFile;
      ROLE = role;
      SCRAM_VERIFIER = "${scramVerifier}";
      PGPORT = toString pg.settings.port;
    };
  };
in {
  options.services.powersync.storage = {
    environmentFile = mkOption {
      type = types.str;
      readOnly = true;
      default =
        if remote == null
        then "${stateDir}/storage.env"
        else remote.environmentFile;
      defaultText = lib.literalExpression ''"/var/lib/powersync/storage.env", or storage.remote.environmentFile'';
      description = ''
        Root-only env file with PS_STORAGE_PASSWORD: written by powersync-storage-password.service for the
        local storage, the operator's `storage.remote.environmentFile` for shared storage.
      '';
    };

    remote = mkOption {
      default = null;
      description = ''
        Bucket storage in a PostgreSQL that several hosts share, reached over TLS, instead of a role in this
        host's PostgreSQL behind the local proxy (which is then not set up). For deployments that outgrow one
        machine: exactly one host replicates (`runners.mode` "unified" or "split"), the others serve clients
        only (`runners.mode = "api"`), all with the same storage and sync config. PowerSync locks replication
        in storage, so a second replicating host stands by with `PSYNC_S1003` rather than corrupt anything,
        but no host's configuration can see the others': keep replication on one.
      '';
      type = types.nullOr (types.submodule {
        options = {
          hostname = mkOption {
            type = types.str;
            example = "storage.internal.example.com";
            description = "Host name of the storage PostgreSQL; with `verify-full` it must match its certificate.";
          };
          port = mkOption {
            type = types.port;
            default = 5432;
            description = "Port of the storage PostgreSQL.";
          };
          database = mkOption {
            type = types.str;
            default = role;
            description = "Database holding the buckets.";
          };
          username = mkOption {
            type = types.str;
            default = role;
            description = "Role the service logs in as (needs no superuser or replication attribute).";
          };
          environmentFile = mkOption {
            type = types.addCheck types.str (path: lib.hasPrefix "/" path && !(lib.hasPrefix builtins.storeDir path));
            example = "/run/secrets/rendered/powersync-storage.env";
            description = "Env file, outside the Nix store, holding `PS_STORAGE_PASSWORD=…` for that role.";
          };
          sslmode = mkOption {
            type = types.enum ["verify-full" "verify-ca"];
            default = "verify-full";
            description = ''
              TLS verification (the service knows no weaker TLS mode): `verify-full` checks the chain and the
              host name, `verify-ca` the chain only and needs `caCertificate`.
            '';
          };
          caCertificate = mkOption {
            type = types.nullOr types.path;
            default = null;
            example = lib.literalExpression "./storage-ca.pem";
            description = ''
              PEM of the CA that signed the storage server's certificate. It is public and goes into the
              rendered config (`cacert`), and the service then trusts only it. Null: the service's bundled
              CAs (public CAs, AWS RDS, Azure, Supabase).
            '';
          };
        };
      });
    };

    maxConnections = mkOption {
      # systemd-socket-proxyd takes one less (lib.proxydConnectionsMaxFor), and refuses 0.
      type = types.ints.between 2 100000;
      default = serviceConnections;
      defaultText = lib.literalMD "what the service's processes can open: every runner and the compaction, each `2 × (settings.storage.max_pool_size + 5)` (52 for one runner and the compaction at the default pool size)";
      description = ''
        Most connections the storage proxy holds open to PostgreSQL at once (systemd-socket-proxyd
        `--connections-max`); further ones are refused. Without a limit, clients on the container network
        that stall in the handshake can take every connection slot of the host's PostgreSQL ("too many
        clients") from every other service on it. It must cover what the service's own processes may open
        (an evaluation error otherwise: the proxy would refuse the service), and stay below PostgreSQL's
        `max_connections` so others keep slots (a warning otherwise: lower `settings.storage.max_pool_size`
        or raise `services.postgresql.settings.max_connections`).
      '';
    };
  };

  config = lib.mkMerge [
    (mkIf (cfg.enable && remote != null) {
      # The generated storage block points at the local proxy; these keys replace its connection
      # (mkDefault, so an operator's settings.storage still wins key by key).
      services.powersync.settings.storage = lib.mapAttrs (_: lib.mkDefault) (pure.remoteStorageSettings {
        inherit (remote) hostname port database username sslmode;
        caCertificate =
          if remote.caCertificate == null
          then null
          else builtins.readFile remote.caCertificate;
      });
      assertions =
        [
          {
            assertion = remote.sslmode == "verify-ca" -> remote.caCertificate != null;
            message = "services.powersync.storage.remote.sslmode = \"verify-ca\" needs storage.remote.caCertificate (the service exits 150 without a cacert).";
          }
        ]
        ++ map (message: {
          assertion = false;
          inherit message;
        }) (remoteStorageErrors cfg.finalSettings);
    })
    (mkIf (cfg.enable && remote == null) {
      assertions = [
        {
          assertion = exposedHbaLines == [];

          message = ''
            services.powersync: services.postgresql.authentication has `local` line(s) that a container could
            match through the storage proxy:
              ${lib.concatStringsSep "\n    " exposedHbaLines}
            The proxy turns every connection from the v6egress network into a `local` one, so a password or
            trust method here would let a container log in as that role (`postgres` included) with its
            password, or with none. Give these lines the `peer` method (the proxy runs as a user that is no
            PostgreSQL role), or move those clients to `host` lines.
          '';
        }
        {
          assertion =
            !(storageProxyCollides {
              listenAddresses = toString (pg.settings.listen_addresses or "localhost");
              postgresPort = pg.settings.port;
              proxyAddress = v6egress.gateway4;
              inherit (cfg.storage) proxyPort;
            });
          message = ''
            services.powersync.storage.proxyPort = ${toString cfg.storage.proxyPort} is also the port PostgreSQL
            listens on at `${toString (pg.settings.listen_addresses or "")}`, which includes ${v6egress.gateway4}
            (services.postgresql.enableTCPIP or settings.listen_addresses): the proxy socket and PostgreSQL
            cannot both bind it. Set services.powersync.storage.proxyPort to a free port, e.g. 6543.
          '';
        }
        {
          assertion = cfg.storage.maxConnections >= serviceConnections;
          message = "services.powersync.storage.maxConnections (${toString cfg.storage.maxConnections}) is below the ${toString serviceConnections} storage connections the service may open: ${toString pools} processes (every runner, and the compaction) × ${toString (pure.storageConnectionsPerProcess poolSize)} each (two pools of settings.storage.max_pool_size = ${toString poolSizeOrDefault}, plus 5 transaction connections each). The proxy would refuse the service's own connections: raise maxConnections (or leave it at its default) or lower settings.storage.max_pool_size.";
        }
      ];

      warnings = lib.optional (cfg.storage.maxConnections > pgMaxConnections - 10) ''
        services.powersync.storage.maxConnections (${toString cfg.storage.maxConnections}) leaves fewer than 10 of PostgreSQL's max_connections (${toString pgMaxConnections}) to everything else on the host: clients stalling in the handshake through the proxy could take them all. Lower settings.storage.max_pool_size (${toString poolSizeOrDefault}; each of the ${toString pools} processes opens up to 2 × (it + 5)) or raise services.postgresql.settings.max_connections.
      '';

      services.postgresql = {
        enable = true;
        ensureDatabases = [role];
        ensureUsers = [
          {
            name = role;
            ensureDBOwnership = true;
            ensureClauses = {
              superuser = false;
              replication = false;
            };
          }
        ];
        # Above the module's default `local all all peer` (mkAfter), so our role authenticates by password.
        authentication = lib.mkBefore ''
          ${ownHbaLine}
        '';
      };

      systemd.services.powersync-storage-password = {
        description = "Generate the PowerSync storage password and set it on the ${role} role";
        after = ["postgresql-setup.service"];
        requires = ["postgresql-setup.service"];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = lib.getExe setPassword;
          StateDirectory = "powersync";
          StateDirectoryMode = "0700";
          UMask = "0077";
        };
      };

      systemd.sockets.powersync-storage-proxy = {
        description = "PowerSync storage: PostgreSQL for the container, on the v6egress gateway";
        wantedBy = ["sockets.target"];
        listenStreams = ["${v6egress.gateway4}:${toString cfg.storage.proxyPort}"];
        socketConfig = {
          # The gateway address exists only once netavark has created the bridge.
          FreeBind = true;
          # Only the container network, whatever the firewall says: the kernel drops other peers' packets.
          IPAddressAllow = [v6egress.subnet4];
          IPAddressDeny = "any";
        };
      };

      systemd.services.powersync-storage-proxy = {
        description = "PowerSync storage proxy to PostgreSQL's Unix socket";
        after = ["postgresql.service"];
        requires = ["postgresql.service"];
        serviceConfig = {
          ExecStart = "${config.systemd.package}/lib/systemd/systemd-socket-proxyd --connections-max=${toString (pure.proxydConnectionsMaxFor cfg.storage.maxConnections)} ${pgSocket}";
          # Hardening: a throwaway user that is no PostgreSQL role, no network of its own (the listening socket
          # is inherited, and the socket unit's IP filter stays on it; the Unix socket is reached through the
          # file system), nothing else.
          DynamicUser = true;
          PrivateNetwork = true;
          IPAddressDeny = "any";
          RestrictAddressFamilies = ["AF_UNIX"];
          CapabilityBoundingSet = "";
          NoNewPrivileges = true;
          ProtectHome = true;
          ProtectKernelTunables = true;
          ProtectKernelModules = true;
          ProtectControlGroups = true;
          ProtectClock = true;
          ProtectHostname = true;
          ProtectProc = "invisible";
          PrivateDevices = true;
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          RestrictNamespaces = true;
          RestrictRealtime = true;
          SystemCallArchitectures = "native";
          SystemCallFilter = ["@system-service" "~@privileged"];
          UMask = "0077";
        };
      };

      networking.firewall.interfaces.${v6egress.interfaceName}.allowedTCPPorts = [cfg.storage.proxyPort];
    })
  ];
}

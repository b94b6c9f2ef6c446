# Bucket storage in this host's PostgreSQL, reachable from the container over TCP with a password.
#
# Why this shape: the service connects over TCP only and requires a password (no Unix socket, no peer auth);
# no secret may enter the Nix store (so no ensureClauses.password); PostgreSQL must not listen beyond
# localhost; and netavark only creates the bridge, and so its gateway address, when the first container
# starts. So:
#   - a root-only password generated once under /var/lib/powersync, set on the role after PostgreSQL's setup
#     and handed to the container as PS_STORAGE_PASSWORD through an env file;
#   - a socket unit with FreeBind=true on the v6egress gateway (the port opened on that bridge only), whose
#     systemd-socket-proxyd forwards to PostgreSQL's Unix socket;
#   - pg_hba: `local powersync_storage powersync_storage scram-sha-256` above the default `peer` rules.
# Through the proxy every connection is `local` to PostgreSQL, so every `local` pg_hba rule applies to
# whoever reaches the port: the proxy runs as a dynamic user that is no PostgreSQL role (the default `peer`
# rules then refuse everything but our scram line), and a `local … trust` rule is refused outright.
# TLS cannot run over the Unix socket, hence `sslmode: disable` on the storage connection; the bytes never
# leave the host.
#
# Upstream options used (nixpkgs nixos-26.05):
#   services.postgresql.{enable,ensureDatabases,ensureUsers,authentication,package,settings.port}
#     nixos/modules/services/databases/postgresql.nix (ensure* run in postgresql-setup.service)
#   systemd.sockets.<name>.{listenStreams,socketConfig,wantedBy}  nixos/modules/system/boot/systemd.nix
#   networking.firewall.interfaces.<if>.allowedTCPPorts           nixos/modules/services/networking/firewall.nix
{
  config,
  lib,
  pkgs,
  ...
}: let
  inherit (lib) mkIf mkOption types;
  cfg = config.services.powersync;
  v6egress = config.networking.v6egress;
  pg = config.services.postgresql;
  role = "powersync_storage";
  stateDir = "/var/lib/powersync";
  pgSocket = "/run/postgresql/.s.PGSQL.${toString pg.settings.port}";

  # A `local` line whose method is trust (e.g. "local all all trust"): through the proxy it would let anyone
  # on the bridge in as any role.
  localTrust =
    builtins.filter (line: builtins.match "[[:space:]]*local[[:space:]].*[[:space:]]trust([[:space:]].*)?" line != null)
    (lib.splitString "\n" pg.authentication);
in {
  options.services.powersync.storage.environmentFile = mkOption {
    type = types.str;
    readOnly = true;
    default = "${stateDir}/storage.env";
    description = "Root-only env file with PS_STORAGE_PASSWORD, written by powersync-storage-password.service.";
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = localTrust == [];
        message = ''
          services.powersync: services.postgresql.authentication has a `local … trust` rule:
            ${lib.concatStringsSep "\n  " localTrust}
          The storage proxy turns every connection from the container network into a `local` one, so this
          rule would admit it as any role, superuser included. Use peer or scram-sha-256 for local lines.
        '';
      }
    ];

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
        local ${role} ${role} scram-sha-256
      '';
    };

    systemd.services.powersync-storage-password = {
      description = "Generate the PowerSync storage password and set it on the ${role} role";
      after = ["postgresql-setup.service"];
      requires = ["postgresql-setup.service"];
      path = [pg.package pkgs.coreutils pkgs.util-linux];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        StateDirectory = "powersync";
        StateDirectoryMode = "0700";
        UMask = "0077";
      };
      # The password never reaches argv (visible in /proc) or the store: psql reads it on stdin. It is set on
      # every start, so a re-initialised database gets it back.
      script = ''
        password_file=${stateDir}/storage-password
        if [ ! -s "$password_file" ]; then
          head -c 36 /dev/urandom | base64 -w0 | tr -d '+/=' > "$password_file.tmp"
          mv "$password_file.tmp" "$password_file"
        fi
        password=$(cat "$password_file")
        printf 'PS_STORAGE_PASSWORD=%s\n' "$password" > ${stateDir}/storage.env.tmp
        mv ${stateDir}/storage.env.tmp ${cfg.storage.environmentFile}
        printf "ALTER ROLE ${role} WITH PASSWORD '%s';\n" "$password" \
          | runuser -u postgres -- psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 \
              -p ${toString pg.settings.port} -d postgres
      '';
    };

    systemd.sockets.powersync-storage-proxy = {
      description = "PowerSync storage: PostgreSQL for the container, on the v6egress gateway";
      wantedBy = ["sockets.target"];
      listenStreams = ["${v6egress.gateway4}:${toString cfg.storage.proxyPort}"];
      # The gateway address exists only once netavark has created the bridge.
      socketConfig.FreeBind = true;
    };

    systemd.services.powersync-storage-proxy = {
      description = "PowerSync storage proxy to PostgreSQL's Unix socket";
      after = ["postgresql.service"];
      requires = ["postgresql.service"];
      serviceConfig = {
        ExecStart = "${config.systemd.package}/lib/systemd/systemd-socket-proxyd ${pgSocket}";
        # Hardening: a throwaway user that is no PostgreSQL role, no network of its own (the listening socket
        # is inherited; the Unix socket is reached through the file system), nothing else.
        DynamicUser = true;
        PrivateNetwork = true;
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
  };
}

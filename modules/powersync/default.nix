# services.powersync: the PowerSync Service as a podman container, replicating from a Postgres source
# (Supabase's direct IPv6 endpoint) over the v6egress network, keeping bucket storage in this host's
# PostgreSQL, served through nginx. This file declares the options and the config contract; container.nix,
# storage.nix and nginx.nix wire them.
{
  config,
  lib,
  pkgs,
  ...
}: let
  inherit (lib) literalExpression mkEnableOption mkIf mkOption types;
  pure = import ../../lib;
  cfg = config.services.powersync;
  pin = pure.imagePin ./image.nix;
  inherit (pure) defaults;
  contract = pure.checkSettings cfg.finalSettings;

  # A secret's path must not point into the world-readable store (a Nix path literal would copy it there).
  pathNotInStore =
    types.addCheck types.str (path: lib.hasPrefix "/" path && !(lib.hasPrefix builtins.storeDir path))
    // {
      description = "absolute path outside the Nix store";
    };
in {
  imports = [
    ../v6egress
    ./container.nix
    ./runners.nix
    ./storage.nix
    ./nginx.nix
    ./operations.nix
    ./verify.nix
  ];

  options.services.powersync = {
    enable = mkEnableOption "the PowerSync Service (self-hosted sync server for PowerSync's offline-first SDKs)";

    image = mkOption {
      type = types.str;
      default = pin.reference;
      defaultText = literalExpression ''"docker.io/journeyapps/powersync-service:<tag>@sha256:<index digest>" (modules/powersync/image.nix)'';
      description = ''
        The image podman runs, pinned by tag and multi-arch index digest. Podman pulls it only when missing;
        a digest never changes, so nothing moves without a commit (`cargo xtask bump` updates the pin).
      '';
    };

    imageFile = mkOption {
      type = types.nullOr types.package;
      default = null;
      example = literalExpression ''pkgs.dockerTools.pullImage { imageName = "journeyapps/powersync-service"; … }'';
      description = ''
        An image archive to load instead of pulling (VM tests, air-gapped hosts). A loaded archive carries no
        registry digest, so `image` must then be exactly the archive's `name:tag`; podman will not pull.
      '';
    };

    settings = mkOption {
      type = types.submodule {freeformType = (pkgs.formats.yaml {}).type;};
      default = {};
      example = literalExpression ''
        {
          storage.max_pool_size = 8;
          api.tokens = [ (powersync-nix.lib.env "PS_ADMIN_TOKEN") ];
        }
      '';
      description = ''
        Service config (RFC 42), merged key by key over the config this module generates from its other
        options: attribute sets merge, other values replace, `null` removes a key. The result is
        `finalSettings`, rendered to the YAML file the container reads. Secrets go in environment files and
        appear here only as `!env PS_…` references: `{ _env = "PS_NAME"; }` (the flake's `lib.env "PS_NAME"`).
        Mistakes the service would silently ignore (`api.port`, `slot_name`, …) and mistakes it would only
        report by exiting 150 at start (both `sync_rules` and `sync_config`, `sslmode: require`, …) fail
        evaluation.
      '';
    };

    finalSettings = mkOption {
      type = types.attrs;
      readOnly = true;
      # The same function `cargo xtask render` calls on a host's instance.nix: one path to the bytes.
      default = pure.instanceSettings {
        powersync = {
          replication = {inherit (cfg.replication) slotNamePrefix hostname port;};
          auth = {inherit (cfg.auth) jwksUri audience;};
          metrics = {inherit (cfg.metrics) enable port;};
          storage = {inherit (cfg.storage) proxyPort;};
          listen = {inherit (cfg.listen) port;};
          inherit (cfg) settings;
        };
        v6egress = {inherit (config.networking.v6egress) subnet4 subnet6 interfaceName;};
      };
      defaultText = literalExpression "generated settings merged with services.powersync.settings";
      description = "The service config as rendered: what this module generates, with `settings` merged over it.";
    };

    configFile = mkOption {
      type = types.package;
      readOnly = true;
      default = pkgs.writeText "powersync-service.yaml" (pure.renderConfig cfg.finalSettings);
      defaultText = literalExpression "rendered finalSettings";
      description = "The rendered config file, mounted read-only into the container (also `system.build.powersyncConfig`).";
    };

    syncConfig = mkOption {
      type = types.path;
      example = literalExpression "./powersync/sync-config.yaml";
      description = "The sync config YAML (your bucket definitions or sync streams), mounted read-only into the container.";
    };

    sourceEnvironmentFile = mkOption {
      type = pathNotInStore;
      example = "/run/secrets/rendered/powersync-source.env";
      description = ''
        Environment file holding `PS_SOURCE_DSN=postgresql://<user>:<pw>@db.<project>.supabase.co:5432/postgres`,
        typically a sops-nix template. Use the direct endpoint, not the Supavisor pooler, and no
        `replication=database`. The service ignores `sslmode` in the DSN; TLS follows the `sslmode` key.
      '';
    };

    auth = {
      jwksUri = mkOption {
        # nixpkgs' lib.types has no URL type: a string that must be an http(s) URL (lib/systemd.nix).
        type = types.nullOr (types.addCheck types.str pure.isHttpUrl // {description = "http(s) URL";});
        default = defaults.auth.jwksUri;
        example = "https://<project>.supabase.co/auth/v1/.well-known/jwks.json";
        description = "JWKS URI whose keys verify client JWTs (`client_auth.jwks_uri`). Supabase publishes its asymmetric signing keys here.";
      };

      audience = mkOption {
        type = types.str;
        default = defaults.auth.audience;
        description = "Audience client JWTs must carry (`client_auth.audience`); Supabase user tokens use `authenticated`.";
      };
    };

    replication = {
      slotNamePrefix = mkOption {
        type = types.str;
        default = defaults.replication.slotNamePrefix;
        description = ''
          Prefix of the replication slots the service creates on the source; it appends `<sync config id>_<hex>`.
          A prefix distinct from PowerSync Cloud's keeps both apart when they replicate the same database.
        '';
      };

      hostname = mkOption {
        type = types.nullOr types.str;
        default = defaults.replication.hostname;
        example = "db.<project>.supabase.co";
        description = ''
          Source host, rendered as the connection's own `hostname` key, which wins over the DSN's host: the
          config then shows which endpoint is used without the secret. Null takes the host from the DSN.
        '';
      };

      port = mkOption {
        type = types.port;
        default = defaults.replication.port;
        description = "Source port, rendered with `hostname` (ignored when `hostname` is null).";
      };
    };

    listen.port = mkOption {
      type = types.port;
      default = defaults.listen.port;
      description = "Host port on 127.0.0.1 where the service's API is published (nginx proxies to it).";
    };

    metrics = {
      enable = mkOption {
        type = types.bool;
        default = defaults.metrics.enable;
        description = "Expose the service's Prometheus metrics (`telemetry.prometheus_port`) on 127.0.0.1.";
      };

      port = mkOption {
        type = types.port;
        default = defaults.metrics.port;
        description = "Host port on 127.0.0.1 where the Prometheus metrics are published.";
      };
    };

    storage.proxyPort = mkOption {
      type = types.port;
      default = defaults.storage.proxyPort;
      description = ''
        Port of the storage proxy on the v6egress gateway address: the container's only way into this host's
        PostgreSQL (see storage.nix for why a proxy). It may equal PostgreSQL's port as long as PostgreSQL
        listens on localhost only (the NixOS default); with `enableTCPIP` both would bind the gateway's port,
        and evaluation fails with a request to pick another one.
      '';
    };

    # nginx.* is declared in nginx.nix, container.* in container.nix, storage.{maxConnections,…} in storage.nix.
  };

  config = mkIf cfg.enable {
    assertions =
      map (message: {
        assertion = false;
        message = "services.powersync.settings: ${message}";
      })
      contract.errors
      ++ [
        {
          assertion = builtins.isInt (cfg.finalSettings.port or null);
          message = "services.powersync.settings.port must be a number: the module publishes it on 127.0.0.1:${toString cfg.listen.port}.";
        }
        {
          assertion = cfg.imageFile != null -> !(lib.hasInfix "@" cfg.image);
          message = "services.powersync.image must be the archive's name:tag when imageFile is set (a loaded archive has no registry digest), e.g. docker.io/journeyapps/powersync-service:${pin.tag}.";
        }
        {
          assertion = cfg.nginx.enable -> cfg.nginx.domain != null;
          message = "services.powersync.nginx.enable needs services.powersync.nginx.domain.";
        }
      ];

    warnings = map (message: "services.powersync.settings: ${message}") contract.warnings;

    networking.v6egress.enable = true;

    system.build.powersyncConfig = cfg.configFile;
  };
}

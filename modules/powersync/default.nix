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
  contract = pure.checkSettings cfg.finalSettings;

  # A secret's path must not point into the world-readable store (a Nix path literal would copy it there).
  pathNotInStore =
    types.addCheck types.str (path: lib.hasPrefix "/" path && !(lib.hasPrefix builtins.storeDir path))
    // {
      description = "absolute path outside the Nix store";
    };
in {
  imports = [
    {
      options.services.powersync = pure.instanceOptions {
        inherit (lib) mkOption literalExpression types;
        yaml = (pkgs.formats.yaml {}).type;
      } "powersync";
    }
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

    finalSettings = mkOption {
      type = types.attrs;
      readOnly = true;
      # The same function `cargo xtask render` calls on a host's instance.nix: one path to the bytes.
      default = pure.instanceSettings (pure.instanceOf config);
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

    # The options that shape the service config (auth, replication, listen, metrics, storage.proxyPort,
    # nginx.domain, settings) are the instance's, declared in lib/instance.nix (imports above); the rest of
    # nginx.* is in nginx.nix, container.* in container.nix, storage.{maxConnections,…} in storage.nix.
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

# The PowerSync container and its unit: podman on the v6egress network, read-only and unprivileged, published
# on 127.0.0.1 only, started after its network and its storage.
#
# Upstream options used (nixpkgs nixos-26.05):
#   virtualisation.oci-containers.{backend,containers.<name>.*}  nixos/modules/virtualisation/oci-containers.nix
#     (unit podman-<name>.service; `pull` defaults to "missing"; extraOptions go to `podman run` verbatim)
#   systemd.services.<name>.{after,requires}                       nixos/modules/system/boot/systemd.nix
{
  config,
  lib,
  ...
}: let
  pure = import ../../lib;
  cfg = config.services.powersync;
  settings = cfg.finalSettings;
  prometheusPort = settings.telemetry.prometheus_port or null;

  # The image is node:24-trixie-slim based: no curl, but node. Exit 0 only on a 200 from liveness.
  liveness = "require('http').get('http://127.0.0.1:${toString settings.port}/probes/liveness', (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))";
in {
  config = lib.mkIf cfg.enable {
    virtualisation.oci-containers.backend = "podman";

    virtualisation.oci-containers.containers.powersync = {
      inherit (cfg) image imageFile;
      # "missing" is enough for a digest pin (a digest never moves); an archive is loaded, never pulled.
      pull =
        if cfg.imageFile == null
        then "missing"
        else "never";
      environment.POWERSYNC_CONFIG_PATH = pure.configPath;
      environmentFiles = [
        cfg.sourceEnvironmentFile
        config.services.powersync.storage.environmentFile
      ];
      volumes = [
        "${cfg.configFile}:${pure.configPath}:ro"
        "${cfg.syncConfig}:${pure.syncConfigPath}:ro"
      ];
      # Published ports bypass the NixOS firewall: bind them to loopback only; nginx is the public face.
      ports =
        ["127.0.0.1:${toString cfg.listen.port}:${toString settings.port}"]
        ++ lib.optional (cfg.metrics.enable && builtins.isInt prometheusPort)
        "127.0.0.1:${toString cfg.metrics.port}:${toString prometheusPort}";
      # The image's own user; stated so a changed image default cannot silently run us as root.
      user = "901:901";
      networks = ["v6egress"];
      extraOptions = [
        # Hardening: nothing in the image is written at run time except these tmpfs.
        "--read-only"
        "--tmpfs=/tmp:rw,nosuid,nodev,noexec,size=64m"
        "--tmpfs=/app/.probes:rw,nosuid,nodev,noexec,size=1m,mode=1777"
        "--cap-drop=all"
        "--security-opt=no-new-privileges"
        # Liveness as a podman health check; a container that stops answering is killed, and the unit's
        # Restart=always brings it back.
        "--health-cmd=${builtins.toJSON ["node" "-e" liveness]}"
        "--health-interval=30s"
        "--health-timeout=5s"
        "--health-retries=3"
        "--health-start-period=60s"
        "--health-on-failure=kill"
      ];
    };

    # Nothing upstream orders a container after a custom network or a database, so say it here.
    systemd.services.podman-powersync = let
      needs = [
        "init-v6egress-network.service"
        # Where current nixpkgs runs ensureDatabases/ensureUsers (postgresql.nix).
        "postgresql-setup.service"
        "powersync-storage-password.service"
        "powersync-storage-proxy.socket"
      ];
    in {
      after = needs;
      requires = needs;
    };
  };
}

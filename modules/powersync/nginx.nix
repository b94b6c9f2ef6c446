# The public face: an nginx virtual host with ACME over DNS-01, proxying to the container on 127.0.0.1,
# websockets and long-lived sync streams included.
#
# Upstream options used (nixpkgs nixos-26.05):
#   services.nginx.virtualHosts.<name>.{enableACME,forceSSL,acmeRoot,locations}
#     nixos/modules/services/web-servers/nginx/vhost-options.nix, location-options.nix
#   `acmeRoot = null` inherits the challenge from security.acme (nixos/modules/security/acme/default.nix):
#   the host must set security.acme.defaults.dnsProvider (or the cert's) and its credentials.
{
  config,
  lib,
  ...
}: let
  cfg = config.services.powersync;
in {
  config = lib.mkIf (cfg.enable && cfg.nginx.enable) {
    services.nginx = {
      enable = true;
      virtualHosts.${cfg.nginx.domain} = {
        # mkDefault: a host (or a VM test with a local CA) may bring its own certificate instead.
        enableACME = lib.mkDefault true;
        acmeRoot = lib.mkDefault null;
        forceSSL = true;
        locations."/" = {
          proxyPass = "http://127.0.0.1:${toString cfg.listen.port}";
          proxyWebsockets = true;
          # Sync streams stay open for as long as a client is online and send NDJSON lines as they happen:
          # long timeouts, and no buffering that would hold lines back.
          extraConfig = ''
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            proxy_buffering off;
          '';
        };
      };
    };
  };
}

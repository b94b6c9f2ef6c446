# The public face: an nginx virtual host with ACME over DNS-01, proxying to the container on 127.0.0.1,
# websockets and long-lived sync streams included, with HSTS, the forwarded-client headers, per-client
# connection and request limits, and the service's admin API kept off it unless asked for.
#
# Upstream options used (nixpkgs nixos-26.05):
#   services.nginx.{enable,commonHttpConfig}                   nixos/modules/services/web-servers/nginx/default.nix
#     (commonHttpConfig lands in the http block before the server blocks, where limit_*_zone must be)
#   services.nginx.virtualHosts.<name>.{enableACME,forceSSL,acmeRoot,extraConfig,locations}
#     …/nginx/vhost-options.nix; extraConfig goes into the TLS server block only (forceSSL's redirect block
#     has none), so HSTS is sent over HTTPS only, as RFC 6797 requires
#   …locations.<path>.{proxyPass,proxyWebsockets,recommendedProxySettings,extraConfig}  …/nginx/location-options.nix
#     recommendedProxySettings on a location adds only the include of the Host/X-Real-IP/X-Forwarded-* headers
#     (after extraConfig), not the global timeouts, so it does not clash with the timeouts below
#   services.nginx.upstreams.<name>.{servers,extraConfig}      …/nginx/default.nix: each server's attributes
#     become `key=value` parameters (`server 127.0.0.1:8080 max_conns=100;`); services.nginx.eventsConfig
#     is the events block
#   networking.firewall.allowedTCPPorts                        nixos/modules/services/networking/firewall.nix
#   `acmeRoot = null` inherits the challenge from security.acme (nixos/modules/security/acme/default.nix):
#   the host must set security.acme.defaults.dnsProvider (or the cert's) and its credentials.
{
  config,
  lib,
  ...
}: let
  inherit (lib) mkEnableOption mkOption types;
  pure = import ../../lib;
  cfg = config.services.powersync;
  # Split and API-only hosts serve through several API runners.
  split = cfg.runners.mode != "unified";
  apiUpstream = pure.upstream {
    runners = cfg.runners.all;
    inherit (cfg.nginx) maxConnsPerRunner;
  };
  neededConnections = pure.workerConnectionsNeeded {
    runners = cfg.runners.all;
    inherit (cfg.nginx) maxConnsPerRunner;
  };
  # One runner: straight to it. Split: the API runners' upstream, where a stream whose runner went away
  # reconnects to another (the SDKs reconnect by themselves).
  upstream =
    if split
    then "http://powersync_api"
    else "http://127.0.0.1:${toString cfg.listen.port}";

  # What every proxied location shares: long-lived streams, no buffering, the client's address passed on.
  proxied = {
    proxyPass = upstream;
    proxyWebsockets = true;
    recommendedProxySettings = true;
  };
  # Sync streams stay open for as long as a client is online and send NDJSON lines as they happen: long
  # timeouts, and no buffering that would hold lines back.
  streaming = ''
    proxy_read_timeout 3600s;
    proxy_send_timeout 3600s;
    proxy_buffering off;
  '';
in {
  options.services.powersync.nginx = {
    enable = mkEnableOption "an nginx virtual host with ACME (DNS-01) in front of the service";

    domain = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "powersync.example.com";
      description = "Domain of the virtual host.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Open TCP 80 and 443 in the NixOS firewall for the virtual host (80 only redirects to HTTPS; the
        certificate comes over DNS-01 and needs no inbound port).
      '';
    };

    exposeAdminApi = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Proxy the service's admin API (`/api/…`: `/api/admin/v1/*`, `/api/sync-rules/v1/*`, guarded by
        `api.tokens`) on the public host. Off by default: the vhost answers 404 there, and operators reach it
        on 127.0.0.1:${toString cfg.listen.port} (e.g. over SSH).
      '';
    };

    maxConnsPerRunner = mkOption {
      type = types.ints.between 1 200;
      default = 100;
      description = ''
        Split mode: concurrent connections nginx sends to one API runner (`max_conns`, shared across
        workers). PowerSync advises at most ~100 per runner; the service itself refuses beyond 200 with 429,
        so a higher value would only turn into 429s. Add API runners for more clients.
      '';
    };

    workerConnections = mkOption {
      type = types.nullOr types.ints.positive;
      default = null;
      example = 4096;
      description = ''
        nginx's `worker_connections`, if this module should set it (in `services.nginx.eventsConfig`). Every
        open sync stream holds two connections (client and runner). Left null, nginx keeps its default
        (512 per worker) and evaluation warns when split mode's capacity needs more.
      '';
    };

    limits = {
      connectionsPerClient = mkOption {
        type = types.ints.positive;
        default = 50;
        description = ''
          Concurrent connections one client address may hold (nginx `limit_conn`), sync streams included;
          beyond it nginx answers 429. One process serves at most 200 streams
          (`api.parameters.max_concurrent_connections`), so this keeps one address from taking all of them
          while leaving room for clients behind one NAT.
        '';
      };

      requestsPerSecondPerClient = mkOption {
        type = types.ints.positive;
        default = 10;
        description = ''
          Sustained request rate per client address (nginx `limit_req`, with a burst of five times this,
          served without delay); beyond it nginx answers 429. Opening a sync stream is one request, so this
          only bites clients that reconnect or poll in a loop.
        '';
      };
    };
  };

  config = lib.mkIf (cfg.enable && cfg.nginx.enable) {
    networking.firewall.allowedTCPPorts = lib.mkIf cfg.nginx.openFirewall [80 443];

    warnings =
      lib.optional (split && cfg.nginx.workerConnections == null && neededConnections > 512) ''
        services.powersync: ${cfg.runners.mode} mode lets nginx hold ${toString (cfg.runners.apiRunners * cfg.nginx.maxConnsPerRunner)} streams (${toString cfg.runners.apiRunners} API runners x nginx.maxConnsPerRunner ${toString cfg.nginx.maxConnsPerRunner}), which needs about ${toString neededConnections} nginx connections; nginx's default worker_connections is 512 per worker. Set services.powersync.nginx.workerConnections = ${toString neededConnections}; (or more).'';
    assertions = [
      {
        assertion = cfg.nginx.workerConnections == null || cfg.nginx.workerConnections >= neededConnections || !split;
        message = "services.powersync.nginx.workerConnections = ${toString cfg.nginx.workerConnections} is below the ${toString neededConnections} that split mode's capacity needs (two per stream); raise it or lower nginx.maxConnsPerRunner.";
      }
    ];

    services.nginx = {
      enable = true;
      eventsConfig = lib.mkIf (cfg.nginx.workerConnections != null) ''
        worker_connections ${toString cfg.nginx.workerConnections};
      '';
      upstreams = lib.mkIf split {powersync_api = apiUpstream;};
      # Keyed on the client address; the zones live in the http block, the limits in the locations.
      commonHttpConfig = ''
        limit_conn_zone $binary_remote_addr zone=powersync_conn:10m;
        limit_req_zone $binary_remote_addr zone=powersync_req:10m rate=${toString cfg.nginx.limits.requestsPerSecondPerClient}r/s;
      '';
      virtualHosts.${cfg.nginx.domain} = {
        # mkDefault: a host (or a VM test with a local CA) may bring its own certificate instead.
        enableACME = lib.mkDefault true;
        acmeRoot = lib.mkDefault null;
        forceSSL = true;
        extraConfig = ''
          add_header Strict-Transport-Security "max-age=31536000" always;
          limit_conn powersync_conn ${toString cfg.nginx.limits.connectionsPerClient};
          limit_req zone=powersync_req burst=${toString (5 * cfg.nginx.limits.requestsPerSecondPerClient)} nodelay;
          limit_conn_status 429;
          limit_req_status 429;
        '';
        locations."/" = proxied // {extraConfig = streaming;};
        locations."/api/" =
          if cfg.nginx.exposeAdminApi
          then proxied // {extraConfig = streaming;}
          else {extraConfig = "return 404;";};
      };
    };
  };
}

# The public face: an nginx virtual host with ACME over DNS-01, proxying to the runners on 127.0.0.1,
# websockets and long-lived sync streams included, with HSTS, the forwarded-client headers, per-client
# budgets that keep sync streams and ordinary requests apart, a per-source connection cap below TLS, and the
# service's admin API kept off it unless asked for. The directives themselves are lib/nginx.nix's.
#
# Upstream options used (nixpkgs nixos-26.05):
#   services.nginx.{enable,commonHttpConfig,eventsConfig,appendConfig,upstreams}
#     nixos/modules/services/web-servers/nginx/default.nix: commonHttpConfig lands in the http block before
#     the server blocks, where map and limit_*_zone must be; eventsConfig is the events block; appendConfig
#     ends the main context (worker_rlimit_nofile); each upstream server's attributes become `key=value`
#     parameters (`server 127.0.0.1:8080 max_conns=100;`)
#   services.nginx.{defaultHTTPListenPort,defaultSSLListenPort}  …/nginx/default.nix: the vhost's ports
#   services.nginx.virtualHosts.<name>.{enableACME,forceSSL,acmeRoot,extraConfig,locations}
#     …/nginx/vhost-options.nix; extraConfig goes into the TLS server block only (forceSSL's redirect block
#     has none), so HSTS is sent over HTTPS only, as RFC 6797 requires
#   …locations.<path>.{proxyPass,proxyWebsockets,recommendedProxySettings,extraConfig}  …/nginx/location-options.nix
#     recommendedProxySettings on a location adds only the include of the Host/X-Real-IP/X-Forwarded-* headers
#     (after extraConfig), not the global timeouts, so it does not clash with the timeouts in extraConfig
#   networking.firewall.allowedTCPPorts                        nixos/modules/services/networking/firewall.nix
#   networking.nftables.{enable,tables.<name>.{family,content}}  nixos/modules/services/networking/nftables.nix
#   `acmeRoot = null` inherits the challenge from security.acme (nixos/modules/security/acme/default.nix):
#   the host must set security.acme.defaults.dnsProvider (or the cert's) and its credentials.
{
  config,
  lib,
  pkgs,
  ...
}: let
  inherit (lib) mkEnableOption mkOption types;
  pure = import ../../lib;
  inherit (pure.nginx) defaults;
  cfg = config.services.powersync;
  limits = cfg.nginx.limits;
  sizing = {
    runners = cfg.runners.all;
    inherit (cfg.nginx) maxConnsPerRunner;
  };
  capacity = pure.nginx.streamCapacity sizing;
  neededConnections = pure.nginx.workerConnectionsNeeded (sizing // {inherit (limits) tcpConnectionsPerClient;});
  frontend = pure.nginx.frontend (sizing
    // {
      inherit (limits) streamsPerClient requestsPerSecondPerClient tcpConnectionsPerClient;
      inherit (cfg.nginx) workerConnections exposeAdminApi;
      ports = [config.services.nginx.defaultHTTPListenPort config.services.nginx.defaultSSLListenPort];
    });
  inherit (frontend) nftables;
  # With the nftables-based firewall the cap is one of NixOS's own tables (reloaded with it); with the
  # iptables-based one, a unit of its own loads the same table before nginx starts.
  capUnit = "powersync-nginx-connection-cap";
in {
  imports = [
    # Added 2026-12-04: it capped every request of an address (nginx limit_conn), streams included; streams
    # now have a budget of their own, and tcpConnectionsPerClient caps connections below TLS.
    (lib.mkRenamedOptionModule ["services" "powersync" "nginx" "limits" "connectionsPerClient"] ["services" "powersync" "nginx" "limits" "streamsPerClient"])
  ];

  options.services.powersync.nginx = {
    enable = mkEnableOption "an nginx virtual host with ACME (DNS-01) in front of the service";

    # domain is the instance's (lib/instance.nix), where `cargo xtask verify` reads it too.

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
        `api.tokens`) on the public host, in the ordinary requests' budget. Off by default: the vhost answers
        404 there, and operators reach it on 127.0.0.1:${toString cfg.listen.port} (e.g. over SSH).
      '';
    };

    maxConnsPerRunner = mkOption {
      type = types.ints.between 1 200;
      default = defaults.maxConnsPerRunner cfg.runners.mode;
      defaultText = lib.literalMD "200 in unified mode, 100 per API runner otherwise";
      description = ''
        Concurrent sync streams nginx sends to one runner (`max_conns` on the streams' upstream, shared
        across workers); ordinary requests are not counted. When every runner is at this, nginx answers 503
        with `Retry-After`. The service itself refuses beyond 200 with a bare 429, so a higher value would
        only turn into 429s. One unified process keeps that limit; PowerSync advises at most ~100 per API
        runner: add API runners for more clients.
      '';
    };

    workerConnections = mkOption {
      type = types.nullOr types.ints.positive;
      default = neededConnections;
      defaultText = lib.literalMD "2 × stream capacity + 2 × `limits.tcpConnectionsPerClient` + 64";
      example = 4096;
      description = ''
        nginx's `worker_connections` (in `services.nginx.eventsConfig`, with `worker_rlimit_nofile` at twice
        it in `services.nginx.appendConfig`). Every open sync stream holds two connections (client and
        runner); the default also fits one client at its `limits.tcpConnectionsPerClient` cap on top, so no
        single address can starve the streams. Null leaves both to the host's own nginx configuration.
      '';
    };

    limits = {
      streamsPerClient = mkOption {
        type = types.ints.positive;
        default = defaults.streamsPerClient;
        description = ''
          Concurrent sync streams (`/sync/stream`, HTTP and websocket) one client may hold, where a client is
          an IPv4 address or an IPv6 /64 (nginx `limit_conn`); beyond it nginx answers 429 with
          `Retry-After`. A client may also open this many at once (the burst of its stream-open rate), so
          an office behind one NAT reconnects in one go after a restart. Ordinary requests do not count.
        '';
      };

      requestsPerSecondPerClient = mkOption {
        type = types.ints.positive;
        default = defaults.requestsPerSecondPerClient;
        description = ''
          Sustained rate, per client (IPv4 address or IPv6 /64), of ordinary requests (write checkpoints,
          probes; a burst of ten times this is served without delay) and, separately, of stream opens (a
          burst of `streamsPerClient`). Beyond it nginx answers 429 with `Retry-After`.
        '';
      };

      tcpConnectionsPerClient = mkOption {
        type = types.ints.positive;
        default = defaults.tcpConnectionsPerClient;
        description = ''
          TCP connections one client (IPv4 address or IPv6 /64) may hold to the vhost's ports (80 and 443,
          whichever vhost they are for), counted by the kernel (nftables table `inet powersync_nginx`,
          `ct count`) before TLS and before nginx reads anything, so half-sent requests count too; one more
          is reset. nginx's own limits only see a request once its header is
          complete. Each HTTP/1.1 sync stream is one connection, so keep it above `streamsPerClient`. It
          assumes clients connect directly: behind a proxy or CDN every client shares its addresses.
        '';
      };
    };
  };

  config = lib.mkIf (cfg.enable && cfg.nginx.enable) {
    networking.firewall.allowedTCPPorts = lib.mkIf cfg.nginx.openFirewall [80 443];

    assertions = [
      {
        assertion = cfg.nginx.workerConnections == null || cfg.nginx.workerConnections >= neededConnections;
        message = "services.powersync.nginx.workerConnections = ${toString cfg.nginx.workerConnections} is below the ${toString neededConnections} needed: ${toString capacity} streams (two connections each) plus one client at nginx.limits.tcpConnectionsPerClient = ${toString limits.tcpConnectionsPerClient}. Raise it, or leave it at its default.";
      }
      {
        assertion = limits.tcpConnectionsPerClient >= limits.streamsPerClient;
        message = "services.powersync.nginx.limits.tcpConnectionsPerClient (${toString limits.tcpConnectionsPerClient}) is below limits.streamsPerClient (${toString limits.streamsPerClient}): every HTTP/1.1 sync stream is a TCP connection, so clients would be reset before they reach their stream budget. Raise tcpConnectionsPerClient.";
      }
    ];

    networking.nftables.tables.${nftables.table} = lib.mkIf config.networking.nftables.enable {
      inherit (nftables) family content;
    };
    systemd.services.${capUnit} = lib.mkIf (!config.networking.nftables.enable) {
      description = "Cap the TCP connections per client to the PowerSync vhost";
      # Wanted, not required: nginx serves even if the cap cannot be loaded.
      wantedBy = ["multi-user.target" "nginx.service"];
      before = ["nginx.service"];
      serviceConfig = pure.nftables.loaderServiceConfig {
        nft = "${pkgs.nftables}/bin/nft";
        rulesetFile = pkgs.writeText "powersync-nginx-cap.nft" nftables.ruleset;
        table = nftables;
      };
    };

    services.nginx = {
      enable = true;
      eventsConfig = lib.mkIf (cfg.nginx.workerConnections != null) frontend.eventsConfig;
      appendConfig = lib.mkIf (cfg.nginx.workerConnections != null) frontend.mainConfig;
      inherit (frontend) upstreams;
      commonHttpConfig = frontend.httpConfig;
      virtualHosts.${cfg.nginx.domain} = {
        # mkDefault: a host (or a VM test with a local CA) may bring its own certificate instead.
        enableACME = lib.mkDefault true;
        acmeRoot = lib.mkDefault null;
        forceSSL = true;
        extraConfig = frontend.serverConfig;
        inherit (frontend) locations;
      };
    };
  };
}

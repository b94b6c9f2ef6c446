# nginx in front of the service: the upstreams, the per-client budgets, the timeouts and the per-source
# connection cap below TLS, as text and data the nixpkgs nginx options take verbatim. Builtins only, so
# xtask/tests/nginx_limits.rs runs exactly these directives in a real nginx and the unit tests see them too.
#
# Who a client is: an IPv4 address, or an IPv6 /64. One subscriber usually holds a whole /64 and its devices
# pick addresses from it freely, so counting IPv6 per address would hand one account a fresh budget per
# address. Many users behind one NAT share one IPv4 address, so the budgets leave room for an office.
#
# Two budgets, so one never starves the other:
#   - sync streams (`/sync/stream`: HTTP streaming with POST, websockets with GET and Upgrade on the same
#     path): concurrent streams per client (`limit_conn`), how fast a client opens them (`limit_req`, a
#     burst of its whole allowance so a reconnect after a restart goes through), and the runners' stream
#     capacity (`max_conns` on the `powersync_streams` upstream);
#   - ordinary requests (write checkpoints, probes): a request rate per client and their own upstream with
#     no stream counted against it, so a client holding its streams still gets its write checkpoints.
# Answers: 429 with Retry-After when a client is over its budget (nginx's or the service's own 429), 503
# with Retry-After when no runner can take the request (every runner at `max_conns`, or failing), 502 only
# when the runner nginx tried failed. nginx's own "no live upstreams" is a 502 otherwise.
let
  inherit (builtins) concatStringsSep length listToAttrs toString;
  topology = import ./topology.nix;
in rec {
  # The option defaults (modules/powersync/nginx.nix reads them from here).
  defaults = {
    # One unified process keeps the service's own limit (200 streams, `max_concurrent_connections`); an API
    # runner takes PowerSync's advised ~100, so capacity grows by adding runners.
    maxConnsPerRunner = mode:
      if mode == "unified"
      then 200
      else 100;
    # An office of 60 users behind one NAT opens 60 streams; one client still takes at most half of a
    # unified runner's 200.
    streamsPerClient = 100;
    requestsPerSecondPerClient = 10;
    # TCP connections per client to the vhost's ports, counted below TLS: every stream over HTTP/1.1 is
    # one, plus keep-alive connections for requests.
    tcpConnectionsPerClient = 512;
  };

  # nginx closes a connection whose TLS handshake and request header are not complete within this, and a
  # request body that stalls this long between two reads (408 or a close; nginx's default is 60 s each).
  clientTimeoutSeconds = 10;
  # What a refused client is told to wait before retrying.
  retryAfterSeconds = 5;

  # Sync streams stay open as long as a client is online and send NDJSON lines as they happen: long
  # timeouts, no buffering that would hold lines back.
  streaming = ''
    proxy_read_timeout 3600s;
    proxy_send_timeout 3600s;
    proxy_buffering off;
  '';

  # add_header in a location replaces the server's: every location that adds a header repeats HSTS.
  hsts = ''
    add_header Strict-Transport-Security "max-age=31536000" always;
  '';

  # The stream capacity of the runners that serve clients.
  streamCapacity = {
    runners,
    maxConnsPerRunner,
  }:
    maxConnsPerRunner * length (topology.servingRunners runners);

  # Enough for every stream on both sides (client and runner) plus one client at its connection cap with
  # each connection proxied, and some headroom for probes, ACME and the redirect server: so no single
  # address can take the connections the streams need.
  workerConnectionsNeeded = {
    runners,
    maxConnsPerRunner,
    tcpConnectionsPerClient,
  }:
    2 * streamCapacity {inherit runners maxConnsPerRunner;} + 2 * tcpConnectionsPerClient + 64;

  # The per-source cap below TLS, for nftables. nginx's `limit_conn` counts a request only once its header
  # is read, so half-sent requests and unfinished handshakes are invisible to it; the kernel counts every
  # TCP connection to the vhost's ports, per IPv4 address and per IPv6 /64, and answers one beyond the cap
  # with a reset. Its own table, so it works beside either NixOS firewall and a reject in it is final.
  connectionCap = {
    tcpConnectionsPerClient,
    ports,
  }:
    (import ./nftables.nix).ownTable {
      family = "inet";
      table = "powersync_nginx";
      content = let
        dports = "tcp dport { ${concatStringsSep ", " (map toString ports)} } ct state new";
      in ''
        set clients4 { type ipv4_addr; size 65535; flags dynamic; }
        set clients6 { type ipv6_addr; size 65535; flags dynamic; }
        chain input {
          type filter hook input priority filter; policy accept;
          ${dports} add @clients4 { ip saddr ct count over ${toString tcpConnectionsPerClient} } reject with tcp reset
          ${dports} add @clients6 { ip6 saddr & ffff:ffff:ffff:ffff:: ct count over ${toString tcpConnectionsPerClient} } reject with tcp reset
        }
      '';
    };

  # Everything the nixpkgs nginx options take, for one vhost in front of `runners`:
  #   upstreams          services.nginx.upstreams
  #   httpConfig         services.nginx.commonHttpConfig (the http block, before the servers)
  #   eventsConfig       services.nginx.eventsConfig; mainConfig: services.nginx.appendConfig
  #   serverConfig       the vhost's extraConfig; locations: the vhost's locations
  #   nftables           the per-source connection cap (connectionCap)
  frontend = {
    runners,
    maxConnsPerRunner,
    streamsPerClient,
    requestsPerSecondPerClient,
    tcpConnectionsPerClient,
    workerConnections,
    exposeAdminApi,
    ports,
  }: let
    servers = extra:
      listToAttrs (map (r: {
        name = "127.0.0.1:${toString r.apiPort}";
        value = extra;
      }) (topology.servingRunners runners));
    # least_conn, because streams are long-lived and round-robin would pile them onto whichever runner
    # started first; a shared zone, so the counts (and max_conns) hold across nginx's worker processes.
    upstream = name: extra: {
      servers = servers extra;
      extraConfig = ''
        least_conn;
        zone ${name} 64k;
      '';
    };
    proxied = name: extraConfig: {
      proxyPass = "http://${name}";
      proxyWebsockets = true;
      recommendedProxySettings = true;
      inherit extraConfig;
    };
    requests = proxied "powersync_requests" ''
      limit_req zone=powersync_requests_per_client burst=${toString (10 * requestsPerSecondPerClient)} nodelay;
    '';
    retryAfter = "${hsts}add_header Retry-After ${toString retryAfterSeconds} always;\n";
  in {
    upstreams = {
      powersync_streams = upstream "powersync_streams" {max_conns = maxConnsPerRunner;};
      powersync_requests = upstream "powersync_requests" {};
    };

    httpConfig = ''
      # The client: an IPv4 address (4 bytes), or the /64 of an IPv6 address (its first 8 of 16 bytes).
      map $binary_remote_addr $powersync_client {
        "~(?s)^(?<prefix>.{8}).{8}$" $prefix;
        default $binary_remote_addr;
      }
      limit_conn_zone $powersync_client zone=powersync_streams_per_client:10m;
      limit_req_zone $powersync_client zone=powersync_stream_opens:10m rate=${toString requestsPerSecondPerClient}r/s;
      limit_req_zone $powersync_client zone=powersync_requests_per_client:10m rate=${toString requestsPerSecondPerClient}r/s;
      # In the http block: the handshake and the first header are read under the default server's values,
      # before nginx knows which vhost a connection is for.
      client_header_timeout ${toString clientTimeoutSeconds}s;
      client_body_timeout ${toString clientTimeoutSeconds}s;
      reset_timedout_connection on;
    '';

    eventsConfig =
      if workerConnections == null
      then ""
      else "worker_connections ${toString workerConnections};\n";
    # Each connection is a file descriptor; the unit's default soft limit (1024) would cap them first.
    mainConfig =
      if workerConnections == null
      then ""
      else "worker_rlimit_nofile ${toString (2 * workerConnections)};\n";

    serverConfig = ''
      ${hsts}limit_conn_status 429;
      limit_req_status 429;
      # The service's own 429 (and 502) pass through the same pages, so they carry Retry-After too.
      proxy_intercept_errors on;
      error_page 429 = @powersync_busy;
      error_page 502 = @powersync_unavailable;
    '';

    locations = {
      "= /sync/stream" = proxied "powersync_streams" (''
          limit_conn powersync_streams_per_client ${toString streamsPerClient};
          limit_req zone=powersync_stream_opens burst=${toString streamsPerClient} nodelay;
        ''
        + streaming);
      "/" = requests;
      "/api/" =
        if exposeAdminApi
        then requests
        else {extraConfig = "return 404;\n";};
      "@powersync_busy".extraConfig = retryAfter + "return 429;\n";
      # "no live upstreams" leaves the upstream's name last in $upstream_addr; a runner that failed leaves
      # its address.
      "@powersync_unavailable".extraConfig = ''
        ${retryAfter}if ($upstream_addr ~ "powersync_[a-z]+$") {
          return 503;
        }
        return 502;
      '';
    };

    nftables = connectionCap {inherit tcpConnectionsPerClient ports;};
  };
}

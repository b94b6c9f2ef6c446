# lib/nginx.nix: the upstreams and the sizing of the public vhost. What the directives do is shown by real
# nginx in xtask/tests/nginx_limits.rs; these cases pin the arithmetic and the shape the module hands on.
{lib}: let
  runners = mode: n:
    lib.runners {
      inherit mode;
      apiRunners = n;
      listenPort = 8080;
      metricsPort = 9464;
    };
  d = lib.nginx.defaults;
  frontend = mode: n: args:
    lib.nginx.frontend ({
        runners = runners mode n;
        maxConnsPerRunner = d.maxConnsPerRunner mode;
        inherit (d) streamsPerClient requestsPerSecondPerClient tcpConnectionsPerClient;
        workerConnections = 1000;
        exposeAdminApi = false;
        ports = [80 443];
      }
      // args);
  mentions = needle: text: builtins.match ".*${needle}.*" text != null;
in {
  testNginxStreamsUpstreamCapsOnlyTheApiRunners = {
    expr = (frontend "split" 2 {}).upstreams.powersync_streams.servers;
    expected = {
      "127.0.0.1:8080".max_conns = 100;
      "127.0.0.1:8081".max_conns = 100;
    };
  };
  testNginxRequestsUpstreamHasNoStreamCap = {
    expr = (frontend "split" 2 {}).upstreams.powersync_requests.servers;
    expected = {
      "127.0.0.1:8080" = {};
      "127.0.0.1:8081" = {};
    };
  };
  testNginxUnifiedGoesThroughTheStreamsUpstreamAtTheServiceLimit = {
    expr = (frontend "unified" 1 {}).upstreams.powersync_streams.servers;
    expected."127.0.0.1:8080".max_conns = 200;
  };
  testNginxOfficeOfSixtyFitsTheDefaults = {
    expr = d.streamsPerClient >= 60 && 10 * d.requestsPerSecondPerClient >= 60 && d.tcpConnectionsPerClient >= 2 * 60;
    expected = true;
  };
  testNginxWorkerConnectionsCoverStreamsAndOneCappedClient = {
    expr = lib.nginx.workerConnectionsNeeded {
      runners = runners "split" 2;
      maxConnsPerRunner = 100;
      tcpConnectionsPerClient = 512;
    };
    expected = 2 * 200 + 2 * 512 + 64;
  };
  # Unified mode used to leave nginx's default (512) in place.
  testNginxWorkerConnectionsAreSetInEveryMode = {
    expr = map (mode: (frontend mode 1 {}).eventsConfig) ["unified" "split" "api"];
    expected = ["worker_connections 1000;\n" "worker_connections 1000;\n" "worker_connections 1000;\n"];
  };
  testNginxFileDescriptorsFollowWorkerConnections = {
    expr = (frontend "unified" 1 {}).mainConfig;
    expected = "worker_rlimit_nofile 2000;\n";
  };
  testNginxNullWorkerConnectionsLeavesNginxAlone = {
    expr = let f = frontend "unified" 1 {workerConnections = null;}; in [f.eventsConfig f.mainConfig];
    expected = ["" ""];
  };
  testNginxAdminApiIsA404UnlessExposed = {
    expr = [
      (frontend "unified" 1 {}).locations."/api/"
      ((frontend "unified" 1 {exposeAdminApi = true;}).locations."/api/".proxyPass)
    ];
    expected = [{extraConfig = "return 404;\n";} "http://powersync_requests"];
  };
  testNginxStreamsGoToTheirOwnUpstream = {
    expr = (frontend "unified" 1 {}).locations."= /sync/stream".proxyPass;
    expected = "http://powersync_streams";
  };
  testNginxCapCoversTheVhostPorts = {
    expr = mentions "tcp dport \\{ 80, 8443 } ct state new add @clients6 \\{ ip6 saddr & ffff:ffff:ffff:ffff:: ct count over 512 }" (frontend "unified" 1 {ports = [80 8443];}).nftables.content;
    expected = true;
  };
}

# PowerSync's production layout: one sync runner and two API runners behind nginx's least_conn upstream,
# clients that survive an API runner going away, a killed sync runner coming back on its slot, the daily
# compaction run by hand, and the load probe holding a few hundred streams.
{
  pkgs,
  vm,
  xtask,
}: let
  spec = vm.scripts.powersync-split;
in
  pkgs.testers.runNixOSTest {
    name = "powersync-split";
    nodes = spec.nodes {
      source = vm.source;
      server = {
        nodes,
        lib,
        ...
      }: {
        imports = [
          (vm.server {
            secretsFile = vm.secrets (vm.dsnWith vm.replicationPassword);
            jwksUri = "http://${nodes.client.networking.primaryIPAddress}:8000/jwks.json";
          })
        ];
        # The sync config whose rows and token `cargo xtask test` evaluates for this test (tests/vm/scripts.nix).
        services.powersync.syncConfig = lib.mkForce spec.sync.config;
        # Three runners of 768 MiB each, PostgreSQL and nginx.
        virtualisation = {
          memorySize = 4096;
          cores = 2;
        };
        services.powersync = {
          runners = {
            mode = "split";
            apiRunners = 2;
          };
          container.memoryMiB = 768;
          nginx = {
            # 2 x 150 leaves room for the probe's 250 streams (the service itself takes 200 per runner).
            maxConnsPerRunner = 150;
            # Every stream of the probe comes from one address: lift the per-client limits for this test
            # (workerConnections follows from them).
            limits = {
              streamsPerClient = 1000;
              tcpConnectionsPerClient = 1000;
              requestsPerSecondPerClient = 1000;
            };
          };
        };
      };
      client = {
        nodes,
        lib,
        ...
      }: {
        imports = [(vm.client nodes.server.networking.primaryIPAddress)];
        environment.systemPackages = [xtask];
        # The load probe takes about 1 MB per stream.
        virtualisation.memorySize = lib.mkForce 1024;
      };
    };
    testScript = spec.script {
      inherit (vm) domain;
      jwt_key = "${vm.jwtKeys}/key.pem";
      ca_file = "${vm.certificates}/ca.crt";
      xtask = "${xtask}/bin/xtask";
    };
  }

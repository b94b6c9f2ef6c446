# The whole path: an IPv6-only source, the server as web-arm runs it, a client through nginx and TLS.
{
  pkgs,
  vm,
  xtask,
}: let
  spec = vm.scripts.powersync-e2e;
in
  pkgs.testers.runNixOSTest {
    name = "powersync-e2e";
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
        # Every statement in PostgreSQL's log, so the test can show the storage password never is.
        services.postgresql.settings.log_statement = "all";
      };
      client = {nodes, ...}: {
        imports = [(vm.client nodes.server.networking.primaryIPAddress)];
        # `cargo xtask verify`'s outside checks, run from where a client stands.
        environment.systemPackages = [xtask];
      };
    };
    testScript = spec.script {
      source_address = vm.sourceAddress;
      server_address = vm.serverAddress;
      replication_password = vm.replicationPassword;
      inherit (vm) domain;
      jwt_key = "${vm.jwtKeys}/key.pem";
      ca_file = "${vm.certificates}/ca.crt";
      xtask = "${xtask}/bin/xtask";
    };
  }

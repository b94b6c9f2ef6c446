# The DSN preflight stops a start that would replicate through the pooler or with replication=database,
# and the unit's status says why.
{
  pkgs,
  vm,
}: let
  pooler = "postgresql://powersync_repl.abcdefghijklmnopqrst:${vm.replicationPassword}@aws-0-eu-central-1.pooler.supabase.com:5432/postgres";
  replicationDatabase = "${vm.dsnWith vm.replicationPassword}?replication=database";
  spec = vm.scripts.powersync-preflight;
in
  pkgs.testers.runNixOSTest {
    name = "powersync-preflight";
    nodes = spec.nodes {
      server = {lib, ...}: {
        imports = [
          (vm.server {
            secretsFile = vm.secrets pooler;
            jwksUri = "http://127.0.0.1:1/jwks.json";
          })
        ];
        services.powersync.operations.preflight.jwks = false;
        specialisation.replication-database.configuration = {
          sops.defaultSopsFile = lib.mkForce "${vm.secrets replicationDatabase}/secrets.yaml";
        };
      };
    };
    testScript = spec.script {password = vm.replicationPassword;};
  }

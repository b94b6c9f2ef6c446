# The DSN preflight stops a start that would replicate through the pooler or with replication=database,
# the unit's journal says why, and once the secret names the direct endpoint the unit starts by itself.
{
  pkgs,
  vm,
  # xtask, which the tests that run the load probe or verify take
  ...
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
        # The direct endpoint's form (no source node here: the container starts and replication retries).
        specialisation.direct.configuration = {
          sops.defaultSopsFile = lib.mkForce "${vm.secrets (vm.dsnWith vm.replicationPassword)}/secrets.yaml";
        };
      };
    };
    testScript = spec.script {password = vm.replicationPassword;};
  }

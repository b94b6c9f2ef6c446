# Rotating the source password: the new sops secret restarts the container (restartUnits), and the service
# picks up where it was, on the same slot.
{
  pkgs,
  vm,
  # xtask, which the tests that run the load probe or verify take
  ...
}: let
  spec = vm.scripts.powersync-restart;
in
  pkgs.testers.runNixOSTest {
    name = "powersync-restart";
    nodes = spec.nodes {
      source = vm.source;
      server = {lib, ...}: {
        imports = [
          (vm.server {
            secretsFile = vm.secrets (vm.dsnWith vm.replicationPassword);
            jwksUri = "http://127.0.0.1:1/jwks.json";
          })
        ];
        # No client here: the JWKS check would only warn, but it is not what this test is about.
        services.powersync.operations.preflight.jwks = false;
        specialisation.rotated.configuration = {
          sops.defaultSopsFile = lib.mkForce "${vm.secrets (vm.dsnWith vm.rotatedPassword)}/secrets.yaml";
        };
      };
    };
    testScript = spec.script {rotated_password = vm.rotatedPassword;};
  }

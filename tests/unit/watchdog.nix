# lib/watchdog.nix: the watchdog verifies the source wherever the service does, unless told otherwise.
{lib}: let
  problems = args:
    lib.watchdogTlsProblems ({
        sslmode = "verify-full";
        caCertificate = null;
        allowUnverified = false;
      }
      // args);
in {
  testWatchdogWithoutACaIsRefusedWhereTheServiceVerifies = {
    expr = map (sslmode: builtins.length (problems {inherit sslmode;})) ["verify-full" "verify-ca"];
    expected = [1 1];
  };
  testWatchdogRefusalNamesBothWaysOut = {
    expr = let
      message = builtins.head (problems {});
    in
      map (option: builtins.match ".*services[.]powersync[.]operations[.]watchdog[.]${option}.*" message != null) ["sourceCaCertificate" "allowUnverifiedSource = true"];
    expected = [true true];
  };
  testWatchdogWithACaIsAccepted = {
    expr = problems {caCertificate = "/nix/store/x-ca.crt";};
    expected = [];
  };
  testWatchdogUnverifiedOnlyWhenAskedFor = {
    expr = problems {allowUnverified = true;};
    expected = [];
  };
  testWatchdogWithoutTlsThereIsNothingToVerify = {
    expr = problems {sslmode = "disable";};
    expected = [];
  };
}

# lib.scriptText, lib.shellApplication: the one way the module builds its scripts.
{lib}: let
  compact = ../../modules/powersync/runners/compact.sh;
  preflight = ../../modules/powersync/operations/preflight-dsn.sh;
  # writeShellApplication stood in by a function that returns what it was given.
  built = args: lib.shellApplication {writeShellApplication = given: given;} ({source = compact;} // args);
  occurrences = needle: text: (builtins.length (builtins.split needle text) - 1) / 2;
in {
  testScriptTextDropsTheShebangOnly = {
    expr = builtins.substring 0 2 (lib.scriptText compact);
    expected = "# ";
  };
  testScriptTextRefusesAScriptWithoutTheShebang = {
    expr = lib.scriptText ./script.nix;
    expectThrow = true;
  };
  testScriptTextInlinesTheSourceConnectionInsteadOfSourcingIt = {
    expr = map (needle: occurrences needle (lib.scriptText preflight)) ["/source-connection.sh\"" "conn_as_written[(][)] [{]"];
    expected = [0 1];
  };
  testShellApplicationGivesTheTextAndTheValues = {
    expr = built {
      name = "powersync-compact";
      runtimeEnv.TEXTFILE = "/t/powersync-compact.prom";
    };
    expected = {
      name = "powersync-compact";
      runtimeInputs = [];
      runtimeEnv.TEXTFILE = "/t/powersync-compact.prom";
      text = lib.scriptText compact;
    };
  };
  testShellApplicationRefusesAValueThatIsNoString = {
    expr = built {
      name = "powersync-compact";
      runtimeEnv.TEXTFILE = 1;
    };
    expectThrow = true;
  };
}

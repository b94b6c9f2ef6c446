# tests/vm/scripts.nix: the testScript strings the VM tests hand the driver, and the nodes they must have.
# (`cargo xtask test`'s vm-scripts step type-checks and lints the assembled scripts themselves.)
_: let
  scripts = import ../vm/scripts.nix;
  preflight = scripts.powersync-preflight;
  e2e = scripts.powersync-e2e;
  firstLine = text: builtins.head (builtins.split "\n" text);
in {
  testVmScriptsPreambleIsAJsonStringLiteral = {
    expr = firstLine (preflight.script {password = "a\"b\\c";});
    expected = ''password = "a\"b\\c"'';
  };
  testVmScriptsPreambleKeepsNewlinesInsideTheLiteral = {
    expr = firstLine (preflight.script {password = "one\ntwo";});
    expected = ''password = "one\ntwo"'';
  };
  testVmScriptsScriptFollowsThePreambleUnindented = {
    expr = builtins.substring 0 1 (builtins.elemAt (builtins.split "\n" (preflight.script {password = "x";})) 2);
    expected = "#";
  };
  testVmScriptsRefuseAMissingGlobal = {
    expr = e2e.script {domain = "d";};
    expectThrow = true;
  };
  testVmScriptsRefuseAnUnknownGlobal = {
    expr = preflight.script {
      password = "x";
      extra = "y";
    };
    expectThrow = true;
  };
  testVmScriptsRefuseANonStringGlobal = {
    expr = preflight.script {password = 5;};
    expectThrow = true;
  };
  testVmScriptsAcceptTheDeclaredNodes = {
    expr = builtins.attrNames (e2e.nodes {
      source = {};
      server = {};
      client = {};
    });
    expected = ["client" "server" "source"];
  };
  testVmScriptsRefuseARenamedNode = {
    expr = e2e.nodes {
      source = {};
      server = {};
      clients = {};
    };
    expectThrow = true;
  };
}

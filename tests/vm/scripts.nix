# The testScript of each VM test, exactly as the NixOS test driver receives it. Builtins only, so
# `cargo xtask test` builds the very same strings offline (with placeholder store paths) and checks them with
# the driver's own type checker and linter before any networked run.
#
# Each entry names its machines (the driver declares one Python global per node, in this order) and a
# `script` function whose arguments are the Python globals the Nix side hands the script. Those become a
# preamble of `name = "<JSON string>"` lines: a JSON string literal is a valid Python string literal, and the
# lines are generated, not written inside a `''` string, so no value and no indentation can break the script
# after them (a hand-indented preamble once made the whole script start with an indented line).
#
# A test that streams declares `sync`: the sync config its server runs, the JWT claims of its stream's token,
# and each row it writes into the source and then waits for on the stream, by the marker it greps for. The
# script gets them as the global `sync` (JSON) and writes and signs from them alone (tests/vm/sync-rows.py);
# `cargo xtask test` (the `sync-rules` step) reads the same data and asks the service's sync-rules engine
# whether that token receives each row, so a test waiting for a row it can never get fails offline.
let
  inherit (builtins) attrNames concatStringsSep sort lessThan toJSON;
  literal = name: value:
    if builtins.isString value
    then toJSON value
    else throw "tests/vm/scripts.nix: the Python global `${name}` must be a string, not a ${builtins.typeOf value}";
  preamble = values: concatStringsSep "" (map (name: "${name} = ${literal name values.${name}}\n") (attrNames values));
  # What `cargo xtask vm-test --list` says of a test's duration until someone runs it and writes down the
  # seconds and the machine, e.g. "412 s on x86_64-linux, 8 cores, KVM".
  notYetMeasured = "not yet measured (x86_64-linux with KVM is the machine class to measure on)";
  # A test: its machines, the globals its .py file reads (the file's header names them too) and the script.
  # Both callers, the VM test and the offline check, must hand over exactly these globals.
  vmTest = {
    machines,
    globals,
    file,
    wallTime,
    sync ? null,
  }: {
    inherit machines globals wallTime sync;
    # The test's nodes, refused unless they are exactly these machines: the driver declares one Python global
    # per node, so a node renamed in the test would be an undefined name in the checked script.
    nodes = nodes:
      if attrNames nodes == sort lessThan machines
      then nodes
      else throw "tests/vm/scripts.nix: ${toString file} is checked for the machines [${toString machines}], but the test has the nodes [${toString (attrNames nodes)}]";
    script = values: let
      expected = sort lessThan globals;
    in
      if attrNames values != expected
      then throw "tests/vm/scripts.nix: ${toString file} takes the globals [${toString expected}], not [${toString (attrNames values)}]"
      else if sync == null
      then preamble values + builtins.readFile file
      else preamble (values // {sync = toJSON {inherit (sync) claims rows;};}) + builtins.readFile ./sync-rows.py + builtins.readFile file;
  };
  # The VM tests' server runs web-arm's own sync config.
  webArmSyncConfig = ../../hosts/web-arm/modules/powersync/sync-config.yaml;
  profile = id: name: {
    table = "profiles";
    values = {inherit id name;};
  };
in {
  powersync-e2e = vmTest {
    machines = ["client" "server" "source"];
    globals = ["source_address" "server_address" "replication_password" "domain" "jwt_key" "ca_file" "xtask"];
    file = ./powersync-e2e.py;
    wallTime = notYetMeasured;
    sync = {
      config = webArmSyncConfig;
      claims = {
        sub = "user-1";
        aud = "authenticated";
      };
      rows.inserted-after-connect = profile "user-1" "inserted-after-connect";
    };
  };
  powersync-preflight = vmTest {
    machines = ["server"];
    globals = ["password"];
    file = ./powersync-preflight.py;
    wallTime = notYetMeasured;
  };
  powersync-split = vmTest {
    machines = ["client" "server" "source"];
    globals = ["domain" "jwt_key" "ca_file" "xtask"];
    file = ./powersync-split.py;
    wallTime = notYetMeasured;
    sync = {
      config = webArmSyncConfig;
      claims = {
        sub = "user-1";
        aud = "authenticated";
      };
      # web-arm's config syncs the profile whose id is the token's sub: each write updates that one row.
      rows = {
        through-nginx = profile "user-1" "through-nginx";
        while-api-1-stopped = profile "user-1" "while-api-1-stopped";
        while-api-2-stopped = profile "user-1" "while-api-2-stopped";
        after-sync-restart = profile "user-1" "after-sync-restart";
      };
    };
  };
  powersync-restart = vmTest {
    machines = ["server" "source"];
    globals = ["rotated_password"];
    file = ./powersync-restart.py;
    wallTime = notYetMeasured;
  };
}

# `checks.<system>.unit-tests`: every file under tests/unit/ through the same runner `cargo xtask test` uses.
# Evaluation throws with the failing cases, so a failure stops `nix flake check` with the reason.
{pkgs}: let
  files = builtins.filter (name: builtins.match ".*\\.nix" name != null) (builtins.attrNames (builtins.readDir ./unit));
  reports =
    map (name: {
      inherit name;
      inherit (import ./run-unit.nix {file = ./unit + "/${name}";}) cases failures;
    })
    files;
  failed = builtins.filter (report: report.failures != []) reports;
  cases = builtins.foldl' (sum: report: sum + report.cases) 0 reports;
in
  if failed == []
  then pkgs.runCommand "powersync-nix-unit-tests" {} "echo '${toString cases} unit-test cases passed' > $out"
  else throw "Nix unit tests failed: ${builtins.toJSON failed}"

# Runs one unit-test file with builtins only and prints a JSON report of its failing cases:
#   nix-instantiate --eval --strict --json tests/run-unit.nix --arg file ./tests/unit/yaml.nix
# A test file is a function `{ lib }: { test<Subject><Case> = { expr; expected; }; … }`, where `lib` is this
# flake's pure `lib`; `{ expr; expectThrow = true; }` asserts that `expr` throws. `cargo xtask test` runs every
# file under tests/unit/ and prints each failure with expected and actual values. A file with no `test*`
# attribute is an error, so a renamed attribute cannot make a file pass by testing nothing.
{file}: let
  lib = import ../lib;
  tests = import file {inherit lib;};
  names = builtins.filter (name: builtins.substring 0 4 name == "test") (builtins.attrNames tests);
  # deepSeq so that a throw deep inside a value counts as this case's throw, not the whole file's.
  force = value: builtins.tryEval (builtins.deepSeq value value);
  check = name: let
    case = tests.${name};
    result = force case.expr;
  in
    if case.expectThrow or false
    then
      if result.success
      then [
        {
          inherit name;
          kind = "did-not-throw";
          actual = result.value;
        }
      ]
      else []
    else if !result.success
    then [
      {
        inherit name;
        kind = "threw";
      }
    ]
    else if result.value == case.expected
    then []
    else [
      {
        inherit name;
        kind = "mismatch";
        inherit (case) expected;
        actual = result.value;
      }
    ];
in
  if names == []
  then throw "${toString file} defines no test* cases"
  else {
    cases = builtins.length names;
    failures = builtins.concatMap check names;
  }

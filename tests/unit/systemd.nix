# lib.escapeSystemdExecArg(s), lib.escapeSystemdEnvironmentValue, lib.isHttpUrl: values on systemd unit lines.
# The expected strings are nixpkgs' utils.escapeSystemdExecArg (nixos/lib/utils.nix: `%` and `$` doubled in
# builtins.toJSON of the value); xtask/tests/systemd.rs holds them to systemd-analyze verify.
{lib}: {
  testSystemdExecArgIsJsonQuoted = {
    expr = lib.escapeSystemdExecArg "https://x/a b\"c\\d;e";
    expected = ''"https://x/a b\"c\\d;e"'';
  };
  testSystemdExecArgDoublesPercentAndDollar = {
    expr = lib.escapeSystemdExecArg "https://x/a%20b?q=$HOME&r=%n";
    expected = ''"https://x/a%%20b?q=$$HOME&r=%%n"'';
  };
  testSystemdExecArgControlCharactersAreEscapes = {
    expr = lib.escapeSystemdExecArg "a\nb\tc";
    expected = ''"a\nb\tc"'';
  };
  testSystemdExecArgNumbers = {
    expr = map lib.escapeSystemdExecArg [5432 1.5];
    expected = [''"5432"'' ''"1.500000"''];
  };
  testSystemdExecArgDerivationIsItsPath = {
    expr = lib.escapeSystemdExecArg {
      type = "derivation";
      outPath = "/nix/store/00000000000000000000000000000000-x";
    };
    expected = ''"/nix/store/00000000000000000000000000000000-x"'';
  };
  testSystemdExecArgRefusesLists = {
    expr = lib.escapeSystemdExecArg ["a"];
    expectThrow = true;
  };
  testSystemdExecArgsJoinsWithSpaces = {
    expr = lib.escapeSystemdExecArgs ["/bin/check" "https://x/a%b" ";"];
    expected = ''"/bin/check" "https://x/a%%b" ";"'';
  };
  testSystemdEnvironmentValueDoublesPercentOnly = {
    expr = lib.escapeSystemdEnvironmentValue "https://x/a%20b?$HOME";
    expected = "https://x/a%%20b?$HOME";
  };
  testSystemdHttpUrlAccepts = {
    expr = map lib.isHttpUrl [
      "https://majxbigjafpzayzboxsf.supabase.co/auth/v1/.well-known/jwks.json"
      "http://127.0.0.1:8080/jwks.json"
      "https://[::1]:8443/a%20b?x=1&y=$z#f"
      "https://x"
    ];
    expected = [true true true true];
  };
  testSystemdHttpUrlRefuses = {
    expr = map lib.isHttpUrl [
      "https://x/a b"
      "https://x/a%zz"
      "https://x/a%"
      "ftp://x/jwks.json"
      "x.supabase.co/jwks.json"
      "https://"
      "https:///path"
      "https://x/\"q\""
      "https://x/a\\b"
      "https://x/a\nb"
      5
    ];
    expected = [false false false false false false false false false false false];
  };
}

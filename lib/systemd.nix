# Values on systemd unit lines, builtins only, so the unit tests and `systemd-analyze verify` see the bytes the
# module writes. escapeSystemdExecArg(s) equal nixpkgs' utils.escapeSystemdExecArg(s) (nixos/lib/utils.nix),
# which a module could take from `utils` but which needs nixpkgs' lib to evaluate.
let
  inherit (builtins) concatStringsSep isAttrs isFloat isInt isPath isString map match replaceStrings toJSON toString;
  isDerivation = value: isAttrs value && (value.type or null) == "derivation";
  # RFC 3986 characters: unreserved, reserved, and `%` only as a percent-encoded octet.
  octet = "%[0-9A-Fa-f]{2}";
  authority = "(${octet}|[]A-Za-z0-9._~!$&'()*+,;=:@[-])+";
  rest = "(${octet}|[]A-Za-z0-9._~!$&'()*+,;=:@/?#[-])*";
in rec {
  # One argument of an Exec*= line. JSON's double-quoted string is a form systemd unquotes (spaces, quotes,
  # backslashes and a lone `;` stay inside the argument); `%%` and `$$` keep systemd from expanding a
  # specifier (a `%` that is none makes the unit fail to load) or a variable.
  escapeSystemdExecArg = arg: let
    s =
      if isPath arg
      then "${arg}"
      else if isString arg
      then arg
      else if isInt arg || isFloat arg || isDerivation arg
      then toString arg
      else throw "escapeSystemdExecArg only allows strings, paths, numbers and derivations";
  in
    replaceStrings ["%" "$"] ["%%" "$$"] (toJSON s);

  # A whole command line, one escaped argument each.
  escapeSystemdExecArgs = args: concatStringsSep " " (map escapeSystemdExecArg args);

  # A value for a NixOS unit's `environment`, which nixos/lib/systemd-lib.nix writes as
  # Environment="NAME=value" (JSON-quoted, `%` untouched): systemd still expands specifiers there and drops,
  # with a mere warning, an assignment whose `%` is no specifier.
  escapeSystemdEnvironmentValue = replaceStrings ["%"] ["%%"];

  # An http(s) URL: a host part and an optional path, query and fragment, in URL characters only (no space,
  # quote, backslash or control character; `%` only before two hex digits).
  isHttpUrl = value: isString value && match "https?://${authority}([/?#]${rest})?" value != null;
}

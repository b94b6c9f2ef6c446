# One way to build the module's scripts: `shellApplication pkgs { name; source; runtimeInputs; runtimeEnv; }`
# is nixpkgs' writeShellApplication with `text = scriptText source`. Its runtimeEnv lines carry every value
# the script needs, declared beside it, and each script refuses to run without them (`${VAR:?}` or an
# explicit check), so it keeps no defaults of its own. `scriptText` is builtins only, so the script tests
# check exactly this text with shellcheck (xtask/tests/common/script.rs adds writeShellApplication's header).
let
  inherit (builtins) baseNameOf dirOf pathExists readFile replaceStrings substring stringLength toString;
  shebang = "#!/usr/bin/env bash\n";

  # The script without its shebang (writeShellApplication writes its own; a second one mid-file is an error,
  # SC1128), with source-connection.sh inlined where a script sources it from beside itself: a store path of
  # its own would need a runtime lookup and leave shellcheck blind to it.
  scriptText = source: let
    text = readFile source;
    body =
      if substring 0 (stringLength shebang) text == shebang
      then substring (stringLength shebang) (stringLength text) text
      else throw "${toString source} must start with ${shebang}";
    library = dirOf source + "/source-connection.sh";
    include = ''
      # shellcheck source=modules/powersync/${baseNameOf (dirOf source)}/source-connection.sh
      . "$(dirname "''${BASH_SOURCE[0]}")/source-connection.sh"
    '';
  in
    if pathExists library
    then replaceStrings [include] [(readFile library)] body
    else body;

  shellApplication = pkgs: {
    name,
    source,
    runtimeInputs ? [],
    runtimeEnv ? {},
  }:
    pkgs.writeShellApplication {
      inherit name runtimeInputs;
      # Strings only: a path literal must be interpolated to reach the store, a number said as text.
      runtimeEnv =
        builtins.mapAttrs (
          var: value:
            if builtins.isString value
            then value
            else throw "shellApplication ${name}: runtimeEnv.${var} must be a string"
        )
        runtimeEnv;
      text = scriptText source;
    };
in {
  inherit scriptText shellApplication;
}

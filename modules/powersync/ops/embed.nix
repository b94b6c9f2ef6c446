# The text writeShellApplication receives for one ops script (operations.nix), builtins only so the ops tests
# check exactly this text with shellcheck: the script without its shebang (writeShellApplication writes its
# own; a second one mid-file is an error, SC1128), with source-connection.sh inlined where the script sources
# it from beside itself (a store path of its own would need a runtime lookup and leave shellcheck blind to it).
name: let
  inherit (builtins) readFile replaceStrings substring stringLength;
  shebang = "#!/usr/bin/env bash\n";
  text = readFile (./. + "/${name}.sh");
  body =
    if substring 0 (stringLength shebang) text == shebang
    then substring (stringLength shebang) (stringLength text) text
    else throw "modules/powersync/ops/${name}.sh must start with ${shebang}";
  include = ''
    # shellcheck source=modules/powersync/ops/source-connection.sh
    . "$(dirname "''${BASH_SOURCE[0]}")/source-connection.sh"
  '';
  library = readFile ./source-connection.sh;
in
  replaceStrings [include] [library] body

# The option paths the NixOS modules declare, read from the module files themselves with builtins only, so
# docs/options.md is checked against what the modules declare (tests/unit/options.nix). Each file under
# modules/ that is a NixOS module (a function taking `lib`) is called with a stand-in `lib` whose mkOption and
# mkEnableOption mark the spot, and only its `options` are walked: Nix evaluates nothing else (types, defaults,
# descriptions and config stay unforced). A submodule-typed option counts as one option.
let
  marker = {_declaredOption = true;};
  stubLib = {
    mkOption = _: marker;
    mkEnableOption = _: marker;
  };
  nixFilesUnder = dir:
    builtins.concatLists (builtins.attrValues (builtins.mapAttrs (
      name: kind:
        if kind == "directory"
        then nixFilesUnder (dir + "/${name}")
        else if builtins.match ".*[.]nix" name != null
        then [(dir + "/${name}")]
        else []
    ) (builtins.readDir dir)));
  isModule = file: let
    value = import file;
  in
    builtins.isFunction value && (builtins.functionArgs value) ? lib;
  join = prefix: name:
    if prefix == ""
    then name
    else "${prefix}.${name}";
  walk = prefix: value:
    if value ? _declaredOption
    then [prefix]
    else builtins.concatLists (builtins.attrValues (builtins.mapAttrs (name: walk (join prefix name)) value));
  optionsOf = file:
    (import file {
      lib = stubLib;
      config = throw "declared-options.nix reads options only";
      pkgs = throw "declared-options.nix reads options only";
      utils = throw "declared-options.nix reads options only";
    })
    .options
    or {};
in
  builtins.sort builtins.lessThan (builtins.concatMap (file: walk "" (optionsOf file)) (builtins.filter isModule (nixFilesUnder ../modules)))

# The option paths the NixOS modules declare, read from the module files themselves with builtins only, so
# docs/options.md is checked against what the modules declare (tests/unit/options.nix). Each file under
# modules/ that is a NixOS module (a function taking `lib`) is called with a stand-in `lib` whose mkOption and
# mkEnableOption mark the spot, and only its `options` (and those of the inline modules in its `imports`) are
# walked: Nix evaluates nothing else (types, defaults, descriptions and config stay unforced). A submodule-typed
# option counts as one option; an `internal` one is left out, as the NixOS manual leaves it out.
let
  marker = {_declaredOption = true;};
  stubLib = {
    mkOption = args: marker // {internal = args.internal or false;};
    mkEnableOption = _: marker // {internal = false;};
    # An old name kept working: an alias, not an option of its own.
    mkRenamedOptionModule = _: _: {};
  };
  moduleArgs = {
    lib = stubLib;
    config = throw "declared-options.nix reads options only";
    pkgs = throw "declared-options.nix reads options only";
    utils = throw "declared-options.nix reads options only";
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
    then
      if value.internal
      then []
      else [prefix]
    else builtins.concatLists (builtins.attrValues (builtins.mapAttrs (name: walk (join prefix name)) value));
  # A module's own options, then those of its inline imports (a path import is a file of its own, read there).
  optionsOf = module: let
    value =
      if builtins.isFunction module
      then module moduleArgs
      else module;
    inline = builtins.filter (m: !(builtins.isPath m) && !(builtins.isString m)) (value.imports or []);
  in
    walk "" (value.options or {}) ++ builtins.concatMap optionsOf inline;
in
  builtins.sort builtins.lessThan (builtins.concatMap (file: optionsOf (import file)) (builtins.filter isModule (nixFilesUnder ../modules)))

# Renders Nix values to YAML for the PowerSync Service, builtins only. `{ _env = "PS_X"; }` (see `env`)
# becomes the service's custom tag `!env PS_X`, so secrets stay in the environment and out of the store.
let
  inherit (builtins) attrNames concatMap concatStringsSep isAttrs isBool isFloat isInt isList isString length map match toJSON;

  isEnv = value: isAttrs value && attrNames value == ["_env"];

  # Keys print bare when they cannot be mistaken for anything else; the rest are quoted.
  key = name:
    if match "[A-Za-z_][A-Za-z0-9_-]*" name != null && !(builtins.elem name ["true" "false" "null" "yes" "no" "on" "off" "y" "n"])
    then name
    else toJSON name;

  # Strings are always double-quoted: JSON string syntax is valid YAML, and a quoted string can never turn
  # into a number, boolean or null ("no", "1.10", "0x1f"…).
  scalar = value:
    if isEnv value
    then "!env ${value._env}"
    else if isString value
    then toJSON value
    else if isBool value
    then
      (
        if value
        then "true"
        else "false"
      )
    else if isInt value
    then toString value
    else if isFloat value
    then toJSON value
    else if value == null
    then "null"
    else if isAttrs value
    then "{}"
    else if isList value
    then "[]"
    else throw "powersync-nix yaml: cannot render a value of type ${builtins.typeOf value}";

  isBlock = value: (isAttrs value && !isEnv value && value != {}) || (isList value && value != []);

  indent = line: "  " + line;

  # One value as a list of lines, at indentation 0.
  lines = value:
    if isList value && value != []
    then concatMap item value
    else if isAttrs value && !isEnv value && value != {}
    then concatMap (name: entry name value.${name}) (attrNames value)
    else [(scalar value)];

  entry = name: value:
    if isBlock value
    then ["${key name}:"] ++ map indent (lines value)
    else ["${key name}: ${scalar value}"];

  # A sequence item: the first line of the value follows "- ", the rest line up under it.
  item = value: let
    inner = lines value;
  in
    ["- ${builtins.head inner}"] ++ map indent (builtins.tail inner);
in {
  inherit isEnv;

  # `!env NAME`; the service only accepts names starting with PS_.
  env = name: {_env = name;};
  # `!env NAME::number` and `!env NAME::boolean`: the service converts the variable's text.
  envNumber = name: {_env = "${name}::number";};
  envBoolean = name: {_env = "${name}::boolean";};

  # The whole document, ending in a newline. Keys are sorted, as builtins.attrNames returns them.
  toYAML = value: let
    all = lines value;
  in
    if length all == 0
    then "{}\n"
    else concatStringsSep "\n" all + "\n";
}

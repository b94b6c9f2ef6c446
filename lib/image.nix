# The image pin (modules/powersync/image.nix): validated here, so a hand-edited or half-rewritten pin fails at
# evaluation with the reason instead of pulling something unexpected.
let
  inherit (builtins) attrNames isString match throw;
  fail = why: throw "powersync-nix image pin: ${why}";
in {
  # { name; tag; digest; } -> the same, plus `reference` = "name:tag@digest", the string podman runs.
  imagePin = pin: let
    check = field: pattern: hint:
      if !(pin ? ${field})
      then fail "`${field}` is missing"
      else if !(isString pin.${field}) || match pattern pin.${field} == null
      then fail "`${field}` = ${builtins.toJSON pin.${field}} is not ${hint}"
      else pin.${field};
    extra = builtins.filter (field: !(builtins.elem field ["name" "tag" "digest"])) (attrNames pin);
    name = check "name" "[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+" "a repository like docker.io/journeyapps/powersync-service";
    tag = check "tag" "[0-9]+\\.[0-9]+\\.[0-9]+" "a stable X.Y.Z tag";
    digest = check "digest" "sha256:[0-9a-f]{64}" "a sha256 digest (sha256: and 64 lowercase hex digits)";
  in
    if extra != []
    then fail "unknown field(s) ${builtins.concatStringsSep ", " extra}"
    else {
      inherit name tag digest;
      reference = "${name}:${tag}@${digest}";
    };
}

# The image pin (modules/powersync/image.nix) and the VM tests' archive hashes (tests/vm/image.nix): validated
# here, so a hand-edited or half-rewritten pin fails at evaluation with the reason instead of pulling something
# unexpected.
#
# The pin file has one layout, declared once in ./image-pin.json, which `cargo xtask bump` reads too
# (xtask/src/bump/pin.rs): lines that are blank or `#` comments (`ignoredLine`), then `{`, then exactly the
# fields name, tag and digest, one per line as `  field = "value";` (`fieldLine`), then `}`; the file ends with a
# newline. Each value matches its field's `pattern`: a tag has at most nine digits a part, so every reader holds
# the numbers exactly, and no leading zero, so no two spellings name one version (bump reads registry tags with
# the same pattern). xtask/tests/fixtures/pins/ shows both readers judge every file alike.
let
  inherit (builtins) attrNames concatStringsSep elem elemAt filter fromJSON genList head isAttrs isString length mapAttrs match readFile split toJSON;
  fail = why: throw "powersync-nix image pin: ${why}";

  grammar = fromJSON (readFile ./image-pin.json);
  fields = attrNames grammar.fields;
  patterns = mapAttrs (_: field: field.pattern) grammar.fields;
  hints = mapAttrs (_: field: field.hint) grammar.fields;

  # { name; tag; digest; } -> the same, plus `reference` = "name:tag@digest", the string podman runs.
  fromValue = pin: let
    check = field:
      if !(pin ? ${field})
      then fail "`${field}` is missing"
      else if !(isString pin.${field}) || match patterns.${field} pin.${field} == null
      then fail "`${field}` = ${toJSON pin.${field}} is not ${hints.${field}}"
      else pin.${field};
    extra = filter (field: !(elem field fields)) (attrNames pin);
    name = check "name";
    tag = check "tag";
    digest = check "digest";
  in
    if extra != []
    then fail "unknown field(s) ${concatStringsSep ", " extra}"
    else {
      inherit name tag digest;
      reference = "${name}:${tag}@${digest}";
    };

  # The pin file's text, read by the layout above (never imported: what bump can rewrite is what Nix reads).
  fromFile = file: let
    text = readFile file;
    pieces = filter isString (split "\n" text);
    count = length pieces - 1;
    lines =
      genList (i: {
        number = i + 1;
        line = elemAt pieces i;
      })
      count;
    significant = filter (l: match grammar.ignoredLine l.line == null) lines;
    body = genList (i: elemAt significant (i + 1)) (length significant - 2);
    assignment = l: let
      parts = match grammar.fieldLine l.line;
    in
      if parts == null
      then fail "${toString file} line ${toString l.number}: `${l.line}` is not a `  field = \"value\";` line (two spaces, one field a line)"
      else {
        name = head parts;
        value = elemAt parts 1;
      };
    assignments = map assignment body;
    repeated = filter (a: length (filter (b: b.name == a.name) assignments) > 1) assignments;
    value = builtins.listToAttrs assignments;
  in
    if elemAt pieces count != ""
    then fail "${toString file} does not end with a newline"
    else if length significant < 2 || (head significant).line != "{"
    then fail "${toString file}: expected `{` as the first line that is not blank or a comment"
    else if (elemAt significant (length significant - 1)).line != "}"
    then fail "${toString file}: expected `}` as the last line that is not blank or a comment"
    else if repeated != []
    then fail "${toString file}: `${(head repeated).name}` is set on more than one line; keep one"
    else fromValue value;

  # Nix system -> the architecture name pullImage and nix-prefetch-docker take.
  architectures = {
    x86_64-linux = "amd64";
    aarch64-linux = "arm64";
  };
  isSri = hash: isString hash && match "sha256-[A-Za-z0-9+/]{43}=" hash != null;
in rec {
  # A pin file (path) or a pin value (attrset) -> { name; tag; digest; reference; }.
  imagePin = pin:
    if isAttrs pin
    then fromValue pin
    else fromFile pin;

  # What to run on a networked machine to learn the archive hash pullImage will check for `system`. pullImage
  # runs `skopeo copy docker://<name>@<digest> docker-archive://$out:<final name>:<final tag>` with the given
  # os and arch and checks the flat sha256 of that archive; nix-prefetch-docker makes the same copy with the same
  # arguments and prints its hash, as base32 `sha256` (the version read) or, in newer nixpkgs, as an SRI `hash`
  # (nixpkgs PR #342400): jq takes whichever is there and `nix hash to-sri` accepts both (nixpkgs
  # pkgs/build-support/docker/{default.nix,nix-prefetch-docker}). The command names its experimental features
  # and brings its tools with `nix shell`, so it runs on a machine with flakes and no channels (where
  # `nix-shell -p` finds no nixpkgs) as on one with neither feature switched on.
  imageHashHint = {
    pin,
    system,
  }: let
    p = imagePin pin;
    prefetch = "nix-prefetch-docker --quiet --json --image-name ${p.name} --image-digest ${p.digest} --final-image-name ${p.name} --final-image-tag ${p.tag} --arch ${architectures.${system}} --os linux | jq -r \".hash // .sha256\"";
  in ''
    tests/vm/image.nix has no archive hash for ${p.digest} on ${system} (the pin is ${p.name}:${p.tag}).
    On a networked machine with Nix (any system), compute it:
      nix --extra-experimental-features 'nix-command flakes' shell nixpkgs#nix-prefetch-docker nixpkgs#jq --command sh -c 'nix --extra-experimental-features nix-command hash to-sri --type sha256 "$(${prefetch})"'
    and add what it prints to tests/vm/image.nix:
      "${p.digest}".${system} = "sha256-...";
    `cargo xtask vm-test` and `nix build .#checks.${system}.<test>` need this system's hash only. `nix flake check`
    before Nix 2.17 evaluates the checks of every system, so there it needs the ${concatStringsSep " and " (attrNames architectures)} hashes
    both, on any machine (from 2.17 only with --all-systems).
    An entry for another digest belongs to an older pin and can be deleted.'';

  # The dockerTools.pullImage arguments for the pinned image on `system`, with the archive hash recorded for the
  # pin's index digest in `hashes` ({ "<index digest>" = { <system> = "sha256-…"; }; }); a missing hash throws
  # imageHashHint. Keyed by digest, a bump that moves the pin can never pair the new image with an old hash.
  vmImage = {
    pin,
    hashes,
    system,
  }: let
    p = imagePin pin;
    badKeys = filter (key: match patterns.digest key == null) (attrNames hashes);
    entry = hashes.${p.digest} or {};
    hash = entry.${system} or null;
  in
    if !(architectures ? ${system})
    then fail "the VM tests run on ${concatStringsSep " or " (attrNames architectures)}, not ${system}"
    else if badKeys != []
    then fail "tests/vm/image.nix: ${toJSON badKeys} is not an index digest (sha256: and 64 lowercase hex digits)"
    else if !(isAttrs entry) || filter (s: !(architectures ? ${s})) (attrNames entry) != []
    then fail "tests/vm/image.nix: the entry for ${p.digest} must map ${concatStringsSep " and " (attrNames architectures)} to hashes"
    else if hash == null
    then throw (imageHashHint {inherit pin system;})
    else if !(isSri hash)
    then fail "tests/vm/image.nix: the ${system} hash for ${p.digest} is ${toJSON hash}, not an SRI sha256 (sha256-, 43 base64 characters and =); convert with `nix --extra-experimental-features nix-command hash to-sri --type sha256 <hash>`"
    else {
      imageName = p.name;
      imageDigest = p.digest;
      finalImageName = p.name;
      finalImageTag = p.tag;
      arch = architectures.${system};
      os = "linux";
      inherit hash;
    };

  # The name:tag the loaded archive carries; a docker-archive has no registry digest to refer to.
  vmImageReference = pin: let
    p = imagePin pin;
  in "${p.name}:${p.tag}";
}

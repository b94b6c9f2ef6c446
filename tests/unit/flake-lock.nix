# The shape of flake.lock: it is hand-written from verified pins (no network here to run `nix flake lock`),
# so this checks it has the shape `nix flake lock` writes, version 7, with sops-nix following our nixpkgs.
_: let
  shapeErrors = lock: let
    nodes = lock.nodes or {};
    isRev = rev: builtins.isString rev && builtins.match "[0-9a-f]{40}" rev != null;
    isNarHash = hash: builtins.isString hash && builtins.match "sha256-[A-Za-z0-9+/]{43}=" hash != null;
    lockedErrors = name: let
      locked = nodes.${name}.locked or null;
    in
      if locked == null
      then ["${name}: no `locked` attribute"]
      else
        (
          if isRev (locked.rev or null)
          then []
          else ["${name}: `rev` is not 40 hex digits"]
        )
        ++ (
          if isNarHash (locked.narHash or null)
          then []
          else ["${name}: `narHash` is not an SRI sha256 hash"]
        )
        ++ (
          if builtins.isInt (locked.lastModified or null)
          then []
          else ["${name}: `lastModified` is not an integer"]
        );
    lockedNodes = builtins.filter (name: name != "root") (builtins.attrNames nodes);
  in
    (
      if lock.version or null == 7
      then []
      else ["version is not 7"]
    )
    ++ (
      if lock.root or null == "root"
      then []
      else ["`root` does not name the root node"]
    )
    ++ (
      if
        (nodes.root.inputs or null)
        == {
          nixpkgs = "nixpkgs";
          sops-nix = "sops-nix";
        }
      then []
      else ["the root node's inputs are not exactly nixpkgs and sops-nix"]
    )
    ++ (
      if (nodes.sops-nix.inputs.nixpkgs or null) == ["nixpkgs"]
      then []
      else ["sops-nix does not follow the root's nixpkgs"]
    )
    ++ builtins.concatMap lockedErrors lockedNodes;

  committed = builtins.fromJSON (builtins.readFile ../../flake.lock);
  breakNode = name: patch:
    committed
    // {
      nodes =
        committed.nodes
        // {
          ${name} = committed.nodes.${name} // patch;
        };
    };
in {
  testCommittedLockHasTheShapeNixWrites = {
    expr = shapeErrors committed;
    expected = [];
  };
  testCommittedLockPinsNixos2605 = {
    expr = committed.nodes.nixpkgs.original;
    expected = {
      owner = "NixOS";
      ref = "nixos-26.05";
      repo = "nixpkgs";
      type = "github";
    };
  };
  testShapeCheckRejectsAnotherVersion = {
    expr = shapeErrors (committed // {version = 6;});
    expected = ["version is not 7"];
  };
  testShapeCheckRejectsAShortRev = {
    expr = shapeErrors (breakNode "nixpkgs" {locked = committed.nodes.nixpkgs.locked // {rev = "0d9e9b8";};});
    expected = ["nixpkgs: `rev` is not 40 hex digits"];
  };
  testShapeCheckRejectsAHexNarHash = {
    expr = shapeErrors (breakNode "sops-nix" {locked = committed.nodes.sops-nix.locked // {narHash = "sha256:0d9e";};});
    expected = ["sops-nix: `narHash` is not an SRI sha256 hash"];
  };
  testShapeCheckRejectsAMissingLastModified = {
    expr = shapeErrors (breakNode "nixpkgs" {locked = removeAttrs committed.nodes.nixpkgs.locked ["lastModified"];});
    expected = ["nixpkgs: `lastModified` is not an integer"];
  };
  testShapeCheckRejectsSopsNixWithItsOwnNixpkgs = {
    expr = shapeErrors (breakNode "sops-nix" {inputs.nixpkgs = "nixpkgs_2";});
    expected = ["sops-nix does not follow the root's nixpkgs"];
  };
}

# docs/options.md lists exactly the options the modules declare (tests/declared-options.nix reads them from the
# module files): an option added without a line there, or a line left for an option that is gone, fails.
_: let
  inherit (builtins) filter foldl' elem head match readFile split isList;
  declared = import ../declared-options.nix;
  # The first column of the reference's tables: | `services.powersync.x` | …
  documented = foldl' (found: line: let
    m = match "[|] `([A-Za-z0-9.]+)` [|].*" line;
  in
    if m == null
    then found
    else found ++ [(head m)]) [] (filter (part: !(isList part)) (split "\n" (readFile ../../docs/options.md)));
  duplicates = filter (name: builtins.length (filter (other: other == name) documented) > 1) documented;
in {
  testOptionsTheModulesDeclareSomething = {
    # Guards the reader itself: a stand-in lib that marked nothing would make every comparison pass.
    expr = builtins.length declared > 50 && elem "services.powersync.enable" declared;
    expected = true;
  };
  testOptionsEveryDeclaredOptionIsDocumented = {
    expr = filter (name: !(elem name documented)) declared;
    expected = [];
  };
  testOptionsEveryDocumentedOptionIsDeclared = {
    expr = filter (name: !(elem name declared)) documented;
    expected = [];
  };
  testOptionsEachOptionIsDocumentedOnce = {
    expr = duplicates;
    expected = [];
  };
}

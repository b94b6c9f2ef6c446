# A table of our own in nftables, for rules that must hold beside whichever firewall the host runs: in a table
# of its own a drop or reject is final, whatever other tables accept. With the nftables-based NixOS firewall
# the table is one of `networking.nftables.tables` (reloaded with it); with the iptables-based one, a oneshot
# unit loads the same table with `nft -f`. Builtins only: the tests load exactly this text with the real nft.
{
  # The table, and the file for `nft -f` that replaces it atomically on every load (the idiom of nixpkgs'
  # nftables.nix: create it if missing so the delete cannot fail, delete it, create it afresh).
  ownTable = {
    family,
    table,
    content,
  }: {
    inherit family table content;
    ruleset = ''
      table ${family} ${table}
      delete table ${family} ${table}
      table ${family} ${table} {
      ${content}}
    '';
  };

  # The [Service] settings of the unit that loads a table's `ruleset` (written to `rulesetFile`) and removes
  # the table when it stops; `nft` is the nft binary.
  loaderServiceConfig = {
    nft,
    rulesetFile,
    table,
  }: {
    Type = "oneshot";
    RemainAfterExit = true;
    ExecStart = "${nft} -f ${rulesetFile}";
    ExecStop = "${nft} delete table ${table.family} ${table.table}";
  };
}

# The forward guard of the v6egress network as nftables text, builtins only, so xtask/tests/forward_guard.rs
# loads exactly these rules into network namespaces and checks what they let through.
#
# Why: the host routes between its uplink and the bridge (netavark turns on forwarding), and nothing drops
# forwarded packets by default: netavark's own forward chain has policy accept, and the NixOS firewall
# filters forwarding only with nftables and `filterForward`. So a neighbour that routes the container
# subnet via the host reaches every port a container listens on (the metrics and API ports included),
# whatever is published on 127.0.0.1.
#
# The rule: a packet leaving through the bridge that opens a new connection is dropped unless it entered
# through the bridge too. Replies to the containers' own connections (conntrack established/related) still
# pass, so their egress, NAT66 included, is untouched; so does traffic between containers on the bridge, and
# the host's own connections to the containers (those never cross the forward hook). A port published with
# `podman run -p` arrives DNAT-ed and is let through: publishing is the deliberate way in.
#
# It lives in a table of its own, beside netavark's `inet netavark` and whatever the host firewall uses: a
# packet crosses every base chain on the forward hook, and a drop in any one of them is final, so this works
# next to both the iptables-based and the nftables-based NixOS firewall and is never undone by netavark.
{interfaceName}:
(import ../../lib/nftables.nix).ownTable {
  family = "inet";
  table = "v6egress_guard";
  content = ''
    chain forward {
      type filter hook forward priority filter; policy accept;
      oifname "${interfaceName}" ct status dnat accept
      oifname "${interfaceName}" iifname != "${interfaceName}" ct state new drop
    }
  '';
}

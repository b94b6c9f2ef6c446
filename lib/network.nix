# Address helpers for networking.v6egress: the gateway podman gives a subnet is its first host address.
let
  inherit (builtins) elemAt length match toString;
  fail = why: throw "powersync-nix network: ${why}";
in {
  # "10.89.64.0/24" -> "10.89.64.1". The subnet must be written with its network address.
  gateway4 = subnet: let
    parts = match "([0-9]+)\\.([0-9]+)\\.([0-9]+)\\.([0-9]+)/([0-9]+)" subnet;
    octet = i: builtins.fromJSON (elemAt parts i);
    prefix = octet 4;
  in
    if parts == null || builtins.any (i: octet i > 255) [0 1 2 3] || prefix > 30 || prefix < 8
    then fail "${builtins.toJSON subnet} is not an IPv4 subnet like 10.89.64.0/24 (prefix 8 to 30)"
    else if builtins.bitAnd (octet 3) 1 != 0
    then fail "${subnet} does not start at its network address"
    else "${elemAt parts 0}.${elemAt parts 1}.${elemAt parts 2}.${toString (octet 3 + 1)}";

  # "fd70:7377:6e63:1::/64" -> "fd70:7377:6e63:1::1". The subnet must end in "::" (host part all zero) and be
  # a unique local address (fc00::/7): NAT66 hides it behind the host's own global address.
  gateway6 = subnet: let
    parts = match "(f[cd][0-9a-f]{0,2}(:[0-9a-f]{1,4}){0,6})::/([0-9]+)" subnet;
    prefix = builtins.fromJSON (elemAt parts 2);
  in
    if parts == null || length parts != 3
    then fail "${builtins.toJSON subnet} is not a unique local IPv6 subnet ending in ::, like fd70:7377:6e63:1::/64"
    else if prefix < 48 || prefix > 120
    then fail "${subnet}: use a prefix from /48 to /120 (podman's default is /64)"
    else "${elemAt parts 0}::1";
}

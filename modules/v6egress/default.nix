# networking.v6egress: a dual-stack podman network whose containers reach IPv6-only services (such as
# Supabase's direct database endpoint) through NAT66 behind the host's global address.
#
# Upstream options used (nixpkgs nixos-26.05):
#   virtualisation.podman.{enable,package}       nixos/modules/virtualisation/podman/default.nix
#   networking.firewall.interfaces.<if>.*        nixos/modules/services/networking/firewall.nix
#   boot.kernel.sysctl                           nixos/modules/config/sysctl.nix
#   systemd.services.<name>.*                    nixos/modules/system/boot/systemd.nix
#   networking.nftables.{enable,tables.<name>.{family,content}}  nixos/modules/services/networking/nftables.nix
#     (each table is written as "table X; delete table X; table X { content }", so a reload replaces it)
{
  config,
  lib,
  pkgs,
  ...
}: let
  inherit (lib) mkEnableOption mkIf mkOption types;
  pure = import ../../lib;
  cfg = config.networking.v6egress;

  # Fixed, because other units order themselves on it by name (podman-powersync.service does).
  networkName = "v6egress";

  guard = import ./forward-guard.nix {inherit (cfg) interfaceName;};
  # With the nftables-based firewall the guard is one of NixOS's own tables (reloaded with it); with the
  # iptables-based one, a unit of its own loads the same table (netavark needs nftables in any case).
  guardUnit =
    if config.networking.nftables.enable
    then "nftables.service"
    else "v6egress-forward-guard.service";

  # What `podman network inspect` must report for the network to match this configuration.
  expected = "${cfg.interfaceName} ${lib.concatStringsSep "," (lib.sort (a: b: a < b) [cfg.subnet4 cfg.subnet6])}";
in {
  # interfaceName, subnet4 and subnet6 shape the PowerSync config too: they are declared once, in
  # lib/instance.nix, where `cargo xtask render` reads them as well.
  imports = [{options.networking.v6egress = pure.instanceOptions {inherit (lib) mkOption literalExpression types;} "v6egress";}];

  options.networking.v6egress = {
    enable = mkEnableOption "the `v6egress` podman network: IPv4 plus a unique local IPv6 subnet with NAT66, so containers reach IPv6-only hosts";

    gateway4 = mkOption {
      type = types.str;
      readOnly = true;
      default = pure.gateway4 cfg.subnet4;
      defaultText = lib.literalExpression "first host address of subnet4";
      description = "The host's IPv4 address on the network (podman's gateway): where containers reach host services.";
    };

    gateway6 = mkOption {
      type = types.str;
      readOnly = true;
      default = pure.gateway6 cfg.subnet6;
      defaultText = lib.literalExpression "first host address of subnet6";
      description = "The host's IPv6 address on the network (podman's gateway).";
    };

    blockInboundForwarding = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Drop new connections forwarded into the network that do not come from its own bridge, so a neighbour
        that routes the subnet via this host cannot reach the containers' ports. The containers' own outbound
        connections and ports published with `podman run -p` are not affected (see forward-guard.nix). Works
        with the iptables- and the nftables-based firewall.
      '';
    };

    openDnsFirewall = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Open port 53 on the bridge for aardvark-dns, podman's resolver on the gateway. The NixOS podman
        module opens it only on the default network's interface, and containers on this network must resolve
        the source's AAAA record.
      '';
    };

    uplink = {
      interface = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "enp1s0";
        description = ''
          The host's uplink interface. When the host takes its IPv6 address or default route from Router
          Advertisements (SLAAC), it gets `accept_ra = 2`: netavark turns on IPv6 forwarding when it creates
          the bridge, and Linux then ignores RAs on interfaces with the default `accept_ra = 1`, so the host
          would lose its own IPv6 when the advertised lifetime runs out.
        '';
      };

      ipv6 = mkOption {
        type = types.enum ["router-advertisements" "static"];
        default = "router-advertisements";
        description = ''
          How the uplink gets its IPv6 configuration. With `static` nothing is changed; with
          `router-advertisements` (the common case) set `uplink.interface` so RAs keep being accepted.
        '';
      };
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        # Forces both derived addresses, so a malformed subnet fails here with lib's message.
        assertion = cfg.gateway4 != cfg.gateway6;
        message = "networking.v6egress: gateway4 and gateway6 cannot be equal.";
      }
    ];

    warnings = lib.optional (cfg.uplink.ipv6 == "router-advertisements" && cfg.uplink.interface == null) ''
      networking.v6egress: netavark enables IPv6 forwarding when it creates the v6egress bridge, after which
      Linux ignores Router Advertisements on interfaces with accept_ra = 1. If this host gets its IPv6 address
      or route by SLAAC, set networking.v6egress.uplink.interface (it then gets accept_ra = 2); if its IPv6 is
      static, set networking.v6egress.uplink.ipv6 = "static" to silence this warning.
    '';

    virtualisation.podman.enable = true;

    boot.kernel.sysctl = mkIf (cfg.uplink.ipv6 == "router-advertisements" && cfg.uplink.interface != null) {
      "net.ipv6.conf.${cfg.uplink.interface}.accept_ra" = 2;
    };

    networking.firewall.interfaces.${cfg.interfaceName} = mkIf cfg.openDnsFirewall {
      allowedUDPPorts = [53];
      allowedTCPPorts = [53];
    };

    networking.nftables.tables.${guard.table} = mkIf (cfg.blockInboundForwarding && config.networking.nftables.enable) {
      inherit (guard) family content;
    };

    systemd.services.v6egress-forward-guard = mkIf (cfg.blockInboundForwarding && !config.networking.nftables.enable) {
      description = "Drop new connections forwarded into the ${networkName} network from outside it";
      wantedBy = ["multi-user.target"];
      before = ["network-pre.target"];
      wants = ["network-pre.target"];
      serviceConfig = pure.nftables.loaderServiceConfig {
        nft = "${pkgs.nftables}/bin/nft";
        rulesetFile = pkgs.writeText "v6egress-guard.nft" guard.ruleset;
        table = guard;
      };
    };

    # No NixOS option declares extra podman networks, so this unit creates it, idempotently. It is a
    # definition only: netavark creates the bridge when the first container joins.
    systemd.services."init-${networkName}-network" = {
      description = "Create the ${networkName} podman network (IPv4 + IPv6 ULA with NAT66)";
      wantedBy = ["multi-user.target"];
      # No container joins the network before the guard is in place. Wants, not Requires: a firewall
      # reload or restart must not stop the network and, through it, the containers.
      after = ["network.target"] ++ lib.optional cfg.blockInboundForwarding guardUnit;
      wants = lib.optional cfg.blockInboundForwarding guardUnit;
      path = [config.virtualisation.podman.package pkgs.jq];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
      };
      script = ''
        want=${lib.escapeShellArg expected}
        if podman network exists ${networkName}; then
          have=$(podman network inspect ${networkName} \
            | jq -r '.[0] | "\(.network_interface) \([.subnets[].subnet] | sort | join(","))"')
          if [ "$have" = "$want" ]; then
            exit 0
          fi
          if [ -n "$(podman ps --all --quiet --filter network=${networkName})" ]; then
            echo "${networkName} exists as '$have' but the configuration asks for '$want'." >&2
            echo "Stop the containers on it, run 'podman network rm ${networkName}', then restart this unit." >&2
            exit 1
          fi
          echo "${networkName}: recreating ('$have' -> '$want'); no container uses it"
          podman network rm ${networkName}
        fi
        podman network create \
          --driver bridge \
          --interface-name ${cfg.interfaceName} \
          --subnet ${cfg.subnet4} --gateway ${cfg.gateway4} \
          --ipv6 --subnet ${cfg.subnet6} --gateway ${cfg.gateway6} \
          ${networkName}
      '';
    };
  };
}

# The machine: REPLACE THIS FILE with web-arm's own hardware configuration (`nixos-generate-config` output,
# its disks, boot loader and uplink). It holds just enough for the flake to evaluate and dry-build.
{
  nixpkgs.hostPlatform = "aarch64-linux";

  boot.loader.systemd-boot.enable = true;
  boot.loader.efi.canTouchEfiVariables = true;

  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };
  fileSystems."/boot" = {
    device = "/dev/disk/by-label/boot";
    fsType = "vfat";
  };

  # The interface that carries the host's IPv6; it keeps accepting Router Advertisements (accept_ra = 2)
  # once netavark turns on forwarding. If web-arm's IPv6 is static, set uplink.ipv6 = "static" instead.
  networking.v6egress.uplink.interface = "enp1s0";

  # The NixOS release this host was first installed with: keep the host's real value.
  system.stateVersion = "24.11";
}

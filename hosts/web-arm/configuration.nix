# web-arm: the first user's aarch64 host, serving PowerSync at powersync.reptide.eu. One file per service
# under ./modules; hardware.nix is the machine itself (platform, disks, boot), kept apart so that NixOS VM
# tests can import the services without it.
{
  imports = [
    ./modules/sops.nix
    ./modules/ssh.nix
    ./modules/acme.nix
    ./modules/postgresql.nix
    ./modules/powersync.nix
    ./modules/prometheus.nix
    ./modules/blackbox-exporter.nix
  ];

  networking.hostName = "web-arm";
}

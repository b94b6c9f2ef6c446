# PostgreSQL 14, which web-arm already runs for other services and now also for PowerSync's bucket storage.
#
# Upstream options used: services.postgresql.{enable,package,settings}
# (nixos/modules/services/databases/postgresql.nix).
{pkgs, ...}: {
  services.postgresql = {
    enable = true;
    # Pinned: the stateVersion default would move to a newer major, which needs a dump and restore.
    package = pkgs.postgresql_14;
    # Was "80MB". Bucket storage reads the same rows again and again; raising it restarts PostgreSQL once.
    settings.shared_buffers = "512MB";
  };
}

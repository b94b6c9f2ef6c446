# web-arm's PowerSync instance as plain data: everything that shapes the service config, and the public
# domain. modules/powersync.nix feeds it to services.powersync, `cargo xtask render web-arm` renders it offline
# through the same lib function, so the two cannot disagree, and `cargo xtask verify web-arm` checks its domain.
{
  powersync = {
    replication = {
      # Supabase's direct endpoint (IPv6 only), pinned here so the rendered config shows it; the DSN in the
      # sops secret supplies user and password. Never the *.pooler.supabase.com host.
      hostname = "db.majxbigjafpzayzboxsf.supabase.co";
      port = 5432;
      # Distinct from PowerSync Cloud's slots, so both can replicate side by side during the parallel run.
      slotNamePrefix = "powersync_selfhost_";
    };
    auth = {
      jwksUri = "https://majxbigjafpzayzboxsf.supabase.co/auth/v1/.well-known/jwks.json";
      audience = "authenticated";
    };
    # The public vhost; `cargo xtask verify web-arm` checks https://<domain> from outside.
    nginx.domain = "powersync.reptide.eu";
  };
}

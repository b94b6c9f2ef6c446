# A representative services.powersync config: the module's generated settings for a Supabase source, plus the
# kind of overrides an operator makes. `cargo xtask test --only schema` validates its rendering.
let
  lib = import ../../../lib;
in
  lib.renderConfig (lib.mergeSettings (lib.generatedSettings {
      port = 8080;
      slotNamePrefix = "powersync_selfhost_";
      sourceHostname = "db.abcdefghijklmnopqrst.supabase.co";
      sourcePort = 5432;
      storageHostname = "10.89.64.1";
      storagePort = 5432;
      jwksUri = "https://abcdefghijklmnopqrst.supabase.co/auth/v1/.well-known/jwks.json";
      audience = "authenticated";
    }) {
      storage.max_pool_size = lib.envNumber "PS_STORAGE_POOL";
      api.tokens = [(lib.env "PS_ADMIN_TOKEN")];
      replication.connections = [
        {
          type = "postgresql";
          id = "supabase";
          uri = lib.env "PS_SOURCE_DSN";
          hostname = "db.abcdefghijklmnopqrst.supabase.co";
          port = 5432;
          sslmode = "verify-full";
          slot_name_prefix = "powersync_selfhost_";
          connect_timeout = 30;
        }
      ];
    })

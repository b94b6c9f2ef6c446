# An API-only host on shared storage: the generated settings with the storage connection that
# services.powersync.storage.remote puts over the local proxy's (verify-ca with the storage CA's PEM).
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
      storage = lib.remoteStorageSettings {
        hostname = "storage.internal.example.com";
        port = 5432;
        database = "powersync_storage";
        username = "powersync_storage";
        sslmode = "verify-ca";
        caCertificate = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n";
      };
    })

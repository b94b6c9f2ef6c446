# lib.remoteStorageSettings: the storage connection of an API-only host, merged over the generated one.
{lib}: let
  generated = lib.generatedSettings {
    port = 8080;
    slotNamePrefix = "powersync_selfhost_";
    storageHostname = "10.89.64.1";
    storagePort = 5432;
  };
  remote = caCertificate:
    (lib.mergeSettings generated {
      storage = lib.remoteStorageSettings {
        hostname = "storage.internal.example.com";
        port = 6432;
        database = "buckets";
        username = "powersync_api";
        sslmode = "verify-full";
        inherit caCertificate;
      };
    })
    .storage;
in {
  testStorageRemoteReplacesTheProxyConnectionAndTurnsTlsOn = {
    expr = remote null;
    expected = {
      type = "postgresql";
      hostname = "storage.internal.example.com";
      port = 6432;
      database = "buckets";
      username = "powersync_api";
      password = lib.env "PS_STORAGE_PASSWORD";
      sslmode = "verify-full";
    };
  };
  testStorageRemoteCarriesTheCaPem = {
    expr = (remote "PEM").cacert;
    expected = "PEM";
  };
  testStorageRemotePassesTheContract = {
    expr =
      (lib.checkSettings (lib.mergeSettings generated {
        storage = lib.remoteStorageSettings {
          hostname = "storage.internal.example.com";
          port = 5432;
          database = "powersync_storage";
          username = "powersync_storage";
          sslmode = "verify-ca";
          caCertificate = "PEM";
        };
      }))
      .errors;
    expected = [];
  };
}

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
  # The service's own storage connections (libs/lib-postgres DatabaseClient): two clients, each a pool of
  # max_pool_size (8 unless set) plus 5 transaction connections.
  testStorageConnectionsPerProcessAtTheServiceDefault = {
    expr = lib.storageConnectionsPerProcess null;
    expected = 26;
  };
  testStorageConnectionsPerProcessFollowTheSetting = {
    expr = lib.storageConnectionsPerProcess 4;
    expected = 18;
  };
  # web-arm: one unified runner and the compaction; split: a sync runner, two API runners and the compaction.
  testStorageProxyLimitCoversEveryProcess = {
    expr = map (processes:
      lib.storageProxyLimit {
        inherit processes;
        maxPoolSize = null;
      }) [2 4];
    expected = [52 104];
  };
  testStorageProxydIsToldOneLessThanItShouldAdmit = {
    expr = lib.proxydConnectionsMaxFor 52;
    expected = 51;
  };
}

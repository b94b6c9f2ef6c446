# The storage connection of an API-only host on shared storage (services.powersync.storage.remote): the keys
# that replace the local proxy's connection in the generated config. Builtins only, so the unit and schema
# tests render exactly what the module renders.
rec {
  # `remote` mirrors services.powersync.storage.remote; `caCertificate` is the PEM text (or null).
  remoteStorageSettings = {
    hostname,
    port,
    database,
    username,
    sslmode,
    caCertificate ? null,
  }:
    {
      inherit hostname port database username sslmode;
    }
    // (
      if caCertificate == null
      then {}
      else {cacert = caCertificate;}
    );

  # At most how many storage connections one PowerSync process opens (libs/lib-postgres DatabaseClient): its
  # two storage clients, bucket storage and connection reports, each hold a pool of `max_pool_size` (the
  # service's default, 8, when the setting is absent) plus 5 connections kept for transactions.
  storageConnectionsPerProcess = maxPoolSize:
    2
    * (
      (
        if maxPoolSize == null
        then 8
        else maxPoolSize
      )
      + 5
    );

  # The storage proxy's default limit: what `processes` PowerSync processes (every runner, and the compaction)
  # may open, so the proxy never refuses the service itself.
  storageProxyLimit = {
    processes,
    maxPoolSize,
  }:
    processes * storageConnectionsPerProcess maxPoolSize;

  # systemd-socket-proxyd refuses a connection only once it holds more than --connections-max
  # (`set_size(connections) > arg_connections_max` in src/socket-proxy/socket-proxyd.c, in every version):
  # it admits one more than it is told. One less admits exactly `limit`.
  proxydConnectionsMaxFor = limit: limit - 1;
}

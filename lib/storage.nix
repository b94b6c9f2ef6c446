# The storage connection of an API-only host on shared storage (services.powersync.storage.remote): the keys
# that replace the local proxy's connection in the generated config. Builtins only, so the unit and schema
# tests render exactly what the module renders.
{
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
}

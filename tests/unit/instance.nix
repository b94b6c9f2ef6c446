# lib.instanceSettings / lib.renderInstance / lib.publicUrl: a host's plain-data instance to the config the
# module mounts, and to the public URL `cargo xtask verify` checks.
{lib}: let
  connection = instance: builtins.head (lib.instanceSettings instance).replication.connections;
in {
  testInstanceEmptyUsesTheModuleDefaults = {
    expr = connection {};
    expected = {
      type = "postgresql";
      uri = lib.env "PS_SOURCE_DSN";
      sslmode = "verify-full";
      slot_name_prefix = lib.defaults.replication.slotNamePrefix;
    };
  };
  testInstanceHostnameBringsItsPort = {
    expr = {inherit (connection {powersync.replication.hostname = "db.x.supabase.co";}) hostname port;};
    expected = {
      hostname = "db.x.supabase.co";
      port = 5432;
    };
  };
  testInstanceStorageFollowsTheV6egressSubnet = {
    expr = (lib.instanceSettings {v6egress.subnet4 = "172.31.250.0/24";}).storage.hostname;
    expected = "172.31.250.1";
  };
  testInstanceSettingsMergeLast = {
    expr = (lib.instanceSettings {powersync.settings.storage.max_pool_size = 4;}).storage.max_pool_size;
    expected = 4;
  };
  testInstanceUnknownTopLevelKeyThrows = {
    expr = lib.instanceSettings {powersync.replicaton = {};};
    expectThrow = true;
  };
  testInstanceUnknownNestedKeyThrows = {
    expr = lib.instanceSettings {powersync.auth.audiences = ["a"];};
    expectThrow = true;
  };
  testInstanceRenderIsRenderConfigOfTheSettings = {
    expr = lib.renderInstance {powersync.auth.jwksUri = "https://x/jwks.json";} == lib.renderConfig (lib.instanceSettings {powersync.auth.jwksUri = "https://x/jwks.json";});
    expected = true;
  };
  testInstancePublicUrlIsHttpsOnTheDomain = {
    expr = lib.publicUrl {powersync.nginx.domain = "powersync.example.org";};
    expected = "https://powersync.example.org";
  };
  testInstancePublicUrlWithoutDomainIsNull = {
    expr = lib.publicUrl {powersync.auth.audience = "authenticated";};
    expected = null;
  };
  testInstancePublicUrlUnknownNginxKeyThrows = {
    expr = lib.publicUrl {powersync.nginx.domian = "x";};
    expectThrow = true;
  };
  testInstanceNginxShapesNoSettings = {
    expr = lib.instanceSettings {powersync.nginx.domain = "powersync.example.org";} == lib.instanceSettings {};
    expected = true;
  };
}

# lib.instanceSettings / lib.renderInstance / lib.publicUrl: a host's plain-data instance to the config the
# module mounts, and to the public URL `cargo xtask verify` checks. lib.instanceOptions / lib.instanceOf: the
# module's side of the same table, with nixpkgs' mkOption and types stood in for by plain records (the
# module system itself needs nixpkgs; checks.render-web-arm runs the real one).
{lib}: let
  connection = instance: builtins.head (lib.instanceSettings instance).replication.connections;

  # What the module passes instanceOptions, as records that show what was asked for.
  nixpkgs = {
    mkOption = option: option // {isOption = true;};
    literalExpression = text: {inherit text;};
    types = let
      type = name: {inherit name;};
    in {
      str = type "str";
      port = type "port";
      bool = type "bool";
      nullOr = inner: type "nullOr ${inner.name}";
      addCheck = inner: _: inner;
      strMatching = pattern: type "strMatching ${pattern}";
      submodule = module: type "submodule of ${module.freeformType.name}";
    };
    yaml = {name = "yaml";};
  };
  declared = {
    powersync = lib.instanceOptions nixpkgs "powersync";
    v6egress = lib.instanceOptions nixpkgs "v6egress";
  };
  # What the module system makes of the declared options: each one's value, the host's where it sets one.
  evaluate = options: values:
    builtins.mapAttrs (name: option:
      if option.isOption or false
      then values.${name} or option.default
      else evaluate option (values.${name} or {}))
    options;
  # A host's evaluated config (the parts instanceOf reads, next to options it must ignore).
  hostConfig = instance: {
    services.powersync =
      evaluate declared.powersync (instance.powersync or {})
      // {
        enable = true;
        image = "docker.io/journeyapps/powersync-service:1.26.1";
      };
    networking.v6egress = evaluate declared.v6egress (instance.v6egress or {}) // {enable = true;};
  };
  # The module's path (options → config → instanceOf) and render's (the data itself) to one file.
  bothPaths = instance: {
    module = lib.renderConfig (lib.instanceSettings (lib.instanceOf (hostConfig instance)));
    render = lib.renderInstance instance;
  };
  agree = instance: let
    paths = bothPaths instance;
  in
    paths.module == paths.render;
in {
  testInstanceOptionsAreDeclaredFromTheTable = {
    expr = {inherit (declared.powersync.replication) port hostname;};
    expected = {
      port = {
        isOption = true;
        type.name = "port";
        default = 5432;
        description = "Source port, rendered with `hostname` (ignored when `hostname` is null).";
      };
      hostname = {
        isOption = true;
        type.name = "nullOr str";
        default = null;
        example = "db.<project>.supabase.co";
        description = declared.powersync.replication.hostname.description;
      };
    };
  };
  testInstanceOptionsSettingsIsFreeformYaml = {
    expr = {inherit (declared.powersync.settings) type default;};
    expected = {
      type.name = "submodule of yaml";
      default = {};
    };
  };
  testInstanceOptionsSettingsExampleIsAnExpression = {
    expr = builtins.isString declared.powersync.settings.example.text;
    expected = true;
  };
  testInstanceOptionsV6egress = {
    expr = builtins.mapAttrs (_: option: [option.type.name option.default]) declared.v6egress;
    expected = {
      interfaceName = ["strMatching [a-zA-Z0-9_-]{1,15}" "v6egress0"];
      subnet4 = ["str" "10.89.64.0/24"];
      subnet6 = ["str" "fd70:7377:6e63:6567::/64"];
    };
  };
  testInstanceOptionsDefaultsAreLibDefaults = {
    expr = evaluate declared.powersync {} // {v6egress = evaluate declared.v6egress {};};
    expected = builtins.removeAttrs lib.defaults ["servicePort" "operations"];
  };
  # Exactly the table's options, wherever the host's config has more.
  testInstanceOfProjectsTheTable = {
    expr = builtins.mapAttrs (_: builtins.attrNames) (lib.instanceOf (hostConfig {}));
    expected = {
      powersync = ["auth" "listen" "metrics" "nginx" "replication" "settings" "storage"];
      v6egress = ["interfaceName" "subnet4" "subnet6"];
    };
  };
  testInstanceModuleAndRenderAgreeOnDefaults = {
    expr = agree {};
    expected = true;
  };
  testInstanceModuleAndRenderAgreeOnEveryOption = {
    expr = agree {
      powersync = {
        replication = {
          hostname = "db.x.supabase.co";
          port = 6543;
          slotNamePrefix = "p_";
        };
        auth = {
          jwksUri = "https://x.supabase.co/auth/v1/.well-known/jwks.json";
          audience = "a";
        };
        metrics = {
          enable = false;
          port = 9999;
        };
        storage.proxyPort = 5433;
        listen.port = 8090;
        nginx.domain = "powersync.example.org";
        settings.storage.max_pool_size = 4;
      };
      v6egress = {
        subnet4 = "172.31.250.0/24";
        subnet6 = "fd12:3456:789a:1::/64";
        interfaceName = "ps0";
      };
    };
    expected = true;
  };
  # What checks.render-web-arm asserts with nixpkgs, here with the stand-ins: web-arm's own instance.
  testInstanceModuleAndRenderAgreeOnWebArm = {
    expr = bothPaths (import ../../hosts/web-arm/modules/powersync/instance.nix);
    expected = let
      rendered = lib.renderInstance (import ../../hosts/web-arm/modules/powersync/instance.nix);
    in {
      module = rendered;
      render = rendered;
    };
  };

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
  # What a host imports to run its instance: each section at its options' path.
  testInstanceConfigPlacesEachSection = {
    expr = lib.instanceConfig {
      powersync.listen.port = 8090;
      v6egress.subnet4 = "172.31.250.0/24";
    };
    expected = {
      services.powersync.listen.port = 8090;
      networking.v6egress.subnet4 = "172.31.250.0/24";
    };
  };
  testInstanceConfigOfWebArmIsItsPowersyncSection = {
    expr = lib.instanceConfig (import ../../hosts/web-arm/modules/powersync/instance.nix);
    expected.services.powersync = (import ../../hosts/web-arm/modules/powersync/instance.nix).powersync;
  };
  testInstanceConfigRefusesUnknownKeys = {
    expr = lib.instanceConfig {v6egress.subnet = "172.31.250.0/24";};
    expectThrow = true;
  };
  # The table's types hold for render's data too: what the module's option types refuse, render refuses.
  testInstanceRefusesAPortWrittenAsAString = {
    expr = lib.renderInstance {powersync.replication.port = "5432";};
    expectThrow = true;
  };
  testInstanceRefusesAPortAbove65535 = {
    expr = lib.renderInstance {powersync.listen.port = 65536;};
    expectThrow = true;
  };
  testInstanceRefusesAnInterfaceNameLinuxRefuses = {
    expr = lib.renderInstance {v6egress.interfaceName = "a-name-longer-than-15";};
    expectThrow = true;
  };
  testInstanceRefusesAJwksUriThatIsNoUrl = {
    expr = lib.renderInstance {powersync.auth.jwksUri = "majx.supabase.co/auth/v1/.well-known/jwks.json";};
    expectThrow = true;
  };
  testInstanceAcceptsNullWhereTheOptionDoes = {
    expr = lib.publicUrl {powersync.nginx.domain = null;};
    expected = null;
  };
  # Every option of the table becomes one, typed and described (a type the stand-ins lack fails here first).
  testInstanceOptionsEveryOneIsTypedAndDescribed = {
    expr = let
      leaves = node:
        builtins.concatMap (name: let
          child = node.${name};
        in
          if child.isOption or false
          then [(builtins.isString child.type.name && builtins.stringLength child.description > 20)]
          else leaves child) (builtins.attrNames node);
      all = leaves declared.powersync ++ leaves declared.v6egress;
    in
      all != [] && builtins.all (ok: ok) all;
    expected = true;
  };
}

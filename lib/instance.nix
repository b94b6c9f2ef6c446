# A PowerSync instance, declared once: the options of services.powersync and networking.v6egress that shape the
# service config, each with its type, default and description. The modules declare their options from this
# table (`instanceOptions`) and compute their config from `instanceOf config`; `cargo xtask render` reads a
# host's plain-data instance (hosts/<host>/modules/powersync/instance.nix), checked against the same table.
# Both go through `instanceSettings`, so they produce the same bytes.
let
  inherit (builtins) attrNames concatStringsSep filter foldl' head isAttrs mapAttrs tail;
  settings = import ./settings.nix;
  network = import ./network.nix;
  inherit (import ./systemd.nix) isHttpUrl;

  # The API port inside the container (the config's `port`); listen.port is where the host publishes it.
  servicePort = 8080;

  # One option: `type` is a function of nixpkgs' `lib.types` (and `yaml`, the YAML format's value type), so
  # this file stays builtins-only and the module gets the real type. Optional: `example` (a value) or
  # `exampleText` (a Nix expression, shown as such).
  option = spec: spec // {_instanceOption = true;};
  isOption = node: node._instanceOption or false;

  sections = {
    powersync = {
      optionPath = ["services" "powersync"];
      options = {
        auth = {
          jwksUri = option {
            # nixpkgs' lib.types has no URL type: a string that must be an http(s) URL (lib/systemd.nix).
            type = {types, ...}: types.nullOr (types.addCheck types.str isHttpUrl // {description = "http(s) URL";});
            default = null;
            example = "https://<project>.supabase.co/auth/v1/.well-known/jwks.json";
            description = "JWKS URI whose keys verify client JWTs (`client_auth.jwks_uri`). Supabase publishes its asymmetric signing keys here.";
          };
          audience = option {
            type = {types, ...}: types.str;
            default = "authenticated";
            description = "Audience client JWTs must carry (`client_auth.audience`); Supabase user tokens use `authenticated`.";
          };
        };

        replication = {
          slotNamePrefix = option {
            type = {types, ...}: types.str;
            default = "powersync_selfhost_";
            description = ''
              Prefix of the replication slots the service creates on the source; it appends `<sync config id>_<hex>`.
              A prefix distinct from PowerSync Cloud's keeps both apart when they replicate the same database.
            '';
          };
          hostname = option {
            type = {types, ...}: types.nullOr types.str;
            default = null;
            example = "db.<project>.supabase.co";
            description = ''
              Source host, rendered as the connection's own `hostname` key, which wins over the DSN's host: the
              config then shows which endpoint is used without the secret. Null takes the host from the DSN.
            '';
          };
          port = option {
            type = {types, ...}: types.port;
            default = 5432;
            description = "Source port, rendered with `hostname` (ignored when `hostname` is null).";
          };
        };

        listen.port = option {
          type = {types, ...}: types.port;
          default = 8080;
          description = "Host port on 127.0.0.1 where the service's API is published (nginx proxies to it).";
        };

        metrics = {
          enable = option {
            type = {types, ...}: types.bool;
            default = true;
            description = "Expose the service's Prometheus metrics (`telemetry.prometheus_port`) on 127.0.0.1.";
          };
          port = option {
            type = {types, ...}: types.port;
            default = 9464;
            description = "Host port on 127.0.0.1 where the Prometheus metrics are published.";
          };
        };

        storage.proxyPort = option {
          type = {types, ...}: types.port;
          default = 5432;
          description = ''
            Port of the storage proxy on the v6egress gateway address: the container's only way into this host's
            PostgreSQL (see storage.nix for why a proxy). It may equal PostgreSQL's port as long as PostgreSQL
            listens on localhost only (the NixOS default); with `enableTCPIP` both would bind the gateway's port,
            and evaluation fails with a request to pick another one.
          '';
        };

        # The public vhost's name; it shapes no service config, but `cargo xtask verify` takes the URL it checks
        # (and sends a client token to) from here, never from what the host reports.
        nginx.domain = option {
          type = {types, ...}: types.nullOr types.str;
          default = null;
          example = "powersync.example.com";
          description = "Domain of the virtual host.";
        };

        settings = option {
          type = {
            types,
            yaml,
          }:
            types.submodule {freeformType = yaml;};
          default = {};
          exampleText = ''
            {
              storage.max_pool_size = 8;
              api.tokens = [ (powersync-nix.lib.env "PS_ADMIN_TOKEN") ];
            }
          '';
          description = ''
            Service config (RFC 42), merged key by key over the config this module generates from its other
            options: attribute sets merge, other values replace, `null` removes a key. The result is
            `finalSettings`, rendered to the YAML file the container reads. Secrets go in environment files and
            appear here only as `!env PS_…` references: `{ _env = "PS_NAME"; }` (the flake's `lib.env "PS_NAME"`).
            Mistakes the service would silently ignore (`api.port`, `slot_name`, …) and mistakes it would only
            report by exiting 150 at start (both `sync_rules` and `sync_config`, `sslmode: require`, …) fail
            evaluation.
          '';
        };
      };
    };

    v6egress = {
      optionPath = ["networking" "v6egress"];
      options = {
        interfaceName = option {
          type = {types, ...}: types.strMatching "[a-zA-Z0-9_-]{1,15}";
          default = "v6egress0";
          description = ''
            Name of the network's bridge interface. Fixed (not podman's `podmanN`) so firewall rules and sockets
            can name it. Linux limits interface names to 15 characters.
          '';
        };
        subnet4 = option {
          type = {types, ...}: types.str;
          default = "10.89.64.0/24";
          example = "172.31.250.0/24";
          description = "IPv4 subnet of the network, written with its network address. Pick one no other network on the host or LAN uses.";
        };
        subnet6 = option {
          type = {types, ...}: types.str;
          default = "fd70:7377:6e63:6567::/64";
          example = "fd12:3456:789a:1::/64";
          description = ''
            Unique local (fc00::/7) IPv6 subnet of the network, ending in `::`. Netavark masquerades it (NAT66) to
            the host's global address, so containers reach IPv6-only services without routed addresses.
          '';
        };
      };
    };
  };

  # The few nixpkgs types the table uses, as predicates with nixpkgs' meaning, so render refuses what the
  # module's types refuse (a port written as a string, a bad interface name) from the same declaration.
  pureTypes = let
    type = description: check: {inherit description check;};
  in {
    str = type "string" builtins.isString;
    bool = type "boolean" builtins.isBool;
    port = type "16 bit unsigned integer; between 0 and 65535 (both inclusive)" (value: builtins.isInt value && value >= 0 && value <= 65535);
    nullOr = inner: type "null or ${inner.description}" (value: value == null || inner.check value);
    addCheck = inner: extra: inner // {check = value: inner.check value && extra value;};
    strMatching = pattern: type "string matching the pattern ${pattern}" (value: builtins.isString value && builtins.match pattern value != null);
    # The freeform settings: any attribute set (the config contract checks its content).
    submodule = _: type "attribute set" isAttrs;
  };
  typeCheck = path: spec: value: let
    type = spec.type {
      types = pureTypes;
      yaml = null;
    };
  in
    if type.check value
    then value
    else throw "powersync-nix instance: `${path}` must be: ${type.description}; not ${builtins.toJSON value}";

  tree = mapAttrs (_: section: section.options) sections;
  mapOptions = f: node:
    mapAttrs (_: child:
      if isOption child
      then f child
      else mapOptions f child)
    node;
  optionDefaults = mapOptions (spec: spec.default) tree;

  # A typo in a data file would otherwise vanish silently here while the module refuses it: refuse it too.
  checked = path: node: value: let
    unknown = filter (name: !(node ? ${name})) (attrNames value);
  in
    if !(isAttrs value)
    then throw "powersync-nix instance: `${path}` must be an attribute set"
    else if unknown != []
    then throw "powersync-nix instance: unknown key(s) ${concatStringsSep ", " unknown} in `${path}`; known: ${concatStringsSep ", " (attrNames node)}"
    else
      strict (mapAttrs (name: child: let
        at = "${
          if path == ""
          then ""
          else "${path}."
        }${name}";
      in
        if isOption node.${name}
        then typeCheck at node.${name} child
        else checked at node.${name} child)
      value);
  # Every key checked now, not when (or if) the config reads it: render refuses what the module refuses even
  # where the option shapes no config (listen.port, interfaceName).
  strict = attrs: foldl' (checkedSoFar: name: builtins.seq attrs.${name} checkedSoFar) attrs (attrNames attrs);
  # Every option's value: the instance's where it sets one, else the default.
  complete = instance: let
    fill = node: value:
      mapAttrs (name: child:
        if isOption child
        then value.${name} or child.default
        else fill child (value.${name} or {}))
      node;
  in
    fill tree (checked "" tree instance);
in {
  # The option defaults of services.powersync and networking.v6egress, and of the operations options that
  # tests/alerts renders the alert rules with (operations.nix reads those from here).
  defaults =
    optionDefaults.powersync
    // {
      inherit (optionDefaults) v6egress;
      inherit servicePort;
      operations = {
        alerts.maxLagSeconds = 300;
        # Heals a half-open stall within 5 min: see the `watchdog.intervalSeconds` option (operations.nix).
        watchdog = {
          intervalSeconds = 20;
          maxInactiveSeconds = 100;
          maxRetainedBytes = 1024 * 1024 * 1024;
          growthChecks = 18;
          minRestartIntervalSeconds = 1800;
          # What bounds one run (its unit's TimeoutStartSec is derived from them): psql's connect, the
          # source's statement_timeout, and the JWKS check's own bounds below.
          connectTimeoutSeconds = 10;
          statementTimeoutSeconds = 20;
        };
        # The JWKS preflight's curl bounds, before a start and in every watchdog run.
        preflight.jwks = {
          connectTimeoutSeconds = 5;
          maxTimeSeconds = 15;
        };
      };
    };

  # The options of one section ("powersync" or "v6egress"), declared with nixpkgs' own functions:
  #   options.services.powersync = instanceOptions { inherit (lib) mkOption literalExpression types; yaml = …; } "powersync";
  instanceOptions = {
    mkOption,
    literalExpression,
    types,
    yaml ? null,
  }: section:
    mapOptions (spec:
      mkOption ({
          type = spec.type {inherit types yaml;};
          inherit (spec) default description;
        }
        // (
          if spec ? example
          then {inherit (spec) example;}
          else {}
        )
        // (
          if spec ? exampleText
          then {example = literalExpression spec.exampleText;}
          else {}
        )))
    tree.${section};

  # A host's evaluated options as an instance: exactly the table's options, read where the table declares them.
  instanceOf = config:
    mapAttrs (_: section: let
      at = foldl' (value: name: value.${name}) config section.optionPath;
      project = node: value:
        mapAttrs (name: child:
          if isOption child
          then value.${name}
          else project child value.${name})
        node;
    in
      project section.options at)
    sections;

  # A host's plain-data instance as NixOS config, each section at its options' path: the module a host imports
  # to run the instance `cargo xtask render` prints (hosts/<host>/modules/powersync.nix).
  instanceConfig = instance: let
    valid = checked "" tree instance;
    at = path: value:
      if path == []
      then value
      else {${head path} = at (tail path) value;};
    # Sections may share a prefix (services.…): merge the paths, never the values.
    merge = left: right:
      left
      // mapAttrs (name: value:
        if left ? ${name}
        then merge left.${name} value
        else value)
      right;
  in
    foldl' (config: name: merge config (at sections.${name}.optionPath valid.${name})) {}
    (attrNames valid);

  # The public URL nginx serves a host's instance at (`services.powersync.nginx.domain`), or null.
  publicUrl = instance: let
    inherit ((complete instance).powersync.nginx) domain;
  in
    if domain == null
    then null
    else "https://${domain}";

  instanceSettings = instance: let
    inherit (complete instance) powersync v6egress;
    inherit (powersync) replication auth metrics storage;
  in
    settings.mergeSettings (settings.generatedSettings {
      port = servicePort;
      inherit (replication) slotNamePrefix;
      sourceHostname = replication.hostname;
      sourcePort =
        if replication.hostname == null
        then null
        else replication.port;
      storageHostname = network.gateway4 v6egress.subnet4;
      storagePort = storage.proxyPort;
      inherit (auth) jwksUri audience;
      metrics = metrics.enable;
    })
    powersync.settings;
}

# A host's PowerSync instance as plain data (hosts/<host>/modules/powersync/instance.nix): the values of the
# services.powersync and networking.v6egress options that shape the service config. The module computes its
# config from exactly these values through `instanceSettings`, and `cargo xtask render` calls the same function
# without nixpkgs, so both produce the same bytes.
let
  inherit (builtins) attrNames concatStringsSep elem filter isAttrs;
  settings = import ./settings.nix;
  network = import ./network.nix;

  # The option defaults of services.powersync and networking.v6egress; the modules read them from here
  # (operations: tests/alerts renders the alert rules with them).
  defaults = {
    servicePort = 8080;
    replication = {
      slotNamePrefix = "powersync_selfhost_";
      hostname = null;
      port = 5432;
    };
    auth = {
      jwksUri = null;
      audience = "authenticated";
    };
    metrics = {
      enable = true;
      port = 9464;
    };
    storage.proxyPort = 5432;
    listen.port = 8080;
    operations = {
      alerts.maxLagSeconds = 300;
      # Heals a half-open stall within 5 min: see the `watchdog.intervalSeconds` option (operations.nix).
      watchdog = {
        intervalSeconds = 20;
        maxInactiveSeconds = 100;
        maxRetainedBytes = 1024 * 1024 * 1024;
        growthChecks = 18;
        minRestartIntervalSeconds = 1800;
      };
    };
    v6egress = {
      subnet4 = "10.89.64.0/24";
      subnet6 = "fd70:7377:6e63:6567::/64";
      interfaceName = "v6egress0";
    };
  };

  # A typo in a data file would otherwise vanish silently here while the module refuses it: refuse it too.
  known = {
    "" = ["powersync" "v6egress"];
    powersync = ["replication" "auth" "metrics" "storage" "listen" "nginx" "settings"];
    "powersync.replication" = attrNames defaults.replication;
    "powersync.auth" = attrNames defaults.auth;
    "powersync.metrics" = attrNames defaults.metrics;
    "powersync.storage" = attrNames defaults.storage;
    "powersync.listen" = attrNames defaults.listen;
    # The public vhost's name; it shapes no service config, but `cargo xtask verify` takes the URL it checks
    # (and sends a client token to) from here, never from what the host reports.
    "powersync.nginx" = ["domain"];
    v6egress = attrNames defaults.v6egress;
  };
  checked = path: value: let
    unknown = filter (name: !(elem name known.${path})) (attrNames value);
  in
    if !(isAttrs value)
    then throw "powersync-nix instance: `${path}` must be an attribute set"
    else if unknown != []
    then throw "powersync-nix instance: unknown key(s) ${concatStringsSep ", " unknown} in `${path}`; known: ${concatStringsSep ", " known.${path}}"
    else value;
  section = parent: name: value:
    checked "${
      if parent == ""
      then ""
      else "${parent}."
    }${name}" (value.${name} or {});
in {
  inherit defaults;

  # The public URL nginx serves a host's instance at (`services.powersync.nginx.domain`), or null.
  publicUrl = instance: let
    nginx = section "powersync" "nginx" (section "" "powersync" (checked "" instance));
  in
    if (nginx.domain or null) == null
    then null
    else "https://${nginx.domain}";

  instanceSettings = instance: let
    top = checked "" instance;
    powersync = section "" "powersync" top;
    pick = name: defaults.${name} // section "powersync" name powersync;
    replication = pick "replication";
    auth = pick "auth";
    metrics = pick "metrics";
    storage = pick "storage";
    v6egress = defaults.v6egress // section "" "v6egress" top;
  in
    settings.mergeSettings (settings.generatedSettings {
      port = defaults.servicePort;
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
    }) (powersync.settings or {});
}

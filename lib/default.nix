# powersync-nix's pure helpers: builtins only (no nixpkgs, no lib), so `nix eval .#lib.<name>` and the unit
# tests under tests/unit/ run offline. The NixOS modules call these same functions, so what `lib` renders is
# byte for byte what the container mounts.
let
  yaml = import ./yaml.nix;
  settings = import ./settings.nix;
  contract = import ./contract.nix;
  image = import ./image.nix;
  network = import ./network.nix;
  instance = import ./instance.nix;
  alerts = import ./alerts.nix;
  topology = import ./topology.nix;
  storage = import ./storage.nix;
  watchdog = import ./watchdog.nix;
  systemd = import ./systemd.nix;
  nginx = import ./nginx.nix;
  script = import ./script.nix;
  nftables = import ./nftables.nix;
in {
  inherit (yaml) toYAML env envNumber envBoolean isEnv;
  inherit (settings) generatedSettings mergeSettings renderConfig configPath syncConfigPath prometheusPort;
  inherit (contract) checkSettings;
  inherit (image) imagePin;
  inherit (network) gateway4 gateway6;
  inherit (instance) defaults instanceOptions instanceOf instanceConfig instanceSettings publicUrl;
  inherit (alerts) alertRules scrapeJob;
  inherit (storage) remoteStorageSettings storageConnectionsPerProcess storageProxyLimit proxydConnectionsMaxFor;
  inherit (watchdog) watchdogTlsProblems watchdogCommands;
  inherit (script) scriptText shellApplication;
  # Tables of our own beside the host's firewall (the v6egress guard, the vhost's connection cap).
  nftables = {inherit (nftables) ownTable loaderServiceConfig;};
  inherit (systemd) escapeSystemdExecArg escapeSystemdExecArgs escapeSystemdEnvironmentValue isHttpUrl;
  # The public vhost's directives (the module's services.nginx values).
  nginx = {inherit (nginx) defaults frontend streamCapacity workerConnectionsNeeded clientTimeoutSeconds retryAfterSeconds;};
  inherit (topology) runners replicatingRunner tearsDown decommissionedFile haltedWhenDecommissioned compaction compactUnit servingRunners containerSpec compactArguments checkTopology heapMiB nodeOptions;
  # The config file a host's instance (hosts/<host>/modules/powersync/instance.nix) runs with.
  renderInstance = i: settings.renderConfig (instance.instanceSettings i);
}

# Which PowerSync containers a host runs, on which host ports, and what nginx (nginx.nix) and the compact
# job need to know of them. Builtins only: the module and the unit tests call the same functions.
#
# PowerSync's production guidance (self-hosting, lifecycle and maintenance): one replication runner
# (`start -r sync`) and two or more API runners (`start -r api`), each with about 1 GB and Node's heap at
# ~80 % of it; at most ~100 concurrent connections per API runner (the service refuses beyond 200); a daily
# `compact`. The default stays one unified container, `podman-powersync.service`.
let
  inherit (builtins) attrNames concatLists filter genList length sort lessThan toString;
  inherit (import ./settings.nix) configPath syncConfigPath;

  # Below this heap a fresh process (~360 MB RSS) has nothing left for streams and checkpoints.
  minHeapMiB = 384;
in rec {
  # Node's old generation at ~80 % of the container's memory; the rest is young generation, buffers and
  # native memory.
  heapMiB = memoryMiB: memoryMiB * 4 / 5;
  nodeOptions = memoryMiB: "--max-old-space-size=${toString (heapMiB memoryMiB)}";

  # The runners, in start order, each a record that everything else reads: containers, compaction, teardown,
  # the watchdog, rolling restarts, nginx and verify never rebuild it or test a role by name.
  #   name         the container's name; serviceName its systemd service (oci-containers' `serviceName`),
  #                unit the unit that service is
  #   role         "unified", "sync" or "api": the Prometheus label the alert rules select on
  #   replicates   holds the replication slot (the DSN preflight, the watchdog and teardown are its)
  #   serves       answers clients over HTTP (nginx's upstream, the JWKS preflight, the rolling restart)
  #   command      the image's command; apiPort (null unless it serves), metricsPort: host ports
  # Every runner reads the same rendered config, so inside each container the API listens on the config's
  # `port` and metrics on its `telemetry.prometheus_port`; only the host ports differ. The first API runner
  # keeps the unified container's host ports (listen.port, and metrics.port + 1 for its metrics), and the
  # sync runner keeps metrics.port, which carries the lag gauge in both modes.
  #   mode: "unified", "split", or "api" (API runners only: a further host on storage shared with the one
  #   host that replicates); apiRunners: how many API runners in split and api modes.
  runners = {
    mode,
    apiRunners,
    listenPort,
    metricsPort,
  }: let
    # Units are named after their containers, as oci-containers would name them (podman-<name>.service).
    runner = fields: let
      serviceName = "podman-${fields.name}";
    in
      fields
      // {
        inherit serviceName;
        unit = "${serviceName}.service";
        serves = fields.apiPort != null;
      };
    api = first:
      genList (index:
        runner {
          name = "powersync-api-${toString (index + 1)}";
          role = "api";
          replicates = false;
          command = ["start" "-r" "api"];
          apiPort = listenPort + index;
          metricsPort = first + index;
        })
      apiRunners;
  in
    if mode == "unified"
    then [
      (runner {
        name = "powersync";
        role = "unified";
        replicates = true;
        command = [];
        apiPort = listenPort;
        inherit metricsPort;
      })
    ]
    else if mode == "split"
    then
      [
        (runner {
          name = "powersync-sync";
          role = "sync";
          replicates = true;
          command = ["start" "-r" "sync"];
          # The sync runner opens no HTTP port; its probes are files in <cwd>/.probes.
          apiPort = null;
          inherit metricsPort;
        })
      ]
      ++ api (metricsPort + 1)
    else if mode == "api"
    then api metricsPort
    else throw "services.powersync.runners.mode must be \"unified\", \"split\" or \"api\", not ${toString mode}";

  # The runner that replicates and so holds the slot: the one the slot watchdog restarts (null on an
  # API-only host).
  replicatingRunner = rs: let
    replicating = filter (r: r.replicates) rs;
  in
    if replicating == []
    then null
    else builtins.head replicating;
  # Only the host that replicates may tear down: the teardown drops the slots and wipes the bucket storage,
  # which on an API-only host are another host's slot and the fleet's shared storage.
  tearsDown = rs: replicatingRunner rs != null;

  # What powersync-teardown leaves behind. Every unit that could bring a runner back checks it, so neither the
  # daily compaction, the watchdog, a rolling restart, a deploy nor a reboot undoes a decommission; deleting
  # the file undoes it (docs/runbook.md, "Decommission").
  decommissionedFile = "/var/lib/powersync/decommissioned";
  # The [Unit] settings of those units: a start is skipped (not failed) while the file exists.
  haltedWhenDecommissioned = {ConditionPathExists = "!${decommissionedFile}";};

  # The daily compaction's names: its container, script, unit and timer are `name`; `unit` is what teardown
  # stops and the alerts point at; `textfile` its outcome for Prometheus, beside the watchdog's.
  compaction = rec {
    name = "powersync-compact";
    unit = "${name}.service";
    textfile = "${name}.prom";
  };

  # The daily compaction's unit. It orders after the runners, whose units pull or load the image, but never
  # wants or requires them: starting them would undo a teardown (a new slot on the source, a full resync).
  compactUnit = {
    runners,
    needs,
  }: {
    after = needs ++ map (r: r.unit) runners;
    requires = needs;
    unitConfig = haltedWhenDecommissioned;
  };

  # The runners that serve clients: nginx's upstream.
  servingRunners = filter (r: r.serves);

  # What every PowerSync container of a host shares, the runners' and the daily compaction's alike: the
  # image's own user (stated so a changed image default cannot silently run us as root), the v6egress
  # network, the secrets, the config mounts, a memory limit with Node's heap at 80 % of it, and the hardening.
  # container.nix turns it into oci-containers entries, `compactArguments` into a `podman run`.
  containerSpec = {
    memoryMiB,
    environmentFiles,
    configFile,
    syncConfig,
  }:
    withMemory memoryMiB {
      user = "901:901";
      network = "v6egress";
      environment.POWERSYNC_CONFIG_PATH = configPath;
      inherit environmentFiles;
      volumes = [
        "${configFile}:${configPath}:ro"
        "${syncConfig}:${syncConfigPath}:ro"
      ];
      # Hardening: nothing in the image is written at run time except tmpfs, each noexec and size-limited.
      # --read-write-tmpfs=false drops podman's default writable /run, /tmp and /var/tmp under --read-only,
      # which are neither (and leaves /dev, /dev/shm read-only).
      readOnlyRoot = [
        "--read-only"
        "--read-write-tmpfs=false"
        "--tmpfs=/tmp:rw,nosuid,nodev,noexec,size=64m,mode=1777"
      ];
      privileges = [
        "--cap-drop=all"
        "--security-opt=no-new-privileges"
      ];
    };
  # The spec with another memory limit (the compaction has its own), Node's heap following it.
  withMemory = memoryMiB: spec:
    spec
    // {
      environment = spec.environment // {NODE_OPTIONS = nodeOptions memoryMiB;};
      memoryLimit = [
        "--memory=${toString memoryMiB}m"
        # Equal to --memory: no swap on top, so the limit is the limit.
        "--memory-swap=${toString memoryMiB}m"
      ];
    };

  # `podman run` arguments (after `run`) of the daily compaction: a one-off container of the service's image
  # with the runners' `containerSpec` but its own memory limit, removed afterwards. The command exits when done.
  compactArguments = {
    image,
    runnerSpec,
    memoryMiB,
  }: let
    container = withMemory memoryMiB runnerSpec;
  in
    [
      "--rm"
      "--name=${compaction.name}"
      "--user=${container.user}"
      "--network=${container.network}"
    ]
    ++ container.memoryLimit
    ++ container.readOnlyRoot
    ++ container.privileges
    ++ ["--pull=never"]
    ++ map (name: "--env=${name}=${container.environment.${name}}") (sort lessThan (attrNames container.environment))
    ++ map (file: "--env-file=${file}") container.environmentFiles
    ++ map (volume: "--volume=${volume}") container.volumes
    ++ [image "compact"];

  # What cannot work, as actionable messages (empty when the topology is sound).
  checkTopology = {
    mode,
    apiRunners,
    listenPort,
    metricsPort,
    metricsEnabled ? true,
    memoryMiB,
    compactMemoryMiB ? null,
  }: let
    rs = runners {inherit mode apiRunners listenPort metricsPort;};
    apiPorts = filter (p: p != null) (map (r: r.apiPort) rs);
    metricsPorts =
      if metricsEnabled
      then map (r: r.metricsPort) rs
      else [];
    ports = apiPorts ++ metricsPorts;
    clashes = filter (p: length (filter (q: q == p) ports) > 1) ports;
    tooHigh = filter (p: p > 65535) ports;
    memoryProblem = what: mib:
      if heapMiB mib < minHeapMiB
      then ["${what} of ${toString mib} MiB gives Node a heap of ${toString (heapMiB mib)} MiB (NODE_OPTIONS=${nodeOptions mib}); a fresh PowerSync process alone takes ~360 MB. Give it at least ${toString (minHeapMiB * 5 / 4)} MiB (PowerSync suggests about 1024)."]
      else [];
  in
    concatLists [
      (
        if mode != "unified" && apiRunners < 1
        then ["services.powersync.runners.apiRunners is ${toString apiRunners}: ${mode} mode needs at least one API runner to serve clients (PowerSync suggests two or more)."]
        else []
      )
      (
        if clashes != []
        then ["services.powersync runners would publish port ${toString (builtins.head clashes)} twice on 127.0.0.1: API runners take listen.port and the next ${toString (apiRunners - 1)}, metrics take metrics.port and the next ${toString (length rs - 1)}; move listen.port or metrics.port apart."]
        else []
      )
      (
        if tooHigh != []
        then ["services.powersync runners would need host port ${toString (builtins.head tooHigh)}, above 65535: lower listen.port or metrics.port."]
        else []
      )
      (memoryProblem "services.powersync.container.memoryMiB" memoryMiB)
      (
        if compactMemoryMiB == null
        then []
        else memoryProblem "services.powersync.compact.memoryMiB" compactMemoryMiB
      )
    ];
}

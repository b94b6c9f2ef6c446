# Which PowerSync containers a host runs, on which host ports, and what nginx (nginx.nix) and the compact
# job need to know of them. Builtins only: the module and the unit tests call the same functions.
#
# PowerSync's production guidance (self-hosting, lifecycle and maintenance): one replication runner
# (`start -r sync`) and two or more API runners (`start -r api`), each with about 1 GB and Node's heap at
# ~80 % of it; at most ~100 concurrent connections per API runner (the service refuses beyond 200); a daily
# `compact`. The default stays one unified container, `podman-powersync.service`.
let
  inherit (builtins) concatLists filter genList length sort lessThan toString;

  # Below this heap a fresh process (~360 MB RSS) has nothing left for streams and checkpoints.
  minHeapMiB = 384;
in rec {
  # Node's old generation at ~80 % of the container's memory; the rest is young generation, buffers and
  # native memory.
  heapMiB = memoryMiB: memoryMiB * 4 / 5;
  nodeOptions = memoryMiB: "--max-old-space-size=${toString (heapMiB memoryMiB)}";

  # The runners, in start order. Every runner reads the same rendered config, so inside each container the API
  # listens on the config's `port` and metrics on its `telemetry.prometheus_port`; only the host ports differ.
  # The first API runner keeps the unified container's host ports (listen.port, and metrics.port + 1 for its
  # metrics), and the sync runner keeps metrics.port, which carries the lag gauge in both modes.
  #   mode: "unified", "split", or "api" (API runners only: a further host on storage shared with the one
  #   host that replicates); apiRunners: how many API runners in split and api modes.
  runners = {
    mode,
    apiRunners,
    listenPort,
    metricsPort,
  }: let
    api = first:
      genList (index: {
        name = "powersync-api-${toString (index + 1)}";
        role = "api";
        command = ["start" "-r" "api"];
        apiPort = listenPort + index;
        metricsPort = first + index;
      })
      apiRunners;
  in
    if mode == "unified"
    then [
      {
        name = "powersync";
        role = "unified";
        command = [];
        apiPort = listenPort;
        inherit metricsPort;
      }
    ]
    else if mode == "split"
    then
      [
        {
          name = "powersync-sync";
          role = "sync";
          command = ["start" "-r" "sync"];
          # The sync runner opens no HTTP port; its probes are files in <cwd>/.probes.
          apiPort = null;
          inherit metricsPort;
        }
      ]
      ++ api (metricsPort + 1)
    else if mode == "api"
    then api metricsPort
    else throw "services.powersync.runners.mode must be \"unified\", \"split\" or \"api\", not ${toString mode}";

  # Units are named after their containers by oci-containers (podman-<name>.service).
  unitOf = runner: "podman-${runner.name}.service";

  # The runner that replicates and so holds the slot: the one the slot watchdog restarts (null on an
  # API-only host).
  replicatingRunner = rs: let
    replicating = filter (r: r.role != "api") rs;
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

  # The daily compaction's unit. It orders after the runners, whose units pull or load the image, but never
  # wants or requires them: starting them would undo a teardown (a new slot on the source, a full resync).
  compactUnit = {
    runners,
    needs,
  }: {
    after = needs ++ map unitOf runners;
    requires = needs;
    unitConfig = haltedWhenDecommissioned;
  };

  # The runners that serve clients: nginx's upstream.
  servingRunners = filter (r: r.apiPort != null);

  # `podman run` arguments (after `run`) of the daily compaction: a one-off container with the service's
  # image, config, env files and network, memory-limited, removed afterwards. The command exits when done.
  compactArguments = {
    image,
    user,
    network,
    memoryMiB,
    environmentFiles,
    environment,
    volumes,
  }:
    [
      "--rm"
      "--name=powersync-compact"
      "--user=${user}"
      "--network=${network}"
      "--memory=${toString memoryMiB}m"
      "--memory-swap=${toString memoryMiB}m"
      "--read-only"
      "--read-write-tmpfs=false"
      "--tmpfs=/tmp:rw,nosuid,nodev,noexec,size=64m,mode=1777"
      "--cap-drop=all"
      "--security-opt=no-new-privileges"
      "--pull=never"
      "--env=NODE_OPTIONS=${nodeOptions memoryMiB}"
    ]
    ++ map (name: "--env=${name}=${environment.${name}}") (sort lessThan (builtins.attrNames environment))
    ++ map (file: "--env-file=${file}") environmentFiles
    ++ map (volume: "--volume=${volume}") volumes
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

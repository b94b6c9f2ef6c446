# lib/topology.nix: the runners of each mode, their ports, the compact job, and the topologies the module
# refuses.
{lib}: let
  split = n:
    lib.runners {
      mode = "split";
      apiRunners = n;
      listenPort = 8080;
      metricsPort = 9464;
    };
  unified = lib.runners {
    mode = "unified";
    apiRunners = 2;
    listenPort = 8080;
    metricsPort = 9464;
  };
  check = args:
    lib.checkTopology ({
        mode = "split";
        apiRunners = 2;
        listenPort = 8080;
        metricsPort = 9464;
        memoryMiB = 1024;
      }
      // args);
  mentions = needle: messages: builtins.any (m: builtins.match ".*${needle}.*" m != null) messages;
in {
  testTopologyUnifiedIsOneContainerWithTheHistoricUnit = {
    expr = map (r: r.unit) unified;
    expected = ["podman-powersync.service"];
  };
  testTopologyUnifiedRunsTheImageDefaultCommand = {
    expr = (builtins.head unified).command;
    expected = [];
  };
  testTopologySplitUnits = {
    expr = map (r: r.unit) (split 3);
    expected = [
      "podman-powersync-sync.service"
      "podman-powersync-api-1.service"
      "podman-powersync-api-2.service"
      "podman-powersync-api-3.service"
    ];
  };
  testTopologySplitCommands = {
    expr = map (r: r.command) (split 1);
    expected = [["start" "-r" "sync"] ["start" "-r" "api"]];
  };
  testTopologySplitHostPorts = {
    expr = map (r: [r.apiPort r.metricsPort]) (split 2);
    expected = [[null 9464] [8080 9465] [8081 9466]];
  };
  testTopologyTheSyncRunnerHoldsTheSlot = {
    expr = (lib.replicatingRunner (split 2)).name;
    expected = "powersync-sync";
  };
  testTopologyTheUnifiedContainerHoldsTheSlot = {
    expr = (lib.replicatingRunner unified).name;
    expected = "powersync";
  };
  testTopologyApiOnlyHostsRunNoSyncRunner = {
    expr = map (r: [r.name r.apiPort r.metricsPort]) (lib.runners {
      mode = "api";
      apiRunners = 2;
      listenPort = 8080;
      metricsPort = 9464;
    });
    expected = [["powersync-api-1" 8080 9464] ["powersync-api-2" 8081 9465]];
  };
  testTopologyApiOnlyHostsHoldNoSlot = {
    expr = lib.replicatingRunner (lib.runners {
      mode = "api";
      apiRunners = 1;
      listenPort = 8080;
      metricsPort = 9464;
    });
    expected = null;
  };
  # Teardown drops slots and wipes storage: on an API-only host both are another host's.
  testTopologyOnlyAReplicatingHostTearsDown = {
    expr = map lib.tearsDown [
      unified
      (split 2)
      (lib.runners {
        mode = "api";
        apiRunners = 2;
        listenPort = 8080;
        metricsPort = 9464;
      })
    ];
    expected = [true true false];
  };
  # The compaction must never start a runner: after a teardown that would create a new slot on the source.
  testTopologyCompactionStartsNoRunner = {
    expr = let
      unit = lib.compactUnit {
        runners = split 2;
        needs = ["init-v6egress-network.service" "postgresql-setup.service"];
      };
      pulls = builtins.filter (key: builtins.elem key ["wants" "requires" "requisite" "bindsTo" "upholds" "partOf"]) (builtins.attrNames unit);
    in
      builtins.concatMap (key: builtins.filter (u: builtins.match "podman-.*" u != null) unit.${key}) pulls;
    expected = [];
  };
  testTopologyCompactionStillOrdersAfterTheRunners = {
    expr =
      (lib.compactUnit {
        runners = unified;
        needs = ["postgresql-setup.service"];
      })
      .after;
    expected = ["postgresql-setup.service" "podman-powersync.service"];
  };
  testTopologyCompactionIsHaltedByTheTeardownMark = {
    expr =
      (lib.compactUnit {
        runners = unified;
        needs = [];
      })
      .unitConfig
      .ConditionPathExists;
    expected = "!/var/lib/powersync/decommissioned";
  };
  testTopologyRefusesAnApiOnlyHostWithoutRunners = {
    expr = mentions "api mode needs at least one API runner" (check {
      mode = "api";
      apiRunners = 0;
    });
    expected = true;
  };
  testTopologyNodeOptionsAtFourFifths = {
    expr = lib.nodeOptions 1024;
    expected = "--max-old-space-size=819";
  };
  testTopologyCompactArguments = {
    expr = lib.compactArguments {
      image = "docker.io/journeyapps/powersync-service:1.26.1";
      memoryMiB = 512;
      runnerSpec = lib.containerSpec {
        memoryMiB = 1024;
        environmentFiles = ["/run/secrets/source.env" "/run/powersync/storage.env"];
        configFile = "/nix/store/x-powersync-service.yaml";
        syncConfig = "/nix/store/y-sync-config.yaml";
      };
    };
    expected = [
      "--rm"
      "--name=powersync-compact"
      "--user=901:901"
      "--network=v6egress"
      "--memory=512m"
      "--memory-swap=512m"
      "--read-only"
      "--read-write-tmpfs=false"
      "--tmpfs=/tmp:rw,nosuid,nodev,noexec,size=64m,mode=1777"
      "--cap-drop=all"
      "--security-opt=no-new-privileges"
      "--pull=never"
      "--env=NODE_OPTIONS=--max-old-space-size=409"
      "--env=POWERSYNC_CONFIG_PATH=/config/service.yaml"
      "--env-file=/run/secrets/source.env"
      "--env-file=/run/powersync/storage.env"
      "--volume=/nix/store/x-powersync-service.yaml:/config/service.yaml:ro"
      "--volume=/nix/store/y-sync-config.yaml:/config/sync-config.yaml:ro"
      "docker.io/journeyapps/powersync-service:1.26.1"
      "compact"
    ];
  };
  # The runners and the compaction share one spec: the same user, network, secrets, mounts and hardening.
  testTopologyContainerSpecIsTheRunnersAndTheCompactions = {
    expr = let
      spec = lib.containerSpec {
        memoryMiB = 1024;
        environmentFiles = ["/run/secrets/source.env"];
        configFile = "/c";
        syncConfig = "/s";
      };
    in {
      inherit (spec) user network environment volumes;
      hardening = spec.readOnlyRoot ++ spec.memoryLimit ++ spec.privileges;
    };
    expected = {
      user = "901:901";
      network = "v6egress";
      environment = {
        POWERSYNC_CONFIG_PATH = "/config/service.yaml";
        NODE_OPTIONS = "--max-old-space-size=819";
      };
      volumes = ["/c:/config/service.yaml:ro" "/s:/config/sync-config.yaml:ro"];
      hardening = [
        "--read-only"
        "--read-write-tmpfs=false"
        "--tmpfs=/tmp:rw,nosuid,nodev,noexec,size=64m,mode=1777"
        "--memory=1024m"
        "--memory-swap=1024m"
        "--cap-drop=all"
        "--security-opt=no-new-privileges"
      ];
    };
  };
  # Each runner says what it does; nothing downstream infers it from its name, role or ports.
  testTopologyRunnersCarryTheirRole = {
    expr = map (r: [r.name r.serviceName r.replicates r.serves]) (unified ++ split 1);
    expected = [
      ["powersync" "podman-powersync" true true]
      ["powersync-sync" "podman-powersync-sync" true false]
      ["powersync-api-1" "podman-powersync-api-1" false true]
    ];
  };
  testTopologyServingRunnersAreTheOnesThatServe = {
    expr = map (r: r.name) (lib.servingRunners (split 2));
    expected = ["powersync-api-1" "powersync-api-2"];
  };
  testTopologySoundSplitHasNoProblems = {
    expr = check {};
    expected = [];
  };
  testTopologySoundUnifiedHasNoProblems = {
    expr = check {mode = "unified";};
    expected = [];
  };
  testTopologyRefusesZeroApiRunners = {
    expr = mentions "at least one API runner" (check {apiRunners = 0;});
    expected = true;
  };
  testTopologyRefusesApiPortsRunningIntoMetricsPorts = {
    expr = mentions "port 9464 twice" (check {
      apiRunners = 2;
      listenPort = 9463;
    });
    expected = true;
  };
  testTopologyIgnoresMetricsPortsWhenMetricsAreOff = {
    expr = check {
      listenPort = 9463;
      metricsEnabled = false;
    };
    expected = [];
  };
  testTopologyRefusesPortsAbove65535 = {
    expr = mentions "above 65535" (check {listenPort = 65535;});
    expected = true;
  };
  testTopologyRefusesAHeapTooSmallForAFreshProcess = {
    expr = mentions "heap of 307 MiB" (check {memoryMiB = 384;});
    expected = true;
  };
  testTopologyRefusesATooSmallCompactContainer = {
    expr = mentions "compact.memoryMiB" (check {compactMemoryMiB = 256;});
    expected = true;
  };
  testTopologyRefusesAnUnknownMode = {
    expr = lib.runners {
      mode = "sharded";
      apiRunners = 1;
      listenPort = 8080;
      metricsPort = 9464;
    };
    expectThrow = true;
  };
}

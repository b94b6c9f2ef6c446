# lib.checkSettings: each mistake in powersync-facts' "Mistakes the service does not catch" is refused with a
# message that names the key and the fix, and a good config passes untouched.
{lib}: let
  inherit (import ../../lib/contract.nix) exposedLocalHbaLines remoteStorageErrors storageProxyCollides;
  own = ["local" "powersync_storage" "powersync_storage" "scram-sha-256"];
  exposed = authentication: exposedLocalHbaLines {inherit authentication own;};
  # What services.postgresql.authentication holds with the module's line and NixOS's defaults.
  nixosDefaults = ''
    local powersync_storage powersync_storage scram-sha-256
    local all postgres peer map=postgres
    local all all peer
    host  all all 127.0.0.1/32 md5
    host  all all ::1/128 md5
  '';
  collides = args:
    storageProxyCollides ({
        postgresPort = 5432;
        proxyAddress = "10.89.64.1";
        proxyPort = 5432;
      }
      // args);
  good = lib.generatedSettings {
    port = 8080;
    slotNamePrefix = "powersync_selfhost_";
    storageHostname = "10.89.64.1";
    storagePort = 5432;
    jwksUri = "https://example.supabase.co/auth/v1/.well-known/jwks.json";
    audience = "authenticated";
  };
  with' = overrides: lib.mergeSettings good overrides;
  # A host on shared storage as the module renders it: storage.remote's keys over the generated storage
  # block, then the operator's settings.storage over those.
  remote = storage:
    with' {
      storage =
        lib.remoteStorageSettings {
          hostname = "storage.internal.example.com";
          port = 5432;
          database = "powersync_storage";
          username = "powersync_storage";
          sslmode = "verify-full";
        }
        // storage;
    };
  source = overrides: with' {replication.connections = [((builtins.head good.replication.connections) // overrides)];};

  # The one error a config produces, reduced to whether it mentions `phrase` (a regex); a config that has no
  # error or several gives the list itself, so a failure shows what came out.
  oneError = phrase: settings: let
    inherit (lib.checkSettings settings) errors;
  in
    if builtins.length errors == 1 && builtins.match ".*${phrase}.*" (builtins.head errors) != null
    then "refused"
    else errors;
  oneWarning = phrase: settings: let
    inherit (lib.checkSettings settings) errors warnings;
  in
    if errors == [] && builtins.length warnings == 1 && builtins.match ".*${phrase}.*" (builtins.head warnings) != null
    then "warned"
    else {inherit errors warnings;};
in {
  testContractGoodConfigPasses = {
    expr = lib.checkSettings good;
    expected = {
      errors = [];
      warnings = [];
    };
  };
  testContractApiPortIsRefused = {
    expr = oneError "api.port is ignored.*top-level `port`" (with' {api.port = 9000;});
    expected = "refused";
  };
  testContractApiTokensAloneAreFine = {
    expr = (lib.checkSettings (with' {api.tokens = [(lib.env "PS_API_TOKEN")];})).errors;
    expected = [];
  };
  testContractSlotNameIsRefused = {
    expr = oneError "slot_name is not a PowerSync option.*slot_name_prefix" (source {slot_name = "mine";});
    expected = "refused";
  };
  testContractSlotNameOnStorageIsRefusedToo = {
    expr = oneError "^storage.slot_name" (with' {storage.slot_name = "mine";});
    expected = "refused";
  };
  testContractSyncRulesAndSyncConfigTogetherAreRefused = {
    expr = oneError "Both sync_rules and sync_config" (with' {sync_rules.path = "/config/rules.yaml";});
    expected = "refused";
  };
  testContractSyncRulesAloneIsAWarning = {
    expr = oneWarning "deprecated name of sync_config" (with' {
      sync_config = null;
      sync_rules.path = "/config/rules.yaml";
    });
    expected = "warned";
  };
  testContractNoSyncConfigIsRefused = {
    expr = oneError "No sync_config" (with' {sync_config = null;});
    expected = "refused";
  };
  testContractSslmodeRequireIsRefused = {
    expr = oneError "sslmode = \"require\" is refused" (source {sslmode = "require";});
    expected = "refused";
  };
  testContractVerifyCaWithoutCacertIsRefused = {
    expr = oneError "verify-ca needs `cacert`" (source {sslmode = "verify-ca";});
    expected = "refused";
  };
  testContractVerifyCaWithCacertPasses = {
    expr =
      (lib.checkSettings (source {
        sslmode = "verify-ca";
        cacert = "-----BEGIN CERTIFICATE-----";
      }))
      .errors;
    expected = [];
  };
  testContractUpperCaseSlotPrefixIsRefused = {
    expr = oneError "not a valid PostgreSQL slot name prefix" (source {slot_name_prefix = "PowerSync_";});
    expected = "refused";
  };
  testContractDashInSlotPrefixIsRefused = {
    expr = oneError "not a valid PostgreSQL slot name prefix" (source {slot_name_prefix = "power-sync_";});
    expected = "refused";
  };
  testContractOverlongSlotPrefixIsRefused = {
    expr = oneError "at most 52 characters" (source {slot_name_prefix = builtins.concatStringsSep "" (builtins.genList (_: "a") 53);});
    expected = "refused";
  };
  testContractLongestSlotPrefixPasses = {
    expr = (lib.checkSettings (source {slot_name_prefix = builtins.concatStringsSep "" (builtins.genList (_: "a") 52);})).errors;
    expected = [];
  };
  testContractEnvWithoutPsPrefixIsRefused = {
    expr = oneError "`!env SOURCE_DSN` does not start with PS_" (source {uri = lib.env "SOURCE_DSN";});
    expected = "refused";
  };
  testContractEnvWithAnUnknownConversionIsRefused = {
    expr = oneError "unknown conversion" (with' {storage.max_pool_size = lib.env "PS_POOL::integer";});
    expected = "refused";
  };
  testContractEnvNumberPasses = {
    expr = (lib.checkSettings (with' {storage.max_pool_size = lib.envNumber "PS_POOL";})).errors;
    expected = [];
  };
  testContractNoReplicationConnectionIsRefused = {
    expr = oneError "No replication connection" (with' {replication = null;});
    expected = "refused";
  };
  testContractMissingStorageIsRefused = {
    expr = oneError "No storage block" (with' {storage = null;});
    expected = "refused";
  };
  testContractStorageTypeTypoIsRefused = {
    expr = oneError "storage.type = \"postgres\" is not a storage" (with' {storage.type = "postgres";});
    expected = "refused";
  };
  testContractMissingTelemetryFlagIsRefused = {
    expr = oneError "telemetry.disable_telemetry_sharing is not set" (with' {telemetry.disable_telemetry_sharing = null;});
    expected = "refused";
  };
  testContractUnknownTopLevelKeyIsAWarning = {
    expr = oneWarning "Unknown top-level key `replications`" (with' {replications = {};});
    expected = "warned";
  };
  testContractPortBelow1024IsRefused = {
    expr = oneError "cannot bind ports below 1024" (with' {port = 80;});
    expected = "refused";
  };
  testContractPortAsStringIsRefused = {
    expr = oneError "is not a TCP port number" (with' {port = "8080";});
    expected = "refused";
  };
  testContractUnixSocketStorageIsRefused = {
    expr = oneError "Unix socket directory.*TCP only" (with' {storage.hostname = "/run/postgresql";});
    expected = "refused";
  };
  testContractUnixSocketUriIsRefused = {
    expr = oneError "names a Unix socket" (source {uri = "postgresql:///postgres?host=/run/postgresql";});
    expected = "refused";
  };
  testContractLiteralPasswordIsRefused = {
    expr = oneError "password is a literal.*Nix store" (with' {storage.password = "hunter2";});
    expected = "refused";
  };
  testContractLiteralDsnWithPasswordIsRefused = {
    expr = oneError "uri contains a password" (source {uri = "postgresql://u:secret@db.example.supabase.co:5432/postgres";});
    expected = "refused";
  };
  testContractSslmodeInALiteralDsnIsAWarning = {
    expr = oneWarning "ignores.*`sslmode` key" (source {uri = "postgresql://db.example.supabase.co:5432/postgres?sslmode=require";});
    expected = "warned";
  };
  testContractHealthcheckProbesWithoutHttpAreRefused = {
    expr = oneError "without use_http = true" (with' {healthcheck.probes.use_filesystem = true;});
    expected = "refused";
  };
  testContractHealthcheckProbesWithHttpPass = {
    expr = (lib.checkSettings (with' {healthcheck.probes.use_http = true;})).errors;
    expected = [];
  };
  testContractSeveralMistakesAreAllReported = {
    expr =
      builtins.length
      (lib.checkSettings (with' {
        api.port = 9000;
        port = 80;
        storage.password = "x";
      }))
      .errors;
    expected = 3;
  };

  testContractHbaDefaultsAndOurLineAreFine = {
    expr = exposed nixosDefaults;
    expected = [];
  };
  testContractHbaLocalScramForAllIsRefused = {
    expr = exposed "local all all scram-sha-256\n${nixosDefaults}";
    expected = ["local all all scram-sha-256"];
  };
  testContractHbaEveryPasswordAndTrustMethodIsRefused = {
    expr = map (method: exposed "local all all ${method}") ["trust" "password" "md5" "scram-sha-256" "pam" "ldap ldapserver=x" "radius" "bsd"];
    expected = map (line: [line]) ["local all all trust" "local all all password" "local all all md5" "local all all scram-sha-256" "local all all pam" "local all all ldap ldapserver=x" "local all all radius" "local all all bsd"];
  };
  testContractHbaPeerIdentRejectPass = {
    expr = exposed "local all all peer\nlocal all all ident\nlocal all all reject\nlocal sameuser all peer map=x";
    expected = [];
  };
  testContractHbaHostLinesAreNotLocal = {
    expr = exposed "host all all 0.0.0.0/0 trust\nhostssl all all ::/0 md5";
    expected = [];
  };
  testContractHbaCommentsAreIgnored = {
    expr = exposed "# local all all trust\n   # local all all md5\nlocal all all peer # was trust";
    expected = [];
  };
  testContractHbaTrailingCommentKeepsTheLine = {
    expr = exposed "local all all md5 # legacy app";
    expected = ["local all all md5 # legacy app"];
  };
  testContractHbaQuotedMethodIsStillTrust = {
    expr = exposed "local \"all\" all \"trust\"";
    expected = ["local \"all\" all \"trust\""];
  };
  testContractHbaQuotedHashIsNotAComment = {
    expr = exposed "local \"db#1\" all md5";
    expected = ["local \"db#1\" all md5"];
  };
  testContractHbaOurRoleWithAnotherMethodIsRefused = {
    expr = exposed "local powersync_storage all md5";
    expected = ["local powersync_storage all md5"];
  };
  testContractHbaTabsAndSpacingMatchOurLine = {
    expr = exposed "\tlocal\tpowersync_storage   powersync_storage\tscram-sha-256\t";
    expected = [];
  };
  testContractHbaContinuationLineIsJoined = {
    expr = exposed "local all all \\\n  trust";
    expected = ["local all all    trust"];
  };
  testContractHbaIncludeIsRefused = {
    expr = exposed "include_dir conf.d\ninclude_if_exists extra.conf";
    expected = ["include_dir conf.d" "include_if_exists extra.conf"];
  };
  testContractProxyPortLocalhostOnlyDoesNotCollide = {
    expr = collides {listenAddresses = "localhost";};
    expected = false;
  };
  testContractProxyPortWildcardCollides = {
    expr = map (listenAddresses: collides {inherit listenAddresses;}) ["*" "0.0.0.0" "localhost, *" "::" "127.0.0.1,10.89.64.1"];
    expected = [true true true true true];
  };
  testContractProxyPortOtherAddressDoesNotCollide = {
    expr = collides {listenAddresses = "localhost,192.0.2.7";};
    expected = false;
  };
  testContractProxyPortOtherPortDoesNotCollide = {
    expr = collides {
      listenAddresses = "*";
      proxyPort = 6432;
    };
    expected = false;
  };
  testContractRemoteStorageKeepsItsTls = {
    expr = remoteStorageErrors (remote {});
    expected = [];
  };
  testContractRemoteStorageVerifyCaOverridePasses = {
    expr = remoteStorageErrors (remote {sslmode = "verify-ca";});
    expected = [];
  };
  testContractRemoteStorageSslmodeRemovedPasses = {
    # `null` removes the key: the service's default, verify-full.
    expr = remoteStorageErrors (remote {sslmode = null;});
    expected = [];
  };
  testContractRemoteStorageSslmodeDisableIsRefused = {
    expr = map (message: builtins.match ".*sslmode = \"disable\" turns off TLS to the shared storage.*storage.internal.example.com.*" message != null) (remoteStorageErrors (remote {sslmode = "disable";}));
    expected = [true];
  };
}

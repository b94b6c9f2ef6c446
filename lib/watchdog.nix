# How the slot watchdog may reach the source, builtins only (tests/unit/watchdog.nix).
{
  # The service verifies the source's certificate unless its sslmode is `disable`, so the watchdog, which logs
  # in as the same role with the same password, must verify too. Unverified, whoever sits in the path can relay
  # its SCRAM login to the source (and then act as the replication role, e.g. drop the slot) or answer with
  # its own challenge (an iteration count of 1) and guess the password offline.
  #   sslmode: the source connection's sslmode key (verify-full when unset)
  #   caCertificate: operations.watchdog.sourceCaCertificate; allowUnverified: …allowUnverifiedSource
  watchdogTlsProblems = {
    sslmode,
    caCertificate,
    allowUnverified,
  }:
    if sslmode == "disable" || caCertificate != null || allowUnverified
    then []
    else [
      ''
        services.powersync.operations.watchdog: the service verifies the source's certificate (sslmode ${sslmode}), but the watchdog has no CA to verify it with: anyone in the path could answer it, relay its login as the replication role, or guess the password from its answer. Set services.powersync.operations.watchdog.sourceCaCertificate to the CA that signed the source's certificate (for Supabase, the root certificate the dashboard offers under Database → SSL; it is public), or accept that risk knowingly with services.powersync.operations.watchdog.allowUnverifiedSource = true.''
    ];

  # How the watchdog asks systemd about the replicating runner's unit and restarts it. --no-block: a stuck
  # service ignores SIGTERM, so a restart waits for the container's stop timeout; the watchdog must not sit in
  # it (and be killed by its TimeoutStartSec) meanwhile.
  watchdogCommands = unit: {
    RESTART_CMD = "systemctl restart --no-block ${unit}";
    LIVE_CMD = "systemctl is-active --quiet ${unit}";
  };
}

# The Prometheus alert rules of services.powersync.operations, builtins only, so promtool can check and
# unit-test them offline (tests/alerts) exactly as the module installs them.
let
  inherit (import ./topology.nix) compaction;
  rule = alert: expr: for: summary: {
    inherit alert expr for;
    labels.severity = "warning";
    annotations.summary = summary;
  };
  optionals = condition: list:
    if condition
    then list
    else [];
in rec {
  # The Prometheus job that scrapes the service's metrics (operations.nix's scrapeConfigs).
  scrapeJob = "powersync";

  # Arguments mirror services.powersync options: replication.slotNamePrefix, auth.jwksUri,
  # operations.alerts.maxLagSeconds and operations.watchdog.{enable,maxRetainedBytes,intervalSeconds}; `jwks`
  # is operations.preflight.jwks (the watchdog exports the JWKS result only then). The alerts select the
  # service's metrics by `scrapeJob`, the Prometheus job operations.nix scrapes them as, whose targets
  # carry the labels `runner` and `role` (unified, sync or api; lib/topology.nix). `compact` is
  # services.powersync.compact.enable.
  alertRules = {
    compact ? false,
    slotNamePrefix,
    maxLagSeconds,
    watchdog,
    maxRetainedBytes,
    intervalSeconds,
    jwks,
    jwksUri,
  }: {
    groups = [
      {
        name = "powersync";
        rules =
          [
            (rule "PowerSyncReplicationLagHigh" "powersync_replication_lag_seconds > ${toString maxLagSeconds}" "10m"
              "PowerSync replication lags {{ $value }}s behind the source. A hint: the gauge can also stick after recovery; the slot metrics are the authority.")
            # The lag gauge is absent both when nothing answers on the metrics port and while replication has
            # never connected since the start (source auth or TLS failing, waiting for the replication lock):
            # `up` of the scrape job tells the two apart.
            (rule "PowerSyncMetricsDown" ''up{job="${scrapeJob}"} == 0 or absent(up{job="${scrapeJob}"})'' "10m"
              "Prometheus cannot scrape PowerSync's metrics: the container is down or its metrics port is unreachable.")
            (rule "PowerSyncReplicationNotStarted" ''absent(powersync_replication_lag_seconds) and on() up{job="${scrapeJob}",role!="api"} == 1'' "10m"
              "PowerSync answers but has not replicated since it started (no lag gauge): the source refuses it (authentication, TLS) or it waits for the replication lock. See the service log.")
          ]
          ++ [
            # Split mode: the other API runners serve its clients meanwhile, with less headroom.
            (rule "PowerSyncApiRunnerDown" ''up{job="${scrapeJob}",role="api"} == 0'' "5m"
              "PowerSync API runner {{ $labels.runner }} does not answer; its clients reconnect to the others. See journalctl -u podman-{{ $labels.runner }}.service.")
          ]
          ++ optionals compact [
            (rule "PowerSyncCompactionStale" "time() - powersync_compact_last_success_timestamp_seconds > 2 * 86400" "10m"
              "PowerSync storage compaction has not succeeded for two days: bucket storage grows with every update. See journalctl -u ${compaction.unit} and docs/runbook.md#compaction.")
            (rule "PowerSyncCompactionNeverSucceeded" "absent(powersync_compact_last_success_timestamp_seconds)" "2d"
              "PowerSync storage compaction has not succeeded once in two days (no success recorded). See journalctl -u ${compaction.unit} and docs/runbook.md#compaction.")
          ]
          ++ optionals watchdog [
            # An orphan is inactive too, but the watchdog rightly does not restart for it: it has its own alert.
            (rule "PowerSyncSlotInactive" "powersync_slot_active == 0 unless on(slot) powersync_slot_orphaned == 1" "10m"
              "Replication slot {{ $labels.slot }} is inactive: the source keeps WAL for it. The watchdog restarts the container; see docs/runbook.md.")
            (rule "PowerSyncSlotOrphaned" "powersync_slot_orphaned == 1" "30m"
              "Slot {{ $labels.slot }} is inactive while another slot with prefix ${slotNamePrefix} replicates: an orphan (an earlier instance's, or a sync config no longer in use). It keeps WAL on the source; drop it as docs/runbook.md (Orphan slots) says.")
            (rule "PowerSyncSlotRetainsWal" "powersync_slot_retained_wal_bytes > ${toString maxRetainedBytes}" "15m"
              "Slot {{ $labels.slot }} holds {{ $value | humanize1024 }}B of WAL on the source.")
            (rule "PowerSyncSlotMissing" "powersync_slot_present == 0" "15m"
              "No replication slot with prefix ${slotNamePrefix} on the source: nothing replicates.")
            (rule "PowerSyncSourceUnreachable" "powersync_watchdog_source_up == 0" "15m"
              "The slot watchdog cannot query the source database.")
            (rule "PowerSyncWatchdogStale" "time() - powersync_watchdog_last_run_timestamp_seconds > 3 * ${toString intervalSeconds}" "5m"
              "The PowerSync slot watchdog has not run for three intervals.")
          ]
          ++ optionals (watchdog && jwks) [
            (rule "PowerSyncJwksUnusable" "powersync_jwks_usable_keys_ok == 0" "15m"
              "The JWKS at ${toString jwksUri} serves no usable key: every client gets 401.")
          ];
      }
    ];
  };
}

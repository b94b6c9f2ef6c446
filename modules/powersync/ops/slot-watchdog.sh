#!/usr/bin/env bash
# The slot watchdog: asks the source itself (with the service's own DSN) about the replication slots with our
# prefix, exports what it sees as Prometheus metrics, and restarts the container when a slot stays inactive or
# its retained WAL keeps growing past the limit while the container claims to be live. Liveness and the lag
# gauge stay green in exactly these cases (a half-open source connection, powersync-service#700), while the
# source keeps WAL for the slot without bound. It never prints the DSN or its password.
#
# Environment (set by the NixOS module):
#   POWERSYNC_ENV_FILE            env file holding PS_SOURCE_DSN (the service's)
#   SLOT_PREFIX                   the slots' name prefix (slot_name_prefix)
#   STATE_DIR                     where it remembers slots between runs
#   TEXTFILE                      metrics file for the node exporter's textfile collector (written atomically)
#   MAX_INACTIVE_SECONDS          restart when a slot is inactive this long (300)
#   MAX_RETAINED_BYTES            retained-WAL limit per slot (1073741824)
#   GROWTH_CHECKS                 restart when above the limit and growing on this many runs in a row (3)
#   MIN_RESTART_INTERVAL_SECONDS  at most one restart per this many seconds (1800)
#   RESTART_CMD                   how to restart (systemctl restart podman-powersync.service)
#   LIVE_CMD                      whether the container claims to be live (systemctl is-active --quiet …)
#   JWKS_URI, JWKS_CHECK          optional: also run the JWKS preflight and export its result
#   NOW                           optional: the current time in epoch seconds (tests)
# Exit status: 0, or 1 when the source could not be queried.
set -euo pipefail

: "${POWERSYNC_ENV_FILE:?set POWERSYNC_ENV_FILE to the env file holding PS_SOURCE_DSN}"
: "${SLOT_PREFIX:?set SLOT_PREFIX}" "${STATE_DIR:?set STATE_DIR}" "${TEXTFILE:?set TEXTFILE}"
max_inactive=${MAX_INACTIVE_SECONDS:-300}
max_retained=${MAX_RETAINED_BYTES:-1073741824}
growth_checks=${GROWTH_CHECKS:-3}
min_interval=${MIN_RESTART_INTERVAL_SECONDS:-1800}
restart_cmd=${RESTART_CMD:-systemctl restart podman-powersync.service}
live_cmd=${LIVE_CMD:-systemctl is-active --quiet podman-powersync.service}
PSQL=${PSQL:-psql}
now=${NOW:-$(date +%s)}

log() { echo "powersync watchdog: $*"; }
mkdir -p "$STATE_DIR"
state() { cat "$STATE_DIR/$1" 2>/dev/null || true; }
remember() { printf '%s\n' "$2" >"$STATE_DIR/$1"; }

metrics=()
metric() { # name type help [labels value]...
  local name=$1 type=$2 help=$3
  shift 3
  metrics+=("# HELP $name $help" "# TYPE $name $type")
  while [ "$#" -ge 2 ]; do
    metrics+=("$name$1 $2")
    shift 2
  done
}
write_metrics() {
  local tmp
  tmp=$(mktemp "$(dirname "$TEXTFILE")/.powersync.prom.XXXXXX")
  printf '%s\n' "${metrics[@]}" >"$tmp"
  chmod 0644 "$tmp"
  mv "$tmp" "$TEXTFILE"
}
common_metrics() {
  metric powersync_watchdog_last_run_timestamp_seconds gauge "When the slot watchdog last ran." "" "$now"
  local total
  total=$(state restarts_total)
  metric powersync_watchdog_restarts_total counter "Container restarts requested by the slot watchdog." "" "${total:-0}"
  jwks_metrics
}
jwks_metrics() {
  [ -n "${JWKS_URI:-}" ] || return 0
  local output
  if output=$("${JWKS_CHECK:-preflight-jwks}" "$JWKS_URI" 2>&1); then
    case $output in
      *WARNING*) metric powersync_jwks_check_up gauge "Whether the JWKS could be fetched." "" 0 ;;
      *)
        metric powersync_jwks_check_up gauge "Whether the JWKS could be fetched." "" 1
        metric powersync_jwks_usable_keys_ok gauge "Whether the JWKS serves a usable signing key." "" 1
        ;;
    esac
  else
    log "$output"
    metric powersync_jwks_check_up gauge "Whether the JWKS could be fetched." "" 1
    metric powersync_jwks_usable_keys_ok gauge "Whether the JWKS serves a usable signing key." "" 0
  fi
}

# The DSN as the container gets it from podman's --env-file (read as preflight-dsn.sh reads it): the last
# assignment wins and leading blanks are dropped.
dsn=""
while IFS= read -r line || [ -n "$line" ]; do
  line=${line#"${line%%[![:space:]]*}"}
  case $line in PS_SOURCE_DSN=*) dsn=${line#PS_SOURCE_DSN=} ;; esac
done <"$POWERSYNC_ENV_FILE"
# Surrounding quotes are the file's syntax, not part of the value (podman's --env-file reads quoted values).
case $dsn in
  \"*\") dsn=${dsn#\"} dsn=${dsn%\"} ;;
  \'*\') dsn=${dsn#\'} dsn=${dsn%\'} ;;
esac

# The password leaves the URI (argv is visible in /proc) and goes to psql through PGPASSWORD.
scheme=${dsn%%://*}
rest=${dsn#*://}
authority=${rest%%[/?]*}
path=${rest#"$authority"}
userinfo=""
hostport=$authority
case $authority in *@*) userinfo=${authority%@*} hostport=${authority##*@} ;; esac
user=${userinfo%%:*}
password=""
case $userinfo in *:*) password=${userinfo#*:} ;; esac
percent_decode() { printf '%b' "${1//%/\\x}"; }
PGPASSWORD=$(percent_decode "$password")
export PGPASSWORD
export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}
conninfo="$scheme://${user:+$user@}$hostport$path"

like=${SLOT_PREFIX//\\/\\\\}
like=${like//_/\\_}
like=${like//%/\\%}
like=${like//\'/\'\'}
query="SELECT slot_name, active, coalesce(wal_status, ''),
  coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint
  FROM pg_replication_slots WHERE slot_name LIKE '${like}%' ORDER BY slot_name"

if ! rows=$("$PSQL" "$conninfo" -X -A -t -F '|' -v ON_ERROR_STOP=1 -c "$query" 2>"$STATE_DIR/psql.err"); then
  log "cannot query the source ($(tr '\n' ' ' <"$STATE_DIR/psql.err" | cut -c1-300)); not acting"
  metric powersync_watchdog_source_up gauge "Whether the slot watchdog could query the source database." "" 0
  common_metrics
  write_metrics
  exit 1
fi
metric powersync_watchdog_source_up gauge "Whether the slot watchdog could query the source database." "" 1

active_m=() retained_m=() status_m=() inactive_m=()
reasons=()
count=0
while IFS='|' read -r slot active wal_status retained; do
  [ -n "$slot" ] || continue
  count=$((count + 1))
  label="{slot=\"$slot\"}"
  if [ "$active" = t ]; then
    rm -f "$STATE_DIR/$slot.inactive_since"
    inactive_for=0
    active_m+=("$label" 1)
  else
    since=$(state "$slot.inactive_since")
    [ -n "$since" ] || { since=$now && remember "$slot.inactive_since" "$now"; }
    inactive_for=$((now - since))
    active_m+=("$label" 0)
    if [ "$inactive_for" -ge "$max_inactive" ]; then
      reasons+=("slot $slot inactive for ${inactive_for}s (limit ${max_inactive}s)")
    fi
  fi
  last=$(state "$slot.retained")
  growth=$(state "$slot.growth")
  growth=${growth:-0}
  if [ "$retained" -gt "$max_retained" ] && [ -n "$last" ] && [ "$retained" -gt "$last" ]; then
    growth=$((growth + 1))
  else
    growth=0
  fi
  remember "$slot.retained" "$retained"
  remember "$slot.growth" "$growth"
  if [ "$growth" -ge "$growth_checks" ]; then
    reasons+=("slot $slot retains $retained bytes of WAL, above $max_retained and growing for $growth runs")
  fi
  retained_m+=("$label" "$retained")
  inactive_m+=("$label" "$inactive_for")
  status_m+=("{slot=\"$slot\",status=\"${wal_status:-unknown}\"}" 1)
done <<<"$rows"

metric powersync_slot_present gauge "Whether a replication slot with the prefix exists on the source." "" "$((count > 0 ? 1 : 0))"
metric powersync_slot_active gauge "Whether the slot is being consumed (pg_replication_slots.active)." "${active_m[@]}"
metric powersync_slot_retained_wal_bytes gauge "WAL the source keeps for the slot (behind confirmed_flush_lsn)." "${retained_m[@]}"
metric powersync_slot_inactive_seconds gauge "How long the watchdog has seen the slot inactive." "${inactive_m[@]}"
metric powersync_slot_wal_status gauge "The slot's wal_status on the source." "${status_m[@]}"

if [ "$count" -eq 0 ]; then
  log "WARNING: no replication slot named ${SLOT_PREFIX}* on the source; not restarting (a restart would not fix what keeps the slot from being created: check the service's journal)"
fi

if [ "${#reasons[@]}" -gt 0 ]; then
  last_restart=$(state last_restart)
  if ! bash -c "$live_cmd"; then
    log "${reasons[*]}; the container is not running, which systemd handles: not restarting"
  elif [ -n "$last_restart" ] && [ $((now - last_restart)) -lt "$min_interval" ]; then
    log "${reasons[*]}; restart suppressed: the last one was $((now - last_restart))s ago (minimum ${min_interval}s)"
  else
    log "restarting the container: ${reasons[*]}"
    bash -c "$restart_cmd"
    remember last_restart "$now"
    total=$(state restarts_total)
    remember restarts_total "$((${total:-0} + 1))"
  fi
fi

common_metrics
write_metrics

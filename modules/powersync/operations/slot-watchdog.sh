#!/usr/bin/env bash
# The slot watchdog: asks the source itself (with the service's own DSN) about the replication slots with our
# prefix, exports what it sees as Prometheus metrics, and restarts the container when every slot of ours stays
# inactive, or an active one's retained WAL keeps growing past the limit, while the container claims to be
# live. Orphans (inactive beside an active one) are reported, never restarted for. Liveness and the lag
# gauge stay green in exactly these cases (a half-open source connection, powersync-service#700), while the
# source keeps WAL for the slot without bound. It never prints the DSN or its password.
#
# Environment, set by the NixOS module (operations.nix, through writeShellApplication's runtimeEnv); the
# script keeps no defaults for these, so a missing one is a configuration error (exit 2), never a guess:
#   POWERSYNC_ENV_FILES           the service's env files, space-separated, read as podman reads them
#   SOURCE_SSLMODE                the connection's sslmode key (the service's own default when it has none)
#   SLOT_PREFIX                   the slots' name prefix (slot_name_prefix), matched literally
#   STATE_DIR                     where it remembers slots and restarts between runs (created if missing)
#   TEXTFILE                      metrics file for the node exporter's textfile collector (replaced atomically)
#   MAX_INACTIVE_SECONDS          restart when a slot has been inactive this long while live, counted from
#                                 the later of the first sighting and the last restart
#   MAX_RETAINED_BYTES            retained-WAL limit per slot
#   GROWTH_CHECKS                 restart when above the limit and grown on this many live runs in a row
#   MIN_RESTART_INTERVAL_SECONDS  at most one restart per this many seconds; later ones are logged
#   RESTART_CMD                   how to restart, run with bash -c; it must not wait for the restart
#   LIVE_CMD                      exit 0 when the container claims to be live, run with bash -c
#   PGCONNECT_TIMEOUT             seconds psql may take to connect (libpq's own variable)
#   STATEMENT_TIMEOUT_SECONDS     the source's statement_timeout for its query
# Set by the module only where they apply:
#   SOURCE_HOSTNAME, SOURCE_PORT, … the connection's own keys, which win over PS_SOURCE_DSN
#                                 (source-connection.sh); absent keys leave the DSN's
#   SOURCE_CA_FILE                the CA that signed the source's certificate, to verify it as the service
#                                 does; without it, TLS is unverified and only SCRAM-SHA-256 is accepted
#                                 (needs libpq >= 16)
#   JWKS_URI, JWKS_CHECK          both or neither: also run that JWKS preflight on the URI each time and
#                                 export its result
# Never set by the module, for tests and debugging: PSQL (the psql command, default psql on PATH, libpq >= 16;
# a test wraps it to see its argv), NOW the current time in epoch seconds.
# Exit status: 0; 1 when the source could not be queried or the restart command failed; 2 bad configuration.
set -euo pipefail

log() { echo "powersync watchdog: $*"; }
warn() { echo "powersync watchdog: WARNING: $*" >&2; }
config_error() {
  echo "powersync watchdog: $*" >&2
  exit 2
}

for var in POWERSYNC_ENV_FILES SOURCE_SSLMODE SLOT_PREFIX STATE_DIR TEXTFILE MAX_INACTIVE_SECONDS MAX_RETAINED_BYTES \
  GROWTH_CHECKS MIN_RESTART_INTERVAL_SECONDS RESTART_CMD LIVE_CMD PGCONNECT_TIMEOUT STATEMENT_TIMEOUT_SECONDS; do
  [ -n "${!var:-}" ] || config_error "set $var (see the header of slot-watchdog.sh)"
done
[ -z "${JWKS_URI:-}" ] || [ -n "${JWKS_CHECK:-}" ] || config_error "set JWKS_CHECK, the JWKS preflight to run on JWKS_URI"
max_inactive=${MAX_INACTIVE_SECONDS:?}
max_retained=${MAX_RETAINED_BYTES:?}
growth_checks=${GROWTH_CHECKS:?}
min_interval=${MIN_RESTART_INTERVAL_SECONDS:?}
now=${NOW:-$(printf '%(%s)T' -1)}
whole() { [[ $2 =~ ^[0-9]+$ ]] || config_error "$1 must be a whole number, not '$2'"; }
whole MAX_INACTIVE_SECONDS "$max_inactive"
whole MAX_RETAINED_BYTES "$max_retained"
whole GROWTH_CHECKS "$growth_checks"
whole MIN_RESTART_INTERVAL_SECONDS "$min_interval"
whole NOW "$now"
connect_timeout=${PGCONNECT_TIMEOUT:?}
statement_timeout=${STATEMENT_TIMEOUT_SECONDS:?}
whole PGCONNECT_TIMEOUT "$connect_timeout"
whole STATEMENT_TIMEOUT_SECONDS "$statement_timeout"
# The service verifies the source's certificate against CAs bundled in its image (Supabase's own root among
# them). With that CA given (SOURCE_CA_FILE), the watchdog verifies as the service does; the module refuses a
# watchdog without it unless the operator allows it (allowUnverifiedSource). Unverified, it encrypts and libpq
# (>= 16) accepts SCRAM-SHA-256 alone: an endpoint asking for the password in clear text, for an md5 answer to
# its own salt, or for nothing is refused before anything is sent. A relay of the SCRAM exchange, or a weak
# challenge, is stopped only by verification. (Channel binding would stop a relay too, but Supabase has been
# reported not to offer SCRAM-SHA-256-PLUS, porsager/postgres#1008, so the watchdog cannot require it.)
source_ca=${SOURCE_CA_FILE:-}
pg_require_auth=
case $SOURCE_SSLMODE in
  disable) pg_sslmode=disable ;;
  verify-full | verify-ca)
    if [ -n "$source_ca" ]; then
      [ -r "$source_ca" ] || config_error "SOURCE_CA_FILE '$source_ca' is not a readable file"
      pg_sslmode=$SOURCE_SSLMODE
    else
      pg_sslmode=require pg_require_auth=scram-sha-256
    fi
    ;;
  *) config_error "SOURCE_SSLMODE must be verify-full, verify-ca or disable (the service's sslmode values), not '${SOURCE_SSLMODE}'" ;;
esac
restart_cmd=${RESTART_CMD:?}
live_cmd=${LIVE_CMD:?}
PSQL=${PSQL:-psql}
jwks_check=${JWKS_CHECK:-}

mkdir -p "$STATE_DIR"
# State: one file per slot (see the loop below), plus last_restart and restarts_total.
state() { cat "$STATE_DIR/$1" 2>/dev/null || true; }
remember() { printf '%s\n' "$2" >"$STATE_DIR/$1"; }

metrics=()
metric() { # name type help [labels value]...; a family without samples is left out entirely
  local name=$1 type=$2 help=$3
  shift 3
  [ "$#" -ge 2 ] || return 0
  metrics+=("# HELP $name $help" "# TYPE $name $type")
  while [ "$#" -ge 2 ]; do
    metrics+=("$name$1 $2")
    shift 2
  done
}
# The collector may read at any moment: write a temporary file beside the target and rename it over.
finish() {
  local total tmp
  total=$(state restarts_total)
  jwks_metrics
  metric powersync_watchdog_restarts_total counter "Container restarts requested by the slot watchdog." "" "${total:-0}"
  metric powersync_watchdog_last_run_timestamp_seconds gauge "When the slot watchdog last ran." "" "$now"
  tmp=$(mktemp "$(dirname "$TEXTFILE")/.powersync.prom.XXXXXX")
  if ! { printf '%s\n' "${metrics[@]}" >"$tmp" && chmod 0644 "$tmp" && mv "$tmp" "$TEXTFILE"; }; then
    rm -f "$tmp"
    warn "cannot write $TEXTFILE"
    exit 1
  fi
  exit "$1"
}
source_down() {
  warn "$*; not acting on the slots"
  metric powersync_watchdog_source_up gauge "Whether the slot watchdog could query the source database." "" 0
  finish 1
}
# usable_keys_ok is exported only when the check reached the JWKS: its alert means "no usable key", which a
# network failure does not show (that is powersync_jwks_check_up 0).
jwks_metrics() {
  [ -n "${JWKS_URI:-}" ] || return 0
  local output rc=0 up=0 ok=""
  output=$("$jwks_check" "$JWKS_URI" 2>&1) || rc=$?
  case $rc in
    0) case $output in *WARNING:*) log "$output" ;; *) up=1 ok=1 ;; esac ;;
    1) up=1 ok=0 && warn "$output" ;;
    *) warn "the JWKS check $jwks_check failed (exit $rc): $output" ;;
  esac
  metric powersync_jwks_check_up gauge "Whether the JWKS check could fetch the JWKS." "" "$up"
  metric powersync_jwks_usable_keys_ok gauge "Whether the JWKS serves a usable signing key." ${ok:+"" "$ok"}
}

# shellcheck source=modules/powersync/operations/source-connection.sh
. "$(dirname "${BASH_SOURCE[0]}")/source-connection.sh"

# The connection exactly as the service makes it (the same reading as the preflight), so the watchdog can
# never log in where the service cannot, or the other way round.
read -r -a env_files <<<"$POWERSYNC_ENV_FILES"
source_connection "${env_files[@]}" || source_down "$conn_error"

# LIKE treats _ and % as wildcards, and the prefix ends in _: escape them so only our slots match.
like=${SLOT_PREFIX//\\/\\\\}
like=${like//_/\\_}
like=${like//%/\\%}
like=${like//\'/\'\'}
query="SELECT slot_name, active, coalesce(wal_status, ''),
  coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint
  FROM pg_replication_slots WHERE slot_name LIKE '${like}%' ORDER BY slot_name"

# Everything reaches psql through PG* variables of psql alone: argv (world-readable in /proc) holds no URI and
# no secret, and the restart and live commands never inherit the password. statement_timeout bounds a query
# on a source that accepts connections but hangs.
if ! rows=$(
  # Set only when wanted, in this subshell only; otherwise libpq keeps its own defaults.
  if [ -n "$source_ca" ]; then export PGSSLROOTCERT=$source_ca; fi
  if [ -n "$pg_require_auth" ]; then export PGREQUIREAUTH=$pg_require_auth; fi
  PGHOST=$conn_host PGPORT=$conn_port PGUSER=$conn_user PGDATABASE=$conn_database \
    PGPASSWORD=$conn_password PGSSLMODE=$pg_sslmode PGCONNECT_TIMEOUT=$connect_timeout \
    PGOPTIONS="-c statement_timeout=${statement_timeout}s" PGAPPNAME=powersync-slot-watchdog \
    "$PSQL" -w -X -q -A -t -F '|' -v ON_ERROR_STOP=1 -c "$query" 2>"$STATE_DIR/psql.err"
); then
  error=$(<"$STATE_DIR/psql.err")
  error=${error//$'\n'/ }
  # psql does not echo passwords; this keeps it that way whatever a future libpq prints.
  error=${error//"$conn_password"/<password>}
  source_down "cannot query the source (${error:0:300})"
fi
metric powersync_watchdog_source_up gauge "Whether the slot watchdog could query the source database." "" 1

# Both restart rules count only while the container claims to be live: a container that was down (systemd's
# business) and has just started must get the full time to pick its slot up again.
live=false
if bash -c "$live_cmd"; then live=true; fi
# A restarted container gets the full time again: it stands by on the storage lock for up to a minute before it
# takes the slot, and counting from before the restart would ask for another one at once.
last_restart=$(state last_restart)
[[ $last_restart =~ ^[0-9]+$ ]] || last_restart=0

# The prefix matches more than the service's own slot: a slot left by an earlier instance, or by a sync config
# the service no longer uses, stays inactive for good, and restarting the service for it drops every client
# stream and changes nothing. The service replicates through at least one active slot of ours, so:
#   - inactivity counts only when every slot of ours is inactive, from when the last of them went inactive;
#   - retained-WAL growth counts only for an active slot (an inactive one is covered by the rule above);
#   - an inactive slot while another of ours is active is an orphan: reported, never a reason to restart.
active_m=() retained_m=() status_m=() inactive_m=()
reasons=() seen=() idle=() any_active=false
# The shortest time any inactive slot has been counted while live: how long replication has been stalled.
stalled_for=
while IFS='|' read -r slot active wal_status retained; do
  [ -n "$slot" ] || continue
  seen+=("$slot")
  # since: first seen inactive (the source does not say); live_since: the same, counted only while live.
  read -r since live_since last growth <<<"$(state "slot.$slot")" || true
  label="{slot=\"$slot\"}"
  if [ "$active" = t ]; then
    any_active=true
    since=- live_since=- inactive_for=0
    active_m+=("$label" 1)
  else
    [[ ${since:-} =~ ^[0-9]+$ ]] || since=$now
    inactive_for=$((now - since))
    active_m+=("$label" 0)
    idle+=("$slot")
    if ! $live; then
      live_since=-
    else
      [[ ${live_since:-} =~ ^[0-9]+$ ]] || live_since=$now
      counted=$((now - (live_since > last_restart ? live_since : last_restart)))
      if [ -z "$stalled_for" ] || [ "$counted" -lt "$stalled_for" ]; then stalled_for=$counted; fi
    fi
  fi
  if $live && [ "$active" = t ] && [ "$retained" -gt "$max_retained" ] && [[ ${last:-} =~ ^[0-9]+$ ]] && [ "$retained" -gt "$last" ]; then
    growth=$((${growth:-0} + 1))
  else
    growth=0
  fi
  if [ "$growth" -ge "$growth_checks" ]; then
    reasons+=("slot $slot retains $retained bytes of WAL, above $max_retained and grown on $growth runs in a row")
  fi
  remember "slot.$slot" "$since $live_since $retained $growth"
  retained_m+=("$label" "$retained")
  inactive_m+=("$label" "$inactive_for")
  status_m+=("{slot=\"$slot\",status=\"${wal_status:-unknown}\"}" 1)
done <<<"$rows"

orphan_m=() orphans=()
for slot in "${idle[@]}"; do
  if $any_active; then orphans+=("$slot"); fi
done
for slot in "${seen[@]}"; do
  case " ${orphans[*]} " in
    *" $slot "*) orphan_m+=("{slot=\"$slot\"}" 1) ;;
    *) orphan_m+=("{slot=\"$slot\"}" 0) ;;
  esac
done
if [ "${#orphans[@]}" -gt 0 ]; then
  warn "slot(s) ${orphans[*]} inactive while another slot of ours replicates: orphaned, keeping WAL on the source; not restarting for them. Drop one once you know it is not in use: docs/runbook.md, \"Orphan slots\""
fi
if $live && ! $any_active && [ -n "$stalled_for" ] && [ "$stalled_for" -ge "$max_inactive" ]; then
  reasons+=("every slot of ours (${idle[*]}) inactive for ${stalled_for}s while the container is live (limit ${max_inactive}s)")
fi

# Forget slots that are gone, so a slot of the same name later starts with a clean record.
for file in "$STATE_DIR"/slot.*; do
  [ -e "$file" ] || continue
  case " ${seen[*]} " in *" ${file##*/slot.} "*) ;; *) rm -f "$file" ;; esac
done

metric powersync_slot_present gauge "Whether a replication slot with the prefix exists on the source." "" "$((${#seen[@]} > 0 ? 1 : 0))"
metric powersync_slot_active gauge "Whether the slot is being consumed (pg_replication_slots.active)." "${active_m[@]}"
metric powersync_slot_retained_wal_bytes gauge "WAL the source keeps for the slot (behind confirmed_flush_lsn)." "${retained_m[@]}"
metric powersync_slot_inactive_seconds gauge "How long the watchdog has seen the slot inactive." "${inactive_m[@]}"
metric powersync_slot_orphaned gauge "Whether the slot is inactive while another slot with the prefix replicates (an orphan)." "${orphan_m[@]}"
metric powersync_slot_wal_status gauge "The slot's wal_status on the source (1 for the current one)." "${status_m[@]}"

if [ "${#seen[@]}" -eq 0 ]; then
  warn "no replication slot named ${SLOT_PREFIX}* on the source; not restarting (a restart does not remove what keeps the service from creating it: check journalctl -u podman-powersync)"
fi

status=0
if ! $live && [ "${#idle[@]}" -gt 0 ]; then
  log "slot(s) ${idle[*]} inactive, but the container is not running, which systemd handles: not restarting"
fi
if [ "${#reasons[@]}" -gt 0 ]; then
  if [ "$last_restart" -gt 0 ] && [ $((now - last_restart)) -lt "$min_interval" ]; then
    log "${reasons[*]}; restart suppressed: the last one was $((now - last_restart))s ago (minimum ${min_interval}s)"
  else
    log "restarting the container: ${reasons[*]}"
    if bash -c "$restart_cmd"; then
      remember last_restart "$now"
      total=$(state restarts_total)
      remember restarts_total "$((${total:-0} + 1))"
    else
      warn "the restart command failed (exit $?): $restart_cmd"
      status=1
    fi
  fi
fi

finish "$status"

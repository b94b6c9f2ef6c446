#!/usr/bin/env bash
# The slot watchdog: asks the source itself (with the service's own DSN) about the replication slots with our
# prefix, exports what it sees as Prometheus metrics, and restarts the container when a slot stays inactive or
# its retained WAL keeps growing past the limit while the container claims to be live. Liveness and the lag
# gauge stay green in exactly these cases (a half-open source connection, powersync-service#700), while the
# source keeps WAL for the slot without bound. It never prints the DSN or its password.
#
# Environment (set by the NixOS module):
#   POWERSYNC_ENV_FILE            env file holding PS_SOURCE_DSN (the service's; the last assignment wins)
#   SLOT_PREFIX                   the slots' name prefix (slot_name_prefix), matched literally
#   STATE_DIR                     where it remembers slots and restarts between runs (created if missing)
#   TEXTFILE                      metrics file for the node exporter's textfile collector (replaced atomically)
#   MAX_INACTIVE_SECONDS          restart when a slot has been inactive this long while live (300)
#   MAX_RETAINED_BYTES            retained-WAL limit per slot (1073741824)
#   GROWTH_CHECKS                 restart when above the limit and grown on this many live runs in a row (3)
#   MIN_RESTART_INTERVAL_SECONDS  at most one restart per this many seconds; later ones are logged (1800)
#   RESTART_CMD                   how to restart, run with bash -c (systemctl restart podman-powersync.service)
#   LIVE_CMD                      exit 0 when the container claims to be live, run with bash -c
#                                 (systemctl is-active --quiet podman-powersync.service)
#   JWKS_URI                      optional: also run the JWKS preflight each time and export its result
#   JWKS_CHECK                    that preflight (preflight-jwks.sh next to this script)
#   PSQL                          the psql command (psql); PGCONNECT_TIMEOUT (10 s) bounds its connect
#   NOW                           optional: the current time in epoch seconds (tests)
# Exit status: 0; 1 when the source could not be queried or the restart command failed; 2 bad configuration.
set -euo pipefail

log() { echo "powersync watchdog: $*"; }
warn() { echo "powersync watchdog: WARNING: $*" >&2; }
config_error() {
  echo "powersync watchdog: $*" >&2
  exit 2
}

for var in POWERSYNC_ENV_FILE SLOT_PREFIX STATE_DIR TEXTFILE; do
  [ -n "${!var:-}" ] || config_error "set $var (see the header of slot-watchdog.sh)"
done
max_inactive=${MAX_INACTIVE_SECONDS:-300}
max_retained=${MAX_RETAINED_BYTES:-1073741824}
growth_checks=${GROWTH_CHECKS:-3}
min_interval=${MIN_RESTART_INTERVAL_SECONDS:-1800}
now=${NOW:-$(printf '%(%s)T' -1)}
whole() { [[ $2 =~ ^[0-9]+$ ]] || config_error "$1 must be a whole number, not '$2'"; }
whole MAX_INACTIVE_SECONDS "$max_inactive"
whole MAX_RETAINED_BYTES "$max_retained"
whole GROWTH_CHECKS "$growth_checks"
whole MIN_RESTART_INTERVAL_SECONDS "$min_interval"
whole NOW "$now"
restart_cmd=${RESTART_CMD:-systemctl restart podman-powersync.service}
live_cmd=${LIVE_CMD:-systemctl is-active --quiet podman-powersync.service}
PSQL=${PSQL:-psql}
jwks_check=${JWKS_CHECK:-$(dirname "${BASH_SOURCE[0]}")/preflight-jwks.sh}

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

# The DSN as the container gets it from podman's --env-file, read as preflight-dsn.sh reads it.
[ -r "$POWERSYNC_ENV_FILE" ] || source_down "cannot read $POWERSYNC_ENV_FILE (is the sops secret deployed?)"
dsn=""
while IFS= read -r line || [ -n "$line" ]; do
  line=${line#"${line%%[![:space:]]*}"}
  case $line in PS_SOURCE_DSN=*) dsn=${line#PS_SOURCE_DSN=} ;; esac
done <"$POWERSYNC_ENV_FILE"
case $dsn in
  \"*\") dsn=${dsn#\"} dsn=${dsn%\"} ;;
  \'*\') dsn=${dsn#\'} dsn=${dsn%\'} ;;
esac
case $dsn in
  postgres://* | postgresql://*) ;;
  *) source_down "PS_SOURCE_DSN in $POWERSYNC_ENV_FILE is missing or not a postgresql:// URI" ;;
esac

# The password leaves the URI (argv is world-readable in /proc) and reaches psql alone, through PGPASSWORD.
# Split as preflight-dsn.sh does; an ambiguous split could put part of the password in the host or port.
scheme=${dsn%%://*}
rest=${dsn#*://}
authority=${rest%%[/?#]*}
after=${rest#"$authority"}
path=${after%%\?*}
query=""
case $after in *\?*) query=${after#*\?} ;; esac
userinfo=""
hostport=$authority
case $authority in
  *@*) userinfo=${authority%@*} hostport=${authority##*@} ;;
  *) case ${after%%=*} in *@*) source_down "PS_SOURCE_DSN cannot be split into host and port: percent-encode special characters in its password" ;; esac ;;
esac
user=${userinfo%%:*}
password=""
case $userinfo in *:*) password=${userinfo#*:} ;; esac
# libpq also takes the password as a query parameter: move that one out of the URI too.
kept=""
if [ -n "$query" ]; then
  IFS='&' read -r -a params <<<"$query"
  for param in "${params[@]}"; do
    case $param in
      password=*) password=${param#password=} ;;
      *) kept+=${kept:+&}$param ;;
    esac
  done
fi
percent_decode() {
  local s=${1//\\/\\\\}
  printf '%b' "${s//%/\\x}"
}
password=$(percent_decode "$password")
conninfo="$scheme://${user:+$user@}$hostport$path${kept:+?$kept}"

# LIKE treats _ and % as wildcards, and the prefix ends in _: escape them so only our slots match.
like=${SLOT_PREFIX//\\/\\\\}
like=${like//_/\\_}
like=${like//%/\\%}
like=${like//\'/\'\'}
query="SELECT slot_name, active, coalesce(wal_status, ''),
  coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint
  FROM pg_replication_slots WHERE slot_name LIKE '${like}%' ORDER BY slot_name"

# PGPASSWORD is given to psql alone, so the restart and live commands never inherit the secret.
if ! rows=$(PGPASSWORD=$password PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10} PGAPPNAME=powersync-slot-watchdog \
  "$PSQL" "$conninfo" -w -X -q -A -t -F '|' -v ON_ERROR_STOP=1 -c "$query" 2>"$STATE_DIR/psql.err"); then
  error=$(<"$STATE_DIR/psql.err")
  error=${error//$'\n'/ }
  # psql does not echo passwords; this keeps it that way whatever a future libpq prints.
  [ -z "$password" ] || error=${error//"$password"/<password>}
  source_down "cannot query the source (${error:0:300})"
fi
metric powersync_watchdog_source_up gauge "Whether the slot watchdog could query the source database." "" 1

# Both restart rules count only while the container claims to be live: a container that was down (systemd's
# business) and has just started must get the full time to pick its slot up again.
live=false
if bash -c "$live_cmd"; then live=true; fi

active_m=() retained_m=() status_m=() inactive_m=()
reasons=() seen=() idle=()
while IFS='|' read -r slot active wal_status retained; do
  [ -n "$slot" ] || continue
  seen+=("$slot")
  # since: first seen inactive (the source does not say); live_since: the same, counted only while live.
  read -r since live_since last growth <<<"$(state "slot.$slot")" || true
  label="{slot=\"$slot\"}"
  if [ "$active" = t ]; then
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
      if [ $((now - live_since)) -ge "$max_inactive" ]; then
        reasons+=("slot $slot inactive for $((now - live_since))s while the container is live (limit ${max_inactive}s)")
      fi
    fi
  fi
  if $live && [ "$retained" -gt "$max_retained" ] && [[ ${last:-} =~ ^[0-9]+$ ]] && [ "$retained" -gt "$last" ]; then
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

# Forget slots that are gone, so a slot of the same name later starts with a clean record.
for file in "$STATE_DIR"/slot.*; do
  [ -e "$file" ] || continue
  case " ${seen[*]} " in *" ${file##*/slot.} "*) ;; *) rm -f "$file" ;; esac
done

metric powersync_slot_present gauge "Whether a replication slot with the prefix exists on the source." "" "$((${#seen[@]} > 0 ? 1 : 0))"
metric powersync_slot_active gauge "Whether the slot is being consumed (pg_replication_slots.active)." "${active_m[@]}"
metric powersync_slot_retained_wal_bytes gauge "WAL the source keeps for the slot (behind confirmed_flush_lsn)." "${retained_m[@]}"
metric powersync_slot_inactive_seconds gauge "How long the watchdog has seen the slot inactive." "${inactive_m[@]}"
metric powersync_slot_wal_status gauge "The slot's wal_status on the source (1 for the current one)." "${status_m[@]}"

if [ "${#seen[@]}" -eq 0 ]; then
  warn "no replication slot named ${SLOT_PREFIX}* on the source; not restarting (a restart does not remove what keeps the service from creating it: check journalctl -u podman-powersync)"
fi

status=0
if ! $live && [ "${#idle[@]}" -gt 0 ]; then
  log "slot(s) ${idle[*]} inactive, but the container is not running, which systemd handles: not restarting"
fi
if [ "${#reasons[@]}" -gt 0 ]; then
  last_restart=$(state last_restart)
  if [[ $last_restart =~ ^[0-9]+$ ]] && [ $((now - last_restart)) -lt "$min_interval" ]; then
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

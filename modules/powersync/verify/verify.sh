#!/usr/bin/env bash
# powersync-verify: the post-deploy checklist, run on the host. Each check says pass, warn or fail, and each
# failure names the runbook section that explains it (docs/runbook.md#check-<id>). It reads state only:
# systemd, podman, the journal, the watchdog's metrics file, the service's metrics, PostgreSQL and the
# listening sockets, each slow call bounded in time (a hung podman must not hang the check). It changes
# nothing, and no secret reaches its output: podman's inspect output (which holds the container's
# environment) is only ever read through jq, and every detail line is scrubbed of the values in the
# service's env files before it is printed.
#   powersync-verify [--json]   exit 0 all pass (warnings allowed), 1 a check failed, 2 usage or configuration
# Input: MANIFEST, a JSON file the NixOS module writes with what this generation deployed
# (modules/powersync/verify.nix, passed through writeShellApplication's runtimeEnv). Every key must be there;
# the script keeps no defaults of its own, so a missing key is a configuration error (exit 2), never a guess:
#   runners            [{unit, container}], one per PowerSync runner
#                      ({unit: "podman-powersync.service", container: "powersync"})
#   sockets, timers    further units that must be active (the storage proxy socket, the watchdog timer)
#   imageDigest        the pinned digest (sha256:…) the running image must carry; or
#   imageArchive       the image archive loaded instead of a pull (imageFile): its image ID is the pin
#   configMounts       the container's volumes as the module declares them (src:dst[:ro], …)
#   textfile           the slot watchdog's metrics file (null: the watchdog is off)
#   watchdogInterval   seconds between watchdog runs; a run older than 3 intervals is stale
#   maxRetainedBytes   the watchdog's retained-WAL limit per slot
#   metricsUrls        the runners' Prometheus endpoints on 127.0.0.1 ([]: metrics are off)
#   maxLagSeconds      the lag alert's threshold
#   slotPrefix         the replication slots' name prefix
#   replicates         false on an API-only host (runners.mode = "api"): no slot to see in the journal
#   storageRole        the bucket storage's PostgreSQL role, reached locally on port pgport (null: the
#                      storage is another host's, storage.remote, not checked here)
#   ourPorts           ports that are ours on the host; allowedAddresses where they may listen
#   secretFiles        env files whose values must never be printed (the service's)
#   privatePorts       passed on in --json: ports `cargo xtask verify` must find closed from outside
# sockets, timers, metricsUrls and privatePorts may be empty, imageDigest, imageArchive, textfile and
# storageRole null (that part is off or absent); the others may not. Never set by the module, for tests:
# PGHOST (PostgreSQL's socket directory, default libpq's) and NOW (the current time in epoch seconds).
set -euo pipefail

usage="usage: powersync-verify [--json]"
json=false
case "${1:-}" in
  --json) json=true ;;
  -h | --help)
    echo "$usage"
    exit 0
    ;;
  "") ;;
  *)
    echo "$usage" >&2
    exit 2
    ;;
esac
[ "$#" -le 1 ] || {
  echo "$usage" >&2
  exit 2
}
config_error() {
  echo "powersync-verify: $*" >&2
  exit 2
}
manifest=${MANIFEST:-}
[ -n "$manifest" ] || config_error "set MANIFEST: run the powersync-verify the NixOS module installs (modules/powersync/verify.nix)"
# One line per key, `key<TAB>value`: a list joined by spaces (a runner as unit=container), null as empty.
entries=$(jq -r '
  def flat: if type == "array" then map(if type == "object" then "\(.unit)=\(.container)" else tostring end) | join(" ")
            elif . == null then "" else tostring end;
  if type == "object" then to_entries[] | "\(.key)\t\(.value | flat)" else error("not a JSON object") end' -- "$manifest" 2>&1) ||
  config_error "cannot read the manifest $manifest: $entries"
declare -A given=()
while IFS=$'\t' read -r key value; do
  [ -z "$key" ] || given[$key]=$value
done <<<"$entries"
missing() { config_error "the manifest $manifest lacks $1: the NixOS module writes every key in the header of verify.sh (modules/powersync/verify.nix)"; }
for key in sockets timers imageDigest imageArchive textfile metricsUrls storageRole privatePorts; do
  [ -n "${given[$key]+set}" ] || missing "$key"
done
for key in runners configMounts watchdogInterval maxRetainedBytes maxLagSeconds slotPrefix replicates pgport ourPorts \
  allowedAddresses secretFiles; do
  [ -n "${given[$key]:-}" ] || missing "$key"
done
RUNNERS=${given[runners]} SOCKETS=${given[sockets]} TIMERS=${given[timers]} IMAGE_DIGEST=${given[imageDigest]}
IMAGE_ARCHIVE=${given[imageArchive]} CONFIG_MOUNTS=${given[configMounts]} TEXTFILE=${given[textfile]}
METRICS_URLS=${given[metricsUrls]} PGPORT=${given[pgport]} OUR_PORTS=${given[ourPorts]}
ALLOWED_ADDRESSES=${given[allowedAddresses]} SECRET_FILES=${given[secretFiles]} PRIVATE_PORTS=${given[privatePorts]}
[ "$EUID" = 0 ] || config_error "run as root (podman, the journal and PostgreSQL's postgres role need it): sudo powersync-verify"
now=${NOW:-$(printf '%(%s)T' -1)}
whole() { [[ $2 =~ ^[0-9]+$ ]] || config_error "$1 must be a whole number, not '$2'"; }
whole NOW "$now"
interval=${given[watchdogInterval]}
max_retained=${given[maxRetainedBytes]}
max_lag=${given[maxLagSeconds]}
whole watchdogInterval "$interval"
whole maxRetainedBytes "$max_retained"
whole maxLagSeconds "$max_lag"
whole pgport "$PGPORT"
slot_prefix=${given[slotPrefix]}
storage_role=${given[storageRole]}
replicates=${given[replicates]}
case $replicates in true | false) ;; *) config_error "replicates must be true or false, not '$replicates'" ;; esac

# Every value of the service's env files (and a URI's password on its own) is a secret to scrub.
secrets=()
add_secret() { [ "${#1}" -lt 4 ] || secrets+=("$1"); }
for file in $SECRET_FILES; do
  [ -r "$file" ] || continue
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in *=*) ;; *) continue ;; esac
    value=${line#*=}
    value=${value%$'\r'}
    add_secret "$value"
    case $value in *://*:*@*)
      userinfo=${value#*://}
      userinfo=${userinfo%%@*}
      add_secret "${userinfo#*:}"
      ;;
    esac
  done <"$file"
done
# $1 with every named secret replaced, in $named_scrubbed (no subshell: check runs it for every detail).
scrub_named() {
  local secret
  named_scrubbed=$1
  for secret in "${secrets[@]}"; do named_scrubbed=${named_scrubbed//"$secret"/<redacted>}; done
}
# Passwords in URIs and key=value pairs the env files did not name (a file that could not be read), as a sed
# program. No match can span whitespace: it applies alike to a text and to that text with its tabs and
# newlines made spaces, line by line or all lines at once.
unnamed='s#(://[^:/@[:space:]]*):[^@[:space:]]*@#\1:<redacted>@#g; s#([Pp][Aa][Ss][Ss][Ww][Oo][Rr][Dd]=)[^[:space:]&]*#\1<redacted>#g'
scrub() {
  scrub_named "$1"
  sed -E "$unnamed" <<<"$named_scrubbed"
}

# At most $2 characters of $1, scrubbed before it is cut: a cut through a secret would leave a piece that no
# longer matches it.
clip() {
  local text
  text=$(scrub "$1")
  printf '%s' "${text:0:$2}"
}

# One line per check: status, id, subject, detail (tab-separated, scrubbed). The details are kept apart until
# the report, which scrubs them of unnamed passwords with one sed for all.
heads=() details=()
check() { # status id subject detail
  local detail
  scrub_named "$4"
  # One line: trailing newlines dropped (they would end it in spaces), tabs and other newlines made spaces.
  detail=${named_scrubbed%"${named_scrubbed##*[!$'\n']}"}
  detail=${detail//$'\t'/ }
  detail=${detail//$'\n'/ }
  heads+=("$1"$'\t'"$2"$'\t'"$3")
  details+=("$detail")
}
pass() { check pass "$@"; }
warn() { check warn "$@"; }
fail() { check fail "$@"; }

# `systemctl show` properties of a unit, as shell variables prop_<Name>.
unit_props() {
  local key value
  prop_ActiveState="" prop_SubState="" prop_NRestarts="" prop_ActiveEnterTimestamp=""
  while IFS='=' read -r key value; do
    case $key in ActiveState | SubState | NRestarts | ActiveEnterTimestamp) printf -v "prop_$key" '%s' "$value" ;; esac
  done < <(systemctl show --timestamp=unix -p ActiveState,SubState,NRestarts,ActiveEnterTimestamp -- "$1" 2>/dev/null || true)
}

active_unit() { # id unit
  unit_props "$2"
  if [ "$prop_ActiveState" = active ]; then
    pass "$1" "$2" "active ($prop_SubState)"
  else
    fail "$1" "$2" "${prop_ActiveState:-unknown} (${prop_SubState:-unknown}): systemctl status $2"
  fi
}

# --- systemd: the runners, their restarts, the socket and the timer --------------------------------------
declare -A started=()
for runner in $RUNNERS; do
  unit=${runner%%=*}
  active_unit unit-active "$unit"
  since=${prop_ActiveEnterTimestamp#@}
  [[ $since =~ ^[0-9]+$ ]] && [ "$since" -gt 0 ] && started[$unit]=$since
  if ! [[ $prop_NRestarts =~ ^[0-9]+$ ]]; then
    fail unit-restarts "$unit" "systemd does not report NRestarts"
  elif [ "$prop_NRestarts" -eq 0 ]; then
    pass unit-restarts "$unit" "no automatic restart since it was last started"
  else
    fail unit-restarts "$unit" "restarted $prop_NRestarts time(s) since it was last started: journalctl -u $unit -b"
  fi
done
for unit in $SOCKETS; do active_unit storage-proxy "$unit"; done
for unit in $TIMERS; do active_unit watchdog-timer "$unit"; done

# --- podman: health, the image, the mounted config -------------------------------------------------------
archive_id=""
if [ -n "$IMAGE_ARCHIVE" ]; then
  # A docker-archive names its config blob `<hex>.json` (or blobs/sha256/<hex>); podman load uses that hex
  # as the image ID.
  archive_id=$(tar -xOf "$IMAGE_ARCHIVE" manifest.json 2>/dev/null | jq -r '.[0].Config // empty' 2>/dev/null || true)
  archive_id=${archive_id##*/}
  archive_id=${archive_id%.json}
fi
for runner in $RUNNERS; do
  container=${runner#*=}
  if ! inspect=$(timeout 20 podman container inspect -- "$container" 2>/dev/null); then
    for id in container-health image-pinned config-mounted; do
      fail "$id" "$container" "podman has no container $container: systemctl status ${runner%%=*}"
    done
    continue
  fi
  # Only these fields leave the inspect output; its Config.Env holds the secrets. One jq for all: the state,
  # health and image on the first line (@tsv, so an empty field keeps its place), then one line per mount.
  fields=$(jq -r '.[0] | ([(.State.Running // false | tostring), (.State.Health.Status // .State.Healthcheck.Status // ""),
    (.Image // "")] | @tsv), (.Mounts[]? | [.Destination, .Source, (.RW | tostring)] | @tsv)' <<<"$inspect")
  state=${fields%%$'\n'*}
  running=${state%%$'\t'*}
  state=${state#*$'\t'}
  health=${state%%$'\t'*}
  image_id=${state#*$'\t'}
  mounts=${fields#*$'\n'}
  [ "$mounts" != "$fields" ] || mounts=""
  if [ "$running" != true ]; then
    fail container-health "$container" "not running: systemctl status ${runner%%=*}"
  elif [ "$health" = healthy ]; then
    pass container-health "$container" "running, healthy"
  elif [ "$health" = starting ]; then
    warn container-health "$container" "running, health check still starting (start period 60 s): run again in a minute"
  else
    fail container-health "$container" "running, health ${health:-unknown}: podman healthcheck run $container"
  fi

  if [ -n "$IMAGE_DIGEST" ]; then
    repo_digests=$(timeout 20 podman image inspect -- "$image_id" 2>/dev/null | jq -r '.[0].RepoDigests[]? // empty' 2>/dev/null || true)
    if [[ $repo_digests == *"@$IMAGE_DIGEST"* ]]; then
      pass image-pinned "$container" "image ${image_id:0:12} carries the pinned $IMAGE_DIGEST"
    else
      fail image-pinned "$container" "image ${image_id:0:12} is not the pinned $IMAGE_DIGEST (it carries: $(tr '\n' ' ' <<<"${repo_digests:-no digest}"))"
    fi
  elif [ -n "$IMAGE_ARCHIVE" ]; then
    if [ -n "$archive_id" ] && [ "${image_id#sha256:}" = "$archive_id" ]; then
      pass image-pinned "$container" "image ${archive_id:0:12} is the one in $IMAGE_ARCHIVE"
    else
      fail image-pinned "$container" "image ${image_id:0:12} is not the archive's ${archive_id:-(unreadable)}"
    fi
  else
    fail image-pinned "$container" "no pin to compare with: services.powersync.image has no @sha256 digest"
  fi

  wrong=()
  for volume in $CONFIG_MOUNTS; do
    IFS=: read -r source destination options <<<"$volume"
    found=$(awk -F'\t' -v d="$destination" '$1 == d { print $2 "\t" $3; exit }' <<<"$mounts")
    if [ -z "$found" ]; then
      wrong+=("$destination is not mounted")
    elif [ "${found%%$'\t'*}" != "$source" ]; then
      wrong+=("$destination is ${found%%$'\t'*}, not this generation's $source")
    elif [ "${options:-}" = ro ] && [ "${found#*$'\t'}" != false ]; then
      wrong+=("$destination is writable")
    fi
  done
  if [ "${#wrong[@]}" -eq 0 ]; then
    pass config-mounted "$container" "$(wc -w <<<"$CONFIG_MOUNTS") file(s) as rendered, read-only"
  else
    fail config-mounted "$container" "${wrong[*]}: restart ${runner%%=*} (or deploy again)"
  fi
done

# --- the slot watchdog's latest metrics --------------------------------------------------------------------
if [ -n "$TEXTFILE" ]; then
  if ! metrics=$(cat -- "$TEXTFILE" 2>/dev/null); then
    for id in watchdog-recent source-up slot-active slot-wal; do
      fail "$id" watchdog "no metrics at $TEXTFILE: the watchdog has not run (systemctl start powersync-slot-watchdog)"
    done
  else
    # An unlabelled sample's value, in $sampled: the second blank-separated field of the first line that
    # starts with the name and a space (a loop in bash, not a process per sample).
    sample() {
      local line
      sampled=""
      while IFS= read -r line; do
        if [[ $line == "$1 "* ]]; then
          read -r _ sampled _ <<<"$line"
          return 0
        fi
      done <<<"$metrics"
    }
    sample powersync_watchdog_last_run_timestamp_seconds
    last=${sampled%%.*}
    if ! [[ $last =~ ^[0-9]+$ ]]; then
      fail watchdog-recent watchdog "no last-run timestamp in $TEXTFILE"
    elif [ "$last" -gt $((now + 60)) ]; then
      fail watchdog-recent watchdog "last run $((last - now)) s in the future: is the clock right? (timedatectl)"
    elif [ $((now - last)) -le $((3 * interval)) ]; then
      pass watchdog-recent watchdog "last run $((now - last)) s ago (every $interval s)"
    else
      fail watchdog-recent watchdog "last run $((now - last)) s ago, more than 3 × $interval s: systemctl status powersync-slot-watchdog"
    fi
    age="as of the watchdog's last run"
    sample powersync_watchdog_source_up
    if [ "$sampled" = 1 ]; then
      pass source-up source "the watchdog could query the source ($age)"
    else
      fail source-up source "the watchdog could not query the source ($age): journalctl -u powersync-slot-watchdog -n 20"
    fi
    # slot<TAB>value for one labelled family.
    per_slot() { sed -nE "s/^$1\{slot=\"([^\"]*)\"\} ([0-9.e+]+)$/\1\t\2/p" <<<"$metrics"; }
    active=$(per_slot powersync_slot_active)
    sample powersync_slot_present
    if [ "$sampled" != 1 ] || [ -z "$active" ]; then
      fail slot-active source "no slot named $slot_prefix* on the source ($age)"
    elif inactive=$(awk -F'\t' '$2 != 1 { printf "%s ", $1 }' <<<"$active") && [ -n "$inactive" ]; then
      fail slot-active source "inactive: ${inactive% } ($age)"
    else
      names=""
      while IFS= read -r line; do names+="${line%%$'\t'*} "; done <<<"$active"
      pass slot-active source "active: ${names% } ($age)"
    fi
    retained=$(per_slot powersync_slot_retained_wal_bytes)
    if [ -z "$retained" ]; then
      fail slot-wal source "no retained-WAL figure ($age)"
    else
      over=$(awk -F'\t' -v max="$max_retained" '$2 + 0 > max + 0 { printf "%s %d MiB, ", $1, $2 / 1048576 }' <<<"$retained")
      if [ -n "$over" ]; then
        fail slot-wal source "above the limit of $((max_retained / 1048576)) MiB: ${over%, } ($age)"
      else
        pass slot-wal source "$(awk -F'\t' '{ printf "%s%s %d MiB", sep, $1, $2 / 1048576; sep = ", " }' <<<"$retained") retained, limit $((max_retained / 1048576)) MiB ($age)"
      fi
    fi
  fi
fi

# --- the lag gauge -------------------------------------------------------------------------------------
for url in $METRICS_URLS; do
  if ! body=$(curl -fsS --max-time 5 -- "$url" 2>&1); then
    fail lag "$url" "metrics endpoint unreachable: $(clip "$body" 200)"
    continue
  fi
  # Prometheus text exposition: `name[{labels}] value [timestamp]`, where a label value may hold spaces and
  # braces inside its quotes, and the value is a float in any form (0, 20, 1.5e-7, 2e+01) or NaN/±Inf.
  values=$(sed -nE 's/^powersync_replication_lag_seconds(\{([^"}]|"([^"\\]|\\.)*")*\})? +([^ ]+)( .*)?$/\4/p' <<<"$body")
  # The largest sample, as printed, after "below" or "above" the alert threshold; "bad" if one is no finite
  # number.
  lag=$(awk -v limit="$max_lag" '
    /^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$/ { v = $1 + 0; if (n == 0 || v > m) { m = v; max = $1 }; n++; next }
    { bad = $1 }
    END { verdict = m < limit + 0 ? "below" : "above"; if (bad != "") print "bad " bad; else if (n) print verdict " " max }' <<<"$values")
  if [ -z "$lag" ]; then
    fail lag "$url" "powersync_replication_lag_seconds is absent: replication has not connected (auth, TLS or the lock; see the journal)"
  elif [[ $lag == "bad "* ]]; then
    fail lag "$url" "powersync_replication_lag_seconds is ${lag#bad }, not a finite number of seconds"
  elif [[ $lag == "below "* ]]; then
    pass lag "$url" "${lag#below } s, alert at $max_lag s"
  else
    fail lag "$url" "${lag#above } s, at or above the alert threshold of $max_lag s"
  fi
done

# --- the journal since each runner started ---------------------------------------------------------------
slot_seen=""
for runner in $RUNNERS; do
  unit=${runner%%=*}
  since=${started[$unit]:-}
  if [ -z "$since" ]; then
    fail journal-errors "$unit" "the unit has not started: no journal to read"
    continue
  fi
  journal=$(timeout 20 journalctl -u "$unit" --since "@$since" -o cat --no-pager -q 2>/dev/null || true)
  # Client mistakes (PSYNC_S21xx: bad or foreign tokens) are the clients' business; PSYNC_S1003 (another
  # process holds the replication lock) is normal for a short while after a restart.
  counts=$(grep -oE 'PSYNC_S[0-9]{4}' <<<"$journal" | grep -vE '^PSYNC_S21[0-9]{2}$' | sort | uniq -c | awk '{ printf "%s ×%s, ", $2, $1 }' || true)
  counts=${counts%, }
  if [ -z "$counts" ]; then
    pass journal-errors "$unit" "no PSYNC_S errors since $(date -u -d "@$since" '+%F %T') UTC"
  elif [ "$counts" = "${counts%%,*}" ] && [[ $counts == PSYNC_S1003* ]]; then
    warn journal-errors "$unit" "$counts: stood by on the replication lock (normal for about a minute after a restart)"
  else
    first=$(grep -E 'PSYNC_S[0-9]{4}' <<<"$journal" | grep -m1 -vE 'PSYNC_S(21[0-9]{2}|1003)' || true)
    fail journal-errors "$unit" "$counts since start; first: $(clip "$first" 160)"
  fi
  line=$(grep -m1 -F "Created replication slot $slot_prefix" <<<"$journal" || true)
  [ -n "$line" ] || line=$(grep -F "[$slot_prefix" <<<"$journal" | grep -m1 -F "Initial replication already done" || true)
  [ -z "$line" ] || slot_seen=$line
done
if [ "$replicates" = false ]; then
  :
elif [ -n "$slot_seen" ]; then
  case $slot_seen in
    *"Created replication slot"*) pass journal-slot journal "slot ${slot_seen##*Created replication slot } created" ;;
    *) pass journal-slot journal "slot resumed: $(clip "$slot_seen" 120)" ;;
  esac
else
  fail journal-slot journal "no \"Created replication slot $slot_prefix…\" nor a resumed slot since start"
fi

# --- PostgreSQL: the storage role ------------------------------------------------------------------------
psql=$(command -v psql || true)
if [ -z "$storage_role" ]; then
  :
elif [ -z "$psql" ]; then
  fail storage-role "$storage_role" "psql is not on PATH"
elif ! attributes=$(runuser -u postgres -- "$psql" ${PGHOST:+-h "$PGHOST"} ${PGPORT:+-p "$PGPORT"} -d "dbname=postgres connect_timeout=10" \
  -X -q -tA -F '|' -v ON_ERROR_STOP=1 -v role="$storage_role" 2>&1 \
  <<<"SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = :'role';"); then
  fail storage-role "$storage_role" "cannot ask PostgreSQL: $(clip "$attributes" 200)"
elif [ -z "$attributes" ]; then
  fail storage-role "$storage_role" "the role does not exist"
elif [ "$attributes" = "f|f" ]; then
  pass storage-role "$storage_role" "neither superuser nor replication"
else
  IFS='|' read -r super replication <<<"$attributes"
  fail storage-role "$storage_role" "superuser=$super replication=$replication: it must have neither"
fi

# --- listening sockets ------------------------------------------------------------------------------------
allowed=" $ALLOWED_ADDRESSES "
exposed=() seen=()
while read -r _ _ _ local _; do
  port=${local##*:}
  address=${local%:*}
  address=${address#[}
  address=${address%]}
  address=${address%%%*}
  case " $OUR_PORTS " in *" $port "*) ;; *) continue ;; esac
  seen+=("$port on $address")
  case $allowed in *" $address "*) ;; *) exposed+=("$port on $address") ;; esac
done < <(ss -Hltn 2>/dev/null || true)
if [ "${#exposed[@]}" -gt 0 ]; then
  fail listeners ports "listening beyond${allowed% }: ${exposed[*]}"
elif [ "${#seen[@]}" -eq 0 ]; then
  fail listeners ports "none of ports $OUR_PORTS is listening"
else
  printf -v listening '%s, ' "${seen[@]}"
  pass listeners ports "${listening%, }"
fi

# --- report ------------------------------------------------------------------------------------------------
# Each detail is one line: sed scrubs them all at once, and the last line (.) keeps empty details at the end
# from being dropped with the trailing newlines of $(…).
scrubbed=$(printf '%s\n' "${details[@]}" . | sed -E "$unnamed")
mapfile -t details <<<"$scrubbed"
results=()
for i in "${!heads[@]}"; do results+=("${heads[i]}"$'\t'"${details[i]}"); done
failed=0
for result in "${results[@]}"; do
  case $result in fail$'\t'*) failed=$((failed + 1)) ;; esac
done
if $json; then
  printf '%s\n' "${results[@]}" | jq -R -s \
    --arg host "$(uname -n)" --arg ports "$PRIVATE_PORTS" '
      {
        host: $host,
        ok: (. | split("\n") | map(select(startswith("fail\t"))) | length == 0),
        private_ports: ($ports | split(" ") | map(select(. != "") | tonumber)),
        checks: [split("\n")[] | select(. != "") | split("\t")
          | {status: .[0], id: .[1], subject: .[2], detail: .[3], fix: "docs/runbook.md#check-\(.[1])"}]
      }'
else
  printf '%-4s  %-16s  %-34s  %s\n' STATUS CHECK SUBJECT DETAIL
  for result in "${results[@]}"; do
    IFS=$'\t' read -r status id subject detail <<<"$result"
    printf '%-4s  %-16s  %-34s  %s\n' "$status" "$id" "$subject" "$detail"
    [ "$status" = pass ] || printf '%-4s  %-16s  %-34s  fix: docs/runbook.md#check-%s\n' "" "" "" "$id"
  done
  echo "${#results[@]} checks, $failed failed"
fi
[ "$failed" -eq 0 ]

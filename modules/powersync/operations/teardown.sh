#!/usr/bin/env bash
# Decommissions the PowerSync Service so no orphan slot keeps WAL on the source: marks the host decommissioned,
# stops the runners, then runs the image's `teardown` with the service's own config, environment and network,
# which drops the replication slot(s) and wipes the bucket storage. The mark (DECOMMISSIONED_FILE) keeps every
# runner, the compaction and the watchdog from starting again, through deploys and reboots, until it is deleted.
#   powersync-teardown [--yes]   exit 0 done, 1 aborted or failed, 2 usage or configuration
# Environment (set by the NixOS module through writeShellApplication's runtimeEnv; all required, no defaults):
#   UNITS                     every unit to stop, space-separated: the runners and the compaction
#   DECOMMISSIONED_FILE       the mark the units check (ConditionPathExists=!…)
#   IMAGE, NETWORK            the service's image and podman network
#   ENV_FILES, CONFIG_MOUNTS  space-separated env files and `-v` specs of the service
#   CONTAINER_USER            the service's user (uid:gid)
# SYSTEMCTL and PODMAN name the tools, default systemctl and podman on PATH (the module's runtimeInputs): never
# set by the module, so tests can put stand-ins there.
set -euo pipefail

SYSTEMCTL=${SYSTEMCTL:-systemctl}
PODMAN=${PODMAN:-podman}
usage="usage: powersync-teardown [--yes]   (--yes: do not ask for TEARDOWN)"

yes=false
case "${1:-}" in
  --yes) yes=true ;;
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
for var in UNITS DECOMMISSIONED_FILE IMAGE NETWORK ENV_FILES CONFIG_MOUNTS CONTAINER_USER; do
  [ -n "${!var:-}" ] || {
    echo "powersync-teardown: $var is not set; run the powersync-teardown the NixOS module installs" >&2
    exit 2
  }
done
unit=${UNITS:?}
mark=${DECOMMISSIONED_FILE:?}
# read -a splits on blanks without globbing, unlike an unquoted expansion.
read -r -a units <<<"$unit"
read -r -a files <<<"$ENV_FILES"
read -r -a mounts <<<"$CONFIG_MOUNTS"
# The teardown needs the source DSN to drop the slots: find out before stopping anything.
for file in "${files[@]}"; do
  [ -r "$file" ] || {
    echo "powersync-teardown: cannot read $file (run as root; is the secret deployed?). Nothing was changed." >&2
    exit 1
  }
done

cat <<MSG
powersync-teardown will:
  1. mark this host decommissioned ($mark), so nothing starts the service again,
     not the daily compaction, the watchdog, a deploy or a reboot,
  2. stop $unit (clients lose sync),
  3. drop the PowerSync replication slot(s) on the source database, so it stops keeping WAL for them,
  4. delete all bucket data from the storage database.
Nothing is done unless you type TEARDOWN.
MSG
if ! $yes; then
  printf 'Type TEARDOWN to continue: '
  answer=""
  read -r answer || true
  if [ "$answer" != TEARDOWN ]; then
    echo
    echo "Aborted: nothing was changed."
    exit 1
  fi
fi

undo="rm -f $mark && systemctl start $unit"
# Marked before anything stops: from here on no unit may start a runner again, or it would recreate the slot
# right after the teardown drops it (the daily compaction used to do exactly that).
if ! mkdir -p "$(dirname "$mark")" || ! date -u +%Y-%m-%dT%H:%M:%SZ >"$mark"; then
  echo "powersync-teardown: cannot write $mark; nothing was changed." >&2
  exit 1
fi
# Stopped next: a running service holds the storage lock the teardown needs, and would recreate the slot right
# after it is dropped.
echo "Stopping $unit"
if ! "$SYSTEMCTL" stop "${units[@]}"; then
  cat >&2 <<MSG
powersync-teardown: could not stop $unit (see systemctl status $unit); the teardown did not run.
To run the service as it was instead: $undo
MSG
  exit 1
fi

args=(run --rm "--network=$NETWORK" "--user=$CONTAINER_USER" -e POWERSYNC_CONFIG_PATH=/config/service.yaml)
for file in "${files[@]}"; do args+=(--env-file "$file"); done
for mount in "${mounts[@]}"; do args+=(-v "$mount"); done
args+=("$IMAGE" teardown TEARDOWN)

echo "Running the image's teardown"
if ! "$PODMAN" "${args[@]}"; then
  cat >&2 <<MSG
powersync-teardown: the image's teardown failed; $unit stays stopped. Right after a crash the service's lock is
held for about a minute (PSYNC_S1003, lock held): wait a minute and run powersync-teardown again. To give up and
run the service as it was instead: $undo
MSG
  exit 1
fi
cat <<MSG
Teardown done: the slot(s) are dropped and the bucket storage is empty.
$unit stays stopped, through deploys and reboots, while $mark exists.
Next: set services.powersync.enable = false and deploy.
To run the service again instead (it replicates everything from scratch): $undo
MSG

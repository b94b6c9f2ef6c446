#!/usr/bin/env bash
# Decommissions the PowerSync Service so no orphan slot keeps WAL on the source: stops the unit, then runs the
# image's `teardown` with the service's own config, environment and network, which drops the replication
# slot(s) and wipes the bucket storage.
#   powersync-teardown [--yes]   exit 0 done, 1 aborted or failed, 2 usage or configuration
# Environment (set by the NixOS module):
#   IMAGE, NETWORK            the service's image and podman network (required)
#   ENV_FILES, CONFIG_MOUNTS  space-separated env files and `-v` specs of the service (required)
#   UNITS (podman-powersync.service): every runner's unit, space-separated (a split host has several);
#   CONTAINER_USER (901:901), SYSTEMCTL (systemctl), PODMAN (podman)
set -euo pipefail

unit=${UNITS:-${UNIT:-podman-powersync.service}}
read -r -a units <<<"$unit"
SYSTEMCTL=${SYSTEMCTL:-systemctl}
PODMAN=${PODMAN:-podman}
container_user=${CONTAINER_USER:-901:901}
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
for var in IMAGE NETWORK ENV_FILES CONFIG_MOUNTS; do
  [ -n "${!var:-}" ] || {
    echo "powersync-teardown: $var is not set; run the powersync-teardown the NixOS module installs" >&2
    exit 2
  }
done
# read -a splits on blanks without globbing, unlike an unquoted expansion.
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
  1. stop $unit (clients lose sync until it runs again),
  2. drop the PowerSync replication slot(s) on the source database, so it stops keeping WAL for them,
  3. delete all bucket data from the storage database.
The next start replicates everything from scratch. Nothing is done unless you type TEARDOWN.
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

# Stopped first: a running service holds the storage lock the teardown needs, and would recreate the
# slot right after it is dropped.
echo "Stopping $unit"
if ! "$SYSTEMCTL" stop "${units[@]}"; then
  echo "powersync-teardown: could not stop $unit (see systemctl status $unit); the teardown did not run." >&2
  exit 1
fi

args=(run --rm "--network=$NETWORK" "--user=$container_user" -e POWERSYNC_CONFIG_PATH=/config/service.yaml)
for file in "${files[@]}"; do args+=(--env-file "$file"); done
for mount in "${mounts[@]}"; do args+=(-v "$mount"); done
args+=("$IMAGE" teardown TEARDOWN)

echo "Running the image's teardown"
if ! "$PODMAN" "${args[@]}"; then
  cat >&2 <<MSG
powersync-teardown: the image's teardown failed; $unit stays stopped. Right after a crash the service's lock is
held for about a minute (PSYNC_S1003, lock held): wait a minute and run powersync-teardown again. To give up and
run the service as it was instead: systemctl start $unit
MSG
  exit 1
fi
cat <<MSG
Teardown done: the slot(s) are dropped and the bucket storage is empty.
$unit stays stopped until the next boot or deploy, when it starts again and replicates from scratch, unless
you set services.powersync.enable = false and deploy.
MSG

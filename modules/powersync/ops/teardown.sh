#!/usr/bin/env bash
# Decommissions the PowerSync Service so no orphan slot keeps WAL on the source: stops the unit, then runs the
# image's `teardown` with the service's own config, environment and network, which drops the replication
# slot(s) and wipes the bucket storage.
#   powersync-teardown [--yes]
# Environment (set by the NixOS module): UNIT, IMAGE, NETWORK, CONFIG_MOUNTS (space-separated -v specs),
# ENV_FILES (space-separated), CONTAINER_USER; SYSTEMCTL and PODMAN name the commands.
set -euo pipefail

unit=${UNIT:-podman-powersync.service}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
PODMAN=${PODMAN:-podman}
: "${IMAGE:?set IMAGE}" "${NETWORK:?set NETWORK}"
container_user=${CONTAINER_USER:-901:901}

yes=false
case "${1:-}" in
  --yes) yes=true ;;
  "") ;;
  *)
    echo "usage: powersync-teardown [--yes]" >&2
    exit 2
    ;;
esac

cat <<MSG
powersync-teardown will:
  1. stop $unit (clients lose sync until it runs again),
  2. drop the PowerSync replication slot(s) on the source database, so it stops keeping WAL for them,
  3. delete all bucket data from the storage database.
The next start replicates everything from scratch. Nothing is undone by answering anything but TEARDOWN.
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

echo "Stopping $unit"
"$SYSTEMCTL" stop "$unit"

args=(run --rm "--network=$NETWORK" "--user=$container_user" -e POWERSYNC_CONFIG_PATH=/config/service.yaml)
for file in ${ENV_FILES:-}; do args+=(--env-file "$file"); done
for mount in ${CONFIG_MOUNTS:-}; do args+=(-v "$mount"); done
args+=("$IMAGE" teardown TEARDOWN)

if ! "$PODMAN" "${args[@]}"; then
  cat >&2 <<MSG
The teardown failed; $unit stays stopped. Right after a crash the service's lock is held for about a minute
(PSYNC_S1003): wait a minute and run powersync-teardown again.
MSG
  exit 1
fi
cat <<MSG
Teardown done: the slot(s) are dropped and the bucket storage is empty.
$unit starts again on the next boot or deploy unless you set services.powersync.enable = false.
MSG

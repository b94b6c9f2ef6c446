#!/usr/bin/env bash
# powersync-api-rolling-restart: after a change to the API runners, restart them one at a time, each healthy
# again before the next goes down, so clients always have a runner to reconnect to.
#
# Environment, set by the module (runtimeEnv) and required: POWERSYNC_API_GENERATION (a hash of the runners'
# definitions), CONTAINERS (their container names, in order), STATE_FILE (where the generation last applied
# is kept; under /run, so empty at boot), HEALTH_TIMEOUT (seconds one runner may take to answer its health
# check again). The first run after boot only records the generation: the runners have just started with it.
set -euo pipefail

: "${POWERSYNC_API_GENERATION:?}" "${CONTAINERS:?}" "${STATE_FILE:?}" "${HEALTH_TIMEOUT:?}"
health_timeout=$HEALTH_TIMEOUT

applied=
[ -f "$STATE_FILE" ] && applied=$(cat "$STATE_FILE")
mkdir -p "$(dirname "$STATE_FILE")"
if [ -z "$applied" ]; then
  echo "recording API runner generation $POWERSYNC_API_GENERATION (first run since boot: nothing to roll)"
  printf '%s\n' "$POWERSYNC_API_GENERATION" > "$STATE_FILE"
  exit 0
fi
if [ "$applied" = "$POWERSYNC_API_GENERATION" ]; then
  echo "API runners already run generation $POWERSYNC_API_GENERATION"
  exit 0
fi

for container in $CONTAINERS; do
  unit="podman-$container.service"
  echo "restarting $unit"
  systemctl restart "$unit"
  waited=0
  until podman healthcheck run "$container" >/dev/null 2>&1; do
    if [ "$waited" -ge "$health_timeout" ]; then
      echo "$unit is not healthy ${health_timeout}s after its restart; stopping the roll here so the other runners keep serving. See journalctl -u $unit." >&2
      exit 1
    fi
    sleep 2
    waited=$((waited + 2))
  done
  echo "$unit is healthy again after ${waited}s"
done
printf '%s\n' "$POWERSYNC_API_GENERATION" > "$STATE_FILE"

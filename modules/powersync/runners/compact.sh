#!/usr/bin/env bash
# powersync-compact: run the image's `compact` in a one-off container and record the outcome for Prometheus.
#
#   compact.sh <podman run arguments…>     (the module passes lib.compactArguments)
#
# Environment: TEXTFILE, where to write the metrics (node exporter textfile collector), set by the module
# (runtimeEnv) and required. PODMAN, the podman binary, defaults to podman on PATH (the module's
# runtimeInputs): never set by the module, so tests can put a stand-in there.
#
# Compaction rewrites superseded operations in bucket storage into fewer rows, so storage stops growing
# with every update a client has already seen; PowerSync recommends it daily. It reads and writes storage
# only, never the source, and is safe while the service runs. It opens the metrics port, so it runs in its
# own container (its own network namespace), never inside the service's.
#
# Metrics: powersync_compact_last_success_timestamp_seconds (kept from the previous run when this one fails)
# and powersync_compact_last_exit_code; the file is replaced atomically.
set -euo pipefail

: "${TEXTFILE:?TEXTFILE must name the metrics file}"
podman=${PODMAN:-podman}

last_success=
if [ -f "$TEXTFILE" ]; then
  last_success=$(sed -n 's/^powersync_compact_last_success_timestamp_seconds \([0-9][0-9]*\)$/\1/p' "$TEXTFILE")
fi

started=$(date +%s)
status=0
"$podman" run "$@" || status=$?
finished=$(date +%s)
if [ "$status" -eq 0 ]; then
  last_success=$finished
fi

tmp="$TEXTFILE.tmp.$$"
{
  echo "# HELP powersync_compact_last_exit_code Exit code of the last PowerSync storage compaction (0 = success)."
  echo "# TYPE powersync_compact_last_exit_code gauge"
  echo "powersync_compact_last_exit_code $status"
  echo "# HELP powersync_compact_last_duration_seconds Duration of the last PowerSync storage compaction."
  echo "# TYPE powersync_compact_last_duration_seconds gauge"
  echo "powersync_compact_last_duration_seconds $((finished - started))"
  if [ -n "$last_success" ]; then
    echo "# HELP powersync_compact_last_success_timestamp_seconds When PowerSync storage compaction last succeeded."
    echo "# TYPE powersync_compact_last_success_timestamp_seconds gauge"
    echo "powersync_compact_last_success_timestamp_seconds $last_success"
  fi
} > "$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$TEXTFILE"

if [ "$status" -ne 0 ]; then
  echo "powersync-compact: compaction failed (exit $status); storage keeps its superseded rows until a run succeeds. See the lines above, and docs/runbook.md#compaction." >&2
fi
exit "$status"

#!/bin/sh
# Bump the PowerSync Service image pin: the familiar entry point, a thin wrapper around the one
# implementation, `cargo xtask bump` (see `cargo xtask bump --help`). Examples:
#   utils/pkgs/powersync-service/update.sh --dry-run
#   utils/pkgs/powersync-service/update.sh --commit
set -eu
cd "$(dirname "$0")/../../.."
# XTASK lets tests run the already-built binary; leave it unset.
# shellcheck disable=SC2086 # XTASK is a command with its arguments
exec ${XTASK:-cargo xtask} bump "$@"

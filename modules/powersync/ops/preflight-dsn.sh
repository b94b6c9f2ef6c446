#!/usr/bin/env bash
# Refuses a source connection the service cannot replicate through, before the container starts
# (ExecStartPre): PS_SOURCE_DSN missing, quoted, or in a form the service reads differently from psql
# (source-connection.sh says which), Supabase's Supavisor pooler (it rejects the replication handshake), the
# old pooler port 6543, or `replication=database`. It never prints the DSN, the user or the password: only
# host and port.
#   preflight-dsn.sh ENV_FILE...   exit 0 ok, 1 refused, 2 usage
# Environment: the connection's own keys, as source-connection.sh describes (SOURCE_HOSTNAME, …).
# Pure bash (no external command), so there is nothing to inject and nothing that can see the secret.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: preflight-dsn.sh ENV_FILE... (the files the container gets with --env-file)" >&2
  exit 2
fi

refuse() {
  echo "powersync preflight: $*" >&2
  exit 1
}

# shellcheck source=modules/powersync/ops/source-connection.sh
. "$(dirname "${BASH_SOURCE[0]}")/source-connection.sh"

source_connection "$@" || refuse "$conn_error"

shown=$conn_host
case $shown in *:*) shown="[$shown]" ;; esac
# Host names may end in the root's dot.
case ${conn_host%.} in
  *.pooler.supabase.com)
    refuse "PS_SOURCE_DSN points at Supabase's pooler ($conn_host), which rejects replication; use the direct endpoint db.<project>.supabase.co:5432"
    ;;
  db.*.supabase.co)
    [ "$conn_port" != 6543 ] || refuse "PS_SOURCE_DSN uses port 6543 on $conn_host, the pooler's port; use 5432 (the direct endpoint)"
    ;;
esac

echo "powersync preflight: source DSN ok (host $shown, port $conn_port)"

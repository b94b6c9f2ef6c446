#!/usr/bin/env bash
# Refuses a source connection the service cannot replicate through, before the container starts
# (ExecStartPre): PS_SOURCE_DSN missing, quoted, or in a form the service does not read as written
# (source-connection.sh says which), Supabase's Supavisor pooler (it rejects the replication handshake), the
# old pooler port 6543, or `replication=database`. It never prints the DSN, the user or the password: only
# host and port.
#   preflight-dsn.sh ENV_FILE...   exit 0 ok, 1 refused, 2 usage
# Environment: the connection's own keys, as source-connection.sh describes (SOURCE_HOSTNAME, …), set by the
# module (runtimeEnv) for each key the rendered connection has; an absent key leaves the DSN's.
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

# shellcheck source=modules/powersync/operations/source-connection.sh
. "$(dirname "${BASH_SOURCE[0]}")/source-connection.sh"

source_connection "$@" || refuse "$conn_error"
for note in "${conn_notes[@]}"; do echo "powersync preflight: note: $note" >&2; done

# Both the host the service connects to and the DSN's own (a pooler string is wrong even where the rendered
# hostname key overrides its host: its user is the pooler's). Host names may end in the root's dot.
for endpoint in "$conn_host|$conn_port" "$conn_dsn_host|$conn_dsn_port"; do
  IFS='|' read -r host port <<<"$endpoint"
  case ${host%.} in
    *.pooler.supabase.com)
      refuse "PS_SOURCE_DSN points at Supabase's pooler ($host), which rejects replication; use the direct endpoint's connection string, postgresql://<user>:<pw>@db.<project>.supabase.co:5432/postgres"
      ;;
    db.*.supabase.co)
      [ "$port" != 6543 ] || refuse "PS_SOURCE_DSN uses port 6543 on $host, the pooler's port; use 5432 (the direct endpoint)"
      ;;
  esac
done

shown=$conn_host
case $shown in *:*) shown="[$shown]" ;; esac
echo "powersync preflight: source DSN ok (host $shown, port $conn_port)"

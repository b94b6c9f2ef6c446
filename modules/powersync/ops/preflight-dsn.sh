#!/usr/bin/env bash
# Refuses a source DSN the service cannot replicate through, before the container starts (ExecStartPre):
# missing or empty, Supabase's Supavisor pooler (it rejects the replication handshake), the old pooler port
# 6543, or `replication=database`. It never prints the DSN: only host and port, which are not secret.
#   preflight-dsn.sh ENV_FILE...   exit 0 ok, 1 refused, 2 usage
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: preflight-dsn.sh ENV_FILE..." >&2
  exit 2
fi

refuse() {
  echo "powersync preflight: $*" >&2
  exit 1
}

# Read the files as podman's --env-file does (what the container gets): the last assignment wins and
# leading blanks are dropped.
dsn=""
found=false
for file in "$@"; do
  [ -r "$file" ] || refuse "cannot read the environment file $file (is the sops secret or template deployed?)"
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line#"${line%%[![:space:]]*}"}
    case $line in
      PS_SOURCE_DSN=*)
        found=true
        dsn=${line#PS_SOURCE_DSN=}
        ;;
    esac
  done <"$file"
done
# Surrounding quotes are the file's syntax, not part of the value (podman's --env-file reads quoted values).
case $dsn in
  \"*\") dsn=${dsn#\"} dsn=${dsn%\"} ;;
  \'*\') dsn=${dsn#\'} dsn=${dsn%\'} ;;
esac

$found || refuse "PS_SOURCE_DSN is not set in $*; it must hold the direct endpoint, postgresql://<user>:<pw>@db.<project>.supabase.co:5432/postgres"
[ -n "$dsn" ] || refuse "PS_SOURCE_DSN is empty in $*"

case $dsn in
  postgres://* | postgresql://*) ;;
  *) refuse "PS_SOURCE_DSN is not a postgres:// or postgresql:// URI" ;;
esac

rest=${dsn#*://}
authority=${rest%%[/?]*}
query=""
case $rest in *\?*) query=${rest#*\?} ;; esac
hostport=${authority##*@}
case $hostport in
  \[*\]:*) host=${hostport%%]*}] port=${hostport##*]:} ;;
  \[*\]) host=$hostport port=5432 ;;
  *:*) host=${hostport%%:*} port=${hostport##*:} ;;
  *) host=$hostport port=5432 ;;
esac
host_lower=$(printf '%s' "$host" | tr '[:upper:]' '[:lower:]')

case $host_lower in
  *.pooler.supabase.com)
    refuse "PS_SOURCE_DSN points at Supabase's pooler ($host), which rejects replication; use the direct endpoint db.<project>.supabase.co:5432"
    ;;
esac
case $host_lower in
  db.*.supabase.co)
    [ "$port" != 6543 ] || refuse "PS_SOURCE_DSN uses port 6543 on $host, the pooler's port; use 5432 (the direct endpoint)"
    ;;
esac
case "&$query&" in
  *"&replication=database&"*)
    refuse "PS_SOURCE_DSN carries replication=database; remove it (the service opens its own replication connection)"
    ;;
esac

echo "powersync preflight: source DSN ok (host $host, port $port)"

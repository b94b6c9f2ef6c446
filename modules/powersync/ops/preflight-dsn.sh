#!/usr/bin/env bash
# Refuses a source DSN the service cannot replicate through, before the container starts (ExecStartPre):
# missing or empty, Supabase's Supavisor pooler (it rejects the replication handshake), the old pooler port
# 6543, or `replication=database`. It never prints the DSN, the user or the password: only host and port.
#   preflight-dsn.sh ENV_FILE...   exit 0 ok, 1 refused, 2 usage
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

# Read the files as podman's --env-file does (what the container gets): the last assignment wins, leading
# blanks are dropped. Any unreadable file is refused: podman would fail on it too, less clearly.
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
[ -n "$dsn" ] || refuse "PS_SOURCE_DSN is empty in $*; set it to postgresql://<user>:<pw>@db.<project>.supabase.co:5432/postgres"

case $dsn in
  postgres://* | postgresql://*) ;;
  *) refuse "PS_SOURCE_DSN is not a postgres:// or postgresql:// URI; use postgresql://<user>:<pw>@db.<project>.supabase.co:5432/postgres" ;;
esac

# Split as a URL parser does: the authority ends at the first / ? or #, and the host follows its last @.
rest=${dsn#*://}
authority=${rest%%[/?#]*}
after=${rest#"$authority"}
query=""
case $after in *\?*) query=${after#*\?} query=${query%%#*} ;; esac
# A raw / ? # in the password ends the authority early: the "host" would then be the user and the "port" a
# piece of the password. Refuse without echoing any of it (an @ in a query value, after its =, is fine).
unencoded="PS_SOURCE_DSN cannot be split into host and port: percent-encode special characters in the password (/ as %2F, ? as %3F, # as %23, @ as %40)"
case $authority in
  *@*) ;;
  *) case ${after%%=*} in *@*) refuse "$unencoded" ;; esac ;;
esac
hostport=${authority##*@}
case $hostport in
  \[*\]:*) host=${hostport%%]*}] port=${hostport##*]:} ;;
  \[*\]) host=$hostport port=5432 ;;
  *:*) host=${hostport%%:*} port=${hostport#*:} ;;
  *) host=$hostport port=5432 ;;
esac
[[ $port =~ ^[0-9]+$ ]] || refuse "$unencoded"
[ -n "$host" ] || refuse "PS_SOURCE_DSN names no host; use the direct endpoint db.<project>.supabase.co:5432"

# Host names are case-insensitive and may end in the root's dot.
host_key=${host,,}
host_key=${host_key%.}
case $host_key in
  *.pooler.supabase.com)
    refuse "PS_SOURCE_DSN points at Supabase's pooler ($host), which rejects replication; use the direct endpoint db.<project>.supabase.co:5432"
    ;;
  db.*.supabase.co)
    [ "$port" != 6543 ] || refuse "PS_SOURCE_DSN uses port 6543 on $host, the pooler's port; use 5432 (the direct endpoint)"
    ;;
esac
case "&${query,,}&" in
  *"&replication=database&"*)
    refuse "PS_SOURCE_DSN carries replication=database; remove it (the service opens its own replication connection)"
    ;;
esac

echo "powersync preflight: source DSN ok (host $host, port $port)"

#!/usr/bin/env bash
# Generates the PowerSync storage password once, hands it to the container as an env file, and sets it on the
# storage role as a SCRAM-SHA-256 verifier computed here: the password itself never reaches PostgreSQL, so
# neither its log (log_statement = ddl/all, or the STATEMENT line of a failed ALTER ROLE) nor
# pg_stat_activity can show it. It never appears in argv either: the verifier goes to psql on stdin.
#
# Environment, set by the module (runtimeEnv) and required: STATE_DIR (root-only directory), ENV_FILE (the env
# file the container reads), ROLE (the storage role), SCRAM_VERIFIER (command printing the verifier of the
# password on its stdin), PGPORT (PostgreSQL's port, read by psql). psql reaches PostgreSQL as the
# `postgres` OS user on the local socket; tests point PGHOST at theirs.
set -euo pipefail

: "${STATE_DIR:?}" "${ENV_FILE:?}" "${ROLE:?}" "${SCRAM_VERIFIER:?}" "${PGPORT:?}"
umask 077

case $ROLE in
  *[!a-z0-9_]* | "") echo "set-password: ROLE must be a plain lower-case identifier, got '$ROLE'" >&2; exit 1 ;;
esac

password_file=$STATE_DIR/storage-password
if [ ! -s "$password_file" ]; then
  # 36 random bytes, base64 without +/= : ~280 bits, only [A-Za-z0-9], so it is safe in an env file
  # (podman passes values verbatim) and SASLprep leaves it unchanged.
  head -c 36 /dev/urandom | base64 -w0 | tr -d '+/=' > "$password_file.tmp"
  mv "$password_file.tmp" "$password_file"
fi

verifier=$($SCRAM_VERIFIER < "$password_file")
case $verifier in
  'SCRAM-SHA-256$'*) ;;
  *) echo "set-password: $SCRAM_VERIFIER printed no SCRAM-SHA-256 verifier" >&2; exit 1 ;;
esac

printf 'PS_STORAGE_PASSWORD=%s\n' "$(cat "$password_file")" > "$ENV_FILE.tmp"
mv "$ENV_FILE.tmp" "$ENV_FILE"

# Set on every start, so a re-initialised database gets it back.
printf 'ALTER ROLE "%s" WITH PASSWORD '\''%s'\'';\n' "$ROLE" "$verifier" \
  | runuser -u postgres -- psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 -d postgres

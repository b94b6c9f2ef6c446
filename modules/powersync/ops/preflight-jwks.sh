#!/usr/bin/env bash
# Refuses a JWKS that serves no usable key, before the container starts (ExecStartPre) and from the watchdog:
# a Supabase project still on the legacy HS256 secret publishes {"keys":[]}, and the service would start green
# and refuse every client (401 PSYNC_S2101). Network trouble only warns, so an outage cannot block a restart.
#   preflight-jwks.sh URI   exit 0 usable keys (or a network warning), 1 refused, 2 usage
set -euo pipefail

[ "$#" -eq 1 ] || {
  echo "usage: preflight-jwks.sh URI" >&2
  exit 2
}
uri=$1
CURL=${CURL:-curl}
JQ=${JQ:-jq}
connect_timeout=${JWKS_CONNECT_TIMEOUT:-5}
max_time=${JWKS_MAX_TIME:-15}

body=$(mktemp)
trap 'rm -f "$body"' EXIT

# curl exits non-zero without an HTTP status on DNS, connection and timeout failures.
if ! status=$("$CURL" -sS -o "$body" -w '%{http_code}' --connect-timeout "$connect_timeout" --max-time "$max_time" "$uri" 2>/dev/null); then
  echo "powersync preflight: WARNING: could not fetch the JWKS at $uri (network); not blocking the start"
  exit 0
fi
case $status in
  5*)
    echo "powersync preflight: WARNING: the JWKS at $uri answered $status; not blocking the start"
    exit 0
    ;;
  200) ;;
  *)
    echo "powersync preflight: the JWKS at $uri answered HTTP $status; check services.powersync.auth.jwksUri" >&2
    exit 1
    ;;
esac

if ! usable=$("$JQ" -e '
    if (.keys | type) == "array" then
      [.keys[] | select((.kty == "RSA" or .kty == "EC" or .kty == "OKP")
                        and (.use // "sig") != "enc"
                        and ((.alg // "") | startswith("HS") | not))] | length
    else error("no keys array") end' "$body" 2>/dev/null); then
  echo "powersync preflight: $uri did not serve a JWKS (no JSON object with a \"keys\" array)" >&2
  exit 1
fi
if [ "$usable" -eq 0 ]; then
  cat >&2 <<MSG
powersync preflight: the JWKS at $uri has no usable signing key, so every client would get 401.
A Supabase project that still signs with the legacy HS256 secret publishes an empty JWKS: enable JWT
signing keys (asymmetric, e.g. ES256) in the Supabase dashboard, or point services.powersync.auth.jwksUri
at the JWKS that signs your tokens.
MSG
  exit 1
fi
echo "powersync preflight: the JWKS at $uri serves $usable usable key(s)"

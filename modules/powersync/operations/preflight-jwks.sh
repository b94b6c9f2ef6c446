#!/usr/bin/env bash
# Refuses a JWKS that serves no usable key, before the container starts (ExecStartPre) and from the watchdog:
# a Supabase project still on the legacy HS256 secret publishes {"keys":[]}, and the service would start green
# and refuse every client (401 PSYNC_S2101). Transient trouble only warns, so an outage cannot block a restart.
#   preflight-jwks.sh URI   exit 0 usable keys, or a WARNING line (network trouble, a timeout, HTTP 401, 403,
#   429, 5xx: transient); 1 refused (HTTP 404, or 200 without a usable key); 2 usage or a missing tool
# Inputs: the argument, and JWKS_CONNECT_TIMEOUT and JWKS_MAX_TIME (seconds: curl's bounds; the module passes
# lib.defaults.operations.preflight.jwks, and the watchdog's TimeoutStartSec counts on them). Never set by the
# module, for tests: CURL, JQ (the commands, default curl and jq on PATH).
set -euo pipefail

[ "$#" -eq 1 ] || {
  echo "usage: preflight-jwks.sh URI" >&2
  exit 2
}
uri=$1
CURL=${CURL:-curl}
JQ=${JQ:-jq}
# Exit 2, not 1: a missing bound is this host's configuration, not a refused JWKS.
for var in JWKS_CONNECT_TIMEOUT JWKS_MAX_TIME; do
  [ -n "${!var:-}" ] || {
    echo "powersync preflight: set $var (see the header of preflight-jwks.sh)" >&2
    exit 2
  }
done
connect_timeout=$JWKS_CONNECT_TIMEOUT
max_time=$JWKS_MAX_TIME
supabase_uri="https://<project>.supabase.co/auth/v1/.well-known/jwks.json"

warn() {
  echo "powersync preflight: WARNING: $*; not blocking the start"
  exit 0
}
refuse() {
  echo "powersync preflight: $*" >&2
  exit 1
}
tool_missing() {
  echo "powersync preflight: cannot run $1 (not on PATH?)" >&2
  exit 2
}

# Body and status in one capture, the status on the last line: no temporary file to clean up. Redirects are
# followed, as the service's own fetch does.
if response=$("$CURL" -s -L --max-redirs 5 --connect-timeout "$connect_timeout" --max-time "$max_time" \
  -w '\n%{http_code}' "$uri"); then
  rc=0
else
  rc=$?
fi
case $rc in
  0) ;;
  126 | 127) tool_missing "$CURL" ;;
  1 | 3) refuse "cannot fetch $uri: not a usable http(s) URI; check services.powersync.auth.jwksUri ($supabase_uri)" ;;
  6) warn "could not resolve the host of $uri (DNS)" ;;
  7) warn "connection to $uri refused or unreachable" ;;
  28) warn "fetching $uri timed out (connect ${connect_timeout}s, total ${max_time}s)" ;;
  *) warn "could not fetch $uri (curl exit $rc: network or TLS trouble)" ;;
esac
status=${response##*$'\n'}
body=${response%$'\n'*}
# Only a definite answer fails the start: 404 (no JWKS there) or a 200 without a usable key. Anything else
# (401/403 from a gateway, 429 rate limiting, 5xx) may pass; the service itself starts without the JWKS and
# fetches it later (clients get 401 PSYNC_S2204 meanwhile), so a transient answer must not block a restart.
case $status in
  200) ;;
  404) refuse "the JWKS at $uri answered HTTP 404: wrong URI? Check services.powersync.auth.jwksUri ($supabase_uri)" ;;
  401 | 403) warn "the JWKS at $uri answered HTTP $status (access refused, perhaps for a while)" ;;
  429) warn "the JWKS at $uri answered HTTP 429 (rate limited)" ;;
  5*) warn "the JWKS at $uri answered HTTP $status (the server's trouble)" ;;
  *) warn "the JWKS at $uri answered HTTP $status" ;;
esac

# A key the service verifies tokens with: asymmetric (the service ignores `oct`/HS256 keys), for signatures,
# not labelled with an HMAC alg, and, when it lists key_ops, allowed to verify (the service ignores it
# otherwise: 401 PSYNC_S2101). Anything that is JSON but not a JWKS counts as no usable key.
if usable=$("$JQ" '
    if type == "object" and (.keys | type) == "array" then
      [.keys[] | select(type == "object"
                        and (.kty == "RSA" or .kty == "EC" or .kty == "OKP")
                        and (.use // "sig") != "enc"
                        and ((.alg // "") | tostring | ascii_upcase | startswith("HS") | not)
                        and (.key_ops == null
                             or ((.key_ops | type) == "array" and any(.key_ops[]; . == "verify"))))] | length
    else 0 end' <<<"$body" 2>/dev/null); then
  rc=0
else
  rc=$?
fi
[ "$rc" -lt 126 ] || tool_missing "$JQ"
# jq prints nothing for an empty body, and several numbers for several JSON texts: neither is a JWKS.
if [ "$rc" -ne 0 ] || ! [[ $usable =~ ^[0-9]+$ ]]; then
  refuse "$uri answered 200 but not with JSON; is it the JWKS URI ($supabase_uri)?"
fi
if [ "$usable" -eq 0 ]; then
  cat >&2 <<MSG
powersync preflight: the JWKS at $uri has no usable signing key (RSA, EC or OKP for signatures, with
"verify" in its key_ops if it lists any; HS256/oct keys do not count), so every
client would get 401 (PSYNC_S2101). A Supabase project that still signs with the legacy HS256 secret
publishes exactly this, {"keys":[]}: enable asymmetric JWT signing keys (e.g. ES256) in the Supabase dashboard
(Project Settings, JWT Keys), or point services.powersync.auth.jwksUri at the JWKS that signs your tokens.
MSG
  exit 1
fi
echo "powersync preflight: the JWKS at $uri serves $usable usable key(s)"

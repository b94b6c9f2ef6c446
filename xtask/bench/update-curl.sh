#!/usr/bin/env bash
# The hand-written curl+jq bump this repository replaces (the shape of the operator's old update.sh): token,
# tag list, a manifest HEAD per candidate tag, sed. Kept only as the baseline of `cargo xtask bench`; it
# writes its result next to the pin ($PIN.new), never over it, and verifies nothing.
# Environment: REGISTRY (base URL), REPO (repository), PIN (pin file).
set -euo pipefail
current=$(sed -n 's/^ *tag = "\(.*\)";/\1/p' "$PIN")
series=${current%.*}
challenge=$(curl -sS -o /dev/null -D - "$REGISTRY/v2/$REPO/tags/list" | tr -d '\r' | grep -i '^www-authenticate:')
param() { sed -n "s/.*$1=\"\([^\"]*\)\".*/\1/p" <<<"$challenge"; }
token=$(curl -fsS -G "$(param realm)" --data-urlencode "service=$(param service)" --data-urlencode "scope=$(param scope)" |
  jq -r '.token // .access_token')
tags=$(curl -fsS -H "Authorization: Bearer $token" "$REGISTRY/v2/$REPO/tags/list" |
  jq -r '.tags[]' | grep -E "^${series//./\\.}\.[0-9]+$" | sort -V)
newest="" digest=""
for tag in $tags; do
  digest=$(curl -fsS -o /dev/null -D - -I -H "Authorization: Bearer $token" \
    -H "Accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json" \
    "$REGISTRY/v2/$REPO/manifests/$tag" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
  newest=$tag
done
sed -e "s/tag = \".*\";/tag = \"$newest\";/" -e "s/digest = \".*\";/digest = \"$digest\";/" "$PIN" >"$PIN.new"
echo "$newest $digest"

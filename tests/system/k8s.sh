#!/usr/bin/env bash
# The Kubernetes manifests render with `kubectl kustomize` (base and the GPU
# overlay) and validate offline against the Kubernetes API schemas of the
# `kubernetes-models` npm package (k8s/validate.mjs), plus herd's own
# consistency checks. Installs kubectl (Debian's kubernetes-client) when
# missing and the npm packages into CACHE_DIR; fails with a clear message
# when either cannot be had (CI installs what tests need; nothing skips).
# Usage: k8s.sh K8S_DIR CACHE_DIR
set -uo pipefail
k8s=$(cd "$1" && pwd) cache=$2
skip() { echo "FAIL: cannot run: $*" >&2; exit 1; } # never a silent skip
fail() { echo "FAIL: $*" >&2; exit 1; }

if ! command -v kubectl >/dev/null; then
  [ "$(id -u)" = 0 ] || skip "kubectl missing and not root (apt-get install kubernetes-client)"
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends \
    kubernetes-client > /dev/null 2>&1 || skip "cannot install kubernetes-client"
fi
command -v node >/dev/null && command -v npm >/dev/null || skip "node/npm missing"
mkdir -p "$cache"
if [ ! -d "$cache/node_modules/kubernetes-models" ] || [ ! -d "$cache/node_modules/yaml" ]; then
  (cd "$cache" && timeout 300 npm install --no-audit --no-fund --silent \
     kubernetes-models@5.1.0 yaml@2.9.1 > npm.log 2>&1) ||
    { tail -5 "$cache/npm.log"; skip "npm install kubernetes-models failed (offline?)"; }
fi
cp "$k8s/validate.mjs" "$cache/validate.mjs"
for target in base overlays/gpu; do
  kubectl kustomize "$k8s/$target" > "$cache/rendered.yaml" 2> "$cache/render.err" ||
    { cat "$cache/render.err"; fail "kubectl kustomize k8s/$target"; }
  (cd "$cache" && node validate.mjs --herd rendered.yaml) || fail "k8s/$target does not validate"
done
grep -q 'nvidia.com/gpu: 1' "$cache/rendered.yaml" || fail "GPU overlay has no nvidia.com/gpu limit"
# A broken manifest must fail: the validator is not a no-op.
sed 's/completionMode: Indexed/completionMode: 7/' "$cache/rendered.yaml" > "$cache/broken.yaml"
(cd "$cache" && node validate.mjs --herd broken.yaml > /dev/null) && fail "a broken Job validated"
echo "PASS: k8s manifests"

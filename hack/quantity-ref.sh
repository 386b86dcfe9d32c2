#!/usr/bin/env bash
# Builds tests/quantity-ref (Kubernetes' own resource.ParseQuantity behind a line protocol, the
# reference for tests/quantity_kubernetes.rs) into the tools cache outside the repo and prints
# the binary's path. Rebuilt only when its sources change.
#
#   MODELARTS_QUANTITY_REF=$(hack/quantity-ref.sh) cargo test --test quantity_kubernetes
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${MODELARTS_OPERATOR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/modelarts-operator/tools}
BIN="$CACHE/bin"
SRC=tests/quantity-ref
mkdir -p "$BIN"

log() { printf '[quantity-ref] %s\n' "$*" >&2; }
command -v go >/dev/null || { log "error: 'go' not found on PATH (Go >= 1.26 needed)"; exit 1; }

# The stamp is a hash of the helper's sources (go.mod pins apimachinery, go.sum its hashes).
stamp=$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go" | sha256sum | cut -d' ' -f1)
if [ -x "$BIN/quantity-ref" ] && [ "$(cat "$BIN/.quantity-ref" 2>/dev/null)" = "$stamp" ]; then
  echo "$BIN/quantity-ref"
  exit 0
fi

exec 8>"$CACHE/.quantity-ref.lock"
flock 8
log "building $SRC (k8s.io/apimachinery from the Go module proxy)"
t0=$(date +%s)
(
  cd "$SRC"
  export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
  go build -trimpath -o "$BIN/quantity-ref.tmp" . >&2
)
mv "$BIN/quantity-ref.tmp" "$BIN/quantity-ref"
echo "$stamp" > "$BIN/.quantity-ref"
log "built in $(( $(date +%s) - t0 ))s"
echo "$BIN/quantity-ref"

#!/usr/bin/env bash
# Builds the observability tools the tests run for real, from the Go module proxy, into the
# same cache as hack/tools.sh, and prints the cache's bin directory:
#   hack/observability-tools.sh [promtool|prometheus|kube-state-metrics|all]   (default all)
# Each is rebuilt only when missing or of another version. Cold: ~6-10 min on 2 cores.
set -euo pipefail

PROMETHEUS_MODULE_VERSION=${PROMETHEUS_MODULE_VERSION:-v0.316.0} # Prometheus 3.x, Go module tag
KSM_VERSION=${KSM_VERSION:-v2.18.0}
CACHE=${MODELARTS_OPERATOR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/modelarts-operator/tools}
BIN="$CACHE/bin"
mkdir -p "$BIN" "$CACHE/versions"

log() { printf '[observability-tools] %s\n' "$*" >&2; }
since() { echo $(( $(date +%s) - $1 ))s; }

# go install into a temporary GOBIN, then move into place and record the version, so an
# interrupted build never leaves a half-written binary that looks current.
install() { # name version package...
  local name=$1 version=$2; shift 2
  local stamp="$CACHE/versions/$name"
  if [ -x "$BIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then return; fi
  command -v go >/dev/null || { log "error: 'go' not found on PATH (Go >= 1.26 needed)"; exit 1; }
  log "building $name $version from the Go module proxy"
  local t0 tmp; t0=$(date +%s); tmp=$(mktemp -d)
  (
    export GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$tmp"
    go install -trimpath -ldflags "-s -w" "$@" >&2
  )
  mv "$tmp/$name" "$BIN/$name"
  rm -rf "$tmp"
  echo "$version" > "$stamp"
  log "$name built in $(since "$t0")"
}

promtool() { install promtool "$PROMETHEUS_MODULE_VERSION" "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION"; }
prometheus() { install prometheus "$PROMETHEUS_MODULE_VERSION" "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_MODULE_VERSION"; }
# `go install pkg@version` reads the module's version list, which the proxy here refuses for
# kube-state-metrics (403); a throwaway module that requires the exact version avoids it.
ksm() {
  local stamp="$CACHE/versions/kube-state-metrics"
  if [ -x "$BIN/kube-state-metrics" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$KSM_VERSION" ]; then return; fi
  command -v go >/dev/null || { log "error: 'go' not found on PATH (Go >= 1.26 needed)"; exit 1; }
  log "building kube-state-metrics $KSM_VERSION from the Go module proxy"
  local t0 dir="$CACHE/src/kube-state-metrics-$KSM_VERSION"; t0=$(date +%s); mkdir -p "$dir"
  printf 'module modelarts-operator.invalid/ksm\n\ngo 1.26\n\nrequire k8s.io/kube-state-metrics/v2 %s\n' "$KSM_VERSION" > "$dir/go.mod"
  printf 'package tools\n\nimport _ "k8s.io/kube-state-metrics/v2"\n' > "$dir/tools.go"
  (
    cd "$dir"
    export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
    go mod tidy >&2
    go build -trimpath -ldflags "-s -w" -o "$BIN/kube-state-metrics.tmp" k8s.io/kube-state-metrics/v2 >&2
  )
  mv "$BIN/kube-state-metrics.tmp" "$BIN/kube-state-metrics"
  echo "$KSM_VERSION" > "$stamp"
  log "kube-state-metrics built in $(since "$t0")"
}

case "${1:-all}" in
  promtool) promtool ;;
  prometheus) prometheus ;;
  kube-state-metrics) ksm ;;
  all) promtool; prometheus; ksm ;;
  *) log "usage: $0 [promtool|prometheus|kube-state-metrics|all]"; exit 2 ;;
esac
echo "$BIN"

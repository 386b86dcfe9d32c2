#!/usr/bin/env bash
# Runs every test the way CI does: the official-SDK venv for the interop tests, Kubernetes' own
# quantity parser (hack/quantity-ref.sh) for the quantity differential test, a real control
# plane (etcd + kube-apiserver on loopback) for the cluster tests, then `cargo test --workspace`
# (the operator and the simulator crate), then the Helm tests on a real node (hack/test-node.sh).
# Nothing is skipped here: MODELARTS_REQUIRE_* turn a missing prerequisite into a failure.
#
#   hack/test.sh                 all tests
#   hack/test.sh --test e2e_operator -- --nocapture     extra args go to cargo test --workspace
#
# A plane that was already running is reused and left running; one this script started is
# stopped again on exit, also when a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[test] %s\n' "$*" >&2; }

log "interop venv (official Huawei Cloud Python SDK)"
MODELARTS_INTEROP_PYTHON=$(hack/interop-venv.sh)
export MODELARTS_INTEROP_PYTHON MODELARTS_REQUIRE_INTEROP=1

log "quantity reference (Kubernetes' own resource.ParseQuantity)"
MODELARTS_QUANTITY_REF=$(hack/quantity-ref.sh)
export MODELARTS_QUANTITY_REF MODELARTS_REQUIRE_QUANTITY_REF=1

log "observability tools (promtool, Prometheus, kube-state-metrics)"
hack/observability-tools.sh all >/dev/null
export MODELARTS_REQUIRE_OBSERVABILITY=1
log "alert rules: promtool check rules + promtool test rules"
hack/check-alerts.sh >&2

started_plane=0
if env_lines=$(hack/control-plane.sh env 2>/dev/null); then
  log "reusing the running control plane"
else
  log "starting a control plane"
  env_lines=$(hack/control-plane.sh up)
  started_plane=1
fi
eval "$env_lines"
cleanup() {
  if [ "$started_plane" = 1 ]; then
    log "stopping the control plane this run started"
    hack/control-plane.sh down >&2 || true
  fi
}
trap cleanup EXIT
export MODELARTS_REQUIRE_CLUSTER=1
# helm and kubectl for the chart and end-to-end tests come from the same tools cache.
HELM=$(command -v helm) KUBECTL=$(command -v kubectl)
export HELM KUBECTL

# Cluster tests mostly wait on the API server and the operator, so more threads than cores helps.
if [ "$#" -gt 0 ]; then
  cargo test --workspace "$@"
else
  cargo test --workspace -- --test-threads=6
  # The chart on a real node: the image, containerd + kubelet, helm install/upgrade/uninstall and
  # failover with two replicas (its own plane with a node; needs root, restores the machine).
  log "Helm on a real node (hack/test-node.sh)"
  hack/test-node.sh
fi

#!/usr/bin/env bash
# Static checks for the Helm chart: strict lint and render of the default values and of the CI
# override (namespaced RBAC, ServiceMonitor, default credentials), plus the chart's CRD copy being
# identical to the generated one at the repo root. Helm never upgrades CRDs, so a stale copy in the
# chart would ship silently; this makes it a CI failure instead.
#
# Behavioural assertions on the rendered objects live in tests/chart.rs (cargo test --test chart).
# Usage: hack/check-chart.sh   (HELM=/path/to/helm to override; installs helm via hack/tools.sh if absent)
set -euo pipefail
cd "$(dirname "$0")/.."

CHART=charts/modelarts-operator
CI_VALUES=$CHART/ci/namespaced-values.yaml
CRD=modelartsnodepools.modelarts-operator.io.yaml

if [ -z "${HELM:-}" ]; then
  if command -v helm >/dev/null; then HELM=helm; else HELM="$(hack/tools.sh helm)/helm"; fi
fi
step() { printf '[check-chart] %s\n' "$*" >&2; }

step "helm $("$HELM" version --short)"
step "lint (default values)"
"$HELM" lint --strict "$CHART"
step "lint ($CI_VALUES)"
"$HELM" lint --strict "$CHART" -f "$CI_VALUES"

# Rendering twice more than lint does is cheap and catches what lint tolerates; the output is
# discarded here and asserted on in tests/chart.rs.
step "template (default values)"
"$HELM" template modelarts-operator "$CHART" --namespace modelarts-system --include-crds >/dev/null
step "template ($CI_VALUES)"
"$HELM" template modelarts-operator "$CHART" --namespace modelarts-system -f "$CI_VALUES" >/dev/null

# Guards that must fail: a chart that renders replicas: 2 without leader election would run two
# operators writing status. With leader election (the default) it must render.
step "template rejects replicas: 2 without leader election"
if "$HELM" template modelarts-operator "$CHART" --set replicas=2 --set leaderElection.enabled=false >/dev/null 2>&1; then
  echo "check-chart: replicas=2 without leader election rendered, but it must be refused" >&2; exit 1
fi
step "template (replicas: 2 with leader election)"
"$HELM" template modelarts-operator "$CHART" --namespace modelarts-system --set replicas=2 >/dev/null

step "CRD copy: $CHART/crds/$CRD == crds/$CRD"
if ! diff -u "crds/$CRD" "$CHART/crds/$CRD"; then
  echo "check-chart: the chart's CRD differs from crds/$CRD; run: cp crds/$CRD $CHART/crds/$CRD" >&2
  exit 1
fi
step "OK"

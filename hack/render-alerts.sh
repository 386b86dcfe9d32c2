#!/usr/bin/env bash
# Prints the chart's alert rule groups as a plain Prometheus rules file: the `spec` of the
# PrometheusRule rendered for a release named modelarts-operator in namespace mo. Extra
# arguments go to `helm template` (e.g. --set metrics.prometheusRule.abnormalFor=0s).
set -euo pipefail
cd "$(dirname "$0")/.."
HELM=${HELM:-$HOME/.cache/modelarts-operator/tools/bin/helm}
"$HELM" template modelarts-operator charts/modelarts-operator --namespace mo \
  --set metrics.prometheusRule.enabled=true --show-only templates/prometheusrule.yaml "$@" |
  awk 'found { sub(/^  /, ""); print } /^spec:/ { found = 1 }'

#!/usr/bin/env bash
# Renders the chart's alert rules (the PrometheusRule's spec) into a plain rules file and runs
# `promtool check rules` and the unit tests in tests/prometheus/alerts_test.yaml with the real
# promtool (built from the Go module proxy by hack/observability-tools.sh).
#   hack/check-alerts.sh [OUT_DIR]    (default target/alerts)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(hack/observability-tools.sh promtool)
HELM=${HELM:-$(hack/tools.sh helm-path 2>/dev/null || echo "$HOME/.cache/modelarts-operator/tools/bin/helm")}
OUT=${1:-target/alerts}
mkdir -p "$OUT"
hack/render-alerts.sh > "$OUT/rules.yaml"
cp tests/prometheus/alerts_test.yaml "$OUT/alerts_test.yaml"
"$BIN/promtool" check rules "$OUT/rules.yaml"
"$BIN/promtool" test rules "$OUT/alerts_test.yaml"

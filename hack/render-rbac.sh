#!/usr/bin/env bash
# Prints only the ServiceAccount and RBAC objects of the Helm chart, rendered exactly as an install
# would, so end-to-end tests can `kubectl apply -f -` them and run the operator under that
# ServiceAccount's token: the tests then prove the chart's RBAC is sufficient, and nothing broader.
# With leader election on (the chart default) this includes the Role + RoleBinding for the Lease
# in NAMESPACE; pass --set leaderElection.enabled=false to leave them out.
#
# Usage: hack/render-rbac.sh NAMESPACE SA_NAME [extra helm template args...]
#   e.g. hack/render-rbac.sh e2e-1 operator --set watchNamespace=e2e-1   (Role instead of ClusterRole)
# RELEASE (default modelarts-operator) sets the release name; cluster-scoped names are
# "<NAMESPACE>-<fullname>", so parallel runs in different namespaces do not overwrite each other.
# HELM overrides the helm binary (default: PATH, else hack/tools.sh helm).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 NAMESPACE SA_NAME [extra helm template args...]" >&2; exit 2
fi
ns=$1 sa=$2; shift 2
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${HELM:-}" ]; then
  if command -v helm >/dev/null; then HELM=helm; else HELM="$("$root/hack/tools.sh" helm)/helm"; fi
fi
exec "$HELM" template "${RELEASE:-modelarts-operator}" "$root/charts/modelarts-operator" \
  --namespace "$ns" \
  --set serviceAccount.create=true \
  --set-string serviceAccount.name="$sa" \
  --set rbac.create=true \
  --show-only templates/serviceaccount.yaml \
  --show-only templates/rbac.yaml \
  "$@"

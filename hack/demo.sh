#!/usr/bin/env bash
# The whole operator on one machine, end to end, in about a minute once the tools are cached:
# a real kube-apiserver (hack/control-plane.sh), the ModelArts simulator and the operator, both run
# from this checkout. Two ModelArtsNodePools sync, then a node turns Abnormal in the simulator and the
# status, printer columns, Warning event and conditions follow.
#
#   hack/demo.sh                 run the demo; leaves nothing running
#   hack/demo.sh --keep-plane    keep the control plane up afterwards (also: KEEP_PLANE=1)
#   hack/demo.sh --helm          the same, but the operator is the image (hack/image.sh) installed
#                                with `helm install` on a real node (hack/control-plane.sh up --node);
#                                needs root; its plane lives in its own dir unless CONTROL_PLANE_DIR is set
#
# Environment:
#   CONTROL_PLANE_DIR   which control plane to use/start (see hack/control-plane.sh). A plane that is
#                       already running there is reused and never stopped by the demo.
#   KEEP_PLANE=1        same as --keep-plane
#   KEEP_LOGS=1         keep the simulator/operator logs even when the demo succeeds
#   DEMO_TIMEOUT        seconds allowed for each wait (default 90)
#   CARGO               cargo binary (default: cargo)
#
# The operator and the simulator are stopped by the PIDs recorded at start (never by name); the
# control plane is stopped only if this script started it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NS=modelarts-demo
SECRET=modelarts-demo-credentials
TIMEOUT=${DEMO_TIMEOUT:-90}
KEEP_PLANE=${KEEP_PLANE:-0}
KEEP_LOGS=${KEEP_LOGS:-0}
HELM_MODE=0
CARGO=${CARGO:-cargo}
CRD_NAME=modelartsnodepools.modelarts-operator.io

usage() { sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --keep-plane) KEEP_PLANE=1 ;;
    --helm) HELM_MODE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

T0=$SECONDS
STEP=0
# Bold headings on a terminal only, so a captured log stays plain text.
if [ -t 1 ]; then B=$'\033[1m' R=$'\033[0m'; else B='' R=''; fi
heading() { STEP=$((STEP + 1)); printf '\n%s==> %d. %s%s\n' "$B" "$STEP" "$*" "$R"; }
info() { printf '    %s\n' "$*"; }
die() { printf '\ndemo: error: %s\n' "$*" >&2; exit 1; }
# show CMD...: print the command like a terminal session, then run it.
show() { printf '$ %s\n' "$*"; "$@"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/modelarts-demo.XXXXXX")
SIM_PID='' OP_PID='' BIN='' SIM_BIN='' PLANE_STARTED=0

# --- cleanup: only the PIDs recorded here, and only while they still run our binary ---

ours() { # ours PID [BIN]: true if PID is alive and its argv[0] is BIN (default: the operator binary)
  local pid=$1 want=${2:-$BIN} argv0
  [ -n "$pid" ] && [ -n "$want" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  # argv[0], not /proc/PID/exe: a concurrent `cargo build` replaces the file, and exe then reads
  # "... (deleted)" although the process is still ours. A zombie has an empty cmdline: not running.
  IFS= read -r -d '' argv0 <"/proc/$pid/cmdline" 2>/dev/null || return 1
  [ "$argv0" = "$want" ]
}

stop_pid() { # stop_pid NAME PID [BIN]: SIGTERM, bounded wait, then SIGKILL
  local name=$1 pid=$2 bin=${3:-$BIN} i
  ours "$pid" "$bin" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do ours "$pid" "$bin" || break; sleep 0.1; done
  if ours "$pid" "$bin"; then
    echo "demo: $name (pid $pid) ignored SIGTERM for 10s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  printf '\n%s==> cleanup%s\n' "$B" "$R"
  if ours "$OP_PID"; then stop_pid operator "$OP_PID"; info "stopped the operator (pid $OP_PID)"; fi
  if ours "$SIM_PID" "$SIM_BIN"; then stop_pid simulator "$SIM_PID" "$SIM_BIN"; info "stopped the simulator (pid $SIM_PID)"; fi
  if [ "$PLANE_STARTED" = 1 ] && [ "$KEEP_PLANE" != 1 ]; then
    "$ROOT/hack/control-plane.sh" down 2>&1 | sed 's/^/    /'
  elif [ "$PLANE_STARTED" = 1 ]; then
    info "control plane kept (--keep-plane): eval \"\$(hack/control-plane.sh env)\"; stop it with hack/control-plane.sh down"
  elif [ -n "${KUBECONFIG:-}" ]; then
    if [ "$HELM_MODE" = 1 ]; then helm uninstall modelarts-operator -n "$NS" --wait >/dev/null 2>&1 && info "uninstalled the Helm release"; fi
    info "control plane was already running before the demo: left running (namespace $NS kept)"
  fi
  if [ $rc -ne 0 ]; then
    printf '\ndemo: FAILED (exit %d); logs kept in %s\n' "$rc" "$WORK" >&2
  elif [ "$KEEP_LOGS" = 1 ]; then
    info "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  [ $rc -eq 0 ] && printf '\ndemo: done in %ds\n' $((SECONDS - T0))
  exit $rc
}
trap cleanup EXIT
# Without these, Ctrl-C or a TERM would end bash without running the EXIT trap's process cleanup.
trap 'exit 130' INT
trap 'exit 143' TERM

# check_alive: fail fast (with the log) if the simulator or the operator died, instead of waiting
# out a timeout for a status that can never come.
running() { # running PID: our child has not exited. Right after `&` the child may not have
  # exec'd the binary yet (its argv[0] is still bash's), so `ours` would say no; an unreaped
  # child's PID cannot be reused, so alive-and-not-zombie is enough here.
  local state
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

check_alive() {
  if [ -n "$SIM_PID" ] && ! running "$SIM_PID"; then
    tail -n 20 "$WORK/simulator.log" >&2 || true; die "the simulator exited (log: $WORK/simulator.log)"
  fi
  if [ -n "$OP_PID" ] && ! running "$OP_PID"; then
    tail -n 20 "$WORK/operator.log" >&2 || true; die "the operator exited (log: $WORK/operator.log)"
  fi
}

# poll CMD...: run CMD every 0.5s until it succeeds, at most $TIMEOUT seconds (then return 1).
poll() {
  local deadline=$((SECONDS + TIMEOUT))
  until "$@"; do
    check_alive
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}

# ------------------------------------------------------------------------------------------------

if [ "$HELM_MODE" = 1 ]; then
  # Its own plane by default: a plane without a node cannot take one later.
  export CONTROL_PLANE_DIR=${CONTROL_PLANE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/modelarts-operator/node-plane}
  heading "The operator's image (hack/image.sh: static musl binary, FROM scratch, podman without a registry)"
  IMAGE_OUT=$("$ROOT/hack/image.sh")
  info "$IMAGE_OUT"
  IMAGE_REF=$(sed -n 's/^image \([^:]*:[^:]*\): .*/\1/p' <<<"$IMAGE_OUT")
  [ -n "$IMAGE_REF" ] || die "could not read the image reference from hack/image.sh"
fi

heading "Building modelarts-operator and modelarts-simulator (debug)"
# Debug, not --release: the demo does almost no work at run time, and a debug build shares the
# cache `cargo test` already fills (a release build from cold takes several minutes longer on 2 cores).
( cd "$ROOT" && "$CARGO" build -p modelarts-operator --bin modelarts-operator -p modelarts-simulator --bin modelarts-simulator )
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/modelarts-operator"
SIM_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/modelarts-simulator"
[[ $BIN = /* ]] || BIN="$ROOT/$BIN"
[[ $SIM_BIN = /* ]] || SIM_BIN="$ROOT/$SIM_BIN"
[ -x "$BIN" ] || die "built binary not found at $BIN"
[ -x "$SIM_BIN" ] || die "built binary not found at $SIM_BIN"
info "binaries: $BIN, $SIM_BIN"

UP_ARGS=()
if [ "$HELM_MODE" = 1 ]; then
  heading "Control plane (etcd + kube-apiserver on 127.0.0.1) and a real node (containerd, kubelet, kube-proxy)"
  UP_ARGS=(--node)
else
  heading "Control plane (etcd + kube-apiserver on 127.0.0.1)"
fi
if "$ROOT/hack/control-plane.sh" status >/dev/null 2>&1; then
  info "a control plane is already running: reusing it, and it will be left running"
else
  PLANE_STARTED=1
  info "starting one (the first run builds etcd and kube-apiserver: 10-25 min on 2 cores)"
fi
eval "$("$ROOT/hack/control-plane.sh" up "${UP_ARGS[@]}")"
eval "$("$ROOT/hack/control-plane.sh" env)" # PATH with the pinned kubectl
info "KUBECONFIG=$KUBECONFIG"
show kubectl version 2>/dev/null | sed 's/^/    /' || true

heading "ModelArts simulator (embedded demo data, AK/SK auth on)"
DATA=$("$SIM_BIN" --print-default-data)
# The demo values come from the embedded data itself, so the script cannot drift from it.
first() { awk -v k="$1" '$0 ~ "^[ -]*" k ":" { sub("^[ -]*" k ": *", ""); print; exit }' <<<"$DATA"; }
AK=$(first accessKey) SK=$(first secretKey) PROJECT=$(first id)
POOL=$(awk '/^ *- name: pool-/ { print $3; exit }' <<<"$DATA")
[ -n "$AK" ] && [ -n "$SK" ] && [ -n "$PROJECT" ] && [ -n "$POOL" ] || die "could not read the demo AK/SK/project/pool from 'modelarts-simulator --print-default-data'"
SIM_BIND=127.0.0.1
if [ "$HELM_MODE" = 1 ]; then
  # The operator's Pod reaches the simulator on the node's bridge address (never off the machine).
  NODE_IP=$(sed -n 's/^NODE_IP=//p' "$CONTROL_PLANE_DIR/node/node.env")
  [ -n "$NODE_IP" ] || die "no node IP in $CONTROL_PLANE_DIR/node/node.env (is the node up?)"
  SIM_BIND=$NODE_IP
fi
"$SIM_BIN" --bind "$SIM_BIND" --port 0 --tls-generate "$WORK/tls" --tls-name "$SIM_BIND" >"$WORK/simulator.out" 2>"$WORK/simulator.log" </dev/null &
SIM_PID=$!
sim_url() { SIM=$(sed -n 's|^simulator listening on \(https://[0-9.]*:[0-9][0-9]*\)$|\1|p' "$WORK/simulator.out"); [ -n "$SIM" ]; }
poll sim_url || die "the simulator did not announce its port within ${TIMEOUT}s (log: $WORK/simulator.log)"
info "simulator pid $SIM_PID at $SIM"
info "project $PROJECT, pool $POOL"

heading "CustomResourceDefinition"
# --force-conflicts: the demo wants exactly this checkout's CRD, even if another field manager
# (helm, a test) applied an older copy to a reused plane.
show kubectl apply --server-side --force-conflicts -f "$ROOT/crds/"
show kubectl wait --for=condition=Established "crd/$CRD_NAME" --timeout="${TIMEOUT}s"

heading "Namespace $NS, credentials Secret, two ModelArtsNodePools"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# A reused plane may hold objects and events of an earlier run: a stale Synced condition or
# NodeAbnormal event would make the waits below pass before this run did anything.
kubectl delete "$CRD_NAME" --all -n "$NS" --ignore-not-found --wait=true >/dev/null
kubectl delete events --all -n "$NS" --ignore-not-found >/dev/null
kubectl create secret generic "$SECRET" -n "$NS" \
  --from-literal=accessKey="$AK" --from-literal=secretKey="$SK" \
  --dry-run=client -o yaml | kubectl apply -f -
nodepool() {
  cat <<EOF
---
apiVersion: modelarts-operator.io/v1alpha1
kind: ModelArtsNodePool
metadata:
  name: $1
  namespace: $NS
spec:
  projectId: $PROJECT
  poolName: $POOL
  nodePoolName: $1
  endpoint: $SIM
  credentialsSecretRef:
    name: $SECRET
  syncInterval: 10s
EOF
}
{ nodepool nodepool-1; nodepool gpu-a100; } >"$WORK/nodepools.yaml"
sed -n '2,14p' "$WORK/nodepools.yaml"
info "(gpu-a100 is the same with nodePoolName gpu-a100; its demo data already holds one Abnormal node)"
show kubectl apply -f "$WORK/nodepools.yaml"

if [ "$HELM_MODE" = 1 ]; then
  heading "Operator: helm install of the local image on the node"
  kubectl create secret generic modelarts-ca -n "$NS" --from-file=ca.crt="$WORK/tls/ca.pem" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  show "$ROOT/hack/control-plane.sh" load-image "$ROOT/target/image/modelarts-operator.oci.tar"
  T_OP=$SECONDS
  show helm upgrade --install modelarts-operator "$ROOT/charts/modelarts-operator" -n "$NS" --wait --timeout "${TIMEOUT}s" \
    --set image.repository="${IMAGE_REF%:*}" --set image.tag="${IMAGE_REF##*:}" --set image.pullPolicy=Never \
    --set watchNamespace="$NS" --set "modelarts.allowedEndpointSuffixes={$NODE_IP}" \
    --set modelarts.caBundle.secretName=modelarts-ca
  show kubectl get pods -n "$NS" -o wide
else
heading "Operator"
# --namespace: on a shared plane, touch nothing outside the demo namespace.
# --modelarts-ca-file/--allowed-endpoint-suffix: the simulator serves HTTPS on 127.0.0.1 with a
# certificate from the throwaway CA it wrote to $WORK/tls/ca.pem (--tls-generate).
"$BIN" run --namespace "$NS" --modelarts-ca-file "$WORK/tls/ca.pem" --allowed-endpoint-suffix 127.0.0.1 \
  --metrics-addr 127.0.0.1:0 >"$WORK/operator.log" 2>&1 </dev/null &
OP_PID=$!
info "operator pid $OP_PID, log $WORK/operator.log"
T_OP=$SECONDS
fi

synced() { kubectl wait --for=condition=Synced --timeout=2s -n "$NS" mann/nodepool-1 mann/gpu-a100 >/dev/null 2>&1; }
printf '$ kubectl wait --for=condition=Synced -n %s mann/nodepool-1 mann/gpu-a100\n' "$NS"
if ! poll synced; then
  kubectl get mann -n "$NS" -o yaml | sed -n '/conditions:/,/lastSyncTime/p' >&2 || true
  if [ "$HELM_MODE" = 1 ]; then kubectl logs -n "$NS" deploy/modelarts-operator --tail 20 >&2 || true
  else tail -n 20 "$WORK/operator.log" >&2 || true; fi
  die "the node pools were not Synced within ${TIMEOUT}s"
fi
info "both Synced $((SECONDS - T_OP))s after the operator started"

heading "Synced node pools"
show kubectl get mann -n "$NS" -o wide
echo
printf '$ kubectl get mann nodepool-1 -n %s -o yaml   # .status, nodes trimmed\n' "$NS"
# status: first block of the object; the conditions' long messages stay, the node list is cut.
kubectl get mann nodepool-1 -n "$NS" -o yaml | awk '/^status:/ { on = 1 } on' | head -n 45

heading "A node turns Abnormal in ModelArts (simulator control API)"
patch_url="$SIM/_sim/nodes/$PROJECT/$POOL/nodepool-1/node-dly-4"
printf "\$ curl -fsS --cacert $WORK/tls/ca.pem -X PATCH %s -d '{\"phase\":\"Abnormal\"}'\n" "$patch_url"
# The control API answers with the patched node; show just its name and phase.
curl -fsS --cacert "$WORK/tls/ca.pem" -X PATCH -H 'Content-Type: application/json' -d '{"phase":"Abnormal"}' "$patch_url" \
  | python3 -c 'import json,sys; n=json.load(sys.stdin); print("    node", n["metadata"]["name"], "is now", n["status"]["phase"])'
abnormal() { [ "$(kubectl get mann nodepool-1 -n "$NS" -o jsonpath='{.status.phases.abnormal}')" = 1 ]; }
info "waiting for the next sync (syncInterval 10s) to report abnormal=1 ..."
t=$SECONDS
poll abnormal || die "nodepool-1 did not report abnormal=1 within ${TIMEOUT}s"
info "seen after $((SECONDS - t))s"
has_event() { [ -n "$(kubectl get events -n "$NS" --field-selector reason=NodeAbnormal -o name)" ]; }
poll has_event || die "no NodeAbnormal event within ${TIMEOUT}s"

heading "Warning event"
show kubectl get events -n "$NS" --field-selector reason=NodeAbnormal

heading "Printer columns after the change"
show kubectl get mann -n "$NS" -o wide

heading "Conditions (kubectl describe)"
printf '$ kubectl describe mann nodepool-1 -n %s   # Conditions and Events only\n' "$NS"
# describe prints the whole object; keep the two parts that changed.
# Status fields are indented by two spaces; the next one after Conditions ends that block.
kubectl describe mann nodepool-1 -n "$NS" | awk '
  /^  Conditions:/ { on = 1; print; next }
  on == 1 && /^  [A-Z]/ { on = 0 }
  /^Events:/ { on = 2 }
  on'

#!/usr/bin/env bash
# Soak: the operator (release build) against the ModelArts simulator on a real control plane for
# SOAK_MINUTES with SOAK_RESOURCES ModelArtsNodePools, faults injected in rotation through the
# simulator's control API (/_sim), then a quiet period in which everything must be Synced again.
# At the end it prints a markdown block: operator RSS at start and end, reconciles by result, errors
# by reason, status writes, events by reason, panics in the log, and the data-loss check.
#
#   hack/soak.sh                                  20 minutes, 200 resources
#   SOAK_MINUTES=2 SOAK_RESOURCES=20 hack/soak.sh  a short trial
#
# Fault rotation (each fault for SOAK_FAULT_SECONDS, then as long without faults), during the first
# 75 % of the run; the last 25 % is quiet:
#   throttle429RetryAfter  429 with Retry-After: 2 on every node-list request
#   throttle429            429 without Retry-After
#   serverError            503, then 500 the next time round
#   slow                   answers slower than the operator's --modelarts-timeout
#   rotateCredentials      a new AK/SK in the simulator, the Secret updated, the old AK/SK deleted
#   nodeChurn              nodes turn Abnormal, then Available again
#
# Data-loss check (exit 1 if it fails, or on any panic in the operator log): every SOAK_SAMPLE_SECONDS
# all statuses are read; once a resource had status node data it must keep it, and its lastSyncTime
# must never go backwards; after the faults stop, every resource must reach Synced=True with node data
# (within SOAK_SETTLE_SECONDS after the run's end at the latest).
#
# Environment (defaults in brackets):
#   SOAK_MINUTES [20]  SOAK_RESOURCES [200]  SOAK_SYNC_INTERVAL [30s]  SOAK_SAMPLE_SECONDS [10]
#   SOAK_FAULT_SECONDS [75 % of the run / 12, between 5 and 60]  SOAK_SETTLE_SECONDS [180]
#   SOAK_MODELARTS_TIMEOUT [5] (seconds)  SOAK_MAX_BACKOFF [60s]  SOAK_QPS [20]  SOAK_NAMESPACE [modelarts-soak]
#   CONTROL_PLANE_DIR  plane to use; one already running there is reused and left running
#   KEEP_LOGS=1        keep the work dir (operator/simulator logs, samples) also on success
#   CARGO              cargo binary
#
# Everything started here (simulator, operator, and the plane if this script started it) is stopped
# on exit by recorded PID, never by name.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MINUTES=${SOAK_MINUTES:-20}
RESOURCES=${SOAK_RESOURCES:-200}
INTERVAL=${SOAK_SYNC_INTERVAL:-30s}
SAMPLE=${SOAK_SAMPLE_SECONDS:-10}
SETTLE=${SOAK_SETTLE_SECONDS:-180}
MA_TIMEOUT=${SOAK_MODELARTS_TIMEOUT:-5}
MAX_BACKOFF=${SOAK_MAX_BACKOFF:-60s}
QPS=${SOAK_QPS:-20}
NS=${SOAK_NAMESPACE:-modelarts-soak}
KEEP_LOGS=${KEEP_LOGS:-0}
CARGO=${CARGO:-cargo}
SECRET=soak-credentials
CRD_NAME=modelartsnodepools.modelarts-operator.io
GEN_NODEPOOL=soak-gen
GEN_COUNT=120

TOTAL=$((MINUTES * 60))
FAULT_PERIOD=$((TOTAL * 3 / 4))
PHASE=${SOAK_FAULT_SECONDS:-$((FAULT_PERIOD / 12))}
[ "$PHASE" -lt 5 ] && PHASE=5
[ -z "${SOAK_FAULT_SECONDS:-}" ] && [ "$PHASE" -gt 60 ] && PHASE=60

log() { printf '[soak %4ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
die() { printf '[soak] error: %s\n' "$*" >&2; exit 1; }

T0=$SECONDS
WORK=$(mktemp -d "${TMPDIR:-/tmp}/modelarts-soak.XXXXXX")
SIM_PID='' OP_PID='' BIN='' SIM_BIN='' PLANE_STARTED=0

# --- cleanup: only PIDs recorded here, only while they still run our binary ---
ours() {
  local pid=$1 want=${2:-$BIN} argv0
  [ -n "$pid" ] && [ -n "$want" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  IFS= read -r -d '' argv0 <"/proc/$pid/cmdline" 2>/dev/null || return 1
  [ "$argv0" = "$want" ]
}
stop_pid() { # stop_pid PID [BIN]
  local pid=$1 bin=${2:-$BIN} i
  ours "$pid" "$bin" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 150); do ours "$pid" "$bin" || break; sleep 0.1; done
  ours "$pid" "$bin" && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if ours "$OP_PID"; then stop_pid "$OP_PID"; log "stopped the operator (pid $OP_PID)"; fi
  if ours "$SIM_PID" "$SIM_BIN"; then stop_pid "$SIM_PID" "$SIM_BIN"; log "stopped the simulator (pid $SIM_PID)"; fi
  if [ "$PLANE_STARTED" = 1 ]; then
    "$ROOT/hack/control-plane.sh" down >&2
  elif [ -n "${KUBECONFIG:-}" ] && command -v kubectl >/dev/null; then
    # A reused plane keeps the namespace; its resources go, so nothing polls or lingers.
    kubectl delete "$CRD_NAME" --all -n "$NS" --ignore-not-found --wait=false >/dev/null 2>&1
    log "reused plane left running; deleted the ModelArtsNodePools in $NS"
  fi
  if [ $rc -ne 0 ] || [ "$KEEP_LOGS" = 1 ]; then
    log "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

alive() {
  ours "$SIM_PID" "$SIM_BIN" || { tail -n 20 "$WORK/simulator.log" >&2; die "the simulator exited"; }
  ours "$OP_PID" || { tail -n 40 "$WORK/operator.log" >&2; die "the operator exited (log: $WORK/operator.log)"; }
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$OP_PID/status" 2>/dev/null || echo 0; }

# --- build, plane, simulator ---
log "building modelarts-operator and modelarts-simulator (release)"
( cd "$ROOT" && "$CARGO" build --release -p modelarts-operator --bin modelarts-operator -p modelarts-simulator --bin modelarts-simulator ) >&2
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/modelarts-operator"
SIM_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/modelarts-simulator"
[[ $BIN = /* ]] || BIN="$ROOT/$BIN"
[[ $SIM_BIN = /* ]] || SIM_BIN="$ROOT/$SIM_BIN"
[ -x "$BIN" ] || die "no binary at $BIN"
[ -x "$SIM_BIN" ] || die "no binary at $SIM_BIN"

if "$ROOT/hack/control-plane.sh" status >/dev/null 2>&1; then
  log "reusing the running control plane (left running afterwards)"
else
  PLANE_STARTED=1
fi
eval "$("$ROOT/hack/control-plane.sh" up)"
eval "$("$ROOT/hack/control-plane.sh" env)"

DATA=$("$SIM_BIN" --print-default-data)
first() { awk -v k="$1" '$0 ~ "^[ -]*" k ":" { sub("^[ -]*" k ": *", ""); print; exit }' <<<"$DATA"; }
AK=$(first accessKey) SK=$(first secretKey) PROJECT=$(first id)
POOL=$(awk '/^ *- name: pool-/ { print $3; exit }' <<<"$DATA")
[ -n "$AK" ] && [ -n "$SK" ] && [ -n "$PROJECT" ] && [ -n "$POOL" ] || die "cannot read the demo data"
"$SIM_BIN" --port 0 --tls-generate "$WORK/tls" >"$WORK/simulator.out" 2>"$WORK/simulator.log" </dev/null &
SIM_PID=$!
for _ in $(seq 100); do
  SIM=$(sed -n 's|^simulator listening on \(https://127\.0\.0\.1:[0-9]*\)$|\1|p' "$WORK/simulator.out")
  [ -n "$SIM" ] && break
  sleep 0.1
done
[ -n "$SIM" ] || die "the simulator did not start (log: $WORK/simulator.log)"
sim() { # sim METHOD PATH [JSON]
  curl -fsS --cacert "$WORK/tls/ca.pem" -X "$1" -H 'Content-Type: application/json' ${3:+-d "$3"} "$SIM/_sim/$2" >/dev/null
}
sim PUT "nodepools/$PROJECT/$POOL/$GEN_NODEPOOL" "{\"generate\":{\"count\":$GEN_COUNT}}"
log "simulator pid $SIM_PID at $SIM"

# --- resources ---
kubectl apply --server-side --force-conflicts -f "$ROOT/crds/" >/dev/null
kubectl wait --for=condition=Established "crd/$CRD_NAME" --timeout=60s >/dev/null
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl delete "$CRD_NAME" --all -n "$NS" --ignore-not-found --wait=true >/dev/null
kubectl delete events --all -n "$NS" --ignore-not-found >/dev/null
put_secret() {
  kubectl create secret generic "$SECRET" -n "$NS" --from-literal=accessKey="$1" --from-literal=secretKey="$2" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
}
put_secret "$AK" "$SK"
NODEPOOLS=(nodepool-1 npu-snt9 "$GEN_NODEPOOL" gpu-a100)
for i in $(seq 1 "$RESOURCES"); do
  np=${NODEPOOLS[$(((i - 1) % ${#NODEPOOLS[@]}))]}
  cat <<EOF
---
apiVersion: modelarts-operator.io/v1alpha1
kind: ModelArtsNodePool
metadata: {name: soak-$(printf %04d "$i"), namespace: $NS}
spec:
  projectId: $PROJECT
  poolName: $POOL
  nodePoolName: $np
  endpoint: $SIM
  credentialsSecretRef: {name: $SECRET}
  syncInterval: $INTERVAL
EOF
done >"$WORK/resources.yaml"
kubectl apply --server-side -f "$WORK/resources.yaml" >/dev/null
log "$RESOURCES ModelArtsNodePools in namespace $NS (node pools ${NODEPOOLS[*]}; syncInterval $INTERVAL)"

METRICS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" run --namespace "$NS" --modelarts-ca-file "$WORK/tls/ca.pem" --allowed-endpoint-suffix 127.0.0.1 \
  --metrics-addr "127.0.0.1:$METRICS_PORT" --max-backoff "$MAX_BACKOFF" --modelarts-timeout "${MA_TIMEOUT}s" \
  --modelarts-qps "$QPS" --modelarts-burst "$((QPS * 2))" --log-format json \
  >"$WORK/operator.log" 2>&1 </dev/null &
OP_PID=$!
log "operator pid $OP_PID (--max-backoff $MAX_BACKOFF --modelarts-timeout ${MA_TIMEOUT}s --modelarts-qps $QPS), log $WORK/operator.log"
RSS_LAUNCH=$(rss_kib)

# --- sampling: every status, checked against the previous ones ---
cat >"$WORK/sample.py" <<'EOF'
# sample.py STATE_FILE PHASE < `kubectl get mann -o json`: updates the per-resource memory
# (had node data, latest lastSyncTime) and records violations and Synced=False reasons.
import json, sys
path, phase = sys.argv[1], sys.argv[2]
try:
    state = json.load(open(path))
except FileNotFoundError:
    state = {"samples": 0, "resources": {}, "violations": [], "failed_by_reason": {}}
items = json.load(sys.stdin)["items"]
state["samples"] += 1
synced = with_pool = 0
for o in items:
    name = o["metadata"]["name"]
    st = o.get("status") or {}
    r = state["resources"].setdefault(name, {"had_pool": False, "last_sync": None})
    has_pool = "nodeCount" in st
    if r["had_pool"] and not has_pool:
        state["violations"].append(f"sample {state['samples']} ({phase}): {name} lost its node data")
    ls = st.get("lastSyncTime")
    if ls and r["last_sync"] and ls < r["last_sync"]:  # RFC 3339 UTC 'Z' strings order by time
        state["violations"].append(f"sample {state['samples']} ({phase}): {name} lastSyncTime went back {r['last_sync']} -> {ls}")
    if ls and (not r["last_sync"] or ls > r["last_sync"]):
        r["last_sync"] = ls
    r["had_pool"] |= has_pool
    with_pool += has_pool
    cond = {c["type"]: c for c in st.get("conditions", [])}
    s = cond.get("Synced", {})
    if s.get("status") == "True":
        synced += 1
    elif s:
        key = s.get("reason", "?")
        state["failed_by_reason"][key] = state["failed_by_reason"].get(key, 0) + 1
json.dump(state, open(path, "w"))
print(f"{len(items)} {synced} {with_pool}")
EOF
LAST_SAMPLE=0 T_ALL_SYNCED='' T_QUIET=0
sample() { # sample PHASE: prints "total synced with_pool"
  local out
  out=$(kubectl get "$CRD_NAME" -n "$NS" -o json | python3 "$WORK/sample.py" "$WORK/state.json" "$1")
  echo "$out" >>"$WORK/samples.txt"
  echo "$out"
}
# run_for SECONDS PHASE: let time pass, sampling every $SAMPLE s and checking the processes.
run_for() {
  local until=$((SECONDS + $1)) s
  while [ $SECONDS -lt $until ]; do
    alive
    if [ $((SECONDS - LAST_SAMPLE)) -ge "$SAMPLE" ]; then
      s=$(sample "$2"); LAST_SAMPLE=$SECONDS; log "$2: resources/synced/with data: $s; operator RSS $(($(rss_kib) / 1024)) MiB"
      if [ "$2" = quiet ] && [ -z "$T_ALL_SYNCED" ] && [ "$s" = "$RESOURCES $RESOURCES $RESOURCES" ]; then
        T_ALL_SYNCED=$((SECONDS - T_QUIET))
      fi
    fi
    sleep 1
  done
}

log "waiting for the first sync of all $RESOURCES resources"
deadline=$((SECONDS + 300))
while :; do
  alive
  read -r total synced with_pool <<<"$(sample initial)"
  [ "$synced" -eq "$RESOURCES" ] && break
  [ $SECONDS -lt $deadline ] || die "only $synced of $RESOURCES Synced after 300 s"
  sleep 2
done
RSS_START=$(rss_kib)
T_START=$SECONDS
log "all Synced after $((SECONDS - T0)) s; operator RSS $((RSS_START / 1024)) MiB; faults for ${FAULT_PERIOD}s, each ${PHASE}s on / ${PHASE}s off"

# --- faults ---
FAULTS=(throttle429RetryAfter throttle429 serverError slow rotateCredentials nodeChurn)
declare -A INJECTED=()
ROTATION=0 ROUND=0
CUR_AK=$AK
CHURN_NODES=("nodepool-1/node-dly-4" "npu-snt9/npu-snt9-node-1" "$GEN_NODEPOOL/node-gen-0001" "$GEN_NODEPOOL/node-gen-0060")
set_phase() { # set_phase PHASE: every churn node
  local n
  for n in "${CHURN_NODES[@]}"; do sim PATCH "nodes/$PROJECT/$POOL/$n" "{\"phase\":\"$1\"}"; done
}
inject() {
  case $1 in
    throttle429RetryAfter) sim PUT faults '{"faults":[{"type":"throttle","retryAfter":2}]}' ;;
    throttle429) sim PUT faults '{"faults":[{"type":"throttle"}]}' ;;
    serverError)
      if [ $((ROUND % 2)) = 0 ]; then sim PUT faults '{"faults":[{"type":"serverError","status":503}]}'
      else sim PUT faults '{"faults":[{"type":"serverError","status":500}]}'; fi ;;
    slow) sim PUT faults "{\"faults\":[{\"type\":\"latency\",\"ms\":$(((MA_TIMEOUT + 1) * 1000))}]}" ;;
    rotateCredentials)
      ROTATION=$((ROTATION + 1))
      local new_ak new_sk
      new_ak=$(printf 'SOAKROTATEDAK%07d' "$ROTATION")
      new_sk=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
      sim POST credentials "{\"accessKey\":\"$new_ak\",\"secretKey\":\"$new_sk\"}"
      put_secret "$new_ak" "$new_sk"
      # In-flight syncs may still sign with the old key: retire it after two request timeouts.
      sleep $((MA_TIMEOUT * 2))
      sim DELETE "credentials/$CUR_AK"
      CUR_AK=$new_ak ;;
    nodeChurn) set_phase Abnormal ;;
  esac
}
clear_fault() {
  case $1 in
    nodeChurn) set_phase Available ;;
    rotateCredentials) ;;
    *) sim DELETE faults ;;
  esac
}
while [ $((SECONDS - T_START)) -lt "$FAULT_PERIOD" ]; do
  f=${FAULTS[$((ROUND % ${#FAULTS[@]}))]}
  log "fault: $f"
  inject "$f"
  INJECTED[$f]=$((${INJECTED[$f]:-0} + 1))
  run_for "$PHASE" "$f"
  clear_fault "$f"
  run_for "$PHASE" "after $f"
  ROUND=$((ROUND + 1))
done
sim DELETE faults
set_phase Available
T_QUIET=$SECONDS
LAST_SAMPLE=0 # sample right away
log "faults stopped; quiet until the end of the run, then at most ${SETTLE}s more for every resource to be Synced"
remaining=$((TOTAL - (SECONDS - T_START)))
[ "$remaining" -gt 0 ] && run_for "$remaining" quiet
deadline=$((SECONDS + SETTLE))
while :; do
  read -r total synced with_pool <<<"$(sample final)"
  if [ "$synced" -eq "$RESOURCES" ] && [ "$with_pool" -eq "$RESOURCES" ]; then
    [ -n "$T_ALL_SYNCED" ] || T_ALL_SYNCED=$((SECONDS - T_QUIET))
    break
  fi
  [ $SECONDS -lt $deadline ] || { T_ALL_SYNCED="not within $((SECONDS - T_QUIET))"; break; }
  alive
  sleep 2
done
RSS_END=$(rss_kib)
curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" >"$WORK/metrics.txt"
kubectl get events.events.k8s.io -n "$NS" -o json >"$WORK/events.json"
PANICS=$(grep -c 'panicked at' "$WORK/operator.log" || true)
FAULT_LIST=$(for f in "${FAULTS[@]}"; do if [ -n "${INJECTED[$f]:-}" ]; then printf '%s ×%s, ' "$f" "${INJECTED[$f]}"; fi; done)

# --- report ---
export MINUTES RESOURCES INTERVAL PHASE RSS_LAUNCH RSS_START RSS_END PANICS T_ALL_SYNCED total synced with_pool
export FAULT_LIST="${FAULT_LIST%, }" COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
export SAMPLE_SECONDS=$SAMPLE MAX_BACKOFF MA_TIMEOUT QPS
# Exits 1 (set -e), keeping the logs, when the verdict is FAIL.
python3 - "$WORK" <<'EOF' | tee "$WORK/report.md"
import json, os, re, sys
work = sys.argv[1]
e = os.environ
metrics = open(f"{work}/metrics.txt").read()
def series(name):
    out = {}
    for line in metrics.splitlines():
        m = re.match(r'modelarts_operator_' + name + r'(?:\{([^}]*)\})? ([0-9.e+-]+)$', line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out
def fmt(d):
    return ", ".join(f"{k} {int(v)}" for k, v in sorted(d.items(), key=lambda kv: -kv[1])) or "none"
rec = {re.sub(r'.*result="([^"]*)".*', r'\1', k): v for k, v in series("reconciles_total").items()}
writes = sum(series("status_writes_total").values())
retries = sum(series("modelarts_retries_total").values())
pages = sum(series("modelarts_pages_total").values())
events = {}
for ev in json.load(open(f"{work}/events.json"))["items"]:
    n = (ev.get("series") or {}).get("count", 1)
    key = f'{ev.get("type", "?")} {ev.get("reason", "?")}'
    events[key] = events.get(key, 0) + n
state = json.load(open(f"{work}/state.json"))
viol = state["violations"]
total, synced, with_pool = int(e["total"]), int(e["synced"]), int(e["with_pool"])
ok = not viol and synced == total == int(e["RESOURCES"]) and with_pool == total and e["PANICS"] == "0"
mib = lambda k: f'{int(e[k]) / 1024:.1f} MiB'
print(f"""### Soak run: {e['MINUTES']} min, {e['RESOURCES']} resources (commit {e['COMMIT']})

Settings: syncInterval {e['INTERVAL']}, `--max-backoff {e['MAX_BACKOFF']}`, `--modelarts-timeout {e['MA_TIMEOUT']}s`, `--modelarts-qps {e['QPS']}`; each fault {e['PHASE']} s on, {e['PHASE']} s off, during the first 75 % of the run; statuses sampled every {e['SAMPLE_SECONDS']} s.

| | |
|---|---|
| Faults injected | {e['FAULT_LIST']} |
| Operator RSS (VmRSS) | {mib('RSS_LAUNCH')} at launch, {mib('RSS_START')} after the first sync of all resources, {mib('RSS_END')} at the end |
| Reconciles by result | {fmt(rec)} |
| Errors by reason (Synced=False readings: resources × samples) | {fmt(state['failed_by_reason'])} |
| Status writes | {int(writes)} |
| ModelArts pages / retries within syncs | {int(pages)} / {int(retries)} |
| Events by type and reason | {fmt(events)} |
| Panics in the operator log | {e['PANICS']} |
| After the faults stopped | {synced}/{total} Synced=True, {with_pool}/{total} with node data, first seen all Synced {e['T_ALL_SYNCED']} s after the faults stopped (sampled every {e['SAMPLE_SECONDS']} s) |
| Data loss ({state['samples']} samples of every status) | {len(viol)} violations (node data disappearing, lastSyncTime going back){': ' + '; '.join(viol[:5]) if viol else ''} |
| Verdict | {'PASS' if ok else 'FAIL'} |
""")
sys.exit(0 if ok else 1)
EOF

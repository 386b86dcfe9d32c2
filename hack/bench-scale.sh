#!/usr/bin/env bash
# Scale benchmark (not a test: CI never runs it, and it asserts no timings). The operator (release
# build) against the ModelArts simulator on a real control plane, for several resource counts, then
# one very large node pool. Prints a markdown report (also saved as $BENCH_OUT when set).
#
#   hack/bench-scale.sh                                   10, 100, 1,000, 5,000 resources; 10 idle minutes each
#   BENCH_COUNTS="10 1000" BENCH_IDLE_MINUTES=2 hack/bench-scale.sh   a shorter run
#
# For each count N (a fresh operator process, N fresh resources in their own namespace, every one
# naming the same simulated node pool of BENCH_NODES nodes, so one page each):
#   - time from launching the operator until every resource was Synced (the operator's
#     modelarts_operator_nodepool_synced gauge is 1 for all N, polled every 0.5 s), against the
#     rate-limit floor N × (pages + 1) / qps: each sync is one request per page plus ShowNodePool;
#   - operator RSS (VmRSS) BENCH_SETTLE_SECONDS after that ("settled"), and after BENCH_IDLE_MINUTES idle
#     minutes; peak RSS (VmHWM);
#   - CPU (user + system, /proc/PID/stat) per sync: over the first sync of all resources, and over
#     the idle window (syncs there find nothing changed);
#   - over the idle window, per minute: status writes (the operator's counter) and API server
#     requests for the operator's resources (apiserver_request_total from the API server's
#     /metrics, by verb and resource, for modelartsnodepools, secrets and events; nothing else
#     runs against this plane, so the status-patch count cross-checks the operator's counter).
# Then one resource on a generated node pool of BENCH_BIG_NODES nodes and, as the reference, one
# on BENCH_REF_NODES nodes, each in a fresh operator: peak RSS and time per sync (the
# reconcile_duration histogram's mean over BENCH_BIG_SYNCS syncs, rate-limiter waits included).
#
# "Idle" means nothing changes in ModelArts: the operator still syncs every resource every
# BENCH_SYNC_INTERVAL. --status-heartbeat is set to BENCH_HEARTBEAT (default 24h) so that the
# heartbeat's deliberate refresh of lastSyncTime (every 5 minutes by default, i.e. N/5 writes per
# minute) does not count as an idle write.
#
# Environment (defaults in brackets):
#   BENCH_COUNTS ["10 100 1000 5000"]  BENCH_IDLE_MINUTES [10]  BENCH_SETTLE_SECONDS [30]
#   BENCH_NODES [20]  BENCH_QPS [100]  BENCH_BURST [10]  BENCH_CONCURRENCY [operator default]
#   BENCH_SYNC_INTERVAL [300s]  BENCH_HEARTBEAT [24h]  BENCH_BIG_NODES [100000]  BENCH_REF_NODES [1000]
#   BENCH_BIG_SYNCS [3] (BENCH_BIG_NODES=0 skips the large pool)  BENCH_OUT [none]  BENCH_OPERATOR_BIN [release build]  CONTROL_PLANE_DIR (a plane already running there is reused
#   and left running)  KEEP_LOGS=1 (keep the work dir)  CARGO
# Processes started here are stopped on exit by recorded PID, never by name.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COUNTS=${BENCH_COUNTS:-10 100 1000 5000}
IDLE_MIN=${BENCH_IDLE_MINUTES:-10}
SETTLE=${BENCH_SETTLE_SECONDS:-30}
NODES=${BENCH_NODES:-20}
QPS=${BENCH_QPS:-100}
BURST=${BENCH_BURST:-10}
CONCURRENCY=${BENCH_CONCURRENCY:-}
INTERVAL=${BENCH_SYNC_INTERVAL:-300s}
HEARTBEAT=${BENCH_HEARTBEAT:-24h}
BIG=${BENCH_BIG_NODES:-100000}
REF=${BENCH_REF_NODES:-1000}
BIG_SYNCS=${BENCH_BIG_SYNCS:-3}
KEEP_LOGS=${KEEP_LOGS:-0}
CARGO=${CARGO:-cargo}
PAGE_SIZE=500
SECRET=bench-credentials
CRD_NAME=modelartsnodepools.modelarts-operator.io

log() { printf '[bench %5ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

T0=$SECONDS
WORK=$(mktemp -d "${TMPDIR:-/tmp}/modelarts-bench.XXXXXX")
SIM_PID='' OP_PID='' BIN='' SIM_BIN='' PLANE_STARTED=0 NAMESPACES=()

ours() {
  local pid=$1 want=$2 argv0
  [ -n "$pid" ] && [ -n "$want" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  IFS= read -r -d '' argv0 <"/proc/$pid/cmdline" 2>/dev/null || return 1
  [ "$argv0" = "$want" ]
}
stop_pid() { # stop_pid PID BIN
  local pid=$1 bin=$2 i
  ours "$pid" "$bin" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 150); do ours "$pid" "$bin" || break; sleep 0.1; done
  ours "$pid" "$bin" && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$? ns
  trap - EXIT INT TERM
  set +e
  stop_pid "$OP_PID" "$BIN"
  stop_pid "$SIM_PID" "$SIM_BIN"
  if [ "$PLANE_STARTED" = 1 ]; then
    "$ROOT/hack/control-plane.sh" down >&2
  elif [ -n "${KUBECONFIG:-}" ]; then
    for ns in "${NAMESPACES[@]}"; do
      kubectl delete "$CRD_NAME" --all -n "$ns" --ignore-not-found --wait=false >/dev/null 2>&1
    done
  fi
  if [ $rc -ne 0 ] || [ "$KEEP_LOGS" = 1 ]; then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "building modelarts-operator and modelarts-simulator (release)"
( cd "$ROOT" && "$CARGO" build --release -p modelarts-operator --bin modelarts-operator -p modelarts-simulator --bin modelarts-simulator ) >&2
# BENCH_OPERATOR_BIN: measure another build of the operator, e.g. the image's static musl binary
# (target/image/context/dist/amd64/modelarts-operator from hack/image.sh).
BIN=${BENCH_OPERATOR_BIN:-"${CARGO_TARGET_DIR:-$ROOT/target}/release/modelarts-operator"}
SIM_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/modelarts-simulator"
[[ $BIN = /* ]] || BIN="$ROOT/$BIN"
[[ $SIM_BIN = /* ]] || SIM_BIN="$ROOT/$SIM_BIN"

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
"$SIM_BIN" --port 0 --tls-generate "$WORK/tls" \
  --generate "$PROJECT/$POOL/bench-small=$NODES" --generate "$PROJECT/$POOL/bench-ref=$REF" \
  --generate "$PROJECT/$POOL/bench-big=$((BIG > 0 ? BIG : 1))" >"$WORK/simulator.out" 2>"$WORK/simulator.log" </dev/null &
SIM_PID=$!
for _ in $(seq 600); do
  SIM=$(sed -n 's|^simulator listening on \(https://127\.0\.0\.1:[0-9]*\)$|\1|p' "$WORK/simulator.out")
  [ -n "$SIM" ] && break
  sleep 0.1
done
[ -n "$SIM" ] || die "the simulator did not start (log: $WORK/simulator.log)"
log "simulator pid $SIM_PID at $SIM (node pools of $NODES, $REF and $((BIG > 0 ? BIG : 1)) nodes)"

kubectl apply --server-side --force-conflicts -f "$ROOT/crds/" >/dev/null
kubectl wait --for=condition=Established "crd/$CRD_NAME" --timeout=60s >/dev/null

rss_kib() { awk "/^$2:/ { print \$2 }" "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
TCK=$(getconf CLK_TCK)
now() { date +%s.%N; }
scrape() { curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics"; }
metric_sum() { # metric_sum NAME [LABEL-REGEX] < metrics text
  awk -v n="modelarts_operator_$1" -v l="${2:-}" '
    $1 == n || index($1, n "{") == 1 { if (l == "" || $1 ~ l) s += $2 } END { printf "%.6f\n", s + 0 }'
}
apiserver_requests() { # lines "verb resource/subresource count" for the operator's resources
  kubectl get --raw /metrics | awk '
    /^apiserver_request_total\{/ {
      v = r = s = ""
      if (match($0, /verb="[^"]*"/)) v = substr($0, RSTART + 6, RLENGTH - 7)
      if (match($0, /resource="[^"]*"/)) r = substr($0, RSTART + 10, RLENGTH - 11)
      if (match($0, /subresource="[^"]*"/)) s = substr($0, RSTART + 13, RLENGTH - 14)
      if (r == "modelartsnodepools" || r == "secrets" || r == "events") c[v " " r (s == "" ? "" : "/" s)] += $NF
    }
    END { for (k in c) print k, c[k] }' | sort
}

start_operator() { # start_operator NAMESPACE LOG
  METRICS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$BIN" run --namespace "$1" --modelarts-ca-file "$WORK/tls/ca.pem" --allowed-endpoint-suffix 127.0.0.1 \
    --metrics-addr "127.0.0.1:$METRICS_PORT" --modelarts-qps "$QPS" --modelarts-burst "$BURST" \
    ${CONCURRENCY:+--concurrency "$CONCURRENCY"} --status-heartbeat "$HEARTBEAT" --log-format json \
    >"$2" 2>&1 </dev/null &
  OP_PID=$!
  # Until the fork has exec'd, /proc/PID/cmdline still names bash.
  for _ in $(seq 50); do ours "$OP_PID" "$BIN" && break; sleep 0.1; done
}
alive() { ours "$OP_PID" "$BIN" || { tail -n 30 "$1" >&2; die "the operator exited (log: $1)"; }; }

make_resources() { # make_resources NAMESPACE COUNT NODEPOOL SYNC_INTERVAL
  local ns=$1 n=$2 np=$3 iv=$4 i
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl create secret generic "$SECRET" -n "$ns" --from-literal=accessKey="$AK" --from-literal=secretKey="$SK" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  for i in $(seq 1 "$n"); do
    cat <<EOF
---
apiVersion: modelarts-operator.io/v1alpha1
kind: ModelArtsNodePool
metadata: {name: bench-$(printf %05d "$i"), namespace: $ns, labels: {app.kubernetes.io/part-of: bench}}
spec:
  projectId: $PROJECT
  poolName: $POOL
  nodePoolName: $np
  endpoint: $SIM
  credentialsSecretRef: {name: $SECRET}
  syncInterval: $iv
EOF
  done >"$WORK/$ns.yaml"
  # Client-side apply, as most users do: the objects carry last-applied-configuration and managedFields.
  kubectl apply -f "$WORK/$ns.yaml" >/dev/null
  NAMESPACES+=("$ns")
}

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
for n in $COUNTS; do
  ns="bench-$n-$$"
  log "== $n resources: creating them in $ns"
  make_resources "$ns" "$n" bench-small "$INTERVAL"
  oplog="$WORK/operator-$n.log"
  api0=$(apiserver_requests)
  t_launch=$(now)
  start_operator "$ns" "$oplog"
  synced=0 t_all=''
  deadline=$((SECONDS + 60 + n * 2 * 3 / QPS + 120))
  while :; do
    alive "$oplog"
    synced=$(scrape 2>/dev/null | metric_sum nodepool_synced || echo 0)
    if [ "${synced%.*}" -ge "$n" ]; then t_all=$(now); break; fi
    [ $SECONDS -lt $deadline ] || die "only ${synced%.*} of $n Synced in time (log: $oplog)"
    sleep 0.5
  done
  cpu_first=$(cpu_ticks "$OP_PID")
  elapsed=$(python3 -c "print(f'{$t_all - $t_launch:.1f}')")
  log "all $n Synced after ${elapsed}s; settling ${SETTLE}s"
  sleep "$SETTLE"
  alive "$oplog"
  rss_settled=$(rss_kib "$OP_PID" VmRSS)
  m0=$(scrape); cpu0=$(cpu_ticks "$OP_PID"); api1=$(apiserver_requests); t_idle0=$(now)
  log "RSS settled $((rss_settled / 1024)) MiB; idle for $IDLE_MIN min"
  end=$((SECONDS + IDLE_MIN * 60))
  while [ $SECONDS -lt $end ]; do alive "$oplog"; sleep 5; done
  # RSS before the scrape: encoding /metrics for thousands of series allocates a few MiB.
  rss_idle=$(rss_kib "$OP_PID" VmRSS); hwm=$(rss_kib "$OP_PID" VmHWM)
  m1=$(scrape); cpu1=$(cpu_ticks "$OP_PID"); api2=$(apiserver_requests); t_idle1=$(now)
  writes0=$(metric_sum status_writes_total <<<"$m0"); writes1=$(metric_sum status_writes_total <<<"$m1")
  syncs0=$(metric_sum reconciles_total 'result="synced"' <<<"$m0")
  syncs1=$(metric_sum reconciles_total 'result="synced"' <<<"$m1")
  printf '%s\n' "$api1" >"$WORK/api1-$n.txt"; printf '%s\n' "$api2" >"$WORK/api2-$n.txt"
  printf '%s\n' "$api0" >"$WORK/api0-$n.txt"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$t_launch" "$t_all" "$cpu_first" \
    "$rss_settled" "$rss_idle" "$hwm" "$cpu0" "$cpu1" "$writes0" "$writes1" "$syncs0" "$syncs1" "$t_idle0" "$t_idle1" >>"$RESULTS"
  log "warnings in the operator log: $(grep -c '"level":"WARN"' "$oplog" || true)"
  stop_pid "$OP_PID" "$BIN"
  kubectl delete "$CRD_NAME" --all -n "$ns" --wait=false >/dev/null
  log "RSS after idle $((rss_idle / 1024)) MiB, peak $((hwm / 1024)) MiB; status writes $writes0 -> $writes1"
done

# --- one large node pool against a reference pool ---
big_run() { # big_run NODEPOOL NODES -> "hwm_kib mean_seconds syncs cpu_ticks"
  local np=$1 ns="bench-$1-$$" oplog="$WORK/operator-$1.log" c=0 m
  make_resources "$ns" 1 "$np" 10s
  start_operator "$ns" "$oplog"
  local deadline=$((SECONDS + 300 + BIG_SYNCS * 60))
  while :; do
    alive "$oplog"
    m=$(scrape 2>/dev/null || true)
    c=$(metric_sum reconcile_duration_seconds_count <<<"$m")
    [ "${c%.*}" -ge "$BIG_SYNCS" ] && break
    [ $SECONDS -lt $deadline ] || die "$np: only ${c%.*} syncs in time (log: $oplog)"
    sleep 1
  done
  local sum syncs
  sum=$(metric_sum reconcile_duration_seconds_sum <<<"$m")
  syncs=$(metric_sum reconciles_total 'result="synced"' <<<"$m")
  echo "$(rss_kib "$OP_PID" VmHWM) $(python3 -c "print($sum / $c)") ${syncs%.*} $(cpu_ticks "$OP_PID") ${c%.*}"
  stop_pid "$OP_PID" "$BIN"
  kubectl delete "$CRD_NAME" --all -n "$ns" --wait=false >/dev/null
}
if [ "$BIG" -gt 0 ]; then
  log "== one resource on a $REF-node pool (reference)"
  read -r ref_hwm ref_mean ref_syncs ref_cpu ref_count <<<"$(big_run bench-ref)"
  log "== one resource on a $BIG-node pool"
  read -r big_hwm big_mean big_syncs big_cpu big_count <<<"$(big_run bench-big)"
else
  ref_hwm=0 ref_mean=0 ref_syncs=0 ref_cpu=0 ref_count=0 big_hwm=0 big_mean=0 big_syncs=0 big_cpu=0 big_count=0
fi

# --- report ---
export RESULTS COUNTS NODES QPS BURST INTERVAL HEARTBEAT IDLE_MIN SETTLE TCK PAGE_SIZE WORK BIG REF BIG_SYNCS
export ref_hwm ref_mean ref_syncs ref_cpu ref_count big_hwm big_mean big_syncs big_cpu big_count
export CONCURRENCY_SHOWN=${CONCURRENCY:-default (4)}
export COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
export MACHINE="$(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
python3 - <<'EOF' | tee "$WORK/report.md"
import math, os
e = os.environ
tck = float(e["TCK"])
pages = math.ceil(int(e["NODES"]) / int(e["PAGE_SIZE"]))
qps = float(e["QPS"])
def api(path):
    out = {}
    for line in open(path):
        p = line.split()
        if len(p) == 3:
            out[(p[0], p[1])] = float(p[2])
    return out
print(f"### Scale run (commit {e['COMMIT']})\n")
print(f"Machine: {e['MACHINE']}. Settings: node pools of {e['NODES']} nodes ({pages} page each), "
      f"`--modelarts-qps {e['QPS']} --modelarts-burst {e['BURST']}`, concurrency {e['CONCURRENCY_SHOWN']}, "
      f"syncInterval {e['INTERVAL']}, `--status-heartbeat {e['HEARTBEAT']}`, settle {e['SETTLE']} s, "
      f"idle window {e['IDLE_MIN']} min.\n")
print("| resources | all Synced after launch | rate-limit floor | ratio | RSS settled | RSS after idle | peak RSS "
      "| CPU per sync (first sync) | CPU per sync (idle) | syncs per idle min | status writes per idle min "
      "| API server requests per idle min |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
rows = [l.split("\t") for l in open(e["RESULTS"]).read().splitlines() if l.strip()]
for r in rows:
    n = int(r[0]); t_launch, t_all = float(r[1]), float(r[2])
    cpu_first = float(r[3]) / tck
    rss_s, rss_i, hwm = (int(x) / 1024 for x in r[4:7])
    cpu0, cpu1 = float(r[7]) / tck, float(r[8]) / tck
    w0, w1, s0, s1 = (float(x) for x in r[9:13])
    minutes = (float(r[14]) - float(r[13])) / 60
    floor = n * (pages + 1) / qps
    a1, a2 = api(f"{e['WORK']}/api1-{n}.txt"), api(f"{e['WORK']}/api2-{n}.txt")
    delta = {k: a2.get(k, 0) - a1.get(k, 0) for k in set(a1) | set(a2)}
    delta = {k: v for k, v in delta.items() if v > 0}
    api_s = ", ".join(f"{v / minutes:.1f} {k[0]} {k[1]}" for k, v in sorted(delta.items(), key=lambda kv: -kv[1])) or "0"
    syncs = s1 - s0
    cpu_idle = f"{(cpu1 - cpu0) / syncs * 1000:.2f} ms" if syncs > 0 else "n/a"
    print(f"| {n:,} | {t_all - t_launch:.1f} s | {floor:.1f} s | {(t_all - t_launch) / floor:.2f} | {rss_s:.1f} MiB "
          f"| {rss_i:.1f} MiB | {hwm:.1f} MiB | {cpu_first / n * 1000:.2f} ms | {cpu_idle} | {syncs / minutes:.1f} "
          f"| {(w1 - w0) / minutes:.2f} | {api_s} |")
if int(e["BIG"]) == 0:
    raise SystemExit(0)
ref_hwm, big_hwm = int(e["ref_hwm"]) / 1024, int(e["big_hwm"]) / 1024
big_pages, ref_pages = math.ceil(int(e["BIG"]) / int(e["PAGE_SIZE"])), math.ceil(int(e["REF"]) / int(e["PAGE_SIZE"]))
print(f"\n| one node pool of | peak RSS | time per sync (mean of {e['BIG_SYNCS']}+, rate-limit waits included) "
      f"| rate-limit floor per sync | CPU per sync |")
print("|---:|---:|---:|---:|---:|")
for nodes, hwm, mean, pg, cpu, c in [(e["REF"], ref_hwm, e["ref_mean"], ref_pages, e["ref_cpu"], e["ref_count"]),
                                     (e["BIG"], big_hwm, e["big_mean"], big_pages, e["big_cpu"], e["big_count"])]:
    print(f"| {int(nodes):,} nodes ({pg} pages) | {hwm:.1f} MiB | {float(mean):.2f} s | {(pg + 1) / qps:.2f} s "
          f"| {float(cpu) / tck / int(c) * 1000:.0f} ms |")
print(f"\nThe {int(e['BIG']):,}-node pool's peak RSS is {big_hwm - ref_hwm:+.1f} MiB over the {int(e['REF']):,}-node pool's.")
EOF
if [ -n "${BENCH_OUT:-}" ]; then cp "$WORK/report.md" "$BENCH_OUT"; fi

#!/usr/bin/env bash
# A real Kubernetes control plane (etcd + kube-apiserver) on 127.0.0.1 for tests, CI and the demo.
# No Docker is needed: the binaries come from hack/tools.sh (built from the Go module proxy).
#
#   hack/control-plane.sh up      start (or reuse) a plane; prints `export KUBECONFIG=...` on stdout
#   hack/control-plane.sh up --node   the same plus a real node (hack/node.sh): containerd, kubelet,
#                                 kube-controller-manager, kube-scheduler, kube-proxy, Pods on a fenced bridge
#   hack/control-plane.sh load-image FILE   import an image archive into the node's containerd
#   hack/control-plane.sh env     print export lines (KUBECONFIG, PATH with the pinned kubectl/helm)
#   hack/control-plane.sh status  show dir, ports, PIDs, health
#   hack/control-plane.sh down    stop the processes this script started (by recorded PID) and remove state
#
# Fault verbs for tests (on a running plane's state dir; they never touch another plane):
#   hack/control-plane.sh kill etcd|kube-apiserver    SIGKILL that component (recorded PID, checked against
#                                                     /proc/PID/cmdline); the state dir and ports stay
#   hack/control-plane.sh start etcd|kube-apiserver   start it again with the same ports, PKI and data dir;
#                                                     waits for its health (etcd /health, apiserver /readyz)
#   hack/control-plane.sh compact                     compact etcd to its current revision (HTTP/JSON gateway,
#                                                     POST /v3/kv/compaction), so watches from an older
#                                                     resourceVersion get 410 Gone; prints the revision
#
# Environment:
#   CONTROL_PLANE_DIR        state dir (default ${XDG_STATE_HOME:-$HOME/.local/state}/modelarts-operator/control-plane);
#                            use different dirs to run several planes side by side
#   CONTROL_PLANE_PORT       kube-apiserver secure port      (default: a free port chosen by the kernel)
#   CONTROL_PLANE_ETCD_PORT  etcd client port                 (default: free port)
#   CONTROL_PLANE_ETCD_PEER_PORT etcd peer port               (default: free port)
#   CONTROL_PLANE_READY_TIMEOUT seconds to wait for /readyz   (default 120)
#   CONTROL_PLANE_APISERVER_ARGS extra kube-apiserver flags, space separated (e.g. --feature-gates=...)
#   MODELARTS_OPERATOR_TOOLS tools cache (see hack/tools.sh)
#
# Without kube-controller-manager some things never happen: namespaces stay Terminating after delete,
# no default ServiceAccount/token controller, no garbage collection. Tests must not rely on them.
set -euo pipefail

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
D=${CONTROL_PLANE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/modelarts-operator/control-plane}
READY_TIMEOUT=${CONTROL_PLANE_READY_TIMEOUT:-120}

log() { printf '[control-plane] %s\n' "$*" >&2; }
die() { printf '[control-plane] error: %s\n' "$*" >&2; exit 1; }

# --- process bookkeeping (pid_is, start, stop_one, free_ports): hack/lib/procs.sh ---
PROCS_DIR=$D
# shellcheck source=lib/procs.sh
. "$HACK/lib/procs.sh"

stop_all() {
  # The node first: its teardown deletes Pods through the API and restores the machine.
  [ -d "$D/node" ] && { "$HACK/node.sh" down || log "warning: node teardown reported an error"; }
  stop_one kube-apiserver; stop_one etcd
}

# remove_state: deletes $D, but only if everything in it is something this script creates, so a
# mistyped CONTROL_PLANE_DIR (say $HOME) can never be wiped.
remove_state() {
  local f
  for f in "$D"/* "$D"/.[!.]*; do
    [ -e "$f" ] || continue
    case "${f##*/}" in
      state.env|pki|etcd-data|kubeconfig|kubeconfig.tmp|*.pid|*.bin|*.log|node-*.log) ;;
      node) [ -f "$D/node/node.env" ] || die "refusing to delete $D: its 'node' dir was not made by hack/node.sh" ;;
      *) die "refusing to delete $D: it contains '${f##*/}', which hack/control-plane.sh did not create" ;;
    esac
  done
  rm -rf "$D"
}

# --- ports ---

port_is_free() {
  python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

# port_is_listenable: like port_is_free, but with SO_REUSEADDR as Go's listeners use it, so the
# TIME_WAIT connections a killed server leaves behind do not count; only a live listener does.
port_is_listenable() {
  python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()' "$1" 2>/dev/null
}

# --- health ---

readyz() { # readyz [timeout-seconds]: true if the apiserver answers /readyz with "ok"
  [ -f "$D/state.env" ] || return 1
  # shellcheck source=/dev/null
  . "$D/state.env"
  [ "$(curl -sS --max-time "${1:-5}" --cacert "$D/pki/ca.crt" --cert "$D/pki/admin.crt" --key "$D/pki/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" 2>/dev/null)" = ok ]
}

running() { pid_is etcd && pid_is kube-apiserver && readyz; }

tools_bin() {
  if [ -f "$D/state.env" ]; then . "$D/state.env"; echo "$TOOLS_BIN"; fi
}

# --- PKI: a throwaway CA, a serving cert valid for 127.0.0.1, an admin client cert, a service-account key ---

make_pki() {
  local p=$D/pki; mkdir -p "$p"; chmod 700 "$p"
  # ECDSA P-256 keys: generated in milliseconds (RSA keygen was ~1.4 s of a ~6 s start); accepted by
  # kube-apiserver (incl. ES256 service-account tokens), kubectl and rustls.
  key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
  (
    cd "$p"
    key ca.key
    openssl req -x509 -new -key ca.key -subj "/CN=modelarts-operator-test-ca" -days 30 -out ca.crt 2>/dev/null

    key apiserver.key
    openssl req -new -key apiserver.key -subj "/CN=kube-apiserver" -out apiserver.csr 2>/dev/null
    # rustls (kube-rs) verifies the IP SAN, so 127.0.0.1 must be in subjectAltName, not just the CN.
    # With a node, Pods reach it as the `kubernetes` Service (first Service IP) and at the node IP.
    printf 'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,IP:%s,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n' "$NODE_IP" > apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile apiserver.ext -out apiserver.crt 2>/dev/null

    # O=system:masters is bound to cluster-admin by the bootstrap RBAC policy.
    key admin.key
    openssl req -new -key admin.key -subj "/O=system:masters/CN=admin" -out admin.csr 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n' > admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile admin.ext -out admin.crt 2>/dev/null

    # Signs TokenRequest tokens (kubectl create token / create_token_request).
    key sa.key
    openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
    if [ "$NODE" = 1 ]; then
      client_cert node "/O=system:nodes/CN=system:node:$NODE_NAME"
      client_cert kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
    fi
    rm -f ./*.csr ./*.ext ca.srl
  )
}

client_cert() { # client_cert <name> <subject>, in the pki dir
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n' > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}

write_kubeconfig() {
  local b64='base64 -w0'
  # Data is embedded so the file keeps working when copied (e.g. into a CI artifact).
  cat > "$D/kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: modelarts-operator-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $($b64 < "$D/pki/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $($b64 < "$D/pki/admin.crt")
    client-key-data: $($b64 < "$D/pki/admin.key")
contexts:
- name: modelarts-operator-test
  context:
    cluster: modelarts-operator-test
    user: admin
    namespace: default
current-context: modelarts-operator-test
EOF
  chmod 600 "$D/kubeconfig.tmp"
  mv "$D/kubeconfig.tmp" "$D/kubeconfig"
}

# start_etcd: launch etcd with the ports, data dir and TLS-less settings of $D/state.env; wait for /health.
start_etcd() {
  . "$D/state.env"
  local bin=$TOOLS_BIN i
  log "starting etcd on 127.0.0.1:$ETCD_PORT"
  # --unsafe-no-fsync: throwaway test data; fsync dominates etcd latency on slow disks.
  start etcd "$bin/etcd" --name=test --data-dir="$D/etcd-data" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="test=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls="" \
    --unsafe-no-fsync --log-level=warn
  for i in $(seq 100); do
    etcd_healthy && break
    pid_is etcd || { tail -n 30 "$D/etcd.log" >&2; die "etcd died during start (log: $D/etcd.log)"; }
    sleep 0.1
  done
  etcd_healthy || { tail -n 30 "$D/etcd.log" >&2; die "etcd not healthy after 10s (log: $D/etcd.log)"; }
}

etcd_healthy() {
  . "$D/state.env"
  curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'
}

# start_apiserver: launch kube-apiserver against the plane's etcd, PKI and port; wait for /readyz.
start_apiserver() {
  . "$D/state.env"
  local bin=$TOOLS_BIN api_port=$APISERVER_PORT
  log "starting kube-apiserver on https://127.0.0.1:$api_port"
  local mode
  if [ "${NODE:-0}" = 1 ]; then
    # A real node: the Node authorizer, ServiceAccount tokens in Pods, the `kubernetes` Service
    # published at the node IP (a relay there forwards to 127.0.0.1), and kubelet addresses by IP so
    # the apiserver never resolves the node's name through the machine's resolver.
    mode=(--authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction
      --advertise-address="$NODE_IP" --endpoint-reconciler-type=lease
      --kubelet-client-certificate="$D/pki/kubelet-client.crt" --kubelet-client-key="$D/pki/kubelet-client.key"
      --kubelet-preferred-address-types=InternalIP)
  else
    # ServiceAccount admission is off because no controller-manager creates default ServiceAccounts;
    # endpoint reconciler off because there is no routable address to publish for the `kubernetes` Service.
    mode=(--authorization-mode=RBAC --advertise-address=127.0.0.1
      --disable-admission-plugins=ServiceAccount --endpoint-reconciler-type=none)
  fi
  start kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --secure-port="$api_port" "${mode[@]}" \
    --cert-dir="$D/pki" --tls-cert-file="$D/pki/apiserver.crt" --tls-private-key-file="$D/pki/apiserver.key" \
    --client-ca-file="$D/pki/ca.crt" \
    --service-account-issuer="https://127.0.0.1:$api_port" \
    --service-account-key-file="$D/pki/sa.pub" --service-account-signing-key-file="$D/pki/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --allow-privileged=true --profiling=false \
    ${CONTROL_PLANE_APISERVER_ARGS:-}

  local deadline=$((SECONDS + READY_TIMEOUT))
  until readyz 2; do
    if ! pid_is kube-apiserver; then
      log "kube-apiserver exited; last lines of $D/kube-apiserver.log:"
      tail -n 40 "$D/kube-apiserver.log" >&2 || true
      die "kube-apiserver failed to start"
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "kube-apiserver not ready after ${READY_TIMEOUT}s; last lines of $D/kube-apiserver.log:"
      tail -n 40 "$D/kube-apiserver.log" >&2 || true
      die "kube-apiserver did not become ready"
    fi
    sleep 0.25
  done
}

cmd_up() {
  local c
  for c in curl openssl python3 flock setsid base64; do
    command -v "$c" >/dev/null || die "'$c' is required but not on PATH"
  done
  local parent; parent=$(dirname "$D"); mkdir -p "$parent"
  # Serialize concurrent `up`/`down` on the same parent (also keeps two cold tool builds from racing).
  exec 9<"$parent"; flock 9

  if [ -d "$D" ]; then
    if running; then
      . "$D/state.env"
      [ "$WANT_NODE" = 1 ] && [ "${NODE:-0}" != 1 ] && \
        die "a plane without a node runs in $D; stop it (down) or use another CONTROL_PLANE_DIR for --node"
      log "reusing running control plane in $D"
      echo "export KUBECONFIG=$D/kubeconfig"
      return 0
    fi
    log "found stale state in $D; cleaning it up"
    stop_all
    remove_state
  fi

  local t0=$SECONDS bin
  bin=$("$HACK/tools.sh" all) || die "hack/tools.sh failed (see messages above)"
  [ -x "$bin/etcd" ] && [ -x "$bin/kube-apiserver" ] || die "tools missing in $bin"

  local ports etcd_port peer_port api_port
  ports=$(free_ports 3)
  read -r etcd_port peer_port api_port <<<"$ports"
  etcd_port=${CONTROL_PLANE_ETCD_PORT:-$etcd_port}
  peer_port=${CONTROL_PLANE_ETCD_PEER_PORT:-$peer_port}
  api_port=${CONTROL_PLANE_PORT:-$api_port}
  local p
  for p in "$etcd_port" "$peer_port" "$api_port"; do
    [[ $p =~ ^[0-9]+$ ]] || die "port '$p' is not a number"
    port_is_free "$p" || die "port 127.0.0.1:$p is already in use (set CONTROL_PLANE_PORT / CONTROL_PLANE_ETCD_PORT / CONTROL_PLANE_ETCD_PEER_PORT, or leave them unset to pick free ports)"
  done

  mkdir -p "$D"; chmod 700 "$D"
  cat > "$D/state.env" <<EOF
APISERVER_PORT=$api_port
ETCD_PORT=$etcd_port
ETCD_PEER_PORT=$peer_port
TOOLS_BIN=$bin
NODE=$WANT_NODE
NODE_IP=${NODE_IP:-10.213.0.1}
NODE_NAME=${NODE_NAME:-modelarts-node}
EOF
  . "$D/state.env"
  make_pki

  # From here on, a failure stops whatever we started and leaves logs for inspection.
  trap 'rc=$?; if [ $rc -ne 0 ]; then stop_all; log "start failed; logs kept in $D (next up cleans it)"; fi' EXIT

  start_etcd
  start_apiserver
  write_kubeconfig
  if [ "$WANT_NODE" = 1 ]; then
    exec 9<&-  # other planes under the same parent need not wait for the node
    NODE_IP=$NODE_IP NODE_NAME=$NODE_NAME "$HACK/node.sh" up
  fi
  trap - EXIT
  log "ready in $((SECONDS - t0))s (kube-apiserver $("$bin/kube-apiserver" --version | cut -d' ' -f2), etcd pid $(cat "$D/etcd.pid"), kube-apiserver pid $(cat "$D/kube-apiserver.pid"))"
  log "kubectl/helm: eval \"\$($0 env)\""
  echo "export KUBECONFIG=$D/kubeconfig"
}

cmd_down() {
  local parent; parent=$(dirname "$D")
  [ -d "$D" ] || { log "no control plane state in $D; nothing to stop"; return 0; }
  exec 9<"$parent"; flock 9
  stop_all
  remove_state
  log "stopped; removed $D"
}

cmd_env() {
  running || die "no running control plane in $D (start one with: $0 up)"
  echo "export KUBECONFIG=$D/kubeconfig"
  echo "export PATH=\"$(tools_bin):\$PATH\""
}

cmd_status() {
  [ -d "$D" ] || { echo "no control plane state in $D"; return 1; }
  . "$D/state.env"
  local n
  echo "dir:            $D"
  echo "kubeconfig:     $D/kubeconfig"
  echo "kube-apiserver: https://127.0.0.1:$APISERVER_PORT"
  echo "etcd:           http://127.0.0.1:$ETCD_PORT"
  echo "tools:          $TOOLS_BIN"
  for n in etcd kube-apiserver; do
    if pid_is "$n"; then echo "$n: running (pid $(cat "$D/$n.pid"))"; else echo "$n: NOT running"; fi
  done
  if [ -f "$D/node/node.env" ]; then
    . "$D/node/node.env"
    echo "node:           $NODE_NAME at $NODE_IP (bridge $NODE_BRIDGE, Pods in $NODE_CIDR)"
    for n in containerd kubelet kube-controller-manager kube-scheduler kube-proxy relay; do
      if [ -f "$D/node/$n.pid" ] && [ -r "/proc/$(cat "$D/node/$n.pid")/cmdline" ]; then
        echo "$n: running (pid $(cat "$D/node/$n.pid"))"; else echo "$n: NOT running"; fi
    done
  fi
  if readyz; then echo "readyz: ok"; else echo "readyz: FAILING"; return 1; fi
}

# --- fault verbs: break and repair a running plane in place (tests of the operator under faults) ---

component_arg() { # component_arg <verb> <name>: validates the component name
  case "${2:-}" in
    etcd|kube-apiserver) ;;
    *) echo "usage: $0 $1 etcd|kube-apiserver" >&2; exit 2 ;;
  esac
  [ -f "$D/state.env" ] || die "no control plane state in $D (start one with: $0 up)"
}

cmd_kill() {
  component_arg kill "${1:-}"
  local name=$1 pid i parent; parent=$(dirname "$D")
  exec 9<"$parent"; flock 9
  pid_is "$name" || die "$name is not running in $D (or its PID now belongs to another program); not signalling anything"
  pid=$(cat "$D/$name.pid")
  log "SIGKILL $name (pid $pid)"
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 100); do pid_is "$name" || break; sleep 0.05; done
  pid_is "$name" && die "$name (pid $pid) still running 5s after SIGKILL"
  rm -f "$D/$name.pid"
}

cmd_start() {
  component_arg start "${1:-}"
  local name=$1 parent; parent=$(dirname "$D")
  exec 9<"$parent"; flock 9
  if pid_is "$name"; then
    log "$name already running (pid $(cat "$D/$name.pid"))"
  else
    . "$D/state.env"
    port_is_listenable "$([ "$name" = etcd ] && echo "$ETCD_PORT" || echo "$APISERVER_PORT")" \
      || die "the port of $name is taken by another process; cannot restart it on the same port"
    case "$name" in
      etcd) start_etcd ;;
      kube-apiserver) start_apiserver ;;
    esac
  fi
  case "$name" in
    etcd) etcd_healthy || die "etcd is not healthy" ;;
    kube-apiserver) readyz || die "kube-apiserver is not ready" ;;
  esac
  log "$name running (pid $(cat "$D/$name.pid"))"
}

cmd_compact() {
  [ -f "$D/state.env" ] || die "no control plane state in $D (start one with: $0 up)"
  . "$D/state.env"
  pid_is etcd || die "etcd is not running in $D"
  # etcd's gRPC gateway speaks JSON over the plain-HTTP client port: no etcdctl needed.
  # A range over the key "\0" returns the store's current revision in its header.
  local out rev
  out=$(curl -fsS --max-time 10 -X POST -d '{"key":"AA==","limit":1}' "http://127.0.0.1:$ETCD_PORT/v3/kv/range") \
    || die "reading etcd's revision failed"
  rev=$(python3 -c 'import json,sys; print(int(json.load(sys.stdin)["header"]["revision"]))' <<<"$out") \
    || die "unexpected answer from etcd: $out"
  out=$(curl -sS --max-time 30 -X POST -d "{\"revision\":\"$rev\",\"physical\":true}" \
    "http://127.0.0.1:$ETCD_PORT/v3/kv/compaction") || die "compaction request failed"
  # An already compacted revision is not an error for our purpose: everything older is gone either way.
  if ! python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if "header" in d or "compacted" in d.get("message","") else 1)' <<<"$out"; then
    die "compaction to revision $rev failed: $out"
  fi
  log "compacted etcd to revision $rev"
  echo "$rev"
}

WANT_NODE=0
case "${1:-}" in
  up)
    case "${2:-}" in
      --node) WANT_NODE=1 ;;
      "") ;;
      *) echo "usage: $0 up [--node]" >&2; exit 2 ;;
    esac
    cmd_up ;;
  load-image) "$HACK/node.sh" load-image "${2:-}" ;;
  down) cmd_down ;;
  env) cmd_env ;;
  status) cmd_status ;;
  kill) cmd_kill "${2:-}" ;;
  start) cmd_start "${2:-}" ;;
  compact) cmd_compact ;;
  *) echo "usage: $0 up [--node]|down|env|status|load-image FILE|kill COMPONENT|start COMPONENT|compact" >&2; exit 2 ;;
esac

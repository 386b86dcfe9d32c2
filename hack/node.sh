#!/usr/bin/env bash
# A real node for the local control plane: containerd + runc, kubelet, kube-controller-manager,
# kube-scheduler and kube-proxy, with Pods on a bridge that exists only inside this machine.
# Called by hack/control-plane.sh (`up --node`, `down`, `load-image FILE`); not meant to be run alone.
#
#   hack/node.sh up            start the node's processes for the plane in $CONTROL_PLANE_DIR
#   hack/node.sh down          stop them (by recorded PID) and undo every change made to the machine
#   hack/node.sh load-image F  import an image archive (OCI or docker) into the node's containerd
#
# Fenced: Pods get addresses in $NODE_CIDR on bridge $NODE_BRIDGE and a route only to the Service
# CIDR; an iptables mangle fence drops anything routed into or out of the bridge and any Service
# packet kube-proxy did not translate, and Pods get an empty resolv.conf, so nothing leaves the machine.
# Everything `up` changes is recorded under $D/node (sysctls, iptables, paths it creates) and `down`
# restores it. Needs root, containerd, runc, the CNI plugins and podman (apt-get installs them).
set -euo pipefail

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
D=${CONTROL_PLANE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/modelarts-operator/control-plane}
N=$D/node
NODE_NAME=${NODE_NAME:-modelarts-node}
NODE_BRIDGE=${NODE_BRIDGE:-mo-br0}
NODE_CIDR=${NODE_CIDR:-10.213.0.0/24}
NODE_IP=${NODE_IP:-10.213.0.1}
SERVICE_CIDR=10.0.0.0/24
CNI_BIN=${CNI_BIN:-/usr/lib/cni}
FENCE=MO-NODE-FENCE
# Host paths the kubelet and libcni write to whatever their config says; removed at `down`
# only if `up` found them absent.
HOST_PATHS=(/var/lib/kubelet /var/log/containers /var/log/pods /var/lib/cni /run/containerd /etc/cni/net.d)
# Sysctls the kubelet, kube-proxy or the bridge plugin may change; restored at `down`.
SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward net.ipv4.conf.all.forwarding
  net.ipv4.conf.all.route_localnet net.ipv6.conf.all.forwarding net.bridge.bridge-nf-call-iptables
  net.bridge.bridge-nf-call-ip6tables net.netfilter.nf_conntrack_max
  net.netfilter.nf_conntrack_tcp_timeout_established net.netfilter.nf_conntrack_tcp_timeout_close_wait)

log() { printf '[node] %s\n' "$*" >&2; }
die() { printf '[node] error: %s\n' "$*" >&2; exit 1; }

# Same bookkeeping as control-plane.sh (pid_is, start, stop_one, free_ports), in the node's dir.
PROCS_DIR=$N
# shellcheck source=lib/procs.sh
. "$HACK/lib/procs.sh"

need_packages() {
  local need=()
  command -v containerd >/dev/null || need+=(containerd)
  command -v runc >/dev/null || need+=(runc)
  [ -x "$CNI_BIN/bridge" ] || need+=(containernetworking-plugins)
  command -v iptables >/dev/null || need+=(iptables)
  command -v conntrack >/dev/null || need+=(conntrack)
  command -v nft >/dev/null || need+=(nftables)
  command -v podman >/dev/null || need+=(podman)
  if [ "${#need[@]}" -gt 0 ]; then
    log "apt-get install ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2
  fi
  # The Debian package enables a system containerd unit; ours runs with private state only.
  [ "$(id -u)" = 0 ] || die "the node needs root (containerd, kubelet, iptables, bridge)"
}

ctr_() { ctr -a "$N/containerd/containerd.sock" -n k8s.io "$@"; }

# --- machine state: record before, restore after ---

record_machine() {
  local k p
  : > "$N/sysctl.before"
  for k in "${SYSCTLS[@]}"; do
    p=/proc/sys/${k//.//}
    [ -r "$p" ] && printf '%s=%s\n' "$k" "$(cat "$p")" >> "$N/sysctl.before"
  done
  : > "$N/paths.created"
  for p in "${HOST_PATHS[@]}"; do [ -e "$p" ] || echo "$p" >> "$N/paths.created"; done
  iptables-save > "$N/iptables.before" 2>/dev/null || true
  nft list tables > "$N/nft-tables.before" 2>/dev/null || true
  ip6tables-save > "$N/ip6tables.before" 2>/dev/null || true
  for p in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$p" ] && echo "$p" >> "$N/cgroups.existing"
  done
  touch "$N/cgroups.existing"
}

restore_sysctls() {
  local line k v p now
  [ -f "$N/sysctl.before" ] || return 0
  while IFS= read -r line; do
    k=${line%%=*}; v=${line#*=}; p=/proc/sys/${k//.//}
    [ -w "$p" ] || continue
    now=$(cat "$p")
    if [ "$now" != "$v" ]; then log "restoring $k: $now -> $v"; printf '%s' "$v" > "$p"; fi
  done < "$N/sysctl.before"
}

# The rules and user chains of an iptables-save, per table, without counters; built-in chains count
# only when their policy is not ACCEPT, so an empty table the nft backend keeps around compares
# equal to no table at all.
rules_of() {
  awk '/^\*/{t=substr($0,2)} /^-A /{print t" "$0} /^:/{c=substr($1,2); if ($2=="-" || $2!="ACCEPT") print t" :"c" "$2}' | sort
}

restore_iptables() {
  local fam cmd before t
  # iptables on the nf_tables backend leaves empty tables behind once it has touched them (the
  # kubelet and kube-proxy create filter and nat): drop the tables that did not exist before.
  if [ -f "$N/nft-tables.before" ] && command -v nft >/dev/null; then
    nft list tables 2>/dev/null | while read -r _ fam t; do
      grep -qx "table $fam $t" "$N/nft-tables.before" || { log "deleting nft table $fam $t"; nft delete table "$fam" "$t"; }
    done
  fi
  for fam in "" 6; do
    cmd=ip${fam}tables before=$N/ip${fam}tables.before
    [ -f "$before" ] || continue
    diff -q <(rules_of < "$before") <($cmd-save 2>/dev/null | rules_of) >/dev/null && continue
    # What kube-proxy --cleanup and our own deletes left behind (the kubelet's KUBE-FIREWALL,
    # KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT chains): put each table back exactly as recorded.
    log "${cmd} rules differ from before the node; restoring the recorded tables"
    for t in $($cmd-save 2>/dev/null | sed -n 's/^\*//p'); do
      if grep -qx "\*$t" "$before"; then
        awk -v t="*$t" '$0==t{p=1} p{print} p&&$0=="COMMIT"{exit}' "$before" | $cmd-restore
      else
        $cmd -t "$t" -F; $cmd -t "$t" -X
      fi
    done
    diff <(rules_of < "$before") <($cmd-save 2>/dev/null | rules_of) >&2 \
      || log "warning: $cmd rules still differ from before the node (diff above)"
  done
}

# --- the pieces ---

kubeconfig_for() { # kubeconfig_for <cert-name> <server> > file
  local b64='base64 -w0'
  cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: $2
    certificate-authority-data: $($b64 < "$D/pki/ca.crt")
users:
- name: u
  user:
    client-certificate-data: $($b64 < "$D/pki/$1.crt")
    client-key-data: $($b64 < "$D/pki/$1.key")
contexts:
- name: local
  context: {cluster: local, user: u}
current-context: local
EOF
}

bridge_up() {
  ip link show "$NODE_BRIDGE" >/dev/null 2>&1 && die "bridge $NODE_BRIDGE already exists (another node running? set NODE_BRIDGE/NODE_CIDR/NODE_IP)"
  ip link add "$NODE_BRIDGE" type bridge
  echo "$NODE_BRIDGE" > "$N/bridge"
  ip addr add "$NODE_IP/${NODE_CIDR#*/}" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  # The host reaches ClusterIPs through the bridge; kube-proxy translates them before they get there.
  ip route add "$SERVICE_CIDR" dev "$NODE_BRIDGE" src "$NODE_IP"
  # The fence, in mangle so it runs before anything kube-proxy or CNI add to filter/nat.
  iptables -t mangle -N "$FENCE"
  echo "$FENCE" > "$N/fence"
  iptables -t mangle -A "$FENCE" -i "$NODE_BRIDGE" ! -o "$NODE_BRIDGE" -j DROP
  iptables -t mangle -A "$FENCE" -o "$NODE_BRIDGE" ! -i "$NODE_BRIDGE" -j DROP
  iptables -t mangle -I FORWARD 1 -j "$FENCE"
  # After DNAT a Service packet carries a Pod or node address; one still aimed at the Service
  # CIDR had no backend, and must not be routed anywhere.
  iptables -t mangle -I POSTROUTING 1 -d "$SERVICE_CIDR" -j DROP
  ip6tables -t mangle -I FORWARD 1 -i "$NODE_BRIDGE" -j DROP 2>/dev/null || true
  ip6tables -t mangle -I FORWARD 1 -o "$NODE_BRIDGE" -j DROP 2>/dev/null || true
}

bridge_down() {
  if [ -f "$N/fence" ]; then
    iptables -t mangle -D FORWARD -j "$FENCE" 2>/dev/null || true
    iptables -t mangle -D POSTROUTING -d "$SERVICE_CIDR" -j DROP 2>/dev/null || true
    iptables -t mangle -F "$FENCE" 2>/dev/null || true
    iptables -t mangle -X "$FENCE" 2>/dev/null || true
    ip6tables -t mangle -D FORWARD -i "$NODE_BRIDGE" -j DROP 2>/dev/null || true
    ip6tables -t mangle -D FORWARD -o "$NODE_BRIDGE" -j DROP 2>/dev/null || true
    rm -f "$N/fence"
  fi
  if [ -f "$N/bridge" ]; then
    # veth peers of Pods that CNI DEL did not remove go with their namespaces; the bridge goes now.
    ip link del "$(cat "$N/bridge")" 2>/dev/null || true
    rm -f "$N/bridge"
  fi
}

# The apiserver listens on 127.0.0.1; Pods reach it at the advertised node IP through this relay.
write_relay() {
  cat > "$N/relay.py" <<'EOF'
import asyncio, sys
listen_host, port = sys.argv[1], int(sys.argv[2])
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data); await w.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        w.close()
async def handle(cr, cw):
    try:
        ur, uw = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        cw.close(); return
    await asyncio.gather(pipe(cr, uw), pipe(ur, cw))
async def main():
    server = await asyncio.start_server(handle, listen_host, port)
    async with server:
        await server.serve_forever()
asyncio.run(main())
EOF
}

write_containerd_config() {
  cat > "$N/containerd.toml" <<EOF
version = 2
root = "$N/containerd/root"
state = "$N/containerd/state"
[grpc]
  address = "$N/containerd/containerd.sock"
[ttrpc]
  address = "$N/containerd/containerd.sock.ttrpc"
[debug]
  level = "warn"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:local"
  disable_apparmor = true
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$N/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$N/cni/net.d"
EOF
  mkdir -p "$N/cni/net.d"
  local start=${NODE_CIDR%/*}; start=${start%.*}
  cat > "$N/cni/net.d/10-modelarts.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "modelarts-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE_BRIDGE",
      "isGateway": true,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$N/cni/ipam",
        "ranges": [[{"subnet": "$NODE_CIDR", "rangeStart": "$start.10", "rangeEnd": "$start.250", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "$SERVICE_CIDR"}]
      }
    },
    {"type": "loopback"}
  ]
}
EOF
}

write_kubelet_config() {
  cat > "$N/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$N/containerd/containerd.sock
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $D/pki/ca.crt}
authorization:
  mode: Webhook
resolvConf: ""
failSwapOn: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
maxPods: 40
registerNode: true
serializeImagePulls: false
podLogsDir: $N/pod-logs
syncFrequency: 10s
fileCheckFrequency: 20s
nodeStatusReportFrequency: 1m
EOF
}

write_proxy_config() {
  cat > "$N/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $D/kubeconfig}
mode: iptables
hostnameOverride: $NODE_NAME
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
clusterCIDR: $NODE_CIDR
nodePortAddresses: ["$NODE_IP/32"]
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false, syncPeriod: 30s, minSyncPeriod: 1s}
EOF
}

# A pause (sandbox) image from the locally built pause binary: no registry is reachable here.
pause_archive() {
  local tools=$1
  local out=$tools/../pause.oci.tar state=$tools/../podman
  if [ -f "$out" ] && [ "$out" -nt "$tools/pause" ]; then echo "$out"; return; fi
  mkdir -p "$state/ctx"
  cp "$tools/pause" "$state/ctx/pause"
  printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > "$state/ctx/Containerfile"
  printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/storage"\nrunroot = "%s/run"\n' "$state" "$state" > "$state/storage.conf"
  printf '[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\ntmp_dir = "%s/tmp"\nstatic_dir = "%s/libpod"\nvolume_path = "%s/volumes"\n' \
    "$state" "$state" "$state" > "$state/containers.conf"
  CONTAINERS_STORAGE_CONF=$state/storage.conf CONTAINERS_CONF=$state/containers.conf \
    podman build -q --network=none -t localhost/pause:local "$state/ctx" >&2
  rm -f "$out.tmp"
  CONTAINERS_STORAGE_CONF=$state/storage.conf CONTAINERS_CONF=$state/containers.conf \
    podman save --format oci-archive -o "$out.tmp" localhost/pause:local >&2
  mv "$out.tmp" "$out"
  echo "$out"
}

wait_for() { # wait_for <seconds> <what> <command...>
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what not ready after ${secs}s (logs in $N)"
    sleep 0.25
  done
}

cmd_up() {
  [ -f "$D/state.env" ] || die "no control plane in $D"
  # shellcheck source=/dev/null
  . "$D/state.env"
  [ -d "$N" ] && die "node state already exists in $N (run hack/control-plane.sh down first)"
  need_packages
  local t0=$SECONDS bin=$TOOLS_BIN
  "$HACK/tools.sh" node >/dev/null || die "hack/tools.sh node failed"
  mkdir -p "$N"; chmod 700 "$N"
  local ports; ports=$(free_ports 6)
  read -r KUBELET_PORT KUBELET_HEALTHZ_PORT PROXY_HEALTHZ_PORT PROXY_METRICS_PORT KCM_PORT SCHED_PORT <<<"$ports"
  cat > "$N/node.env" <<EOF
NODE_NAME=$NODE_NAME
NODE_IP=$NODE_IP
NODE_CIDR=$NODE_CIDR
NODE_BRIDGE=$NODE_BRIDGE
KUBELET_PORT=$KUBELET_PORT
KUBELET_HEALTHZ_PORT=$KUBELET_HEALTHZ_PORT
PROXY_HEALTHZ_PORT=$PROXY_HEALTHZ_PORT
EOF
  record_machine
  trap 'rc=$?; if [ $rc -ne 0 ]; then log "node start failed; undoing"; cmd_down || true; fi' EXIT

  kubeconfig_for node "https://127.0.0.1:$APISERVER_PORT" > "$N/kubelet.kubeconfig"
  bridge_up
  write_relay
  # The interpreter itself, not a wrapper (pyenv shims exec it), so the recorded PID's argv[0] matches.
  start relay "$(python3 -c 'import sys; print(sys.executable)')" "$N/relay.py" "$NODE_IP" "$APISERVER_PORT"

  write_containerd_config
  mkdir -p "$N/containerd" "$N/runc" "$N/pod-logs" "$N/kubelet"
  start containerd "$(command -v containerd)" --config "$N/containerd.toml"
  wait_for 30 containerd ctr_ version
  local pause; pause=$(pause_archive "$bin")
  ctr_ images import --all-platforms "$pause" >/dev/null
  ctr_ images ls -q | grep -qx 'localhost/pause:local' || die "pause image not found in containerd after import"

  start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig="$D/kubeconfig" \
    --authentication-kubeconfig="$D/kubeconfig" --authorization-kubeconfig="$D/kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
    --service-account-private-key-file="$D/pki/sa.key" --root-ca-file="$D/pki/ca.crt" \
    --cluster-signing-cert-file="$D/pki/ca.crt" --cluster-signing-key-file="$D/pki/ca.key" \
    --use-service-account-credentials=false --service-cluster-ip-range="$SERVICE_CIDR" \
    --controllers='*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller' \
    --concurrent-gc-syncs=5 --profiling=false
  start kube-scheduler "$bin/kube-scheduler" --kubeconfig="$D/kubeconfig" \
    --authentication-kubeconfig="$D/kubeconfig" --authorization-kubeconfig="$D/kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --leader-elect=false --profiling=false

  write_kubelet_config
  start kubelet "$bin/kubelet" --config="$N/kubelet.yaml" --kubeconfig="$N/kubelet.kubeconfig" \
    --root-dir="$N/kubelet" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1
  write_proxy_config
  start kube-proxy "$bin/kube-proxy" --config="$N/kube-proxy.yaml" --v=1

  local k="$bin/kubectl --kubeconfig=$D/kubeconfig"
  wait_for 120 "node $NODE_NAME Ready" bash -c \
    "[ \"\$($k get node $NODE_NAME -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}')\" = True ]"
  wait_for 60 "the default ServiceAccount" $k -n default get serviceaccount default
  wait_for 60 "kube-proxy" curl -fsS "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz"
  trap - EXIT
  log "node $NODE_NAME Ready in $((SECONDS - t0))s (IP $NODE_IP on bridge $NODE_BRIDGE, Pods in $NODE_CIDR)"
}

cmd_down() {
  [ -d "$N" ] || return 0
  local k="" name p
  [ -f "$D/state.env" ] && . "$D/state.env" && k="$TOOLS_BIN/kubectl --kubeconfig=$D/kubeconfig --request-timeout=10s"
  # Pods deleted through the API first, so the kubelet runs CNI DEL and unmounts their volumes.
  if [ -n "$k" ] && pid_is kubelet && $k get --raw /readyz >/dev/null 2>&1; then
    log "deleting Pods through the API"
    $k delete pods --all --all-namespaces --grace-period=1 --wait=false >/dev/null 2>&1 || true
    local deadline=$((SECONDS + 40))
    while [ $SECONDS -lt $deadline ] && [ -n "$($k get pods -A -o name 2>/dev/null)" ]; do
      # Controllers recreate what they own; stop them so the node can drain.
      stop_one kube-controller-manager
      $k delete pods --all --all-namespaces --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
      sleep 1
    done
  fi
  for name in kube-proxy kubelet kube-scheduler kube-controller-manager; do stop_one "$name"; done
  if pid_is containerd; then
    # Sandboxes that are left: stop and remove them through CRI so CNI DEL runs, then the tasks.
    local c
    for c in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true; done
    sleep 1
    for c in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$c" >/dev/null 2>&1 || true; done
    for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$c" >/dev/null 2>&1 || true; done
  fi
  stop_one containerd
  # Shims outlive containerd and containerd 1.6 records no PID for them: a shim is ours when its
  # command line carries our private containerd socket, which no other containerd uses.
  for p in /proc/[0-9]*; do
    c=$(tr '\0' ' ' 2>/dev/null < "$p/cmdline") || continue
    case "$c" in
      *containerd-shim*" -address $N/containerd/containerd.sock"*) log "killing leftover shim ${p#/proc/}"; kill -KILL "${p#/proc/}" 2>/dev/null || true ;;
    esac
  done
  stop_one relay
  [ -f "$TOOLS_BIN/kube-proxy" ] && "$TOOLS_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  # Network namespaces and mounts under our state dir, deepest first.
  if [ -d "$N" ]; then
    awk -v n="$N" '$2 ~ "^"n {print $2}' /proc/self/mounts | sort -r | while read -r p; do
      umount -l "$p" 2>/dev/null || umount "$p" 2>/dev/null || log "warning: could not unmount $p"
    done
  fi
  bridge_down
  # Empty cgroups the kubelet made (kubepods and below), deepest first.
  for p in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$p" ] || continue
    grep -qx "$p" "$N/cgroups.existing" 2>/dev/null && continue
    find "$p" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [ -d "$p" ] && log "warning: cgroup $p still exists (a process is still in it?)"
  done
  restore_iptables
  restore_sysctls
  if [ -f "$N/paths.created" ]; then
    while read -r p; do
      [ -n "$p" ] || continue
      awk -v n="$p" '$2 ~ "^"n {print $2}' /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
      rm -rf "$p"
    done < "$N/paths.created"
  fi
  # Logs outlive a failed start for inspection; the next `up` cleans them with the plane.
  for p in "$N"/*.log; do [ -f "$p" ] && mv "$p" "$D/node-${p##*/}"; done
  rm -rf "$N"
  log "node stopped; machine restored"
}

cmd_load_image() {
  local file=${1:-}
  [ -f "$file" ] || die "usage: $0 load-image FILE (an OCI or docker image archive); '$file' not found"
  pid_is containerd || die "no node running in $D (start one with: hack/control-plane.sh up --node)"
  local t0=$SECONDS
  ctr_ images import --all-platforms "$file" >&2
  log "imported $file in $((SECONDS - t0))s; images: $(ctr_ images ls -q | grep -v '^sha256:' | tr '\n' ' ')"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  load-image) cmd_load_image "${2:-}" ;;
  *) echo "usage: $0 up|down|load-image FILE" >&2; exit 2 ;;
esac

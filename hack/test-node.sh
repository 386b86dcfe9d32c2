#!/usr/bin/env bash
# The Helm tests on a real node: builds the operator's image (hack/image.sh), starts a private
# control plane with a node (hack/control-plane.sh up --node), imports the image, runs
# `cargo test --test helm_node`, stops everything and checks that the machine is as before
# (iptables and nft tables, the sysctls the node touches, mounts, links, host paths).
#
#   hack/test-node.sh            extra args go to cargo test (e.g. -- --nocapture)
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[test-node] %s\n' "$*" >&2; }

export CONTROL_PLANE_DIR=${NODE_PLANE_DIR:-${TMPDIR:-/tmp}/modelarts-operator-node-plane}
snap() ( # a subshell: empty outputs (grep -v on nothing) must not trip errexit/pipefail
  set +e +o pipefail
  {
    echo "## iptables"; iptables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
    echo "## ip6tables"; ip6tables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
    echo "## nft"; nft list tables 2>/dev/null || true
    echo "## sysctl"
    for k in vm/overcommit_memory kernel/panic kernel/panic_on_oops net/ipv4/ip_forward \
      net/ipv4/conf/all/forwarding net/ipv4/conf/all/route_localnet net/ipv6/conf/all/forwarding; do
      echo "$k=$(cat /proc/sys/$k 2>/dev/null)"
    done
    echo "## links"; ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
    echo "## routes"; ip route show | sort
    echo "## mounts"; awk '{print $2}' /proc/self/mounts | sort
    echo "## paths"; for p in /var/lib/kubelet /var/log/containers /var/log/pods /var/lib/cni /run/containerd /etc/cni/net.d; do
      [ -e "$p" ] && echo "$p"; done
  } 2>/dev/null
  true
)

t0=$SECONDS
image_out=$(hack/image.sh)
echo "$image_out"
ref=$(sed -n 's/^image \([^:]*:[^:]*\): .*/\1/p' <<<"$image_out")
[ -n "$ref" ] || { log "could not read the image reference from hack/image.sh's output"; exit 1; }
log "image built in $((SECONDS - t0))s"

before=$(mktemp); after=$(mktemp)
snap > "$before"
started=0
cleanup() {
  rc=$?
  if [ "$started" = 1 ]; then
    hack/control-plane.sh down >&2 || rc=1
    snap > "$after"
    if diff -u "$before" "$after" >&2; then
      log "machine restored: iptables, nft tables, sysctls, links, routes, mounts and host paths as before"
    else
      log "FAILED: the machine differs from before the node (diff above)"; rc=1
    fi
  fi
  rm -f "$before" "$after"
  exit $rc
}
trap cleanup EXIT
t1=$SECONDS
eval "$(hack/control-plane.sh up --node)"
started=1
log "plane + node up in $((SECONDS - t1))s"
hack/control-plane.sh load-image target/image/modelarts-operator.oci.tar
HELM=$(hack/tools.sh helm)/helm KUBECTL=$(hack/tools.sh helm)/kubectl
export HELM KUBECTL
export MODELARTS_REQUIRE_CLUSTER=1 MODELARTS_REQUIRE_NODE=1
export MODELARTS_NODE_DIR=$CONTROL_PLANE_DIR/node MODELARTS_OPERATOR_IMAGE=$ref
if [ "$#" -gt 0 ]; then
  cargo test --test helm_node "$@"
else
  cargo test --test helm_node -- --nocapture --test-threads=1
fi

#!/usr/bin/env bash
# Proves the image's binary resolves host names without glibc NSS: the image's root
# filesystem (exported from the archive hack/image.sh wrote) gets the two files a kubelet
# mounts into every Pod, /etc/hosts (mapping a made-up name to 127.0.0.1) and /etc/resolv.conf
# (a loopback nameserver nobody serves, so no query can leave the machine), and the binary,
# chrooted into it, runs `inspect` against the simulator over HTTPS by that name.
#
#   hack/check-image-dns.sh      (after hack/image.sh; needs root for chroot)
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[image-dns] %s\n' "$*" >&2; }

NAME=modelarts.sim.invalid     # .invalid never resolves anywhere real (RFC 2606)
STATE=${PODMAN_STATE:-$PWD/target/image/podman}
export CONTAINERS_STORAGE_CONF=$STATE/storage.conf CONTAINERS_CONF=$STATE/containers.conf
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
REF=${IMAGE_REF:-localhost/modelarts-operator:$VERSION}
work=$(mktemp -d)
sim_pid=""
cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  [ -n "${cid:-}" ] && podman rm "$cid" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

# The image's filesystem, exactly: create (not run) a container and export it.
cid=$(podman create "$REF")
mkdir "$work/root"
podman export "$cid" | tar -x -C "$work/root"
ls "$work/root/etc" >/dev/null 2>&1 && { echo "image unexpectedly has /etc" >&2; exit 1; }
mkdir "$work/root/etc"
printf '127.0.0.1 %s\n' "$NAME" > "$work/root/etc/hosts"
printf 'nameserver 127.0.0.1\n' > "$work/root/etc/resolv.conf"

cargo build -q -p modelarts-simulator --bin modelarts-simulator
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${CARGO_TARGET_DIR:-target}/debug/modelarts-simulator" --port "$port" --tls-generate "$work/tls" --tls-name "$NAME" \
  > "$work/sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 50); do [ -f "$work/tls/ca.pem" ] && break; sleep 0.1; done
cp "$work/tls/ca.pem" "$work/root/ca.pem"
for _ in $(seq 50); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

log "inspect inside the image's root, endpoint https://$NAME:$port"
env -i HUAWEICLOUD_SDK_AK=DEMOACCESSKEY0000001 HUAWEICLOUD_SDK_SK=demo-secret-key-not-for-production-0000000 \
  "$(command -v chroot)" --userspec=65532:65532 "$work/root" /modelarts-operator inspect \
  --project-id 0123456789abcdef0123456789abcdef \
  --pool pool-dly-lite-7c9e2a41-5b3d-4f08-9e61-2a7c4b8d0f13 --nodepool nodepool-1 \
  --endpoint "https://$NAME:$port" --ca-file /ca.pem -o json > "$work/out.json"
grep -q '"nodeCount": 1' "$work/out.json" || { cat "$work/out.json" >&2; exit 1; }
echo "OK: the image's binary resolved $NAME through /etc/hosts (no NSS) and listed nodepool-1 over HTTPS"

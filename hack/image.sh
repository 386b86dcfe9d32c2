#!/usr/bin/env bash
# Builds the operator's image from the repo's Containerfile on this machine, without Docker or a
# registry: a static musl binary (the release workflow's target), `podman build --network=none`
# with all podman state in a private directory, and an OCI archive to import into a node.
#
#   hack/image.sh            -> target/image/modelarts-operator.oci.tar (reference and size printed)
#
# Needs podman, runc and musl-tools (installed with apt-get when missing) and the Rust musl target
# (added with rustup when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[image] %s\n' "$*" >&2; }

TARGET=x86_64-unknown-linux-musl
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
REF=${IMAGE_REF:-localhost/modelarts-operator:$VERSION}
OUT=target/image
STATE=${PODMAN_STATE:-$PWD/target/image/podman}
mkdir -p "$OUT" "$STATE"

need_apt=()
command -v podman >/dev/null || need_apt+=(podman)
command -v runc >/dev/null || need_apt+=(runc)
command -v musl-gcc >/dev/null || need_apt+=(musl-tools)
if [ "${#need_apt[@]}" -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${need_apt[@]}" >&2
fi
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET" >&2

log "building the static $TARGET binary (release)"
t0=$(date +%s)
CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --locked -p modelarts-operator --target "$TARGET" >&2
BIN=target/$TARGET/release/modelarts-operator
mkdir -p "$OUT/context/dist/amd64"
objcopy --strip-all "$BIN" "$OUT/context/dist/amd64/modelarts-operator"
log "binary: $(du -h "$OUT/context/dist/amd64/modelarts-operator" | cut -f1) in $(( $(date +%s) - t0 ))s"

# Podman with every piece of state under $STATE, so nothing lands in /var/lib/containers:
# overlay storage, cgroupfs, runc (crun cannot run on this machine's hybrid cgroups).
cat > "$STATE/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$STATE/storage"
runroot = "$STATE/run"
CONF
cat > "$STATE/containers.conf" <<CONF
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
tmp_dir = "$STATE/tmp"
volume_path = "$STATE/volumes"
static_dir = "$STATE/libpod"
CONF
export CONTAINERS_STORAGE_CONF=$STATE/storage.conf CONTAINERS_CONF=$STATE/containers.conf
cp Containerfile "$OUT/context/Containerfile"
podman build --network=none --build-arg BINARY=dist/amd64/modelarts-operator \
  -f "$OUT/context/Containerfile" -t "$REF" "$OUT/context" >&2
rm -f "$OUT/modelarts-operator.oci.tar"
podman save --format oci-archive -o "$OUT/modelarts-operator.oci.tar" "$REF" >&2
size=$(podman image inspect "$REF" --format '{{.Size}}')
echo "image $REF: $(( size / 1024 / 1024 )) MiB uncompressed, archive $(du -h "$OUT/modelarts-operator.oci.tar" | cut -f1) at $OUT/modelarts-operator.oci.tar"

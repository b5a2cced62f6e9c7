#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian machine (as root), then run them:
# Debian's Slurm + munge as a 2-node cluster on loopback, shellcheck, a pinned Helm 4, and the
# pinned Python test dependencies. Extra arguments go to pytest.
set -euo pipefail

repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

apt_packages=(shellcheck git)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bash scripts/install_helm.sh
export PATH="$repo/.tools/bin:$PATH"

python3 -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test,train]' 2>&1 \
  | grep -v -e "^WARNING: Location" -e "Running pip as the 'root' user" || true
python3 -c "import torch, sys; sys.exit(torch.version.cuda is not None)" \
  || { echo "error: a CUDA build of torch is installed; the tests pin the CPU build" >&2; exit 1; }

bash scripts/slurm_testbed/up.sh

status=0
python3 -m pytest "$@" || status=$?
if ((status == 5)); then
  echo "error: pytest collected no tests" >&2
fi
exit "$status"

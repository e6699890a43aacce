#!/usr/bin/env bash
# Install the Debian packages the build, the tests and the demo need, when
# missing.  Runs as root, or through sudo when available; otherwise it only
# reports what is missing.
set -euo pipefail

# Arguments replace the list (make bench adds nginx-light, wrk, gnuplot-nox).
packages=(postgresql-15 postgresql-server-dev-15 libcurl4-openssl-dev libssl-dev
          libipc-run-perl python3 make gcc)
[ $# -gt 0 ] && packages=("$@")
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
        || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "deps: missing packages: ${missing[*]} (run as root or install them)" >&2
    exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi

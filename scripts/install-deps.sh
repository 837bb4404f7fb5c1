#!/usr/bin/env bash
# Installs everything Sensoworks needs to build, test and benchmark on Debian 12 (bookworm).
# Idempotent: packages already present are not touched, and apt is only called when something
# is missing. Only Debian's archive (apt) and the npm registry are used.
set -euo pipefail

PKGS=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config clang-format clang-16 libclang-rt-16-dev
  # libraries (Boost 1.81, not bookworm's default 1.74)
  libboost1.81-dev libboost-json1.81-dev
  librocksdb-dev libsqlite3-dev libsodium-dev libssl-dev libjwt-dev zlib1g-dev
  libspdlog-dev libfmt-dev libcli11-dev libyaml-cpp-dev libsimdjson-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # black-box tests and benchmarks
  python3-pytest python3-requests python3-paho-mqtt python3-websocket
  curl procps influxdb mosquitto mosquitto-clients
  # browser tests (Playwright drives this chromium); Node.js for the UI build is checked below
  chromium fonts-dejavu-core
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # Debian starts packaged daemons on install; the tests and benchmarks start their own instances.
  for svc in influxdb mosquitto; do
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
else
  echo "install-deps: all packages present"
fi

# Node.js and npm build the web UI (Vite 6 needs Node.js >= 18). Debian's packages serve when
# none is installed; a newer one already on the machine (e.g. NodeSource) is kept.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-deps: installing nodejs npm"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
  echo "install-deps: Node.js $(node --version) is too old for the UI build (need >= 18)" >&2
  exit 1
fi

# Shared by .ci/demo and .ci/test: installs what is missing (Debian 12, as root), quietly.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mca_install_packages() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

MCA_BUILD_PACKAGES=(g++ cmake ninja-build pkg-config libcurl4-openssl-dev nlohmann-json3-dev libssl-dev openssl
  ca-certificates)
# What the optional parts and their tests need (the fleet store, the adapters): the demo does
# without. Boost 1.81 rather than libboost-dev's 1.74: it has per-operation cancellation and
# `deferred`, which the Asio adapter's tests cover.
MCA_OPTIONAL_PACKAGES=(libhiredis-dev redis-server libgrpc++-dev libboost1.81-dev)

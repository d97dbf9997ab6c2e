#!/usr/bin/env bash
# Installs the Debian 12 packages herd needs, only when some are missing
# (idempotent; `make demo` and `make test` call it). Needs root or sudo.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libzmq3-dev libprotobuf-c-dev protobuf-c-compiler
  libopenmpi-dev openmpi-bin
  libhdf5-openmpi-dev hdf5-tools
  libopenblas-dev libjansson-dev zlib1g-dev libcmocka-dev libcurl4-openssl-dev libssl-dev
  libmicrohttpd-dev
  clang libclang-rt-14-dev
  libgloo-dev
  dataset-fashion-mnist
  python3 python3-h5py python3-numpy
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"

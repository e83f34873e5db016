#!/usr/bin/env bash
# Set up hallq on a fresh Debian 12 / Raspberry Pi OS machine (idempotent; `make setup` runs it).
# - system packages (Mosquitto, CJK fonts, espeak-ng, Node.js for the MicroPython check) with apt when
#   run as root, or a clear list of what to install otherwise;
# - uv, if it is not on PATH, into .uv/ (a venv of its own; no downloads outside the package registries);
# - the whole workspace synced into .venv (so .venv/bin/hallq exists).
set -euo pipefail
cd "$(dirname "$0")/.."

# provisioning: mtools, dosfstools, fdisk (card), bmap-tools and zstd (flash), openssl (certificate checks);
# chromium + chromium-driver: the dashboard's browser tests (Selenium drives Debian's own browser)
# postgresql: the central side's database (the package's own cluster is not used: tests make their own)
APT_PACKAGES=(mosquitto fonts-noto-cjk espeak-ng nodejs npm python3-venv mtools dosfstools fdisk bmap-tools zstd e2fsprogs openssl chromium chromium-driver
  # the Raspberry Pi images (images/): an arm64 Debian base under emulation, disks without mounting, QEMU boots
  mmdebstrap qemu-user-static binfmt-support arch-test qemu-system-arm qemu-utils genimage openssh-client
  # the city's central side (central/): Debian's PostgreSQL 15; the tests start throwaway clusters with initdb/pg_ctl
  postgresql
  # the controller's clock stepped back under a running process (tests/controller, bench/bench_soak.py)
  libfaketime faketime)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A machine may have Node.js from elsewhere (e.g. NodeSource); that is fine.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: please install these Debian packages first, then run this again:" >&2
    echo "  sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

UV=$(command -v uv || true)
if [ -z "$UV" ]; then
  if [ ! -x .uv/bin/uv ]; then
    echo "setup: installing uv into .uv/" >&2
    python3 -m venv .uv
    .uv/bin/pip install -q uv
  fi
  UV=$PWD/.uv/bin/uv
fi

"$UV" sync --all-packages --quiet
# The MicroPython interpreter (WebAssembly, from npm) that the pad firmware's tests run under.
pad_check=rating-pad/firmware/check
if [ ! "$pad_check/node_modules/.package-lock.json" -nt "$pad_check/package-lock.json" ]; then
  (cd "$pad_check" && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ -x scripts/setup-extra.sh ]; then scripts/setup-extra.sh; fi
echo "setup: ready (.venv/bin/hallq)" >&2

#!/usr/bin/env bash
# Installs everything Kumo's tests and guest builds need on Debian 12:
# Debian packages (C headers and compilers for the ABI layout oracle,
# qemu-user for the CPU oracle, xenstore clients, Linux source and busybox
# for the guests), pnpm at the version package.json pins, and the
# workspace's npm dependencies from the lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  gcc gcc-multilib clang-14 binutils-aarch64-linux-gnu libxen-dev nasm
  qemu-user qemu-system-x86 qemu-system-arm qemu-utils xenstore-utils
  acpica-tools e2fsprogs seabios chromium xen-utils-4.17 busybox-static linux-source-6.1 bc flex bison libelf-dev cpio xz-utils make
)
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"

# The i386 test guest's initramfs holds Debian's i386 busybox-static, fetched
# with `apt-get download busybox-static:i386`: apt must know the architecture.
# (The arm64 guest needs arm64 too, and gcc-aarch64-linux-gnu, which Debian 12
# cannot install beside gcc-multilib: guests/README.md says how to build it.)
need_update=0
if ! dpkg --print-foreign-architectures | grep -qx i386; then
  echo "setup: adding the i386 architecture to apt"
  $SUDO dpkg --add-architecture i386
  need_update=1
fi

missing=()
for package in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} > 0)); then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  need_update=0
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ((need_update)); then
  $SUDO apt-get update -qq
fi

pnpm_version=$(node -p 'require("./package.json").packageManager.split("@")[1]')
if [[ "$(pnpm --version 2>/dev/null || true)" != "$pnpm_version" ]]; then
  echo "setup: installing pnpm $pnpm_version"
  npm install -g "pnpm@$pnpm_version" >/dev/null
fi
pnpm install --frozen-lockfile

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
  lld-14 llvm-14 device-tree-compiler
  qemu-user qemu-system-x86 qemu-system-arm qemu-utils xenstore-utils
  syslinux syslinux-common isolinux mtools dosfstools xorriso
  acpica-tools e2fsprogs seabios chromium xen-utils-4.17 busybox-static linux-source-6.1 bc flex bison libelf-dev cpio xz-utils make
)
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"

# The i386 test guest's initramfs holds Debian's i386 busybox-static, fetched
# with `apt-get download busybox-static:i386`: apt must know the architecture.
# The arm64 guest's initramfs likewise takes busybox-static:arm64; its kernel
# is built with LLVM (clang-14, lld-14), since Debian 12's gcc-aarch64-linux-gnu
# cannot be installed beside gcc-multilib.
# apt-get update fails while a Debian mirror is mid-sync ("File has unexpected
# size ... Mirror sync in progress?"): try a few times, then go on with the
# indexes apt has (an install that really lacks them fails by itself).
apt_update() {
  local attempt
  for attempt in 1 2 3 4; do
    if $SUDO apt-get update -qq; then return 0; fi
    echo "setup: apt-get update failed (attempt $attempt of 4)"
    sleep $((attempt * 15))
  done
  echo "setup: continuing with the package indexes apt already has"
}

need_update=0
# Read the list once: `dpkg ... | grep -q` under pipefail fails whenever grep
# exits before dpkg has written everything (SIGPIPE), which looked like a
# missing architecture and forced an apt-get update.
foreign=$(dpkg --print-foreign-architectures)
for arch in i386 arm64; do
  if ! grep -qx "$arch" <<<"$foreign"; then
    echo "setup: adding the $arch architecture to apt"
    $SUDO dpkg --add-architecture "$arch"
    need_update=1
  fi
done

missing=()
for package in "${DEBIAN_PACKAGES[@]}"; do
  [[ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)" == "install ok installed" ]] || missing+=("$package")
done
if ((${#missing[@]} > 0)); then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt_update
  need_update=0
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ((need_update)); then
  apt_update
fi

pnpm_version=$(node -p 'require("./package.json").packageManager.split("@")[1]')
if [[ "$(pnpm --version 2>/dev/null || true)" != "$pnpm_version" ]]; then
  echo "setup: installing pnpm $pnpm_version"
  npm install -g "pnpm@$pnpm_version" >/dev/null
fi
pnpm install --frozen-lockfile

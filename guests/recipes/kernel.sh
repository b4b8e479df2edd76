#!/usr/bin/env bash
# Builds one Kumo test kernel out of tree:
#   kernel.sh <linux-src> <build-dir> <arch> <fragment> <out-dir> [cross-prefix]
# tinyconfig, then the fragment merged with scripts/kconfig/merge_config.sh,
# then olddefconfig; every option the fragment sets must survive in the final
# .config (Kconfig silently drops options whose dependencies are missing).
# Lines starting with "::stage " are read by src/build.ts for the progress display.
set -euo pipefail
src=$1 obj=$2 arch=$3 fragment=$4 out=$5 cross=${6:-}
mkdir -p "$obj" "$out"
make_args=(-C "$src" O="$obj" ARCH="$arch")
[[ -n $cross ]] && make_args+=(CROSS_COMPILE="$cross")

echo "::stage configure"
make -s "${make_args[@]}" tinyconfig >/dev/null
# merge_config.sh -m merges the fragment into .config without running
# alldefconfig; olddefconfig then resolves the dependencies.
(cd "$obj" && KCONFIG_CONFIG=.config "$src/scripts/kconfig/merge_config.sh" -m -O "$obj" .config "$fragment" >/dev/null)
make -s "${make_args[@]}" olddefconfig

echo "::stage verify-config"
missing=0
while IFS= read -r line; do
  if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
    want="${BASH_REMATCH[1]}=${BASH_REMATCH[2]}"
    if ! grep -qx -- "$want" "$obj/.config"; then
      got=$(grep -E "^(# )?${BASH_REMATCH[1]}[= ]" "$obj/.config" || echo "(absent)")
      echo "config: wanted $want, final .config has: $got" >&2
      missing=1
    fi
  elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
    if grep -q "^${BASH_REMATCH[1]}=" "$obj/.config"; then
      echo "config: wanted ${BASH_REMATCH[1]} unset, final .config has: $(grep "^${BASH_REMATCH[1]}=" "$obj/.config")" >&2
      missing=1
    fi
  fi
done <"$fragment"
if ((missing)); then
  echo "config: Kconfig dropped options of $fragment (see above); fix the fragment" >&2
  exit 3
fi

# KUMO_GUESTS_CONFIGURE_ONLY=1 stops here: checks a fragment in seconds.
[[ ${KUMO_GUESTS_CONFIGURE_ONLY:-} == 1 ]] && exit 0

echo "::stage compile"
targets=(vmlinux)
case $arch in
  i386 | x86_64) targets+=(bzImage) ;;
  arm64) targets+=(Image) ;;
esac
make "${make_args[@]}" -j"${KUMO_GUESTS_JOBS:-2}" "${targets[@]}"

echo "::stage install-kernel"
cp "$obj/vmlinux" "$out/vmlinux"
cp "$obj/.config" "$out/config"
case $arch in
  i386 | x86_64) cp "$obj/arch/x86/boot/bzImage" "$out/bzImage" ;;
  arm64) cp "$obj/arch/arm64/boot/Image" "$out/Image" ;;
esac

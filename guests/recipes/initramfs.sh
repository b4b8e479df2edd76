#!/usr/bin/env bash
# Builds the initramfs of one Kumo test guest, without root:
#   initramfs.sh <linux-src> <busybox-binary> <arch> <guests-dir> <work-dir> <out.cpio.gz>
# The archive is written by the kernel's own usr/gen_init_cpio from a file
# list (Linux Documentation/driver-api/early-userspace/early_userspace_support.rst),
# so every entry is owned by root:root whoever runs the build.
set -euo pipefail
src=$1 busybox=$2 arch=$3 guests=$4 work=$5 out=$6
mkdir -p "$work"

echo "::stage gen_init_cpio"
gcc -O2 -o "$work/gen_init_cpio" "$src/usr/gen_init_cpio.c"

echo "::stage applets"
# Ask the busybox being packed for its applet list: natively for x86, under
# qemu-user for other architectures.
case $arch in
  i386 | x86_64) runner=() ;;
  arm64) runner=(qemu-aarch64) ;;
esac
"${runner[@]}" "$busybox" --list-full >"$work/applets"
[[ -s $work/applets ]] || { echo "initramfs: $busybox --list-full printed nothing" >&2; exit 3; }

# Staged copies with a fixed mtime: gen_init_cpio -t sets the time of
# directories and nodes only, files keep their own (usr/gen_init_cpio.c).
stage=$work/stage
mkdir -p "$stage"
sed "s/@ARCH@/$arch/" "$guests/initramfs/init" >"$stage/init"
cp "$busybox" "$stage/busybox"
for name in inittab profile passwd group; do cp "$guests/initramfs/$name" "$stage/$name"; done
touch -d @0 "$stage"/*
list=$work/files
{
  for dir in /bin /sbin /usr /usr/bin /usr/sbin /dev /proc /sys /etc /root /tmp /mnt; do
    echo "dir $dir 0755 0 0"
  done
  echo "nod /dev/console 0600 0 0 c 5 1"
  echo "nod /dev/null 0666 0 0 c 1 3"
  echo "file /bin/busybox $stage/busybox 0755 0 0"
  echo "file /init $stage/init 0755 0 0"
  echo "file /etc/inittab $stage/inittab 0644 0 0"
  echo "file /etc/profile $stage/profile 0644 0 0"
  # root's home comes from /etc/passwd: ash's \w prompt shows it as "~".
  echo "file /etc/passwd $stage/passwd 0644 0 0"
  echo "file /etc/group $stage/group 0644 0 0"
  while IFS= read -r applet; do
    [[ $applet == bin/busybox ]] && continue
    # Relative targets keep the links valid from any root.
    depth=$(($(tr -cd / <<<"$applet" | wc -c)))
    up=$(printf '../%.0s' $(seq 1 "$depth"))
    echo "slink /$applet ${up}bin/busybox 0777 0 0"
  done <"$work/applets"
} >"$list"

echo "::stage cpio"
# -t 0: fixed timestamps make the archive reproducible.
"$work/gen_init_cpio" -t 0 "$list" | gzip -9 -n >"$out.tmp"
mv "$out.tmp" "$out"

#!/usr/bin/env bash
# Builds the bootable raw disk image of an x86 test guest, without root or a
# loop device:
#   hvm-disk.sh <bzImage> <initramfs> <cmdline> <work-dir> <out.img>
# Layout: an MBR (SYSLINUX's mbr.bin, one active partition) and from sector
# 2048 a FAT16 file system holding SYSLINUX (ldlinux.sys in its boot sector's
# chain, ldlinux.c32), syslinux.cfg, the bzImage and the initramfs. A BIOS
# (SeaBIOS, QEMU's, v86's) loads the MBR, which loads the partition's boot
# sector, which loads SYSLINUX, which loads Linux by the x86 boot protocol.
# Everything is written into the image file by mkfs.fat --offset, mtools
# (mcopy -i image@@offset) and `syslinux --offset --install` (the mtools
# installer of Debian's syslinux package).
set -euo pipefail
bzimage=$1 initramfs=$2 cmdline=$3 work=$4 out=$5
mkdir -p "$work"

# Reproducible: mkfs.fat --invariant and a fixed volume id; file times from
# SOURCE_DATE_EPOCH, which mtools honours (1980-01-01, FAT's epoch).
export SOURCE_DATE_EPOCH=315532800

cp "$bzimage" "$work/bzimage"
cp "$initramfs" "$work/initrd.gz"
# SERIAL 0: SYSLINUX's own prompt and messages also go to COM1 (doc/syslinux.txt).
# No prompt and no timeout: the first label boots at once.
cat >"$work/syslinux.cfg" <<EOF
SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  LINUX /bzimage
  INITRD /initrd.gz
  APPEND $cmdline
EOF
touch -d "@$SOURCE_DATE_EPOCH" "$work"/bzimage "$work"/initrd.gz "$work"/syslinux.cfg

# The partition starts at 1 MiB (sector 2048, as fdisk aligns it). FAT16 with
# one sector per cluster needs 4085 to 65524 clusters (Microsoft's FAT
# specification, "FAT Type Determination"): a partition of 2 to 32 MiB.
start=2048
payload=$(($(stat -c %s "$bzimage") + $(stat -c %s "$initramfs")))
mib=$(((payload + (1 << 20) - 1) >> 20))
total_mib=$((mib + 4 < 8 ? 8 : mib + 4))
if ((total_mib > 32)); then
  echo "hvm-disk: kernel and initramfs ($payload bytes) do not fit a 32 MiB FAT16 image" >&2
  exit 3
fi
sectors=$((total_mib * 2048 - start))

rm -f "$out.tmp"
truncate -s "${total_mib}M" "$out.tmp"
# -h: the partition's first sector in the BPB's hidden-sectors field, which the
# FAT boot sector adds to its reads (mkfs.fat writes 0 unless told).
mkfs.fat --invariant -i 4b554d4f -n KUMO -F 16 -s 1 --offset="$start" -h "$start" \
  "$out.tmp" $((sectors / 2)) >/dev/null

mcopy -m -i "$out.tmp@@$((start * 512))" "$work/syslinux.cfg" "$work/bzimage" "$work/initrd.gz" ::/

syslinux --offset $((start * 512)) --install "$out.tmp"

# The MBR's code (440 bytes; the partition table and signature follow).
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$out.tmp" bs=440 count=1 conv=notrunc status=none
le32() {
  local value=$1
  printf '%b' "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((value & 255)) $(((value >> 8) & 255)) \
    $(((value >> 16) & 255)) $(((value >> 24) & 255)))"
}
{
  # Disk signature at 440 ("KUMO"), then 2 reserved bytes.
  printf 'KUMO\0\0'
  # Partition entry 1: active, type 0x0E (FAT16 addressed by LBA), so its CHS
  # fields carry the "beyond CHS" marker FE FF FF and the BIOS loaders use
  # the LBA fields (start, sectors).
  printf '\x80\xfe\xff\xff\x0e\xfe\xff\xff'
  le32 "$start"
  le32 "$sectors"
  # Entries 2-4 empty, then the boot signature.
  head -c 48 /dev/zero
  printf '\x55\xaa'
} | dd of="$out.tmp" bs=1 seek=440 conv=notrunc status=none
mv "$out.tmp" "$out"

#!/usr/bin/env bash
# Builds the appliance images into build/: vmlinuz (Debian's cloud kernel) and
# initramfs.img (zstd-compressed cpio: the static natbox binary as /init plus the
# modules it loads) for direct kernel boot; natbox.efi, a unified kernel image
# (systemd-boot's EFI stub with the kernel, initramfs and command line); natbox.raw, a
# GPT disk whose EFI system partition holds it as EFI/BOOT/BOOTX64.EFI (UEFI boot) and
# which also boots on legacy BIOS (syslinux: gptmbr.bin, then ldlinux on the ESP);
# natbox.qcow2, the same disk as qcow2; natbox-gcp.tar.gz, GCP's image format
# (disk.raw, 1 GiB, sparse). The kernel command line puts the console on ttyS0 at
# 115200 baud, what the EC2 and GCE serial consoles use, and has SCSI hosts scanned
# synchronously (natbox passes `module.param` words to the modules it loads, as
# modprobe does), so a SCSI disk is there when virtio_scsi has loaded. All are
# reproducible: same inputs, same bytes. Rootless apart from the apt-get download.
#
# The kernel: the package the linux-image-cloud-amd64 metapackage depends on today,
# unless KERNEL_PACKAGE names one (e.g. KERNEL_PACKAGE=linux-image-6.1.0-56-cloud-amd64).
# The resolved name is written to build/kernel-package so a build can be repeated.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build
mkdir -p "$out"

resolve() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1; }
pkg=${KERNEL_PACKAGE:-$(resolve)}
if [ -z "$pkg" ]; then
    apt-get update -qq
    pkg=$(resolve)
fi
if [ -z "$pkg" ]; then
    echo "cannot resolve the kernel package: run 'apt-get update' first" >&2
    exit 1
fi
if [ "$(cat "$out/kernel-package" 2>/dev/null)" != "$pkg" ] || [ ! -d "$out/kernel" ]; then
    rm -rf "$out/kernel" "$out"/linux-image-*.deb
    (cd "$out" && apt-get download "$pkg" >/dev/null 2>&1)
    dpkg-deb -x "$out"/"$pkg"_*.deb "$out/kernel"
    echo "$pkg" >"$out/kernel-package"
fi
cp "$out"/kernel/boot/vmlinuz-* "$out/vmlinuz"

cargo build --release --target x86_64-unknown-linux-musl -p appliance
# Symbols are only useful for profiling on the host; the image carries a stripped copy.
strip -o "$out/appliance" target/x86_64-unknown-linux-musl/release/appliance
cargo run --release -q -p natbox-image -- initramfs \
    --binary "$out/appliance" \
    --kernel-tree "$out/kernel/lib/modules" \
    --out "$out/initramfs.img"
echo "kernel $pkg: $out/vmlinuz $(stat -c %s "$out/vmlinuz") bytes"

# Disk images. The stub comes from Debian's systemd-boot-efi, gptmbr.bin and the
# syslinux installer (which `natbox-image disk` runs; it writes through mtools, as any
# user) from syslinux-common, syslinux and mtools (tests/setup.sh).
stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
image() { "$(pwd)/target/release/natbox-image" "$@"; }
# $1: the UKI, $2: the disk to write, then extra `natbox-image disk` options.
disk() {
    local efi=$1 raw=$2
    shift 2
    image disk --efi "$efi" --out "$raw" --bios-mbr /usr/lib/syslinux/mbr/gptmbr.bin "$@"
}
image uki --stub "$stub" --kernel "$out/vmlinuz" --initrd "$out/initramfs.img" \
    --cmdline "console=ttyS0,115200 scsi_mod.scan=sync quiet panic=-1" --out "$out/natbox.efi"
disk "$out/natbox.efi" "$out/natbox.raw"
qemu-img convert -f raw -O qcow2 "$out/natbox.raw" "$out/natbox.qcow2"
# GCP wants a disk.raw of a whole number of GiB in a gzipped (old GNU, sparse) tar.
mkdir -p "$out/gcp"
disk "$out/natbox.efi" "$out/gcp/disk.raw" --size $((1 << 30)) >/dev/null
tar --format=oldgnu --sparse --mtime=@0 --owner=0 --group=0 --numeric-owner \
    -C "$out/gcp" -cf - disk.raw | gzip -9n >"$out/natbox-gcp.tar.gz"
rm -f "$out/gcp/disk.raw"
for f in natbox.efi natbox.raw natbox.qcow2 natbox-gcp.tar.gz; do
    echo "size $(stat -c %s "$out/$f") $out/$f"
done

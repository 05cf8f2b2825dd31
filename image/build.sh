#!/usr/bin/env bash
# Builds the direct-boot appliance image into build/: vmlinuz (Debian's cloud kernel)
# and initramfs.img (the static natbox binary as /init plus the modules it loads).
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

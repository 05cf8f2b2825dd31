#!/usr/bin/env bash
# Boots the natbox appliance in QEMU on this machine: builds what is missing, creates
# the demo namespaces (lan 10.10.0.2 and wan 198.51.100.1, as in DESIGN.md) wired to
# the VM's two NICs, writes a metadata disk from natbox.toml, and puts the serial
# console on this terminal (Ctrl-A X quits QEMU). Everything is torn down on exit.
# While it runs, from another terminal:  ip netns exec <lan ns> ping 198.51.100.1
#
# usage: qemu/run.sh [kernel|microvm|uefi|bios]   (or VM_BOOT=...; see qemu/vm.sh)
#   kernel  direct kernel boot of build/vmlinuz + build/initramfs.img (the default)
#   microvm the same on QEMU's microvm machine (virtio-mmio devices, no PCI, no firmware)
#   uefi    the disk image build/natbox.raw booted by OVMF firmware
#   bios    the same disk booted by legacy BIOS (SeaBIOS, syslinux)
# The accelerator is KVM if a KVM guest really runs here, else TCG (printed with the
# reason); NATBOX_ACCEL=kvm|tcg forces one.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export VM_BOOT=${1:-${VM_BOOT:-kernel}}
case "$VM_BOOT" in
kernel | microvm | uefi | bios) ;;
*)
    echo "usage: $0 [kernel|microvm|uefi|bios]" >&2
    exit 2
    ;;
esac
"$root/tests/setup.sh"
source "$root/tests/e2e/lib.sh"
source "$root/qemu/vm.sh"

[ -f "$root/build/initramfs.img" ] && [ -f "$root/build/natbox.raw" ] || "$root/image/build.sh"
cargo build --release -q -p firmware-config --bin natbox-config
topology
vm_wiring
vm_metadata_disk
echo "lan host: ip netns exec $LAN bash    wan host: ip netns exec $WAN bash"
vm_boot console

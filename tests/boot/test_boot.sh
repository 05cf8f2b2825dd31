#!/usr/bin/env bash
# Boot tests of the real appliance image (direct kernel boot) in QEMU, under TCG
# unless KVM works: the banner appears, lan traffic is translated through the VM,
# Ctrl-Alt-Del shuts the box down cleanly, and a missing or corrupt metadata disk is
# reported while the box stays up. Then the UEFI disk image (build/natbox.raw, a UKI
# on a GPT/FAT ESP) boots with OVMF firmware and translates traffic too, and the same
# disk boots on legacy BIOS (syslinux). The images
# are checked to be reproducible. Prints the boot times from the banner.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/e2e/lib.sh"
source "$root/qemu/vm.sh"

cleanup_vm() { [ -n "$VM_PID" ] && kill "$VM_PID" 2>/dev/null; e2e_cleanup; }
trap cleanup_vm EXIT

"$root/image/build.sh" >/dev/null
cargo build --release -q -p firmware-config --bin natbox-config
ls -l "$root/build/vmlinuz" "$root/build/initramfs.img" "$root/build/appliance" "$root/build/natbox.efi" \
    "$root/build/natbox.raw" "$root/build/natbox.qcow2" "$root/build/natbox-gcp.tar.gz" | awk '{print "size", $5, $NF}'
rebuilt=$(mktemp -d)
image() { "$root/target/release/natbox-image" "$@" >/dev/null; }
image initramfs --binary "$root/build/appliance" \
    --kernel-tree "$root/build/kernel/lib/modules" --out "$rebuilt/initramfs.img"
check "initramfs is reproducible (same inputs, same bytes)" cmp "$rebuilt/initramfs.img" "$root/build/initramfs.img"
image uki --stub /usr/lib/systemd/boot/efi/linuxx64.efi.stub --kernel "$root/build/vmlinuz" \
    --initrd "$root/build/initramfs.img" --cmdline "console=ttyS0 quiet panic=-1" --out "$rebuilt/natbox.efi"
check "unified kernel image is reproducible" cmp "$rebuilt/natbox.efi" "$root/build/natbox.efi"
image disk --efi "$rebuilt/natbox.efi" --out "$rebuilt/natbox.raw" --bios-mbr /usr/lib/syslinux/mbr/gptmbr.bin
SOURCE_DATE_EPOCH=315532800 TZ=UTC syslinux --offset $((1 << 20)) --install "$rebuilt/natbox.raw"
check "disk image is reproducible" cmp "$rebuilt/natbox.raw" "$root/build/natbox.raw"
check "disk image is under 32 MiB" test "$(stat -c %s "$root/build/natbox.raw")" -lt $((32 << 20))
qemu-img convert -f raw -O qcow2 "$rebuilt/natbox.raw" "$rebuilt/natbox.qcow2"
check "qcow2 image is reproducible" cmp "$rebuilt/natbox.qcow2" "$root/build/natbox.qcow2"
check "GCP tarball holds disk.raw" bash -c "tar -tzf '$root/build/natbox-gcp.tar.gz' | grep -qx disk.raw"
rm -rf "$rebuilt"
topology
vm_wiring

# 1. A good metadata disk: banner, translated traffic, clean shutdown.
vm_metadata_disk
console=$WORK/console.log
vm_boot "$console"
check "banner on the serial console within 120 s" wait_for_line "$console" "forwarding .* ms after kernel start" 120
grep -o "forwarding [0-9]* ms after kernel start" "$console" | sed 's/^/boot time: /' || true
in_wan timeout 30 tcpdump -i eth0 -n -l -c 3 icmp >"$WORK/tcpdump.txt" 2>/dev/null &
dump=$!
sleep 1
check "ping from lan to wan through the VM" in_lan ping -c 3 -W 5 -w 30 198.51.100.1
wait "$dump" || true
check "wan sees the public source address only" bash -c "grep -q '198.51.100.10 > 198.51.100.1' '$WORK/tcpdump.txt' && ! grep -q '10.10.0' '$WORK/tcpdump.txt'"
check "ping -6 from lan to wan through the VM" in_lan ping -6 -c 2 -W 5 -w 30 2001:db8:ff::1
vm_console "show sessions"
check "serial console shell: show sessions lists the ping" wait_for_line "$console" "icmp .*10\.10\.0\.2:.*198\.51\.100\.10:.*198\.51\.100\.1:0" 30
vm_console "sh int"
check "serial console shell: prefixes, show interfaces with rx/tx counters" wait_for_line "$console" "^outside .*52:54:00:00:00:02" 30
check "Ctrl-Alt-Del: QEMU exits within 60 s" vm_shutdown 60
check "clean-shutdown line on the console" grep -q "natbox: clean shutdown, powering off" "$console"

# 2. No metadata disk: the box says so, the shell works, `poweroff` shuts it down.
console=$WORK/console-nodisk.log
vm_boot "$console" none
check "missing metadata disk is reported" wait_for_line "$console" "no metadata disk" 120
vm_console "show version"
check "shell answers without a configuration" wait_for_line "$console" "^natbox [0-9.]*, up" 30
vm_console "show sessions"
check "engine commands say forwarding is off" wait_for_line "$console" "forwarding is off" 30
vm_console "poweroff"
check "poweroff from the shell: QEMU exits within 60 s" bash -c "for _ in \$(seq 600); do kill -0 $VM_PID 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
VM_PID=""
check "clean-shutdown line (no disk)" grep -q "clean shutdown" "$console"

# 3. Corrupt metadata disk: both slots damaged, the magic intact.
cp "$WORK/meta.img" "$WORK/corrupt.img"
python3 - "$WORK/corrupt.img" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    data = bytearray(f.read())
    for at in range(4096, len(data), 4096):
        data[at + 40] ^= 0xff  # inside each slot header/payload region
    f.seek(0); f.write(data)
PY
console=$WORK/console-corrupt.log
vm_boot "$console" "$WORK/corrupt.img"
check "corrupt metadata disk is reported with its device" wait_for_line "$console" "metadata disk /dev/vda" 120
check "box with a corrupt disk: ACPI power button shuts it down" vm_shutdown 60 powerdown

# 4. The UEFI disk image: OVMF loads EFI/BOOT/BOOTX64.EFI (the UKI) from the ESP; the
# metadata disk is the second drive (natbox finds it by its magic).
VM_BOOT=uefi
console=$WORK/console-uefi.log
started=$SECONDS
vm_boot "$console"
check "UEFI disk boot: banner on the serial console within 180 s" wait_for_line "$console" "forwarding .* ms after kernel start" 180
grep -o "forwarding [0-9]* ms after kernel start" "$console" | sed "s/^/boot time (UEFI disk): /; s/\$/, banner $((SECONDS - started)) s after QEMU start (firmware included)/" || true
in_wan timeout 30 tcpdump -i eth0 -n -l -c 3 icmp >"$WORK/tcpdump-uefi.txt" 2>/dev/null &
dump=$!
sleep 1
check "UEFI disk boot: ping from lan to wan through the VM" in_lan ping -c 3 -W 5 -w 30 198.51.100.1
wait "$dump" || true
check "UEFI disk boot: wan sees the public source address only" bash -c "grep -q '198.51.100.10 > 198.51.100.1' '$WORK/tcpdump-uefi.txt' && ! grep -q '10.10.0' '$WORK/tcpdump-uefi.txt'"
check "UEFI disk boot: Ctrl-Alt-Del, QEMU exits within 60 s" vm_shutdown 60
check "UEFI disk boot: clean-shutdown line on the console" grep -q "natbox: clean shutdown, powering off" "$console"

# 5. The same disk on legacy BIOS: SeaBIOS, gptmbr.bin, syslinux, /vmlinuz + /initrd.img.
VM_BOOT=bios
console=$WORK/console-bios.log
started=$SECONDS
vm_boot "$console"
check "BIOS disk boot: banner on the serial console within 180 s" wait_for_line "$console" "forwarding .* ms after kernel start" 180
grep -o "forwarding [0-9]* ms after kernel start" "$console" | sed "s/^/boot time (BIOS disk): /; s/\$/, banner $((SECONDS - started)) s after QEMU start (firmware included)/" || true
check "BIOS disk boot: ping from lan to wan through the VM" in_lan ping -c 3 -W 5 -w 30 198.51.100.1
check "BIOS disk boot: ACPI power button (system_powerdown), QEMU exits within 60 s" vm_shutdown 60 powerdown
check "BIOS disk boot: clean-shutdown line on the console" grep -q "natbox: clean shutdown, powering off" "$console"
VM_BOOT=kernel
finish

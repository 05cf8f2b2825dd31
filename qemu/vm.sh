# Running the appliance image in QEMU, wired to the e2e topology: sourced after
# tests/e2e/lib.sh, not run. `topology` gives ns lan and wan with veths to ns gw; here
# ns gw gets two tap devices bridged to those veths, and QEMU runs in ns gw with the
# taps as the VM's two virtio NICs, so lan reaches wan only through the VM.

VM_INSIDE_MAC=52:54:00:00:00:01
VM_OUTSIDE_MAC=52:54:00:00:00:02
VM_PID=""

# Bridges tap-lan/tap-wan to lan0/wan0 inside ns gw.
vm_wiring() {
    for side in lan wan; do
        in_gw ip tuntap add "tap-$side" mode tap
        in_gw ip link add "br-$side" type bridge
        in_gw ip link set "tap-$side" master "br-$side"
        in_gw ip link set "${side}0" master "br-$side"
        for dev in "tap-$side" "${side}0" "br-$side"; do in_gw ip link set "$dev" up; done
    done
}

# Writes $WORK/meta.img from natbox.toml with the VM's NICs named by MAC address.
# Extra arguments are sed expressions applied to the configuration first.
vm_metadata_disk() {
    write_config "s/^port = \"lan0\"/port = \"$VM_INSIDE_MAC\"/" "s/^port = \"wan0\"/port = \"$VM_OUTSIDE_MAC\"/" "$@"
    "$E2E_ROOT/target/release/natbox-config" build "$WORK/natbox.toml" -o "$WORK/meta.img" >/dev/null
}

# QEMU acceleration: KVM when it really works (nested KVM can hang here), else TCG.
vm_accel() {
    if [ -w /dev/kvm ] && timeout 10 qemu-system-x86_64 -accel kvm -M none -display none -S -monitor none </dev/null >/dev/null 2>&1; then
        echo kvm
    else
        echo tcg
    fi
}

# How the VM boots (VM_BOOT): "kernel" (default) is QEMU's direct kernel boot of
# build/vmlinuz + build/initramfs.img; "uefi" boots the disk image build/natbox.raw
# (VM_DISK_IMAGE overrides it) with OVMF firmware, its UKI on the EFI system partition;
# "bios" boots the same disk with QEMU's default BIOS (SeaBIOS), through syslinux.
# The boot disk is opened snapshot=on, so the image file is never written.
VM_BOOT=${VM_BOOT:-kernel}
VM_DISK_IMAGE=${VM_DISK_IMAGE:-$E2E_ROOT/build/natbox.raw}
OVMF_CODE=/usr/share/OVMF/OVMF_CODE.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS.fd

# Appends to the caller's array `args` the QEMU options that boot the image the
# VM_BOOT way.
vm_boot_args() {
    case "$VM_BOOT" in
    kernel)
        args+=(-kernel "$E2E_ROOT/build/vmlinuz" -initrd "$E2E_ROOT/build/initramfs.img"
            -append "console=ttyS0 quiet panic=-1")
        ;;
    uefi)
        # The firmware's variable store is writable: each boot gets a fresh copy.
        cp "$OVMF_VARS" "$WORK/ovmf-vars.fd"
        args+=(
            -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
            -drive "if=pflash,format=raw,unit=1,file=$WORK/ovmf-vars.fd"
            -drive "file=$VM_DISK_IMAGE,format=raw,if=none,id=boot,snapshot=on"
            -device "virtio-blk-pci,drive=boot,bootindex=0"
        )
        ;;
    bios)
        args+=(
            -drive "file=$VM_DISK_IMAGE,format=raw,if=none,id=boot,snapshot=on"
            -device "virtio-blk-pci,drive=boot,bootindex=0"
        )
        ;;
    *)
        echo "VM_BOOT=$VM_BOOT: expected kernel, uefi or bios" >&2
        return 1
        ;;
    esac
}

# Boots the appliance in ns gw (see VM_BOOT). $1: "console" for the serial console on
# this terminal, or a file to log it to (then `vm_console` types on it). $2: a metadata
# disk image, or "none".
vm_boot() {
    local serial=$1 disk=${2:-$WORK/meta.img} accel
    accel=${VM_ACCEL:-$(vm_accel)}
    local args=(-accel "$accel" -m 256 -nodefaults -no-reboot -display none)
    vm_boot_args || return 1
    # romfile= drops the NICs' iPXE option ROMs: the box never network-boots.
    args+=(
        -netdev tap,id=lan,ifname=tap-lan,script=no,downscript=no
        -device "virtio-net-pci,netdev=lan,mac=$VM_INSIDE_MAC,romfile="
        -netdev tap,id=wan,ifname=tap-wan,script=no,downscript=no
        -device "virtio-net-pci,netdev=wan,mac=$VM_OUTSIDE_MAC,romfile="
        -monitor "unix:$WORK/monitor.sock,server,nowait"
    )
    [ "$disk" != none ] && args+=(-drive "file=$disk,format=raw,if=virtio")
    if [ "$serial" = console ]; then
        ip netns exec "$GW" qemu-system-x86_64 "${args[@]}" -serial mon:stdio
    else
        # The console goes to the file; lines typed with vm_console reach the box.
        ip netns exec "$GW" qemu-system-x86_64 "${args[@]}" \
            -chardev "socket,id=console,path=$WORK/console.sock,server=on,wait=off,logfile=$serial" \
            -serial chardev:console &
        VM_PID=$!
    fi
}

# Waits (at most $3 s) for a line matching $2 in file $1.
wait_for_line() {
    local file=$1 pattern=$2 limit=$3
    for _ in $(seq $((limit * 10))); do
        grep -q "$pattern" "$file" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# Types a line on the VM's serial console (the admin shell reads it).
vm_console() {
    printf '%s\r\n' "$1" | timeout 5 socat -t 1 - "UNIX-CONNECT:$WORK/console.sock" >/dev/null
}

# Sends a QEMU monitor command.
vm_monitor() {
    echo "$1" | socat - "UNIX-CONNECT:$WORK/monitor.sock" >/dev/null
}

# Ctrl-Alt-Del or the power button: natbox (PID 1) shuts down cleanly and QEMU exits.
# Waits at most $1 s.
# $2: how to ask: "ctrl-alt-delete" (default) or "powerdown" (the ACPI power button,
# what a hypervisor's shutdown presses).
vm_shutdown() {
    local limit=${1:-60}
    if [ "${2:-ctrl-alt-delete}" = powerdown ]; then
        vm_monitor "system_powerdown"
    else
        vm_monitor "sendkey ctrl-alt-delete"
    fi
    for _ in $(seq $((limit * 10))); do
        kill -0 "$VM_PID" 2>/dev/null || { wait "$VM_PID" 2>/dev/null; VM_PID=""; return 0; }
        sleep 0.1
    done
    return 1
}

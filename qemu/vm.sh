# Running the appliance image in QEMU, wired to the e2e topology: sourced after
# tests/e2e/lib.sh, not run. `topology` gives ns lan and wan with veths to ns gw; here
# ns gw gets two tap devices bridged to those veths, and QEMU runs in ns gw with the
# taps as the VM's two virtio NICs, so lan reaches wan only through the VM.

VM_INSIDE_MAC=52:54:00:00:00:01
VM_OUTSIDE_MAC=52:54:00:00:00:02
VM_PID=""

# The VM's vCPUs (VM_CPUS, default 2) and the queue pairs of each data NIC (VM_QUEUES,
# default 2): every NIC is a multi-queue virtio-net (mq=on) on a multi_queue tap, so the
# guest's virtio_net enables min(VM_QUEUES, VM_CPUS) receive queues and natbox can run
# a worker per queue. VM_QUEUES=1 gives single-queue NICs on plain taps.
VM_CPUS=${VM_CPUS:-2}
VM_QUEUES=${VM_QUEUES:-2}

# Bridges tap-lan/tap-wan to lan0/wan0 inside ns gw. The taps are multi_queue when
# VM_QUEUES > 1 (QEMU then opens one file per queue; it cannot open a multi_queue tap
# with one queue, nor a plain one with several).
vm_wiring() {
    local mq=()
    if [ "$VM_QUEUES" -gt 1 ]; then mq=(multi_queue); fi
    for side in lan wan; do
        in_gw ip tuntap add "tap-$side" mode tap "${mq[@]}"
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

# QEMU's accelerator (VM_ACCEL), chosen once by vm_accel_choose: NATBOX_ACCEL=kvm|tcg
# forces one; otherwise KVM if a KVM guest really runs, else TCG. A /dev/kvm that
# opens is no proof: with nested KVM here a tiny real-mode guest runs, yet the kernel
# hangs right after its real-mode setup code. So the probe boots the kernel itself
# (build/vmlinuz, earlyprintk on the serial port) and takes KVM only if "Linux version"
# (printed from 64-bit code after decompression) appears within
# VM_ACCEL_PROBE_SECONDS (5). Nothing is cached across runs.
VM_ACCEL=""
VM_ACCEL_PROBE_SECONDS=5

# Succeeds if a guest run with accelerator $1 prints the kernel's first line within $2
# seconds. The QEMU it starts is killed when the time is up (it is bounded anyway).
vm_accel_probe() {
    local accel=$1 limit=$2 log pid found=1
    log=$(mktemp)
    timeout -k 1 $((limit + 5)) qemu-system-x86_64 -accel "$accel" -M pc -m 128 -nodefaults \
        -display none -no-reboot -monitor none -serial "file:$log" \
        -kernel "$E2E_ROOT/build/vmlinuz" -append "console=ttyS0 earlyprintk=ttyS0 panic=-1" \
        </dev/null >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq $((limit * 10))); do
        grep -q "Linux version" "$log" 2>/dev/null && { found=0; break; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rm -f "$log"
    return "$found"
}

# Sets VM_ACCEL and says on stderr which accelerator and why.
vm_accel_choose() {
    local reason
    case "${NATBOX_ACCEL:-}" in
    kvm | tcg)
        VM_ACCEL=$NATBOX_ACCEL
        reason="forced by NATBOX_ACCEL"
        ;;
    "")
        if [ ! -w /dev/kvm ]; then
            VM_ACCEL=tcg reason="no usable /dev/kvm"
        elif [ ! -f "$E2E_ROOT/build/vmlinuz" ]; then
            VM_ACCEL=tcg reason="no build/vmlinuz to probe KVM with"
        elif vm_accel_probe kvm "$VM_ACCEL_PROBE_SECONDS"; then
            VM_ACCEL=kvm reason="the kernel printed under KVM within ${VM_ACCEL_PROBE_SECONDS} s"
        else
            VM_ACCEL=tcg reason="/dev/kvm is there but the kernel printed nothing under KVM within ${VM_ACCEL_PROBE_SECONDS} s (nested KVM that does not run guests?)"
        fi
        ;;
    *)
        echo "NATBOX_ACCEL=$NATBOX_ACCEL: expected kvm or tcg" >&2
        return 1
        ;;
    esac
    echo "accelerator: $VM_ACCEL ($reason)" >&2
}

# How the VM boots (VM_BOOT): "kernel" (default) is QEMU's direct kernel boot of
# build/vmlinuz + build/initramfs.img on the pc machine; "microvm" boots the same on
# QEMU's microvm machine (virtio-mmio devices, no PCI, no firmware); "uefi" boots the
# disk image build/natbox.raw (VM_DISK_IMAGE overrides it) with OVMF firmware, its UKI
# on the EFI system partition; "bios" boots the same disk with QEMU's default BIOS
# (SeaBIOS), through syslinux. The boot disk is opened snapshot=on, so the image file
# is never written; VM_DISK_FORMAT (raw by default) is its format, e.g. qcow2 for
# build/natbox.qcow2, and VM_DISK_BUS its controller: "virtio" (virtio-blk, default)
# or "nvme" (as EC2 Nitro attaches the root volume).
VM_BOOT=${VM_BOOT:-kernel}
VM_DISK_IMAGE=${VM_DISK_IMAGE:-$E2E_ROOT/build/natbox.raw}
VM_DISK_FORMAT=${VM_DISK_FORMAT:-raw}
VM_DISK_BUS=${VM_DISK_BUS:-virtio}
VM_CMDLINE="console=ttyS0,115200 scsi_mod.scan=sync quiet panic=-1"
OVMF_CODE=/usr/share/OVMF/OVMF_CODE.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS.fd

# Appends to the caller's array `args` the boot disk (VM_DISK_IMAGE, VM_DISK_FORMAT)
# on VM_DISK_BUS, the firmware's first boot device.
vm_boot_disk_args() {
    args+=(-drive "file=$VM_DISK_IMAGE,format=$VM_DISK_FORMAT,if=none,id=boot,snapshot=on")
    case "$VM_DISK_BUS" in
    virtio) args+=(-device "virtio-blk-pci,drive=boot,bootindex=0") ;;
    nvme) args+=(-device "nvme,drive=boot,serial=natboxboot,bootindex=0") ;;
    *)
        echo "VM_DISK_BUS=$VM_DISK_BUS: expected virtio or nvme" >&2
        return 1
        ;;
    esac
}

# Appends to the caller's array `args` the QEMU options that boot the image the
# VM_BOOT way, and sets the caller's `virtio` to the virtio transport's device suffix
# (pci, or device for virtio-mmio).
vm_boot_args() {
    virtio=pci
    case "$VM_BOOT" in
    kernel | microvm)
        args+=(-kernel "$E2E_ROOT/build/vmlinuz" -initrd "$E2E_ROOT/build/initramfs.img" -append "$VM_CMDLINE")
        if [ "$VM_BOOT" = microvm ]; then
            # The devices are described to the kernel by ACPI (microvm's DSDT): Debian's
            # cloud kernel lacks VIRTIO_MMIO_CMDLINE_DEVICES, so the virtio_mmio.device=
            # QEMU adds to the command line with acpi=off is not read (no NICs). ACPI
            # also gives the power button and the power-off (S5) the box shuts down with.
            # Under TCG there is no kvmclock, and microvm has no HPET or ACPI PM timer:
            # the kernel can only calibrate the TSC against the PIT, which fails under
            # emulation jitter, and then hangs early in boot (9 boots in 11 on a loaded
            # host). -icount shift=auto drives the TSC and the PIT from one instruction
            # counter, so they always agree (8 boots in 8, two at a time).
            virtio=device
            args+=(-M microvm,acpi=on,pit=on,pic=on,rtc=on)
            if [ "$VM_ACCEL" = tcg ]; then args+=(-icount shift=auto); fi
        fi
        ;;
    uefi)
        # The firmware's variable store is writable: each boot gets a fresh copy.
        cp "$OVMF_VARS" "$WORK/ovmf-vars.fd"
        args+=(
            -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
            -drive "if=pflash,format=raw,unit=1,file=$WORK/ovmf-vars.fd"
        )
        vm_boot_disk_args || return 1
        ;;
    bios)
        vm_boot_disk_args || return 1
        ;;
    *)
        echo "VM_BOOT=$VM_BOOT: expected kernel, microvm, uefi or bios" >&2
        return 1
        ;;
    esac
}

# The vCPUs and the receive queues per data NIC the VM_BOOT way runs with: VM_CPUS and
# VM_QUEUES, except on microvm, which runs with one vCPU and single-queue NICs. Under
# TCG microvm needs -icount (vm_boot_args), which runs every vCPU on one host thread,
# and there the kernel took 23 s to bring up a second CPU (its delay calibration
# fails; with lpj= given it still took 23 s); with one CPU the guest's virtio_net
# enables one queue anyway (min(queues, CPUs)), so the NIC does not offer more
# (virtio-mmio, one interrupt line for all queues, would give them no CPU of their
# own either). The backend still opens VM_QUEUES on the shared multi_queue tap.
vm_cpus() { if [ "$VM_BOOT" = microvm ]; then echo 1; else echo "$VM_CPUS"; fi; }
vm_queues() { if [ "$VM_BOOT" = microvm ]; then echo 1; else echo "$VM_QUEUES"; fi; }

# The data NICs' QEMU models: VM_NIC_INSIDE and VM_NIC_OUTSIDE are "virtio" (default,
# virtio-net on the VM_BOOT way's transport) or a non-virtio NIC QEMU emulates on PCI,
# e.g. "vmxnet3" (VMware's, which Debian's cloud kernel drives; it has no e1000e). An
# emulated NIC gets no virtio options; it takes frames from every queue of the
# multi_queue tap and offers the guest what its model offers.
VM_NIC_INSIDE=${VM_NIC_INSIDE:-virtio}
VM_NIC_OUTSIDE=${VM_NIC_OUTSIDE:-virtio}
# VM_OUTSIDE_FIRST=1 puts the wan-side NIC first on the bus (the guest's eth0), as a
# cloud's primary interface is the public one; the default puts the lan-side NIC first.
VM_OUTSIDE_FIRST=${VM_OUTSIDE_FIRST:-0}
# The metadata disk's controller (VM_META_BUS): "virtio" (virtio-blk, default), "nvme"
# (an NVMe drive, as EC2 Nitro attaches every volume), "scsi" (a disk on a
# virtio-scsi controller, as GCE attaches its disks) or "scsi-cd" (a CD-ROM on a
# virtio-scsi controller, as OpenStack attaches an ISO 9660 config drive to an image
# with hw_cdrom_bus=scsi and hw_scsi_model=virtio-scsi).
VM_META_BUS=${VM_META_BUS:-virtio}

# Appends to the caller's `args` the data NIC $1 (lan or wan) with MAC $2 and model $3
# (see VM_NIC_INSIDE); $4 is the virtio options (transport suffix, ROM, queues).
vm_nic_args() {
    local id=$1 mac=$2 model=$3 virtio_options=$4
    if [ "$model" = virtio ]; then
        args+=(-device "virtio-net-$virtio,netdev=$id,mac=$mac$virtio_options")
    else
        args+=(-device "$model,netdev=$id,mac=$mac,romfile=")
    fi
}

# Boots the appliance in ns gw (see VM_BOOT), with the accelerator vm_accel_choose
# picks (once). $1: "console" for the serial console on this terminal, or a file to
# log it to (then `vm_console` types on it). $2: a metadata disk image, or "none"; it
# is opened read-write, so a `commit` in the box is kept for the next boot.
vm_boot() {
    local serial=$1 disk=${2:-$WORK/meta.img} virtio
    [ -n "$VM_ACCEL" ] || vm_accel_choose || return 1
    local args=(-accel "$VM_ACCEL" -m 256 -nodefaults -no-reboot -display none)
    vm_boot_args || return 1
    args+=(-smp "$(vm_cpus)")
    # romfile= drops the PCI NICs' iPXE option ROMs: the box never network-boots.
    # Multi-queue (VM_QUEUES > 1): the tap backend opens that many queues and the NIC
    # offers them (mq=on); each queue pair gets its own MSI-X vectors, 2 per pair plus
    # the control queue's and the configuration's (vectors=2N+2).
    local nic="" netdev=""
    [ "$virtio" = pci ] && nic=",romfile="
    if [ "$VM_QUEUES" -gt 1 ]; then
        # The tap is multi_queue for every boot, so the backend always opens VM_QUEUES.
        netdev=",queues=$VM_QUEUES"
        if [ "$(vm_queues)" -gt 1 ]; then nic+=",mq=on,vectors=$((2 * VM_QUEUES + 2))"; fi
    fi
    local side sides=(lan wan)
    [ "$VM_OUTSIDE_FIRST" = 0 ] || sides=(wan lan)
    for side in "${sides[@]}"; do
        args+=(-netdev "tap,id=$side,ifname=tap-$side,script=no,downscript=no$netdev")
        if [ "$side" = lan ]; then
            vm_nic_args lan "$VM_INSIDE_MAC" "$VM_NIC_INSIDE" "$nic"
        else
            vm_nic_args wan "$VM_OUTSIDE_MAC" "$VM_NIC_OUTSIDE" "$nic"
        fi
    done
    args+=(-monitor "unix:$WORK/monitor.sock,server,nowait")
    if [ "$disk" != none ]; then
        args+=(-drive "file=$disk,format=raw,if=none,id=meta")
        case "$VM_META_BUS" in
        virtio) args+=(-device "virtio-blk-$virtio,drive=meta") ;;
        nvme) args+=(-device "nvme,drive=meta,serial=natbox1") ;;
        scsi) args+=(-device "virtio-scsi-$virtio,id=scsi" -device "scsi-hd,drive=meta,bus=scsi.0") ;;
        scsi-cd) args+=(-device "virtio-scsi-$virtio,id=scsi" -device "scsi-cd,drive=meta,bus=scsi.0") ;;
        *)
            echo "VM_META_BUS=$VM_META_BUS: expected virtio, nvme, scsi or scsi-cd" >&2
            return 1
            ;;
        esac
    fi
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

# Waits at most $1 s for QEMU (VM_PID) to exit, as it does when the box powers off or
# reboots (-no-reboot).
vm_wait_exit() {
    local limit=$1
    for _ in $(seq $((limit * 10))); do
        kill -0 "$VM_PID" 2>/dev/null || { wait "$VM_PID" 2>/dev/null; VM_PID=""; return 0; }
        sleep 0.1
    done
    return 1
}

# Ctrl-Alt-Del or the power button: natbox (PID 1) shuts down cleanly and QEMU exits.
# Waits at most $1 s.
# $2: how to ask: "ctrl-alt-delete" (default; the pc machine's keyboard, which microvm
# has not) or "powerdown" (the ACPI power button, what a hypervisor's shutdown presses).
vm_shutdown() {
    local limit=${1:-60}
    if [ "${2:-ctrl-alt-delete}" = powerdown ]; then
        vm_monitor "system_powerdown"
    else
        vm_monitor "sendkey ctrl-alt-delete"
    fi
    vm_wait_exit "$limit"
}

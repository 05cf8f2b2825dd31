#!/usr/bin/env bash
# Boot tests of the real appliance image in QEMU, on the accelerator qemu/vm.sh picks
# (KVM only if a KVM guest really runs here, else TCG; the probe is checked first).
# The images are checked to be reproducible and the disk's EFI system partition to be
# fsck.fat-clean. Then, booted directly (kernel + initramfs): the banner appears, lan
# traffic is translated through the VM, the serial console shell answers, Ctrl-Alt-Del
# shuts the box down cleanly; a setting committed from the console shell changes live
# traffic, is written to the metadata disk and survives a reboot; with a console
# password, metrics and a syslog collector configured, the console asks for the
# password, curl scrapes the metrics and the collector gets NAT events through the VM,
# and ^C on the console stops a ping from the box; with no volume the box asks the
# metadata server and keeps asking, and a corrupt metadata disk is reported, while the
# box stays up. The same kernel and initramfs boot
# on QEMU's microvm machine (virtio-mmio), the UEFI disk image (build/natbox.raw, a UKI
# on a GPT/FAT ESP) boots with OVMF firmware, and the same disk boots on legacy BIOS
# (syslinux); each translates traffic and powers off cleanly. Cloud hardware: the
# metadata disk on NVMe with a vmxnet3 outside NIC, then on virtio-scsi, the modules
# loaded by the devices' modalias. DHCP on the outside port: no server at first (the
# console and the shell say so), then dnsmasq's lease, translated to. A metadata disk
# naming a port that is not there: the box stays up, says so at every try (backing
# off), shows the port as missing, and shuts down cleanly. Every boot runs with
# VM_CPUS (2) vCPUs and multi-queue NICs (VM_QUEUES, 2; qemu/vm.sh), microvm with one
# of each, and checks the box saw them. Prints the boot times.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/e2e/lib.sh"
source "$root/qemu/vm.sh"
source "$root/tests/boot/lib.sh"

# Runs fsck.fat -n on the first partition of GPT disk image $1; fails unless it reports
# nothing (its version line and its summary line only).
esp_fsck() {
    local first last rc=0
    first=$(od -An -tu8 -j $((1024 + 32)) -N8 "$1")
    last=$(od -An -tu8 -j $((1024 + 40)) -N8 "$1")
    dd if="$1" of="$WORK/esp.img" bs=512 skip=$((first)) count=$((last - first + 1)) status=none
    fsck.fat -n "$WORK/esp.img" >"$WORK/fsck.txt" 2>&1 || rc=$?
    cat "$WORK/fsck.txt"
    rm -f "$WORK/esp.img"
    [ "$rc" -eq 0 ] && [ "$(wc -l <"$WORK/fsck.txt")" -eq 2 ]
}

# vm_accel_choose with NATBOX_ACCEL=$1: succeeds if it picks $1 and says it was forced.
accel_forced() {
    local NATBOX_ACCEL=$1 VM_ACCEL=""
    vm_accel_choose 2>"$WORK/accel-forced.txt" || return 1
    cat "$WORK/accel-forced.txt"
    [ "$VM_ACCEL" = "$1" ] && grep -q "forced by NATBOX_ACCEL" "$WORK/accel-forced.txt"
}

# vm_accel_choose with NATBOX_ACCEL=$1: succeeds if it refuses the value.
accel_refused() {
    local NATBOX_ACCEL=$1 VM_ACCEL=""
    ! vm_accel_choose 2>"$WORK/accel-refused.txt" && grep -q "expected kvm or tcg" "$WORK/accel-refused.txt"
}

# Bulk TCP through the VM: 8 MiB of random bytes lan -> wan ($1 = up) or wan -> lan
# (down) with socat; succeeds if the receiver got exactly those bytes until EOF.
tcp_bulk() {
    head -c $((8 << 20)) /dev/urandom >"$WORK/bulk"
    tcp_stream "$1" "$WORK/bulk" 1 50 && cmp "$WORK/bulk" "$WORK/recv"
}

# Opens TCP connections from lan to wan's port 9 (refused there) until wan's tcpdump
# sees a SYN (at most 10 tries); succeeds if that SYN comes from the public address
# with MSS option $1.
syn_mss_is() {
    local dump
    in_wan timeout 30 tcpdump -i eth0 -n -l -c 1 'tcp dst port 9 and tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn' \
        >"$WORK/syn.txt" 2>/dev/null &
    dump=$!
    for _ in $(seq 10); do
        sleep 1
        in_lan timeout 3 bash -c 'exec 3<>/dev/tcp/198.51.100.1/9' 2>/dev/null || true
        kill -0 "$dump" 2>/dev/null || break
    done
    wait "$dump" || true
    echo "wan saw: $(cat "$WORK/syn.txt")"
    grep -q "198.51.100.10\.[0-9]* > 198.51.100.1.9: .*[[,]mss $1[],]" "$WORK/syn.txt"
}

"$root/image/build.sh" >/dev/null
cargo build --release -q -p firmware-config --bin natbox-config

# 0. The accelerator. The probe's success signal (the kernel's first line under
# earlyprintk) must show under TCG, so that silence under KVM says something about KVM.
check "accelerator probe: its guest (the kernel, earlyprintk) prints under TCG within 30 s" vm_accel_probe tcg 30
started=$SECONDS
vm_accel_choose 2>"$WORK/accel.txt" # VM_ACCEL for every boot below
sed 's/^/chosen /' "$WORK/accel.txt"
check "accelerator probe decides within $((VM_ACCEL_PROBE_SECONDS + 5)) s" test $((SECONDS - started)) -le $((VM_ACCEL_PROBE_SECONDS + 5))
check "NATBOX_ACCEL=tcg forces TCG (no probe)" accel_forced tcg
check "NATBOX_ACCEL=kvm is taken as asked (no probe)" accel_forced kvm
check "NATBOX_ACCEL=bogus is refused" accel_refused bogus
check "the image's command line has the serial console at 115200 baud (EC2 and GCE serial consoles)" \
    grep -qa "console=ttyS0,115200 " "$root/build/natbox.efi"
ls -l "$root/build/vmlinuz" "$root/build/initramfs.img" "$root/build/appliance" "$root/build/natbox.efi" \
    "$root/build/natbox.raw" "$root/build/natbox.qcow2" "$root/build/natbox-gcp.tar.gz" | awk '{print "size", $5, $NF}'
rebuilt=$(mktemp -d)
image() { "$root/target/release/natbox-image" "$@" >/dev/null; }
image initramfs --binary "$root/build/appliance" \
    --kernel-tree "$root/build/kernel/lib/modules" --out "$rebuilt/initramfs.img"
check "initramfs is reproducible (same inputs, same bytes)" cmp "$rebuilt/initramfs.img" "$root/build/initramfs.img"
image uki --stub /usr/lib/systemd/boot/efi/linuxx64.efi.stub --kernel "$root/build/vmlinuz" \
    --initrd "$root/build/initramfs.img" --cmdline "$VM_CMDLINE" --out "$rebuilt/natbox.efi"
check "unified kernel image is reproducible" cmp "$rebuilt/natbox.efi" "$root/build/natbox.efi"
image disk --efi "$rebuilt/natbox.efi" --out "$rebuilt/natbox.raw" --bios-mbr /usr/lib/syslinux/mbr/gptmbr.bin
check "disk image is reproducible" cmp "$rebuilt/natbox.raw" "$root/build/natbox.raw"
# The budget: 32 MiB until issue #18's features (flow logs, forwards, SLIs...) took the
# binary, carried twice (UKI and the BIOS boot copy), 64 KiB past it.
check "disk image is under 40 MiB" test "$(stat -c %s "$root/build/natbox.raw")" -lt $((40 << 20))
check "the disk's EFI system partition is fsck.fat-clean (fsck.fat -n reports nothing)" esp_fsck "$root/build/natbox.raw"
qemu-img convert -f raw -O qcow2 "$rebuilt/natbox.raw" "$rebuilt/natbox.qcow2"
check "qcow2 image is reproducible" cmp "$rebuilt/natbox.qcow2" "$root/build/natbox.qcow2"
rm -rf "$rebuilt"
topology
vm_wiring

# 1. A good metadata disk: banner, translated traffic, the shell, clean shutdown. With
# `workers = 0` (one per CPU, at most the NICs' queues): 2 workers in the 2-vCPU VMs.
E2E_WORKERS=0 vm_metadata_disk
boot_and_translate kernel
check "kernel: ping -6 from lan to wan through the VM" in_lan ping -6 -c 2 -W 5 -w 30 2001:db8:ff::1
check "kernel: 8 MiB over TCP lan -> wan through the VM arrive intact (socat, cmp)" tcp_bulk up
check "kernel: 8 MiB over TCP wan -> lan through the VM arrive intact (socat, cmp)" tcp_bulk down
for port in inside outside; do
    check "kernel: the VM's kernel drops its copy of $port frames at ingress (nf_tables loaded)" \
        grep -q "$port port: .*, the kernel drops its copy at ingress" "$console"
done
vm_console "show sessions"
check "serial console shell: show sessions lists the ping" wait_for_line "$console" "icmp .*10\.10\.0\.2:.*198\.51\.100\.10:.*198\.51\.100\.1:0" 30
vm_console "sh int"
check "serial console shell: prefixes, show interfaces with rx/tx counters" wait_for_line "$console" "^outside .*52:54:00:00:00:02" 30
# Issue #16: 10.10.0.2 and 10.10.0.3 hash to different workers (core/src/shard.rs,
# host_worker), so each worker forwards one host's ping.
in_lan ip addr add 10.10.0.3/24 dev eth0
check "kernel: ping from a second inside host (10.10.0.3) through the VM" \
    in_lan ping -I 10.10.0.3 -c 2 -W 5 -w 30 198.51.100.1
vm_console "show workers"
for k in 0 1; do
    check "kernel: show workers: worker $k received and sent frames (2 vCPUs, 2 queues)" \
        wait_for_line "$console" "^$k  *[1-9][0-9]*  *[1-9][0-9]* " 30
done
check "Ctrl-Alt-Del: QEMU exits within 60 s" vm_shutdown 60
check "clean-shutdown line on the console" grep -q "natbox: clean shutdown, powering off" "$console"

# 2. configure -> commit -> live traffic changes -> reboot -> still so. The example
# configuration clamps the TCP MSS to 1460, what lan sends anyway (MTU 1500).
boot_and_translate config
check "config: before the commit, wan sees the SYN's MSS as lan sent it (1460)" syn_mss_is 1460
vm_console "configure"
vm_console "set nat.mss_clamp 1200"
vm_console "commit"
check "config: commit applies live and saves to the metadata disk" wait_for_line "$console" "committed: applied live.*saved to /dev/vd" 30
check "config: after the commit, wan sees the SYN's MSS clamped to 1200" syn_mss_is 1200
vm_console "reboot"
check "config: reboot from the shell, QEMU exits (-no-reboot) within 60 s" vm_wait_exit 60
check "config: clean-shutdown line says rebooting" grep -q "natbox: clean shutdown, rebooting" "$console"
check "config: the metadata disk holds the committed value" bash -c "'$root/target/release/natbox-config' show '$WORK/meta.img' | grep -qx 'mss_clamp = 1200'"
boot_and_translate config-rebooted
vm_console "terminal length 0" # no --More-- pager: the whole configuration at once
vm_console "show config"
check "config: after the reboot, show config has mss_clamp = 1200" wait_for_line "$console" "^mss_clamp = 1200" 30
check "config: after the reboot, wan still sees the SYN's MSS clamped to 1200" syn_mss_is 1200
check "config: ACPI power button, QEMU exits within 60 s" vm_shutdown 60 powerdown
vm_metadata_disk # the example configuration again

# 2b. The box's own services on the appliance: the serial console asks for the
# configured password (and delays after a wrong one), a syslog collector in lan gets
# the NAT events, curl in lan scrapes the metrics through the VM, and ^C on the
# serial console stops a `ping` from the box.
in_lan python3 "$root/tests/e2e/helpers.py" udp-listen 10.10.0.2 5514 300 "$WORK/syslog.txt" >/dev/null &
collector=$!
hash=$(openssl passwd -6 natbox-boot)
vm_metadata_disk 's/^level = "info"/level = "info"\nsyslog = "10.10.0.2:5514"/' \
    '$a [metrics]' '$a listen = "10.10.0.1:9100"' '$a [shell]' '$a password_hash = "'"$hash"'"'
boot_and_translate services
check "services: the banner says the console asks for a password" grep -q "console password set" "$console"
check "services: the serial console asks for the password" wait_for_line "$console" "password required" 30
vm_console "not-the-password"
check "services: a wrong password is refused with a delay" wait_for_line "$console" "login incorrect; wait 1 s" 30
sleep 2
vm_console "natbox-boot"
check "services: the right password opens the shell" wait_for_line "$console" "natbox> " 30
check "services: the collector in lan received the ping's mapping event (RFC 5424)" \
    wait_for_line "$WORK/syslog.txt" '^10\.10\.0\.1:514 <134>1 .* event="create" proto="icmp" inside="10\.10\.0\.2:' 30
check "services: curl in lan scrapes the metrics through the VM" bash -c \
    "ip netns exec $LAN curl -sf --max-time 20 http://10.10.0.1:9100/metrics | grep -Eq '^natbox_nat_events_logged_total [1-9]'"
vm_console "ping 198.51.100.1 count 30"
check "services: ping from the box on the serial console gets replies" wait_for_line "$console" "bytes from 198.51.100.1: icmp_seq=2 " 30
printf '\x03' | timeout 5 socat -t 1 - "UNIX-CONNECT:$WORK/console.sock" >/dev/null
check "services: ^C on the serial console stops the ping (the box stays up)" \
    wait_for_line "$console" "^[0-9] packets transmitted, [0-9] received" 20
check "services: ACPI power button, QEMU exits within 60 s" vm_shutdown 60 powerdown
kill "$collector" 2>/dev/null || true
vm_metadata_disk # the example configuration again

# 3. No configuration volume: the box asks the cloud's metadata server through its
# first NIC (no DHCP server answers on that link here, so it keeps asking), the shell
# works, `poweroff` shuts it down.
console=$WORK/console-nodisk.log
vm_boot "$console" none
check "no volume: the box asks the metadata server through its first NIC" \
    wait_for_line "$console" "no configuration volume: asking the cloud's metadata server through eth0" 120
check "no volume: it waits for a DHCP address to ask from" \
    wait_for_line "$console" "metadata: waiting for an address .DHCP." 30
vm_console "show version"
check "shell answers without a configuration" wait_for_line "$console" "^natbox [0-9.]*, up" 30
vm_console "show dhcp"
check "show dhcp: the search's DHCP client is still asking (selecting)" wait_for_line "$console" " selecting " 30
vm_console "poweroff"
check "poweroff from the shell: QEMU exits within 60 s" vm_wait_exit 60
check "clean-shutdown line (no disk)" grep -q "clean shutdown" "$console"

# 4. Corrupt metadata disk: both slots damaged, the magic intact.
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

# 5. The same kernel and initramfs on QEMU's microvm machine: virtio-mmio NICs and
# disk, ACPI power button (microvm has no keyboard controller for Ctrl-Alt-Del).
VM_BOOT=microvm
boot_and_translate microvm
check "microvm: ACPI power button (system_powerdown), QEMU exits within 60 s" vm_shutdown 60 powerdown
check "microvm: clean-shutdown line on the console" grep -q "natbox: clean shutdown, powering off" "$console"

# 6. The UEFI disk image: OVMF loads EFI/BOOT/BOOTX64.EFI (the UKI) from the ESP; the
# metadata disk is the second drive (natbox finds it by its magic).
VM_BOOT=uefi
boot_and_translate uefi "" 180
check "uefi: Ctrl-Alt-Del, QEMU exits within 60 s" vm_shutdown 60
check "uefi: clean-shutdown line on the console" grep -q "natbox: clean shutdown, powering off" "$console"

# 7. The same disk on legacy BIOS: SeaBIOS, gptmbr.bin, syslinux, /vmlinuz + /initrd.img.
VM_BOOT=bios
boot_and_translate bios "" 180
check "bios: ACPI power button (system_powerdown), QEMU exits within 60 s" vm_shutdown 60 powerdown
check "bios: clean-shutdown line on the console" grep -q "natbox: clean shutdown, powering off" "$console"
VM_BOOT=kernel

# 8. Cloud hardware (issue #17). (a) The metadata disk on an NVMe drive (EC2 Nitro)
# and the outside port on vmxnet3 (a non-virtio NIC QEMU emulates; Debian's cloud
# kernel has no e1000e): the box finds its configuration on /dev/nvme0n1 and
# forwards; the kernel modules are loaded by the devices' modalias, each logged with
# its device, and a module no device needs (virtio_blk: no virtio disk here) is not
# loaded. (b) The metadata disk on a virtio-scsi controller (GCE): virtio_scsi, then
# sd_mod for the disk the host scan finds (a rescan), the configuration from /dev/sda.
name=cloud-nvme
VM_META_BUS=nvme VM_NIC_OUTSIDE=vmxnet3 boot_and_translate "$name"
check "$name: the configuration came from the NVMe drive" grep -q "config /dev/nvme0n1 generation" "$console"
check "$name: vmxnet3 loaded for the outside NIC's PCI modalias" \
    grep -q "module vmxnet3 for pci [0-9a-f:.]* (pci:v000015ADd000007B0" "$console"
check "$name: virtio_net loaded for the inside NIC's virtio modalias" \
    grep -q "module virtio_net for virtio virtio[0-9]* (virtio:d00000001v" "$console"
check "$name: virtio_blk and sd_mod (carried, no device needs them) are not loaded" \
    bash -c "! grep -Eq 'module (virtio_blk|sd_mod) ' '$console'"
grep -ao "modules loaded: .*" "$console" | tr -d '\r' | sed "s/^/$name: /" || true
check "$name: ACPI power button, QEMU exits within 60 s" vm_shutdown 60 powerdown
name=cloud-scsi
VM_META_BUS=scsi boot_and_translate "$name"
check "$name: virtio_scsi loaded for the virtio-scsi controller" \
    grep -q "module virtio_scsi for virtio virtio[0-9]* (virtio:d00000008v" "$console"
check "$name: scsi_mod got its parameter from the kernel command line (scan=sync)" \
    grep -q "module scsi_mod needed by virtio_scsi with scan=sync" "$console"
check "$name: sd_mod loaded for the SCSI disk (found by a rescan after virtio_scsi, scanned with scsi_mod.scan=sync)" \
    grep -q "module sd_mod for scsi [0-9:]* (scsi:t-0x00" "$console"
check "$name: the configuration came from the SCSI disk" grep -q "config /dev/sda generation" "$console"
grep -ao "modules loaded: .*" "$console" | tr -d '\r' | sed "s/^/$name: /" || true
check "$name: ACPI power button, QEMU exits within 60 s" vm_shutdown 60 powerdown

# 9. DHCP on the outside port (issue #17): the metadata disk says outside
# `ipv4 = "dhcp"`, with no gateway and no pool. No server answers at first: the console
# says so after 30 s and the shell shows it. Then dnsmasq serves ns wan's link: the box,
# still asking, ARP-probes the offered address, takes the lease and translates to it.
name=dhcp
vm_metadata_disk 's|^ipv4 = "198.51.100.10/24"|ipv4 = "dhcp"|' '/^gateway4 = /d'
boot_banner "$name"
check "$name: with no DHCP server, the console says so after 30 s and that the box keeps asking" \
    wait_for_line "$console" "outside port: no DHCP answer for 3[0-9] s; still asking" 60
vm_console "show interfaces"
check "$name: show interfaces on the console: the outside client is selecting, no answer" \
    wait_for_line "$console" "^outside .*selecting, no answer for" 30
dhcp_server eth0 "$WORK/dnsmasq.log"
check "$name: the outside port takes a DHCP lease from dnsmasq within 70 s (its next DISCOVER)" \
    wait_for_line "$console" "outside port: DHCP lease 198\.51\.100\.5[0-9]/24 from 198\.51\.100\.1, router 198\.51\.100\.1" 70
leased=$(grep -ao "DHCP lease 198\.51\.100\.5[0-9]" "$console" | head -n 1 | grep -o "198[0-9.]*")
translates "$name" "${leased:-none}"
check "$name: ACPI power button, QEMU exits within 60 s" vm_shutdown 60 powerdown
kill "$DHCP_SERVER" 2>/dev/null

# 10. A port that is not there (issue #17): the metadata disk names the outside port by
# a MAC no NIC has. The box stays up and says so on the console at every try (backing
# off to 30 s), its shell shows the port as missing and the metrics gauge it down, and
# the power button still shuts it down.
name=missing-port
vm_metadata_disk "s/^port = \"$VM_OUTSIDE_MAC\"/port = \"52:54:00:00:00:09\"/"
console=$WORK/console-$name.log
vm_boot "$console" "$WORK/meta.img"
check "$name: the console names the missing port and says the box tries again" \
    wait_for_line "$console" "outside port 52:54:00:00:00:09: no interface has MAC address 52:54:00:00:00:09: the dataplane is not running; trying again in" 120
vm_console "show interfaces"
check "$name: show interfaces on the console: outside 52:54:00:00:00:09 missing" \
    wait_for_line "$console" "^outside  *52:54:00:00:00:09  *missing" 30
vm_console "show metrics"
check "$name: show metrics on the console: natbox_port_up{port=\"outside\"} 0" \
    wait_for_line "$console" 'natbox_port_up{port="outside"} 0' 30
sleep 15
tries=$(grep -ac "the dataplane is not running; trying again" "$console" || true)
echo "# $name: failed tries logged in about 20 s: $tries"
check "$name: the tries back off (2 to 8 in about 20 s, not one per tick)" test "$tries" -ge 2 -a "$tries" -le 8
check "$name: ACPI power button, QEMU exits within 60 s" vm_shutdown 60 powerdown
finish

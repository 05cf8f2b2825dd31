#!/usr/bin/env bash
# Boot tests of the cloud configuration sources (firmware-config's `sources`, the boot
# order in appliance/src/init/source.rs), in QEMU on the boot tests' topology. The
# image boots with no natbox metadata disk but a cloud-init NoCloud disk: a vfat volume
# labelled cidata, built without root (mkfs.vfat, mcopy), whose user-data is natbox's
# TOML without a hostname and whose meta-data gives instance-id and local-hostname.
# 1. The box forwards lan -> wan translated; the log names the nocloud source and its
#    instance id; `show config` heads the configuration with the source and a sha256
#    and has the meta-data's host name; a `commit` applies live and says it is lost at
#    reboot (a cloud volume is not written back).
# 2. The user-data is a #cloud-config: the box stays up, the console says what natbox
#    expects, forwarding is off (the shell says so, lan's ping gets no answer), and
#    `poweroff` from the shell works.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/e2e/lib.sh"
source "$root/qemu/vm.sh"
source "$root/tests/boot/lib.sh"

# Writes NoCloud volume $1 (1 MiB vfat, label cidata) with user-data $2 and a meta-data.
cidata() {
    rm -f "$1"
    mkfs.vfat -C -n cidata "$1" 1024 >/dev/null 2>&1
    printf 'instance-id: iid-boot-1\nlocal-hostname: nat-boot\n' >"$WORK/meta-data"
    mcopy -i "$1" "$2" ::user-data
    mcopy -i "$1" "$WORK/meta-data" ::meta-data
}

boot_setup

# 1. natbox's TOML as user-data, its hostname left to the meta-data.
vm_metadata_disk '/^hostname = /d' # $WORK/natbox.toml with the VM's MACs
cidata "$WORK/cidata.img" "$WORK/natbox.toml"
boot_and_translate nocloud "$WORK/cidata.img"
check "nocloud: the log names the source, its instance id and the digest" \
    grep -Eq "configuration from nocloud \(/dev/vda, label cidata\), instance-id iid-boot-1, sha256 [0-9a-f]{64}" "$console"
check "nocloud: the banner names the source" grep -q "config nocloud (/dev/vda, label cidata)" "$console"
vm_console "terminal length 0"
vm_console "show config"
check "nocloud: show config names the source, the instance id and a sha256" \
    wait_for_line "$console" "^# source: nocloud (/dev/vda, label cidata), instance-id iid-boot-1, sha256 [0-9a-f]\{16\}" 30
check "nocloud: the meta-data's local-hostname fills the hostname the user-data leaves out" \
    wait_for_line "$console" '^hostname = "nat-boot"' 30
vm_console "configure"
vm_console "set nat.mss_clamp 1200"
vm_console "commit"
check "nocloud: commit applies live and says it is lost at reboot" \
    wait_for_line "$console" "committed: applied live.*not saved: the configuration came from nocloud .*lost at reboot" 30
check "nocloud: ACPI power button, QEMU exits within 60 s" vm_shutdown 60 powerdown

# 2. A #cloud-config user-data: refused, the box stays up with forwarding off.
printf '#cloud-config\nruncmd:\n  - iptables -t nat -A POSTROUTING -j MASQUERADE\n' >"$WORK/cloud-config"
cidata "$WORK/cidata-cloud-config.img" "$WORK/cloud-config"
console=$WORK/console-cloud-config.log
vm_boot "$console" "$WORK/cidata-cloud-config.img"
check "cloud-config: the console says what natbox expects" wait_for_line "$console" \
    "cidata:user-data is a #cloud-config document; natbox reads its own TOML configuration (see natbox.toml), plain or gzip" 120
check "cloud-config: the console says forwarding is off" wait_for_line "$console" "forwarding is off" 30
vm_console "show sessions"
check "cloud-config: the shell answers and says forwarding is off" \
    wait_for_line "$console" "error: forwarding is off (no valid configuration)" 30
check "cloud-config: no banner (the box did not start forwarding)" bash -c "! grep -q 'ms after kernel start' '$console'"
check "cloud-config: ping from lan to wan gets no answer" bash -c "! ip netns exec $LAN ping -c 2 -W 2 198.51.100.1"
vm_console "poweroff"
check "cloud-config: poweroff from the shell, QEMU exits within 60 s" vm_wait_exit 60
finish

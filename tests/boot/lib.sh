# What the boot tests share: sourced by tests/boot/test_*.sh after tests/e2e/lib.sh and
# qemu/vm.sh, not run.

# Boots the VM_BOOT way with metadata disk $2 (default $WORK/meta.img), the console
# logged to $WORK/console-$1.log (sets `console`), and checks the banner within $3 s
# (default 120) and the CPUs and queues the box saw. Prints the boot time the banner
# gives (kernel start to forwarding) and the time from QEMU's start. $1 names the boot
# in check names.
boot_banner() {
    local name=$1 disk=${2:-$WORK/meta.img} limit=${3:-120} started=$SECONDS
    console=$WORK/console-$name.log
    vm_boot "$console" "$disk"
    check "$name: banner on the serial console within $limit s" wait_for_line "$console" "forwarding .* ms after kernel start" "$limit"
    grep -o "forwarding [0-9]* ms after kernel start" "$console" |
        sed "s/^/boot time ($name, $VM_ACCEL, $(vm_cpus) CPUs): /; s/\$/, banner $((SECONDS - started)) s after QEMU start/" || true
    check "$name: the box has $(vm_cpus) CPUs online and $(vm_queues) rx queues on each NIC" \
        grep -Eaq "\] $(vm_cpus) CPUs online; rx queues: [a-z0-9]+ $(vm_queues), [a-z0-9]+ $(vm_queues)([^0-9]|\$)" "$console"
}

# Checks that ping from lan reaches wan through the VM translated to public address
# $2 (default 198.51.100.10) and nothing else; $1 names the boot in check names.
translates() {
    local name=$1 public=${2:-198.51.100.10} dump
    in_wan timeout 30 tcpdump -i eth0 -n -l -c 3 icmp >"$WORK/tcpdump-$name.txt" 2>/dev/null &
    dump=$!
    sleep 1
    check "$name: ping from lan to wan through the VM" in_lan ping -c 3 -W 5 -w 30 198.51.100.1
    wait "$dump" || true
    check "$name: wan sees the public source address $public only" bash -c "grep -q '$public > 198.51.100.1' '$WORK/tcpdump-$name.txt' && ! grep -q '10.10.0' '$WORK/tcpdump-$name.txt'"
}

# `boot_banner`, then `translates` to the default public address.
boot_and_translate() {
    boot_banner "$@"
    translates "$1"
}

# What a boot test does first: builds the image and natbox-config, the topology and
# its wiring to QEMU's taps, and picks the accelerator (VM_ACCEL), printing the choice.
boot_setup() {
    "$E2E_ROOT/image/build.sh" >/dev/null
    cargo build --release -q -p firmware-config --bin natbox-config
    topology
    vm_wiring
    vm_accel_choose 2>"$WORK/accel.txt"
    sed 's/^/chosen /' "$WORK/accel.txt"
}

cleanup_vm() { [ -n "$VM_PID" ] && kill "$VM_PID" 2>/dev/null; e2e_cleanup; }
trap cleanup_vm EXIT


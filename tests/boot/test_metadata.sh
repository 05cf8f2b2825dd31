#!/usr/bin/env bash
# Boot test of the configuration from a cloud's metadata server (issue #17): the image
# boots in QEMU with no configuration volume at all, its wan-side NIC first (eth0, as
# a cloud's primary interface), and ns wan plays the cloud: dnsmasq leases the outside
# NIC 198.51.100.50 with 198.51.100.1 as its router, and metadata_server.py answers
# EC2 IMDSv2 at 169.254.169.254 (on ns wan's loopback, reached through the router).
# The user-data names only the inside port; the metadata fills the rest (the outside
# port by its MAC, by DHCP; the VPC CIDR as inside prefixes; the host name). The box
# must come up, say where its configuration came from, and translate lan -> wan to
# the leased address.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/e2e/lib.sh"
source "$root/qemu/vm.sh"
source "$root/tests/boot/lib.sh"

boot_setup

ip -n "$WAN" addr add 169.254.169.254/32 dev lo
dhcp_server eth0 "$WORK/dnsmasq.log" --dhcp-host="$VM_OUTSIDE_MAC,198.51.100.50"
interfaces='[{"mac": "'$VM_OUTSIDE_MAC'", "local-ipv4s": ["198.51.100.50"], "subnet": "198.51.100.0/24",
              "vpc-cidrs": ["10.10.0.0/16"], "gateway": "198.51.100.1"},
             {"mac": "'$VM_INSIDE_MAC'", "local-ipv4s": ["10.10.0.1"], "subnet": "10.10.0.0/24",
              "vpc-cidrs": ["10.10.0.0/16"], "gateway": "10.10.0.254"}]'
cat >"$WORK/user-data" <<TOML
[inside]
port = "$VM_INSIDE_MAC"
ipv4 = "10.10.0.1/24"
TOML
ip netns exec "$WAN" python3 "$root/tests/e2e/metadata_server.py" --mode imdsv2 \
    --bind 169.254.169.254 --port 80 --interfaces "$interfaces" \
    --hostname nat-meta.ec2.internal --instance-id i-0b00700000000001 \
    --user-data "$WORK/user-data" --log "$WORK/md.log" >"$WORK/md.out" 2>&1 &

name=imds
VM_OUTSIDE_FIRST=1 boot_banner "$name" none
translates "$name" 198.51.100.50
check "$name: the log names the source, ec2 and its instance id" \
    grep -aEq "configuration from ec2.*i-0b00700000000001" "$console"
check "$name: the banner names the source" grep -aq "config ec2" "$console"
vm_console "terminal length 0"
vm_console "show config"
check "$name: show config has the metadata's host name" wait_for_line "$console" '^hostname = "nat-meta.ec2.internal"' 30
check "$name: IMDSv2 only: the token first, no request refused for want of one" \
    bash -c "head -n 1 '$WORK/md.log' | grep -q '^PUT /latest/api/token 200' && ! grep -q ' 401' '$WORK/md.log'"
grep -a "metadata\|configuration from" "$console" | tr -d '\r' | sed "s/^/$name: /" || true
check "$name: ACPI power button, QEMU exits within 60 s" vm_shutdown 60 powerdown
finish

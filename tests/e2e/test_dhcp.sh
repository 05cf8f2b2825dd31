#!/usr/bin/env bash
# DHCPv4 on the outside port (RFC 2131), against a real server: dnsmasq in ns wan
# leases 198.51.100.50-59 for 2 minutes with T1 at 12 s and T2 at 20 s. natbox runs
# with outside `ipv4 = "dhcp"`, no gateway and no pool: the lease gives the address,
# the router and with them the NAT address. A ping flow from lan runs across the
# renewal at T1 and loses nothing; the configuration as written keeps "dhcp". Then
# an address in use: ns wan becomes a bridge with a second host (ns squatter) holding
# 198.51.100.50 and dropping pings (so dnsmasq's own ping check misses it), and
# dnsmasq reserves that address for natbox's MAC: natbox's ARP probe finds the owner
# and declines the address (RFC 5227, RFC 2131 section 3.1 step 5).
source "$(dirname "$0")/lib.sh"
echo "# test_dhcp: DHCPv4 client on the outside port"
topology
command -v dnsmasq >/dev/null || { echo "FAIL - dnsmasq missing (tests/setup.sh installs it)"; FAILED=$((FAILED + 1)); finish; }
dhcp_server eth0 "$WORK/dnsmasq.log" --dhcp-option=option:T1,12 --dhcp-option=option:T2,20
write_config 's|^ipv4 = "198.51.100.10/24"|ipv4 = "dhcp"|' '/^gateway4 = /d'
SOCK="$WORK/admin.sock"
NATBOX_ARGS="--admin $SOCK"
start_natbox
shell() { printf '%s\n' "$@" | timeout 10 socat -t 2 - "UNIX-CONNECT:$SOCK"; }

# The address the lease gave, from natbox's log.
leased() { grep -o 'outside port: DHCP lease 198\.51\.100\.5[0-9]' "$WORK/natbox.log" | grep -o '198[0-9.]*' | head -n 1; }
bound() { for _ in $(seq 100); do [ -n "$(leased)" ] && return 0; sleep 0.1; done; return 1; }
check "RFC 2131 3.1: natbox is bound within 10 s (DISCOVER, OFFER, REQUEST, ACK)" bound
ADDR=$(leased)
echo "# leased ${ADDR:-nothing}"
on_port() { shell 'show interfaces' | grep -q "${ADDR:-none}/24"; }
check "the lease's address is on natbox's outside port (show interfaces)" on_port
as_written() { shell 'show config' | grep -q 'ipv4 = "dhcp"'; }
check "show config keeps ipv4 = \"dhcp\" as written" as_written

# A flow across the renewal at T1 (12 s after the ACK): 20 s of pings.
in_lan timeout 40 ping -c 100 -i 0.2 -W 2 198.51.100.1 >"$WORK/ping.log" 2>&1
check "ping lan -> wan through the leased address: none lost across the renewal" \
    grep -q ' 0% packet loss' "$WORK/ping.log"
tail -n 2 "$WORK/ping.log" | sed 's/^/# /'
acks() { grep -c "DHCPACK(eth0) ${ADDR:-none}" "$WORK/dnsmasq.log"; }
renewed() { [ "$(acks)" -ge 2 ]; }
check "RFC 2131 4.4.5: natbox renewed at T1 (dnsmasq acked ${ADDR:-none} twice or more)" renewed
echo "# dnsmasq DHCPACKs for ${ADDR:-none}: $(acks)"
through() { shell 'show sessions proto icmp' | grep -q "${ADDR:-none}:"; }
check "the ping's session is translated to the leased address (show sessions)" through
shown() { shell 'show dhcp' | tee "$WORK/dhcp.out" | grep -E "^outside +(bound|renewing) +${ADDR:-none}/24 +198\.51\.100\.1 +198\.51\.100\.1 "; }
check "show dhcp: outside bound to the lease, server and router 198.51.100.1" shown
sed "s/^/# /" "$WORK/dhcp.out"; grep -E "DHCP(DISCOVER|OFFER|REQUEST|ACK|NAK)" "$WORK/dnsmasq.log" | sed "s/^/# dnsmasq: /"
gauged() { shell 'show metrics' | grep -qx 'natbox_dhcp4_bound{port="outside"} 1'; }
check "metrics: natbox_dhcp4_bound{port=\"outside\"} 1" gauged
kept() { ! grep -q 'DHCP moved the address' "$WORK/natbox.log"; }
check "no address change was logged (the renewal kept the address)" kept

# --- An offered address in use on the link.
stop_natbox
kill "$DHCP_SERVER" 2>/dev/null; wait "$DHCP_SERVER" 2>/dev/null
SQ="${PFX}sq"
trap 'ip netns pids "$SQ" 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del "$SQ" 2>/dev/null; e2e_cleanup' EXIT
ip netns add "$SQ"
ip -n "$WAN" addr flush dev eth0
ip -n "$WAN" link add br0 type bridge
ip -n "$WAN" link set eth0 master br0
ip link add sq0 netns "$WAN" type veth peer name eth0 netns "$SQ"
ip -n "$WAN" link set sq0 master br0
ip -n "$WAN" addr add 198.51.100.1/24 dev br0
for dev in br0 sq0; do ip -n "$WAN" link set "$dev" up; done
ip -n "$SQ" addr add 198.51.100.50/24 dev eth0
ip -n "$SQ" link set eth0 up
ip netns exec "$SQ" nft -f - <<'NFT'
table inet squatter {
    chain input {
        type filter hook input priority 0;
        ip daddr 198.51.100.50 icmp type echo-request drop
    }
}
NFT
WAN0_MAC=$(ip -n "$GW" -o link show wan0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
dhcp_server br0 "$WORK/dnsmasq2.log" --dhcp-host="$WAN0_MAC,198.51.100.50"
start_natbox
declined() {
    for _ in $(seq 100); do
        grep -q 'DHCPDECLINE(br0) 198.51.100.50' "$WORK/dnsmasq2.log" && return 0
        sleep 0.1
    done
    return 1
}
check "RFC 5227 2.1.1: natbox probes the offered 198.51.100.50, finds its owner and declines it" declined
logged() { grep -q '198.51.100.50 offered by DHCP is in use on the link' "$WORK/natbox.log"; }
check "natbox logs the conflict" logged
grep -E "DHCP[A-Z]+\(" "$WORK/dnsmasq2.log" | sed "s/^/# dnsmasq: /"
not_bound() { ! shell 'show dhcp' | grep -q ' 198\.51\.100\.50/24 '; }
check "the declined address is not taken (show dhcp)" not_bound
finish

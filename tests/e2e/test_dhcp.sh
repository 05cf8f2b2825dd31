#!/usr/bin/env bash
# DHCPv4 on the outside port (RFC 2131), against a real server: dnsmasq in ns wan
# leases 198.51.100.50-59 for 2 minutes with T1 at 8 s and T2 at 14 s. natbox runs
# with outside `ipv4 = "dhcp"`, no gateway and no pool: the lease gives the address,
# the router and with them the NAT address. A ping flow from lan (30 s) runs across a
# rebinding and a renewal and loses nothing: an nft rule in ns wan first drops the
# unicast REQUEST natbox sends at T1 (RENEWING), so it rebinds by broadcast at T2
# (REBINDING); the rule is then removed and the next T1 renews by unicast (RFC 2131
# section 4.4.5). The configuration as written keeps "dhcp".
# Then a Google-Compute-Engine-style lease: a /32 address, option 121 (RFC 3442) with
# an on-link route to the gateway (router 0.0.0.0) and the default route via it, and
# MTU 1460 (option 26): natbox resolves the gateway on-link, forwards through it, and
# its outside port takes MTU 1460 (a 1461-byte DF datagram gets "fragmentation
# needed, mtu 1460").
# Then an address in use: ns wan becomes a bridge with a second host (ns squatter) holding
# 198.51.100.50 and dropping pings (so dnsmasq's own ping check misses it), and
# dnsmasq reserves that address for natbox's MAC: natbox's ARP probe finds the owner
# and declines the address (RFC 5227, RFC 2131 section 3.1 step 5).
source "$(dirname "$0")/lib.sh"
echo "# test_dhcp: DHCPv4 client on the outside port"
topology
command -v dnsmasq >/dev/null || { echo "FAIL - dnsmasq missing (tests/setup.sh installs it)"; FAILED=$((FAILED + 1)); finish; }
dhcp_server eth0 "$WORK/dnsmasq.log" --dhcp-option=option:T1,8 --dhcp-option=option:T2,14
write_config 's|^ipv4 = "198.51.100.10/24"|ipv4 = "dhcp"|' '/^gateway4 = /d'
NATBOX_ARGS="--admin $SOCK"
start_natbox

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

# The server ignores unicast for now: RENEWING at T1 goes unanswered.
ip netns exec "$WAN" nft -f - <<'NFT'
table inet dhcp_unicast {
    chain input {
        type filter hook input priority 0;
        ip daddr 198.51.100.1 udp dport 67 counter drop
    }
}
NFT
# A flow across the rebinding at T2 and the renewal at the next T1: 30 s of pings.
in_lan timeout 60 ping -c 150 -i 0.2 -W 2 198.51.100.1 >"$WORK/ping.log" 2>&1 &
PING=$!
# dhcp_count FIELD: the client's renewals or rebinds (show dhcp --json).
dhcp_count() { shell 'show dhcp --json' | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['$1'])" 2>/dev/null || echo 0; }
# wait_count FIELD TRIES: until FIELD is at least 1, polling every 0.5 s.
wait_count() { for _ in $(seq "$2"); do [ "$(dhcp_count "$1")" -ge 1 ] && return 0; sleep 0.5; done; return 1; }
check "RFC 2131 4.4.5: the unicast renewal unanswered, natbox rebinds by broadcast at T2 (show dhcp: rebinds 1)" wait_count rebinds 50
dropped() { ip netns exec "$WAN" nft list table inet dhcp_unicast | grep -oE 'packets [0-9]+' | grep -o '[0-9]*'; }
unicast_dropped() { [ "$(dropped)" -ge 1 ]; }
check "the server dropped natbox's unicast REQUEST of T1 (nft counter)" unicast_dropped
echo "# unicast REQUESTs dropped: $(dropped)"
ip netns exec "$WAN" nft delete table inet dhcp_unicast
check "RFC 2131 4.4.5: with unicast answered again, the next T1 renews by unicast (show dhcp: renewals 1)" wait_count renewals 40
wait "$PING" || true
check "ping lan -> wan through the leased address (30 s): none lost across the rebinding and the renewal" \
    grep -q ' 0% packet loss' "$WORK/ping.log"
tail -n 2 "$WORK/ping.log" | sed 's/^/# /'
acks() { grep -c "DHCPACK(eth0) ${ADDR:-none}" "$WORK/dnsmasq.log"; }
extended() { [ "$(acks)" -ge 3 ]; }
check "dnsmasq acked ${ADDR:-none} three times or more (bound, rebound, renewed)" extended
echo "# dnsmasq DHCPACKs for ${ADDR:-none}: $(acks)"
counted() { shell 'show metrics' | grep -x 'natbox_dhcp4_rebinds_total{port="outside"} 1' >/dev/null; }
check "metrics: natbox_dhcp4_rebinds_total{port=\"outside\"} 1" counted
through() { shell 'show sessions proto icmp' | grep -q "${ADDR:-none}:"; }
check "the ping's session is translated to the leased address (show sessions)" through
shown() { shell 'show dhcp' | tee "$WORK/dhcp.out" | grep -E "^outside +(bound|renewing) +${ADDR:-none}/24 +198\.51\.100\.1 +198\.51\.100\.1 "; }
check "show dhcp: outside bound to the lease, server and router 198.51.100.1" shown
sed "s/^/# /" "$WORK/dhcp.out"; grep -E "DHCP(DISCOVER|OFFER|REQUEST|ACK|NAK)" "$WORK/dnsmasq.log" | sed "s/^/# dnsmasq: /"
gauged() { shell 'show metrics' | grep -x 'natbox_dhcp4_bound{port="outside"} 1' >/dev/null; }
check "metrics: natbox_dhcp4_bound{port=\"outside\"} 1" gauged
kept() { ! grep -q 'DHCP moved the address' "$WORK/natbox.log"; }
check "no address change was logged (the rebinding and the renewal kept the address)" kept

# --- A GCE-style lease: /32, option 121 with the gateway on-link, MTU 1460.
stop_natbox
kill "$DHCP_SERVER" 2>/dev/null; wait "$DHCP_SERVER" 2>/dev/null
dhcp_server eth0 "$WORK/dnsmasq-gce.log" --dhcp-option=option:netmask,255.255.255.255 \
    --dhcp-option=121,198.51.100.1/32,0.0.0.0,0.0.0.0/0,198.51.100.1 --dhcp-option=option:mtu,1460
start_natbox
gce_leased() { grep -o 'outside port: DHCP lease 198\.51\.100\.5[0-9]/32' "$WORK/natbox.log" | grep -o '198[0-9.]*/32' | head -n 1; }
gce_bound() { for _ in $(seq 100); do [ -n "$(gce_leased)" ] && return 0; sleep 0.1; done; return 1; }
check "RFC 3442: natbox takes a /32 lease whose gateway is on-link by option 121" gce_bound
echo "# leased $(gce_leased)"
in_lan timeout 20 ping -c 10 -i 0.2 -W 2 198.51.100.1 >"$WORK/ping-gce.log" 2>&1 || true
check "ping lan -> wan through the gateway outside the /32: none lost" grep -q ' 0% packet loss' "$WORK/ping-gce.log"
tail -n 2 "$WORK/ping-gce.log" | sed 's/^/# /'
on_link_route() { shell 'show routes' | grep -qE '^198\.51\.100\.1/32 +outside +connected'; }
check "show routes: 198.51.100.1/32 on the outside port is connected (on-link)" on_link_route
# Not grep -q: it would leave before socat has written the whole table (pipefail).
no_off_link() { shell 'show stats' | grep -E '^neighbour_off_link +0 ' >/dev/null; }
check "the gateway's ARP was learnt, not refused (neighbour_off_link 0)" no_off_link
mtu_shown() { shell 'show interfaces' | grep -qE '^outside .* 1460 +bound '; }
check "RFC 2132 5.1: the outside port's MTU is the lease's 1460 (show interfaces)" mtu_shown
link_mtu() { ip -n "$GW" -o link show wan0 | grep -q 'mtu 1460'; }
check "wan0's link MTU is 1460" link_mtu
in_lan ping -c 2 -M do -s 1433 -W 2 198.51.100.1 >"$WORK/ping-big.log" 2>&1 || true
frag_needed() { grep -qE 'mtu ?=? ?1460' "$WORK/ping-big.log"; }
check "a 1461-byte DF datagram from lan gets fragmentation needed, mtu 1460" frag_needed
sed 's/^/# /' "$WORK/ping-big.log" | head -n 4
shell 'show dhcp' 'show interfaces' | sed 's/^/# /'

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

#!/usr/bin/env bash
# IPv6 on cloud links (issue #17 part 2), against a real server: dnsmasq in ns wan
# sends Router Advertisements for 2001:db8:ff::/64 (router lifetime 1800 s) and
# answers Router Solicitations.
#  1. The default router from Router Advertisements (RFC 4861): outside has its static
#     2001:db8:ff::10/64 and no gateway6. Before any router is on the link natbox sends
#     three Router Solicitations and stops; once dnsmasq runs, natbox learns the router
#     (wan's link-local address), and ping -6 and curl -6 from lan reach wan through it.
#  2. ipv6 = "slaac" (RFC 4862): natbox forms 2001:db8:ff:0:<EUI-64 of wan0's MAC>
#     after a Duplicate Address Detection solicitation from ::, answers for it, routes
#     lan's traffic, and the egress-only filter still drops unsolicited inbound
#     traffic. Then the address is made to be in use on the link: natbox's DAD finds
#     it and does not use it.
#  3. ipv6 = "dhcp" (RFC 8415): dnsmasq leases an address from 2001:db8:ff::100-1ff
#     by DHCPv6 IA_NA (Solicit, Advertise, Request, Reply) with a short lease so
#     natbox renews inside the test; the address takes the /64 of the RA's on-link
#     prefix, and lan reaches wan through it.
source "$(dirname "$0")/lib.sh"
PY="python3 $E2E_ROOT/tests/e2e/helpers.py"
echo "# test_ipv6_cloud: IPv6 router from RAs, SLAAC and DHCPv6 on the outside port"
topology
command -v dnsmasq >/dev/null || { echo "FAIL - dnsmasq missing (tests/setup.sh installs it)"; FAILED=$((FAILED + 1)); finish; }
NATBOX_ARGS="--admin $SOCK"

# ipv6_server LOG DHCP_RANGE...: dnsmasq in ns wan, RAs every 10 s at most with router
# lifetime 1800 s, plus the given IPv6 ranges; sets IPV6_SERVER to its PID.
ipv6_server() {
    local log=$1
    shift
    local ranges=()
    for r in "$@"; do ranges+=("--dhcp-range=$r"); done
    # Not through in_wan: $! must be dnsmasq itself (ip netns exec execs it).
    ip netns exec "$WAN" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=eth0 \
        --bind-interfaces --enable-ra --ra-param=eth0,10,1800 "${ranges[@]}" \
        --dhcp-leasefile="$log.leases" --pid-file= --log-dhcp >"$log" 2>&1 &
    IPV6_SERVER=$!
}
stop_ipv6_server() { kill "$IPV6_SERVER" 2>/dev/null; wait "$IPV6_SERVER" 2>/dev/null || true; }

# Waits up to 10 s for natbox's log to match ERE $1.
logged() { for _ in $(seq 100); do grep -qE "$1" "$WORK/natbox.log" && return 0; sleep 0.1; done; return 1; }

WAN0_MAC=$(ip -n "$GW" -o link show wan0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
# The modified EUI-64 address of wan0 in PREFIX/64 (RFC 4291 appendix A), as `ip`
# prints it.
eui64() {
    python3 -c "
import ipaddress, sys
m = bytes.fromhex(sys.argv[1].replace(':', ''))
iid = bytes([m[0] ^ 2]) + m[1:3] + b'\xff\xfe' + m[3:]
print(ipaddress.IPv6Address(ipaddress.IPv6Address(sys.argv[2]).packed[:8] + iid))
" "$WAN0_MAC" "$1"
}
SLAAC_ADDR=$(eui64 2001:db8:ff::)
NATBOX_LL=$(eui64 fe80::)
echo "# natbox wan0 $WAN0_MAC ($NATBOX_LL), expected SLAAC address $SLAAC_ADDR"

mkdir -p "$WORK/www"
echo "natbox-e2e-$$-ipv6-cloud" >"$WORK/www/index.html"
in_wan timeout 200 python3 -m http.server 8080 --bind 2001:db8:ff::1 --directory "$WORK/www" >/dev/null 2>&1 &
curl6() {
    local got
    got=$(in_lan timeout 10 curl -6 -sS --max-time 5 "http://[2001:db8:ff::1]:8080/index.html")
    echo "got: $got"
    [ "$got" = "natbox-e2e-$$-ipv6-cloud" ]
}

# ---- 1. The default router from Router Advertisements. natbox starts with no
# router on the link: its solicitations go unanswered, and stop after three.
write_config '/^gateway6 = /d'
ip netns exec "$WAN" timeout 30 tcpdump -Z root --immediate-mode -n -U -i eth0 -w "$WORK/rs.pcap" 'icmp6 and ip6[40] == 133' >/dev/null 2>&1 &
RS_DUMP=$!
sleep 1
start_natbox
sleep 11
kill "$RS_DUMP" 2>/dev/null; wait "$RS_DUMP" 2>/dev/null || true
solicitations() {
    in_wan tcpdump -n -r "$WORK/rs.pcap" 2>/dev/null | tee "$WORK/rs.txt"
    [ "$(grep -cE "IP6 $NATBOX_LL > ff02::2: ICMP6, router solicitation" "$WORK/rs.txt")" -eq 3 ]
}
check "RFC 4861 6.3.7: natbox sent exactly 3 Router Solicitations to ff02::2 (MAX_RTR_SOLICITATIONS) from $NATBOX_LL" solicitations
ipv6_server "$WORK/ra.log" "2001:db8:ff::,ra-only,64,10m"
# wan's link-local address (the router's), once the link is up (natbox's side too).
wan_ll() { ip -n "$WAN" -6 -o addr show dev eth0 scope link | awk '{ print $4 }' | cut -d/ -f1; }
for _ in $(seq 50); do [ -n "$(wan_ll)" ] && break; sleep 0.1; done
WAN_LL=$(wan_ll)
echo "# wan router $WAN_LL"
check "RFC 4861 6.3.4: natbox learns the default router $WAN_LL from an RA within 10 s" \
    logged "outside port: default IPv6 router $WAN_LL \(Router Advertisement\)"
routed() { shell 'show routes' | tee "$WORK/routes.out" | grep -E "^::/0 +outside +$WAN_LL$"; }
check "show routes: ::/0 via $WAN_LL on outside" routed
shown() { shell 'show ipv6' | tee "$WORK/ipv6.out" | grep -E "^outside +$WAN_LL +(29|30)m"; }
check "show ipv6: outside's router $WAN_LL with about 30 minutes left" shown
sed 's/^/# /' "$WORK/ipv6.out"
as_written() { ! shell 'show config' | grep -q gateway6; }
check "show config keeps no gateway6, as written" as_written
check "ping -6 lan -> wan through the learned router" in_lan timeout 10 ping -6 -c 3 -i 0.2 -W 2 2001:db8:ff::1
check "curl -6 from lan through the learned router" curl6
# The metrics, whole (a grep that stops early would cut socat's output short).
metric() { shell 'show metrics' >"$WORK/metrics.out"; grep -qx "$1" "$WORK/metrics.out"; }
gauged() { metric 'natbox_ipv6_router_learned{port="outside"} 1'; }
check "metrics: natbox_ipv6_router_learned{port=\"outside\"} 1" gauged
stop_natbox
stop_ipv6_server

# ---- 2. SLAAC.
ipv6_server "$WORK/slaac.log" "2001:db8:ff::,ra-only,64,10m"
write_config '/^gateway6 = /d' 's|^ipv6 = "2001:db8:ff::10/64"|ipv6 = "slaac"|'
ip netns exec "$WAN" timeout 60 tcpdump -Z root --immediate-mode -n -U -i eth0 -w "$WORK/wan.pcap" icmp6 >/dev/null 2>&1 &
TCPDUMP=$!
sleep 1
start_natbox
check "RFC 4862 5.5.3: natbox forms $SLAAC_ADDR/64 from the RA's prefix within 10 s" \
    logged "outside port: IPv6 address $SLAAC_ADDR/64 \(SLAAC\)"
preferred() { shell 'show ipv6' | tee "$WORK/ipv6.out" | grep -E "^outside .* slaac +$SLAAC_ADDR/64 +preferred "; }
check "show ipv6: $SLAAC_ADDR/64 preferred" preferred
sed 's/^/# /' "$WORK/ipv6.out"
on_port() { shell 'show interfaces' | grep -q "$SLAAC_ADDR/64"; }
check "the SLAAC address is outside's (show interfaces)" on_port
check "wan pings natbox's SLAAC address (natbox answers ND and echo for it)" \
    in_wan timeout 10 ping -6 -c 2 -i 0.2 -W 2 "$SLAAC_ADDR"
# The wan side routes the lan prefix to natbox's new address, as the cloud would.
ip -n "$WAN" -6 route replace 2001:db8:10::/64 via "$SLAAC_ADDR"
check "ping -6 lan -> wan with a SLAAC outside address" in_lan timeout 10 ping -6 -c 3 -i 0.2 -W 2 2001:db8:ff::1
check "curl -6 from lan with a SLAAC outside address" curl6
in_lan timeout 8 $PY tcp-listen 2001:db8:10::2 7000 6 >"$WORK/tcp-listen.out" 2>&1 &
TCPL=$!
sleep 0.5
tcp_unsolicited() { ! in_wan timeout 5 $PY tcp-connect 2001:db8:10::2 7000 3; }
check "egress-only: unsolicited TCP from wan to [2001:db8:10::2]:7000 fails" tcp_unsolicited
ping_unsolicited() { ! in_wan timeout 5 ping -6 -c 3 -i 0.2 -W 1 2001:db8:10::2; }
check "egress-only: unsolicited ping -6 from wan to 2001:db8:10::2 fails" ping_unsolicited
wait "$TCPL" || true
check "lan's TCP listener accepted nothing from wan" grep -qx "accepted 0 connections" "$WORK/tcp-listen.out"
kill "$TCPDUMP" 2>/dev/null; wait "$TCPDUMP" 2>/dev/null || true
dad_seen() {
    in_wan tcpdump -n -r "$WORK/wan.pcap" 2>/dev/null | tee "$WORK/wan.txt" |
        grep -E "IP6 :: > ff02::1:ff[0-9a-f:]*: ICMP6, neighbor solicitation, who has $SLAAC_ADDR"
}
check "RFC 4862 5.4.2: natbox's DAD solicitation for $SLAAC_ADDR came from ::" dad_seen
stop_natbox
unsolicited_counted() { [ "$(counter drops unsolicited_ipv6)" -ge 4 ]; }
check_natbox "counters: unsolicited_ipv6 drops >= 4 (SYN retries + pings)" unsolicited_counted

# The address natbox would form is in use on wan: DAD finds it.
ip -n "$WAN" -6 addr add "$SLAAC_ADDR/64" dev eth0 nodad
start_natbox
check "RFC 4862 5.4.5: natbox finds $SLAAC_ADDR in use on the link and does not use it" \
    logged "$SLAAC_ADDR, formed from a Router Advertisement's prefix, is in use on the link"
duplicate() { shell 'show ipv6' | tee "$WORK/ipv6.out" | grep -E "^outside .* $SLAAC_ADDR/64 +duplicate "; }
check "show ipv6: $SLAAC_ADDR/64 duplicate" duplicate
not_used() { ! shell 'show interfaces' | grep -q "$SLAAC_ADDR"; }
check "the duplicate is not outside's address (show interfaces)" not_used
stop_natbox
ip -n "$WAN" -6 addr del "$SLAAC_ADDR/64" dev eth0
stop_ipv6_server

# ---- 3. DHCPv6: dnsmasq's shortest lease (2 minutes: T1 at 60 s, T2 at 105 s); its
# RAs carry the M flag and 2001:db8:ff::/64 as on-link only (no A flag).
ipv6_server "$WORK/dhcp6.log" "2001:db8:ff::100,2001:db8:ff::1ff,64,2m"
write_config '/^gateway6 = /d' 's|^ipv6 = "2001:db8:ff::10/64"|ipv6 = "dhcp"|'
start_natbox
check "RFC 8415 18.2: natbox leases an address from 2001:db8:ff::100-1ff within 15 s" \
    logged "outside port: DHCPv6 lease 2001:db8:ff::1[0-9a-f]{2} from server"
LEASED=$(grep -oE 'outside port: DHCPv6 lease 2001:db8:ff::1[0-9a-f]{2}' "$WORK/natbox.log" | grep -oE '2001:[0-9a-f:]+' | head -n 1)
echo "# leased ${LEASED:-nothing}"
exchange() {
    grep -oE "DHCP(SOLICIT|ADVERTISE|REQUEST|REPLY)\(eth0\)" "$WORK/dhcp6.log" | tr '\n' ' ' >"$WORK/exchange"
    grep -q "^DHCPSOLICIT(eth0) DHCPADVERTISE(eth0) DHCPREQUEST(eth0) DHCPREPLY(eth0)" "$WORK/exchange"
}
check "dnsmasq saw Solicit, Advertise, Request, Reply, in that order" exchange
with_prefix() { logged "outside port: IPv6 address ${LEASED:-none}/64 \(DHCPv6\)"; }
check "the leased address takes the /64 of the RA's on-link prefix" with_prefix
bound6() { shell 'show ipv6' | tee "$WORK/ipv6.out" | grep -E "^outside .* dhcp +${LEASED:-none}/64 +bound "; }
check "show ipv6: outside bound to ${LEASED:-none}/64 by DHCPv6" bound6
sed 's/^/# /' "$WORK/ipv6.out"
check "wan pings the leased address" in_wan timeout 10 ping -6 -c 2 -i 0.2 -W 2 "${LEASED:-none}"
ip -n "$WAN" -6 route replace 2001:db8:10::/64 via "${LEASED:-none}"
check "curl -6 from lan with a DHCPv6 outside address" curl6
# A flow across the renewal at T1 (60 s after the Request): 75 s of pings.
in_lan timeout 90 ping -6 -c 150 -i 0.5 -W 2 2001:db8:ff::1 >"$WORK/ping6.log" 2>&1
check "ping -6 lan -> wan: none lost across the DHCPv6 renewal" grep -q ' 0% packet loss' "$WORK/ping6.log"
tail -n 2 "$WORK/ping6.log" | sed 's/^/# /'
renewed() { grep -q "DHCPRENEW(eth0)" "$WORK/dhcp6.log"; }
check "RFC 8415 18.2.4: natbox renewed at T1 (dnsmasq logged DHCPRENEW)" renewed
kept() { ! grep -qE 'DHCPv6 (moved|lease of .* lost)' "$WORK/natbox.log"; }
check "the renewal kept the address (no change logged)" kept
gauged6() { metric 'natbox_dhcp6_bound{port="outside"} 1'; }
check "metrics: natbox_dhcp6_bound{port=\"outside\"} 1" gauged6
check "egress-only with a DHCPv6 address: unsolicited ping -6 from wan to lan fails" ping_unsolicited
grep -E "DHCP[A-Z]+\(eth0\)" "$WORK/dhcp6.log" | sed 's/^/# dnsmasq: /' | head -n 12
stop_natbox
stop_ipv6_server
finish

#!/usr/bin/env bash
# IPv6 through natbox: routed untouched (no NAT66), and the RFC 6092 egress-only
# filter: replies to lan-initiated flows pass, unsolicited TCP/UDP/ICMPv6 from wan
# never reach lan.
source "$(dirname "$0")/lib.sh"
PY="python3 $E2E_ROOT/tests/e2e/helpers.py"
echo "# test_ipv6: IPv6 routing and egress-only filter"
topology
start_natbox

mkdir -p "$WORK/www"
echo "natbox-e2e-$$-ipv6" >"$WORK/www/index.html"
in_wan timeout 120 python3 -m http.server 8080 --bind 2001:db8:ff::1 --directory "$WORK/www" >/dev/null 2>&1 &
ip netns exec "$WAN" timeout 60 tcpdump -Z root --immediate-mode -n -U -i eth0 -w "$WORK/wan.pcap" ip6 >/dev/null 2>&1 &
TCPDUMP=$!
sleep 1.5

check "ping -6 lan -> wan 2001:db8:ff::1" in_lan timeout 10 ping -6 -c 3 -i 0.2 -W 2 2001:db8:ff::1

curl6() {
    local got
    got=$(in_lan timeout 10 curl -6 -sS --max-time 5 "http://[2001:db8:ff::1]:8080/index.html")
    echo "got: $got"
    [ "$got" = "natbox-e2e-$$-ipv6" ]
}
check "curl -6 http://[2001:db8:ff::1]:8080/ from lan returns the file" curl6

udp6_reply() {
    # A lan-initiated UDP flow: the reply (ICMPv6 port unreachable here) is related
    # traffic and must come back.
    in_lan timeout 10 $PY udp-refused 2001:db8:ff::1 9
}
check "UDP -6 to a closed wan port: ICMPv6 port unreachable reaches lan (ECONNREFUSED)" udp6_reply

trace6() {
    in_lan timeout 20 traceroute -6 -n -q 1 -w 1 -m 3 2001:db8:ff::1 >"$WORK/trace6.out"; cat "$WORK/trace6.out"
    awk '$1 == "1" { print $2 }' "$WORK/trace6.out" | grep -qx 2001:db8:10::1
}
check "traceroute -6 -n: hop 1 is 2001:db8:10::1" trace6
hoplimit1() {
    in_lan timeout 10 ping -6 -c 1 -t 1 -W 2 2001:db8:ff::1 >"$WORK/hl.out" || true; cat "$WORK/hl.out"
    grep -E 'From 2001:db8:10::1 .*Time exceeded: Hop limit' "$WORK/hl.out"
}
check "ping -6 -t 1: 'Time exceeded: Hop limit' from 2001:db8:10::1" hoplimit1
check "ping -6 -s 3000 (fragmented by lan) works" in_lan timeout 10 ping -6 -c 2 -i 0.2 -s 3000 -W 2 2001:db8:ff::1

sleep 0.5
kill "$TCPDUMP" 2>/dev/null; wait "$TCPDUMP" 2>/dev/null || true
wan_sources6() {
    in_wan tcpdump -n -r "$WORK/wan.pcap" 2>/dev/null >"$WORK/wan.txt"
    local from_lan
    # Sources of every packet to the wan host's address, bar natbox's own NDP.
    from_lan=$(grep -v 'ICMP6, neighbor' "$WORK/wan.txt" | awk '$2 == "IP6" && $5 ~ /^2001:db8:ff::1[.:]/ { print $3 }' | sed 's/\.[0-9]*$//' | sort | uniq -c)
    echo "sources of packets to 2001:db8:ff::1:"; echo "$from_lan"
    [ -n "$from_lan" ] || { echo "no packets from lan captured"; return 1; }
    [ "$(echo "$from_lan" | awk '{print $2}' | sort -u)" = "2001:db8:10::2" ]
}
check "tcpdump in wan: lan traffic arrives with source 2001:db8:10::2 (untouched)" wan_sources6

# Unsolicited from wan: listeners in lan must see nothing.
in_lan timeout 12 $PY tcp-listen 2001:db8:10::2 7000 10 >"$WORK/tcp-listen.out" 2>&1 &
TCPL=$!
in_lan timeout 12 $PY udp-listen 2001:db8:10::2 7001 10 >"$WORK/udp-listen.out" 2>&1 &
UDPL=$!
sleep 0.5
check "lan's TCP listener on [2001:db8:10::2]:7000 is reachable from lan itself" \
    in_lan timeout 3 $PY tcp-connect 2001:db8:10::2 7000 2
tcp_unsolicited() { ! in_wan timeout 5 $PY tcp-connect 2001:db8:10::2 7000 3; }
check "unsolicited TCP connect from wan to [2001:db8:10::2]:7000 fails" tcp_unsolicited
in_wan timeout 5 $PY udp-send 2001:db8:10::2 7001 10
ping_unsolicited() { ! in_wan timeout 5 ping -6 -c 3 -i 0.2 -W 1 2001:db8:10::2; }
check "unsolicited ping -6 from wan to 2001:db8:10::2 fails" ping_unsolicited
wait "$TCPL" "$UDPL" || true
check "lan's TCP listener accepted only lan's own connection (none from wan)" \
    grep -qx "accepted 1 connections" "$WORK/tcp-listen.out"
check "lan's UDP listener received nothing" grep -qx "got 0 datagrams" "$WORK/udp-listen.out"

# After all that, lan-initiated flows still work.
check "ping -6 lan -> wan still works" in_lan timeout 10 ping -6 -c 2 -i 0.2 -W 2 2001:db8:ff::1

stop_natbox
unsolicited_counted() {
    grep "counters drops:" "$WORK/natbox.log"
    [ "$(counter drops unsolicited_ipv6)" -ge 12 ]
}
check_natbox "counters: unsolicited_ipv6 drops >= 12 (TCP SYN + 10 UDP + ping)" unsolicited_counted
finish

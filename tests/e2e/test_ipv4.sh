#!/usr/bin/env bash
# IPv4 basics through natbox with real clients: ping, HTTP (curl), source NAT seen on
# the wire, ICMP port unreachable translated back (RFC 5508), traceroute and TTL
# exceeded from the box's inside address.
source "$(dirname "$0")/lib.sh"
PY="python3 $E2E_ROOT/tests/e2e/helpers.py"
echo "# test_ipv4: IPv4 basics"
topology
start_natbox

mkdir -p "$WORK/www"
echo "natbox-e2e-$$-ipv4" >"$WORK/www/index.html"
in_wan timeout 120 python3 -m http.server 8080 --bind 198.51.100.1 --directory "$WORK/www" >/dev/null 2>&1 &
ip netns exec "$WAN" timeout 60 tcpdump -Z root --immediate-mode -n -U -i eth0 -w "$WORK/wan.pcap" ip >/dev/null 2>&1 &
TCPDUMP=$!
sleep 1.5

check "ping lan -> wan 198.51.100.1" in_lan timeout 10 ping -c 3 -i 0.2 -W 2 198.51.100.1

curl_content() {
    local got
    got=$(in_lan timeout 10 curl -sS --max-time 5 http://198.51.100.1:8080/index.html)
    echo "got: $got"
    [ "$got" = "natbox-e2e-$$-ipv4" ]
}
check "curl http://198.51.100.1:8080/ from lan returns the file" curl_content

udp_refused() { in_lan timeout 10 $PY udp-refused 198.51.100.1 9; }
check "UDP to a closed wan port: connected socket in lan gets ECONNREFUSED" udp_refused

# Hop 1 must be the box's inside address; the last hop (WAN_HOP) the wan host; in
# one-armed, hop 2 the router (its time exceeded, addressed to the box's pool address,
# translated back to the lan host).
trace_hop1() {
    in_lan timeout 20 traceroute -n -q 1 -w 1 -m "$WAN_HOP" 198.51.100.1 | tee "$WORK/trace.out"
    awk '$1 == "1" { print $2 }' "$WORK/trace.out" | grep -qx 10.10.0.1
    [ -z "$ROUTER4" ] || awk '$1 == "2" { print $2 }' "$WORK/trace.out" | grep -qx "$ROUTER4"
    awk -v hop="$WAN_HOP" '$1 == hop { print $2 }' "$WORK/trace.out" | grep -qx 198.51.100.1
}
check "traceroute -n: hop 1 is 10.10.0.1,${ROUTER4:+ hop 2 is $ROUTER4 (the router),} hop $WAN_HOP is 198.51.100.1" trace_hop1

tracepath_hop1() {
    in_lan timeout 20 tracepath -n -m 3 198.51.100.1 | tee "$WORK/tracepath.out"
    grep -E '^ *1: +10\.10\.0\.1 ' "$WORK/tracepath.out"
}
check "tracepath -n: hop 1 is 10.10.0.1" tracepath_hop1

ttl1() {
    in_lan timeout 10 ping -c 1 -t 1 -W 2 198.51.100.1 | tee "$WORK/ttl.out" || true
    grep -E 'From 10\.10\.0\.1 .*Time to live exceeded' "$WORK/ttl.out"
}
check "ping -t 1: 'Time to live exceeded' from 10.10.0.1" ttl1

check "ping -s 3000 (fragmented by lan, RFC 4787 REQ-14) works" in_lan timeout 10 ping -c 2 -i 0.2 -s 3000 -W 2 198.51.100.1

sleep 0.5
kill "$TCPDUMP" 2>/dev/null; wait "$TCPDUMP" 2>/dev/null || true
wan_sources() {
    in_wan tcpdump -n -r "$WORK/wan.pcap" 2>/dev/null >"$WORK/wan.txt"
    local total src
    total=$(wc -l <"$WORK/wan.txt")
    # Source address of every IPv4 packet arriving from natbox (not the wan host's own).
    src=$(awk '$2 == "IP" { split($3, a, "."); print a[1]"."a[2]"."a[3]"."a[4] }' "$WORK/wan.txt" \
        | grep -v '^198\.51\.100\.1$' | sort | uniq -c)
    echo "packets captured: $total; sources other than 198.51.100.1:"; echo "$src"
    [ "$total" -gt 10 ] || { echo "too few packets captured"; return 1; }
    grep -q '10\.10\.' "$WORK/wan.txt" && { echo "inside address leaked:"; grep '10\.10\.' "$WORK/wan.txt" | head; return 1; }
    [ "$(echo "$src" | awk '{print $2}' | sort -u)" = "198.51.100.10" ]
}
check "tcpdump in wan: every source is 198.51.100.10, no 10.10.x anywhere" wan_sources

stop_natbox
nat_counters() {
    grep "counters nat:" "$WORK/natbox.log"
    [ "$(counter nat icmp_errors)" -ge 1 ]
}
check_natbox "counters: at least one ICMP error translated (port unreachable)" nat_counters
finish

#!/usr/bin/env bash
# MTU: with outside.mtu = 1400, oversized DF packets from lan get ICMP "fragmentation
# needed" (mtu 1400) / ICMPv6 "packet too big" (mtu 1400) from natbox, and path MTU
# discovery makes a bulk TCP upload work. MSS clamping: with nat.mss_clamp = 1300, the
# SYN wan sees carries MSS 1300 (lan's own SYN says 1460).
#
# One-armed, the segment has one MTU (1500) and the bottleneck is the router's wan
# link (1400): the router sends the errors (FAR_ERR4/FAR_ERR6), the IPv4 ones to the
# box's pool address, and natbox must translate them back to the lan host (RFC 5508).
source "$(dirname "$0")/lib.sh"
echo "# test_mtu: outside MTU 1400, PMTUD, MSS clamping"
topology
# wan_link_mtu N: the wan link's MTU on both ends (two-port: natbox sets wan0 itself
# from the config; one-armed: the router's wan0).
wan_link_mtu() {
    ip -n "$WAN" link set eth0 mtu "$1"
    [ -z "$RTR" ] || ip -n "$RTR" link set wan0 mtu "$1"
}
wan_link_mtu 1400
ip -n "$WAN" addr add 198.51.100.3/24 dev eth0
# The wan host advertises MSS 1460 towards the public address, as a host behind a
# 1500-byte link further upstream would, so lan's full-size segments need PMTUD.
ip -n "$WAN" route add 198.51.100.10/32 dev eth0 advmss 1460
if [ "$E2E_TOPOLOGY" = two-port ]; then
    write_config 's/^port = "wan0"/&\nmtu = 1400/' 's/^mss_clamp = .*/mss_clamp = 0/'
    grep -q '^mtu = 1400' "$WORK/natbox.toml"
else
    write_config 's/^mss_clamp = .*/mss_clamp = 0/'
fi
start_natbox
[ "$E2E_BOX" = kernel ] || grep "outside port" "$WORK/natbox.log" | sed 's/^.*outside/# outside/'

# Bulk TCP upload with no clamping, first, to an address of its own (198.51.100.3) so
# lan has learnt no path MTU yet: lan's 1500-byte segments must trigger PMTUD.
upload() {
    local n
        ip netns exec "$WAN" timeout 20 socat -u TCP-LISTEN:5300,bind=198.51.100.3,reuseaddr OPEN:"$WORK/recv",creat,trunc &
    sleep 0.5
    head -c 4000000 /dev/urandom >"$WORK/up"
    in_lan timeout 20 socat -u OPEN:"$WORK/up" TCP:198.51.100.3:5300 || return 1
    wait $! || true
    n=$(stat -c %s "$WORK/recv"); echo "received $n bytes"
    cmp "$WORK/up" "$WORK/recv"
}
ip netns exec "$LAN" timeout 30 tcpdump -Z root -n -U -i eth0 -w "$WORK/icmp.pcap" icmp >"$WORK/td0.log" 2>&1 &
TD0=$!
sleep 1
check "TCP upload of 4 MB lan -> wan (mss_clamp = 0, PMTUD): arrives intact" upload
sleep 0.5
kill "$TD0" 2>/dev/null; wait "$TD0" 2>/dev/null || true
# With TSO on the lan host (E2E_OFFLOADS=on) the upload's first data leaves lan as GSO
# super-frames of 1448-byte segments (1500 > 1400): the error quotes one, longer than
# any wire frame. One-armed, the router's error quotes what the box forwarded: a
# super-frame only if the box's port takes them (E2E_GW_OFFLOADS=on; else the box must
# segment them first).
super_quoted=$E2E_OFFLOADS
[ "$E2E_TOPOLOGY" = two-port ] || [ "$E2E_GW_OFFLOADS" = on ] || super_quoted=off
frag_needed_tcp() {
    tcpdump -v -n -r "$WORK/icmp.pcap" 2>/dev/null >"$WORK/icmp.txt"
    grep -A2 'need to frag (mtu 1400)' "$WORK/icmp.txt" | head -n 6
    grep -q 'need to frag (mtu 1400)' "$WORK/icmp.txt" || return 1
    if [ "$super_quoted" = on ]; then
        grep -A1 'need to frag (mtu 1400)' "$WORK/icmp.txt" | grep -oE 'proto TCP \(6\), length [0-9]+' |
            awk '{ if ($NF > 1500) found = 1 } END { exit !found }'
    fi
}
check "the upload got 'need to frag (mtu 1400)' (quoting a GSO super-frame: $super_quoted)" frag_needed_tcp
check "ping -M do -s 1372 (1400 bytes) lan -> wan fits" in_lan timeout 10 ping -M do -s 1372 -c 2 -i 0.2 -W 2 198.51.100.1
frag_needed() {
    in_lan timeout 10 ping -M do -s 1450 -c 3 -i 0.3 -W 1 198.51.100.1 | tee "$WORK/ping4.out" || true
    grep -E "From ${FAR_ERR4//./\\.} .*Frag needed.*mtu = 1400|message too long, mtu=1400" "$WORK/ping4.out"
}
check "ping -M do -s 1450: 'Frag needed ... mtu = 1400' from $FAR_ERR4 / 'message too long, mtu=1400'" frag_needed
route_mtu() { in_lan ip route get 198.51.100.1 >"$WORK/route.out"; cat "$WORK/route.out"; grep -q 'mtu 1400' "$WORK/route.out"; }
check "lan kernel learnt path MTU 1400 to 198.51.100.1" route_mtu

check "ping -6 -s 1352 (1400 bytes) lan -> wan fits" in_lan timeout 10 ping -6 -M do -s 1352 -c 2 -i 0.2 -W 2 2001:db8:ff::1
packet_too_big() {
    in_lan timeout 10 ping -6 -s 1450 -c 3 -i 0.3 -W 1 2001:db8:ff::1 | tee "$WORK/ping6.out" || true
    grep -E "From $FAR_ERR6 .*Packet too big: mtu=1400|message too long, mtu=1400" "$WORK/ping6.out"
}
check "ping -6 -s 1450: 'Packet too big: mtu=1400' from $FAR_ERR6" packet_too_big
check "ping -6 -s 1450 works after PMTUD (lan fragments to 1400)" in_lan timeout 10 ping -6 -s 1450 -c 2 -i 0.2 -W 2 2001:db8:ff::1

stop_natbox
log_counters "nat|drops"
if [ "$E2E_TOPOLOGY" = two-port ]; then
    too_big() { [ "$(counter drops too_big)" -ge 3 ]; }
    check_natbox "counters: too_big >= 3 (upload, ping, ping -6)" too_big
else
    # The router's "fragmentation needed" for the upload and the ping, translated back.
    translated() { [ "$(counter nat icmp_errors)" -ge 2 ]; }
    check_natbox "counters: icmp_errors >= 2 (the router's errors for the upload and the ping)" translated
fi

# MSS clamping: a fresh natbox with mss_clamp = 1300 and the default MTUs, to a wan
# address lan has no path MTU for (198.51.100.4).
wan_link_mtu 1500
ip -n "$WAN" addr add 198.51.100.4/24 dev eth0
write_config 's/^mss_clamp = .*/mss_clamp = 1300/'
start_natbox
ip netns exec "$WAN" timeout 20 tcpdump -Z root --immediate-mode -n -U -i eth0 -w "$WORK/syn.pcap" "tcp[tcpflags] & tcp-syn != 0" >"$WORK/td1.log" 2>&1 &
TD1=$!
ip netns exec "$LAN" timeout 20 tcpdump -Z root --immediate-mode -n -U -i eth0 -w "$WORK/syn-lan.pcap" "tcp[tcpflags] & tcp-syn != 0" >"$WORK/td2.log" 2>&1 &
TD2=$!
ip netns exec "$WAN" timeout 20 socat -u TCP-LISTEN:5301,bind=198.51.100.4,reuseaddr OPEN:/dev/null &
sleep 1.5
check "TCP connection lan -> wan with mss_clamp = 1300" in_lan timeout 10 bash -c 'echo hello | socat -u - TCP:198.51.100.4:5301'
sleep 0.5
kill "$TD1" "$TD2" 2>/dev/null; wait "$TD1" "$TD2" 2>/dev/null || true
syn_mss() {
    in_lan tcpdump -n -r "$WORK/syn-lan.pcap" >"$WORK/syn-lan.txt" 2>/dev/null
    in_wan tcpdump -n -r "$WORK/syn.pcap" >"$WORK/syn.txt" 2>/dev/null
    echo "lan:"; cat "$WORK/syn-lan.txt"; echo "wan:"; cat "$WORK/syn.txt"
    grep -E '10\.10\.0\.2\.[0-9]+ > 198\.51\.100\.4\.5301: Flags \[S\].*mss 1460' "$WORK/syn-lan.txt" &&
    grep -E '198\.51\.100\.10\.[0-9]+ > 198\.51\.100\.4\.5301: Flags \[S\].*mss 1300[,>]' "$WORK/syn.txt"
}
check_natbox "lan's SYN says mss 1460; the SYN seen in wan says mss 1300" syn_mss
synack_mss() {
    grep -E '198\.51\.100\.4\.5301 > 10\.10\.0\.2\.[0-9]+: Flags \[S\.\].*mss 1300[,>]' "$WORK/syn-lan.txt"
}
check_natbox "the SYN-ACK lan gets says mss 1300 (clamped both ways)" synack_mss
stop_natbox
clamped() { [ "$(counter nat mss_clamped)" -ge 1 ]; }
check_natbox "counters: mss_clamped >= 1" clamped
finish

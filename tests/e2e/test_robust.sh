#!/usr/bin/env bash
# Robustness: malformed frames injected from lan (AF_PACKET) are dropped and counted
# while natbox keeps forwarding; a jumbo frame larger than the configured MTU is
# dropped; the wan interface disappearing and coming back is logged and forwarding
# resumes. Throughout, the kernel's own stack drops its copy of both ports' frames at
# ingress (nftables table netdev natbox, owned by natbox: gone when natbox stops).
source "$(dirname "$0")/lib.sh"
PY="python3 $E2E_ROOT/tests/e2e/helpers.py"
echo "# test_robust: malformed frames, interface loss"
topology
start_natbox
LAN0_MAC=$(ip -n "$GW" -o link show lan0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
# claimed PORT DEVICE: natbox's ingress chain for PORT hooks DEVICE with policy drop.
claimed() {
    in_gw nft list chain netdev natbox "$1" | tr -s ' \t\n' ' ' |
        grep -q "type filter hook ingress device \"$2\" priority .*; policy drop;"
}
check "the kernel drops its copy of inside frames (nft chain netdev natbox inside, lan0)" claimed inside lan0
check "the kernel drops its copy of outside frames (nft chain netdev natbox outside, wan0)" claimed outside wan0
echo "# natbox inside MAC $LAN0_MAC"

check "ping lan -> wan before the injection" in_lan timeout 10 ping -c 2 -i 0.2 -W 2 198.51.100.1
# Jumbo frames reach natbox only if both veth ends accept them; natbox's own config
# MTU stays 1500, so its receive buffers are too small and the frame must be dropped.
ip -n "$LAN" link set eth0 mtu 9000
ip -n "$GW" link set lan0 mtu 9000
in_lan timeout 20 $PY inject eth0 "$LAN0_MAC" >"$WORK/inject.out" 2>&1 || true
sed 's/^/# /' "$WORK/inject.out"
check "jumbo frame (9014 bytes) was sent" grep -q "sent jumbo frame" "$WORK/inject.out"
ip -n "$LAN" link set eth0 mtu 1500
ip -n "$GW" link set lan0 mtu 1500
sleep 0.5
check "natbox is still running after the malformed frames" kill -0 "$NATBOX_PID"
check "ping lan -> wan still works" in_lan timeout 10 ping -c 2 -i 0.2 -W 2 198.51.100.1
check "ping -6 lan -> wan still works" in_lan timeout 10 ping -6 -c 2 -i 0.2 -W 2 2001:db8:ff::1

# The wan veth disappears...
WAN0_MAC=$(ip -n "$GW" -o link show wan0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
WANETH_MAC=$(ip -n "$WAN" -o link show eth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
ip -n "$GW" link del wan0
gone_logged() {
    for _ in $(seq 30); do grep -q "outside port wan0: interface gone" "$WORK/natbox.log" && return 0; sleep 0.1; done
    tail -n 5 "$WORK/natbox.log"; return 1
}
check "natbox logs 'outside port wan0: interface gone'" gone_logged
check "natbox is still running with wan0 gone" kill -0 "$NATBOX_PID"
check "ping lan -> 10.10.0.1 (natbox itself) works with wan0 gone" in_lan timeout 10 ping -c 2 -i 0.2 -W 2 10.10.0.1
# ...and comes back: a new veth pair with the same names and addresses; natbox's own
# wan0 keeps its MAC (natbox warns and needs a restart otherwise); the wan host's eth0
# gets the given MAC (its old one, or a new one: a replaced upstream router).
recreate_wan() {
    ip link add eth0 netns "$WAN" address "$1" type veth peer name wan0 netns "$GW" address "$WAN0_MAC"
    in_wan sysctl -qw net.ipv6.conf.eth0.accept_dad=0
    ip -n "$WAN" addr add 198.51.100.1/24 dev eth0
    ip -n "$WAN" addr add 2001:db8:ff::1/64 dev eth0 nodad
    ip -n "$WAN" link set eth0 up
    ip -n "$WAN" -6 route add 2001:db8:10::/64 via 2001:db8:ff::10
    in_wan ethtool -K eth0 tso off gso off >/dev/null 2>&1 || true
}
recreate_wan "$WANETH_MAC"
back_logged() {
    for _ in $(seq 50); do
        [ "$(grep -c "outside port wan0: link up, forwarding" "$WORK/natbox.log")" -ge "$1" ] && return 0
        sleep 0.1
    done
    tail -n 5 "$WORK/natbox.log"; return 1
}
check "natbox logs 'outside port wan0: link up, forwarding' within 5 s" back_logged 1
ping_back() {
    local start=$SECONDS
    for _ in $(seq 10); do
        if in_lan timeout 3 ping -c 1 -W 1 198.51.100.1 >/dev/null 2>&1; then
            echo "ping works again after $((SECONDS - start)) s"; return 0
        fi
        sleep 0.5
    done
    return 1
}
check "ping lan -> wan works again within a few seconds" ping_back
check "ping -6 lan -> wan works again" in_lan timeout 10 ping -6 -c 2 -i 0.2 -W 2 2001:db8:ff::1

# Once more, the wan host coming back with a new MAC: natbox must resolve it afresh
# rather than keep sending to the old MAC until its neighbour entry goes stale (300 s).
ip -n "$GW" link del wan0
gone_again() {
    for _ in $(seq 30); do [ "$(grep -c "outside port wan0: interface gone" "$WORK/natbox.log")" -ge 2 ] && return 0; sleep 0.1; done
    return 1
}
check "natbox logs the second disappearance" gone_again
recreate_wan 02:00:5e:00:53:01
check "natbox logs wan0 back a second time" back_logged 2
check "ping lan -> wan works within a few seconds with the wan host's new MAC" ping_back
check "ping -6 lan -> wan works with the wan host's new MAC" in_lan timeout 10 ping -6 -c 2 -i 0.2 -W 2 2001:db8:ff::1
check "the returned wan0 is claimed again (nft chain netdev natbox outside)" claimed outside wan0

stop_natbox
table_gone() { ! in_gw nft list table netdev natbox; }
check "natbox's nft table is gone once natbox stopped (NFT_TABLE_F_OWNER)" table_gone
grep -E "counters (inside|drops):" "$WORK/natbox.log" | sed 's/^.*counters/# counters/'
for reason in ipv4_malformed ipv4_bad_checksum vlan_tagged not_for_us unknown_ethertype frame_too_long l4_truncated ipv6_malformed; do
    counted() { [ "$(counter drops "$1")" -ge 1 ]; }
    check "counters: $reason >= 1" counted "$reason"
done
many() {
    local d; d=$(counter inside drops); echo "inside drops=$d"; [ "$d" -ge 30 ]
}
check "counters: inside drops >= 30 (most of the ~52 injected frames)" many
finish

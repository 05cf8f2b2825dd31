# The one-armed end-to-end topology (E2E_TOPOLOGY=one-armed): sourced by lib.sh, not run.
#
# natbox has ONE port (`[outside]` only, no `[inside]`): it carries both the inside
# hosts' traffic and the traffic to and from the default gateway, as a NAT instance in
# a cloud VPC does. The segment's gateway is a "VPC router" that maps the box's private
# address 1:1 to a public one (an Elastic IP), so the box's pool address is its own
# private address and the wan host sees the router's public address:
#
#              ns lan                         ns gw (the box)
#          eth0 10.10.0.2/24              seg0: natbox (no kernel address), or
#          2001:db8:10::2/64                    E2E_BOX=kernel: 10.10.0.1/24,
#          default via 10.10.0.1                2001:db8:10::1/64
#          -6 default via 2001:db8:10::1  pool 10.10.0.1; gateway4 10.10.0.254,
#               |                              gateway6 fe80::1
#               | veth                             | veth
#      +--------+-------- ns rtr ("VPC router") ---+-----------------------------+
#      |       lan0 -------- br0 (the segment) -- box0                          |
#      |                     10.10.0.254/24, fe80::1 (link-local only: no       |
#      |                     address in 2001:db8:10::/64, so it never delivers  |
#      |                     to an inside host on-link, bypassing the box)      |
#      |   2001:db8:10::/64 via 2001:db8:10::1 (the box)                        |
#      |   from wan0 to 10.10.0.0/25: via 10.10.0.1 (the box), table 100        |
#      |   nftables: daddr 198.51.100.10 -> dnat 10.10.0.1;                     |
#      |             saddr 10.10.0.1 (not to the segment) -> snat 198.51.100.10 |
#      |             (so traffic to the Elastic IP from the segment hairpins    |
#      |             with the public address as its source, as in a VPC)        |
#      |       wan0 198.51.100.254/24, 198.51.100.10/32 (the 1:1 public         |
#      |            address), 2001:db8:ff::fe/64                                |
#      +--------+---------------------------------------------------------------+
#               | veth
#          ns wan: eth0 198.51.100.1/24 2001:db8:ff::1/64
#          -6 route 2001:db8:10::/64 via 2001:db8:ff::fe
#
# The inside prefix is 10.10.0.0/25 (nat.inside_prefixes), not the whole segment: the
# router's 10.10.0.254 is not an inside source (its ICMP errors about translated
# packets are addressed to the box and must be translated back, not again).
#
# Addresses the suites name keep their meaning: the lan host, the box's address on the
# hosts' side (10.10.0.1, 2001:db8:10::1: traceroute hop 1), the wan host, and the
# public address the wan host sees (198.51.100.10, here the router's 1:1 address). What
# differs is in lib.sh's topology variables (POOL4, WAN_HOP, ...).
#
# Traffic from the wan side straight to an inside address (test_unsolicited4 routes
# 10.10.0.0/24 to 198.51.100.10) goes to the box, not on-link to the host, as a VPC
# route table would send it to the NAT instance: so it is the box that must refuse it.
#
# The router does what a cloud router does and no more: it never sends ICMP redirects
# (send_redirects=0), TCP window tracking is liberal (a router does not drop a segment
# for its window), and frames between the segment's hosts are only switched (no
# br_netfilter). A tcpdump on every port of the segment records any ICMP
# redirect (type 5) or ICMPv6 redirect (type 137) for the whole suite: finish() fails
# the suite if one was seen (a one-armed router must never tell inside hosts to go
# around it).

in_rtr() { ip netns exec "$RTR" "$@"; }

# The nftables 1:1 NAT of the VPC router: the Elastic IP to and from the box's private
# address, both directions, with conntrack (so ICMP errors are translated too).
rtr_nat_rules() {
    cat <<'NFT'
table ip vpc {
    chain pre {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr 198.51.100.10 dnat to 10.10.0.1
    }
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr 10.10.0.1 ct original ip daddr != 10.10.0.0/24 snat to 198.51.100.10
    }
}
NFT
}

topology_onearm() {
    local ns
    for ns in "$LAN" "$GW" "$RTR" "$WAN"; do ip netns add "$ns"; done
    ip link add eth0 netns "$LAN" type veth peer name lan0 netns "$RTR"
    ip link add seg0 netns "$GW" type veth peer name box0 netns "$RTR"
    ip link add eth0 netns "$WAN" type veth peer name wan0 netns "$RTR"
    for ns in "$LAN" "$GW" "$RTR" "$WAN"; do ip -n "$ns" link set lo up; done
    in_lan sysctl -qw net.ipv6.conf.eth0.accept_dad=0
    in_wan sysctl -qw net.ipv6.conf.eth0.accept_dad=0

    # The segment: a bridge in the router's namespace (no STP, no multicast snooping:
    # every port sees every NDP multicast, as on a cloud subnet).
    ip -n "$RTR" link add br0 type bridge stp_state 0 mcast_snooping 0
    ip -n "$RTR" link set br0 addrgenmode none
    # The segment is a switch: frames between its hosts must not see the router's
    # netfilter hooks (br_netfilter, where loaded, would DNAT the box's own traffic).
    if in_rtr test -d /proc/sys/net/bridge; then
        in_rtr sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 \
            net.bridge.bridge-nf-call-arptables=0
    fi
    in_rtr sysctl -qw net.ipv6.conf.br0.accept_dad=0 net.ipv6.conf.wan0.accept_dad=0
    ip -n "$RTR" link set lan0 master br0
    ip -n "$RTR" link set box0 master br0
    for dev in br0 lan0 box0 wan0; do ip -n "$RTR" link set "$dev" up; done
    ip -n "$RTR" addr add 10.10.0.254/24 dev br0
    ip -n "$RTR" addr add fe80::1/64 dev br0 nodad
    ip -n "$RTR" addr add 198.51.100.254/24 dev wan0
    ip -n "$RTR" addr add 198.51.100.10/32 dev wan0
    ip -n "$RTR" addr add 2001:db8:ff::fe/64 dev wan0 nodad
    in_rtr sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
        net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0 \
        net.ipv4.conf.br0.send_redirects=0 net.ipv4.conf.wan0.send_redirects=0
    # The inside IPv6 prefix is routed to the box (its address on the segment made
    # on-link by a host route), as a VPC route table points a prefix at an instance.
    ip -n "$RTR" -6 route add 2001:db8:10::1/128 dev br0
    ip -n "$RTR" -6 route add 2001:db8:10::/64 via 2001:db8:10::1 dev br0
    # IPv4 from the wan side straight to an inside address goes to the box too (the
    # segment's hosts are on-link to the router, so only traffic arriving on wan0).
    ip -n "$RTR" route add 10.10.0.0/25 via 10.10.0.1 dev br0 table 100
    ip -n "$RTR" rule add iif wan0 to 10.10.0.0/25 lookup 100 pref 100
    rtr_nat_rules | in_rtr nft -f -
    in_rtr sysctl -qw net.netfilter.nf_conntrack_tcp_be_liberal=1

    ip -n "$LAN" addr add 10.10.0.2/24 dev eth0
    ip -n "$LAN" addr add 2001:db8:10::2/64 dev eth0 nodad
    ip -n "$LAN" link set eth0 up
    ip -n "$LAN" route add default via 10.10.0.1
    ip -n "$LAN" -6 route add default via 2001:db8:10::1

    ip -n "$GW" link set seg0 up

    ip -n "$WAN" addr add 198.51.100.1/24 dev eth0
    ip -n "$WAN" addr add 2001:db8:ff::1/64 dev eth0 nodad
    ip -n "$WAN" link set eth0 up
    ip -n "$WAN" -6 route add 2001:db8:10::/64 via 2001:db8:ff::fe

    host_offloads "$E2E_OFFLOADS"
    [ "$E2E_GW_OFFLOADS" = on ] || gw_offloads "$E2E_GW_OFFLOADS"
    redirect_watch_start
}

# Records every ICMP redirect and ICMPv6 redirect on any port of the segment (and the
# router's wan0) until redirect_watch_check; waits until tcpdump listens.
redirect_watch_start() {
    ip netns exec "$RTR" timeout 600 tcpdump -Z root --immediate-mode -n -U -i any \
        -w "$WORK/redirects.pcap" '(icmp and icmp[icmptype] == 5) or (icmp6 and ip6[40] == 137)' \
        >"$WORK/redirects.log" 2>&1 &
    REDIRECT_WATCH=$!
    for _ in $(seq 50); do
        grep -qs "listening on" "$WORK/redirects.log" && return 0
        sleep 0.1
    done
    echo "redirect watch: tcpdump did not start"; cat "$WORK/redirects.log"; return 1
}

# The check finish() runs: no redirect of either family was seen during the suite.
redirect_watch_check() {
    no_redirects() {
        sleep 0.3
        kill "$REDIRECT_WATCH" 2>/dev/null; wait "$REDIRECT_WATCH" 2>/dev/null || true
        tcpdump -n -r "$WORK/redirects.pcap" 2>/dev/null >"$WORK/redirects.txt"
        echo "redirects seen on the segment: $(wc -l <"$WORK/redirects.txt")"
        head -n 5 "$WORK/redirects.txt"
        [ -s "$WORK/redirects.pcap" ] && [ ! -s "$WORK/redirects.txt" ]
    }
    check "one-armed segment: no ICMP redirect (type 5) nor ICMPv6 redirect (type 137) during the suite" no_redirects
}

# E2E_BOX=kernel: the box namespace does natbox's job with the kernel, to prove the
# topology while natbox cannot run one-armed: forwarding on one interface, masquerade
# of the inside prefix, a stateful IPv6 egress-only filter (RFC 6092's default: only
# replies and related errors come in), and no redirects (send_redirects=0 for IPv4;
# IPv6 has no such switch, so nftables drops outgoing ones). Two more things make it
# behave as natbox does, not as a stock Linux router:
#  - new IPv4 connections from beyond the segment to the box itself are dropped before
#    conntrack confirms them (natbox keeps no state for unsolicited packets): a
#    rejected hole punch would otherwise leave an entry whose reply tuple is the
#    mapping the peer's answer needs, and masquerade would give that answer another
#    port;
#  - no ICMP rate limit: the kernel still *tries* a redirect for every packet it
#    forwards back out of seg0, and those attempts use up the per-destination tokens
#    its errors (time exceeded for traceroute) need too.
kernel_box_rules() {
    cat <<'NFT'
table inet kbox {
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        ip saddr 10.10.0.0/25 accept
        ip6 saddr 2001:db8:10::/64 accept
    }
    chain out {
        type filter hook output priority filter; policy accept;
        icmpv6 type nd-redirect drop
    }
    chain in {
        type filter hook input priority filter; policy accept;
        ct state new ip saddr != 10.10.0.0/24 drop
    }
}
table ip kbox_nat {
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "seg0" ip saddr 10.10.0.0/25 ip saddr != 10.10.0.1 ip daddr != 10.10.0.0/24 masquerade
    }
}
NFT
}

kernel_box_start() {
    in_gw sysctl -qw net.ipv6.conf.seg0.accept_dad=0
    ip -n "$GW" addr replace 10.10.0.1/24 dev seg0
    ip -n "$GW" addr replace 2001:db8:10::1/64 dev seg0 nodad
    ip -n "$GW" route replace default via 10.10.0.254
    ip -n "$GW" -6 route replace default via fe80::1 dev seg0
    in_gw sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0 \
        net.ipv4.conf.seg0.send_redirects=0 net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
    kernel_box_rules | in_gw nft -f -
    in_gw sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    echo "# E2E_BOX=kernel: the box namespace forwards with the kernel (masquerade, egress-only IPv6)"
}

kernel_box_stop() {
    in_gw sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
    in_gw nft delete table inet kbox
    in_gw nft delete table ip kbox_nat
}

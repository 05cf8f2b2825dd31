# Shared set-up for the end-to-end tests: sourced, not run.
#
# Builds the test topology in network namespaces this test owns (names carry the test's
# PID, so tests never collide and never touch the host's interfaces). E2E_TOPOLOGY
# picks it:
#
# two-port (the default; DESIGN.md's), three namespaces:
#
#   ns lan: eth0 10.10.0.2/24 2001:db8:10::2/64 --veth-- [ns gw: lan0 | natbox | wan0] --veth-- ns wan: eth0 198.51.100.1/24 2001:db8:ff::1/64
#
#   natbox runs in ns gw in host mode on lan0/wan0, which carry no kernel addresses.
#
# one-armed: natbox on a single port, seg0, on one segment with the inside host, behind
# a "VPC router" that maps its private address 1:1 to 198.51.100.10; the picture and
# the addresses are in topology_onearm.sh. E2E_BOX=kernel runs that topology with the
# kernel in natbox's place (masquerade and an egress-only IPv6 filter), to prove it.
#
# Every address a test sends to belongs to one of these namespaces. Everything is torn
# down on exit, whatever happens.
set -euo pipefail

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NATBOX_BIN=${NATBOX_BIN:-$E2E_ROOT/target/release/appliance}
PFX="nb$$"
LAN="${PFX}lan"
GW="${PFX}gw"
WAN="${PFX}wan"
WORK=$(mktemp -d)
E2E_TOPOLOGY=${E2E_TOPOLOGY:-two-port}
E2E_BOX=${E2E_BOX:-natbox}
RTR=""
# shellcheck source=topology_onearm.sh
source "$E2E_ROOT/tests/e2e/topology_onearm.sh"
# What the suites assert that differs between the topologies:
#   BOX_PORTS  natbox's interfaces in ns gw;
#   BOX_ROLES  the port groups of natbox's "counters ROLE:" lines (the role labels:
#              one-armed, the one port has both, "inside+outside"); INSIDE_ROLE the
#              label of the port the lan hosts are on (metrics' port="..." label);
#   POOL4      natbox's pool address (what its logs and its own pings show);
#   WAN_HOP    the traceroute hop at which the wan host answers (one-armed: the router
#              is hop 2, answering from ROUTER4);
#   FAR_ERR4/6 where ICMP errors about the wan link come from (too big, test_mtu):
#              natbox itself in two-port (its outside MTU), the router in one-armed
#              (the segment is one MTU; the router's wan link is the bottleneck).
# The public address the wan host sees is 198.51.100.10 in both.
# The external port of an inside source port P: P itself (port preservation) with one
# worker; with several, each worker allocates from its own slice of the range, so only
# about 1/N of inside ports keep their number (core/src/engine/pool): any port then
# (a pattern for grep, basic or extended).
ext_port() { if [ "${E2E_WORKERS:-1}" -gt 1 ]; then echo '[0-9][0-9]*'; else echo "$1"; fi; }
case "$E2E_TOPOLOGY/$E2E_BOX" in
two-port/natbox)
    BOX_PORTS="lan0 wan0" BOX_ROLES="inside outside" INSIDE_ROLE=inside POOL4=198.51.100.10 WAN_HOP=2
    FAR_ERR4=10.10.0.1 FAR_ERR6=2001:db8:10::1 ROUTER4=""
    ;;
one-armed/natbox | one-armed/kernel)
    BOX_PORTS="seg0" BOX_ROLES="inside+outside" INSIDE_ROLE="inside+outside" POOL4=10.10.0.1 WAN_HOP=3
    FAR_ERR4=10.10.0.254 FAR_ERR6=2001:db8:ff::fe ROUTER4=10.10.0.254
    RTR="${PFX}rtr"
    ;;
*)
    echo "lib.sh: E2E_TOPOLOGY=$E2E_TOPOLOGY E2E_BOX=$E2E_BOX: not a topology (two-port; one-armed, with E2E_BOX natbox or kernel)"
    exit 2
    ;;
esac
NATBOX_PID=""
PASSED=0
FAILED=0

in_lan() { ip netns exec "$LAN" "$@"; }
in_wan() { ip netns exec "$WAN" "$@"; }
# The admin socket a test passes natbox (NATBOX_ARGS="--admin $SOCK"), and `shell`,
# which runs shell commands (one per argument) on it and prints the answers.
SOCK="$WORK/admin.sock"
shell() { printf '%s\n' "$@" | timeout 10 socat -t 2 - "UNIX-CONNECT:$SOCK"; }
# listening NS PORT: waits up to 10 s for a TCP listener on PORT in namespace NS.
listening() {
    for _ in $(seq 100); do
        [ -n "$(ip netns exec "$1" ss -ltnH "sport = :$2")" ] && return 0
        sleep 0.1
    done
    return 1
}
in_gw() { ip netns exec "$GW" "$@"; }

e2e_cleanup() {
    set +e
    [ -n "$NATBOX_PID" ] && kill -TERM "$NATBOX_PID" 2>/dev/null && wait "$NATBOX_PID" 2>/dev/null
    for pid in $(jobs -p); do kill "$pid" 2>/dev/null; done
    for ns in "$LAN" "$GW" ${RTR:+"$RTR"} "$WAN"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap e2e_cleanup EXIT

# Offloads on the lan and wan hosts (E2E_OFFLOADS): "on" keeps what any Linux host has
# on veth (TSO, GSO, transmit checksum offload, GRO), so natbox gets GSO super-frames of
# up to 64 KiB and CHECKSUM_PARTIAL frames through PACKET_VNET_HDR; "off" turns TSO/GSO
# off, so natbox sees wire-sized frames only (checksums still partial). The default is
# "on" (what an operator's hosts do).
E2E_OFFLOADS=${E2E_OFFLOADS:-on}

# host_offloads on|off: TSO/GSO (and GRO) of the lan and wan hosts' eth0.
host_offloads() {
    local ns
    for ns in "$LAN" "$WAN"; do
        ip netns exec "$ns" ethtool -K eth0 tso "$1" gso "$1" gro "$1" >/dev/null 2>&1 || true
    done
}

# Offloads on natbox's own ports, BOX_PORTS in ns gw (E2E_GW_OFFLOADS): "on" keeps
# veth's defaults; "off" turns transmit and receive checksum offload, TSO, GSO and GRO
# off before natbox starts, as on a NIC without checksum offload: natbox must then
# neither hand a port a super-frame nor a partial checksum it cannot send.
E2E_GW_OFFLOADS=${E2E_GW_OFFLOADS:-on}

# gw_offloads on|off: checksum offloads, TSO, GSO and GRO of natbox's ports.
gw_offloads() {
    local dev
    for dev in $BOX_PORTS; do
        in_gw ethtool -K "$dev" tx "$1" rx "$1" tso "$1" gso "$1" gro "$1" >/dev/null
    done
}

# Creates the namespaces and links of E2E_TOPOLOGY, with host offloads as E2E_OFFLOADS
# says and natbox's ports' offloads as E2E_GW_OFFLOADS says.
topology() {
    if [ "$E2E_TOPOLOGY" = one-armed ]; then
        topology_onearm
        return
    fi
    for ns in "$LAN" "$GW" "$WAN"; do ip netns add "$ns"; done
    ip link add eth0 netns "$LAN" type veth peer name lan0 netns "$GW"
    ip link add eth0 netns "$WAN" type veth peer name wan0 netns "$GW"
    for ns in "$LAN" "$GW" "$WAN"; do ip -n "$ns" link set lo up; done
    in_lan sysctl -qw net.ipv6.conf.eth0.accept_dad=0
    in_wan sysctl -qw net.ipv6.conf.eth0.accept_dad=0
    ip -n "$LAN" addr add 10.10.0.2/24 dev eth0
    ip -n "$LAN" addr add 2001:db8:10::2/64 dev eth0 nodad
    ip -n "$LAN" link set eth0 up
    ip -n "$LAN" route add default via 10.10.0.1
    ip -n "$LAN" -6 route add default via 2001:db8:10::1
    ip -n "$WAN" addr add 198.51.100.1/24 dev eth0
    ip -n "$WAN" addr add 2001:db8:ff::1/64 dev eth0 nodad
    ip -n "$WAN" link set eth0 up
    # The wan side routes the lan's IPv6 prefix to natbox, as an upstream router would.
    ip -n "$WAN" -6 route add 2001:db8:10::/64 via 2001:db8:ff::10
    host_offloads "$E2E_OFFLOADS"
    [ "$E2E_GW_OFFLOADS" = on ] || gw_offloads "$E2E_GW_OFFLOADS"
}

# Writes $WORK/natbox.toml from the topology's config (the example config, or the
# one-armed one beside this file), applying sed expressions given as arguments (e.g.
# 's/^mss_clamp.*/mss_clamp = 0/').
write_config() {
    if [ "$E2E_TOPOLOGY" = one-armed ]; then
        cp "$E2E_ROOT/tests/e2e/natbox-one-armed.toml" "$WORK/natbox.toml"
    else
        cp "$E2E_ROOT/natbox.toml" "$WORK/natbox.toml"
    fi
    for expr in "$@"; do sed -i "$expr" "$WORK/natbox.toml"; done
    # E2E_WORKERS=N runs natbox with N worker threads ([dataplane] workers).
    if [ -n "${E2E_WORKERS:-}" ]; then
        printf '\n[dataplane]\nworkers = %s\n' "$E2E_WORKERS" >>"$WORK/natbox.toml"
    fi
}

# Starts natbox in ns gw and waits (at most 10 s) until it forwards. With E2E_BOX=kernel,
# sets up the kernel's forwarding in ns gw instead.
start_natbox() {
    if [ "$E2E_BOX" = kernel ]; then
        kernel_box_start
        return
    fi
    [ -f "$WORK/natbox.toml" ] || write_config
    # Not through in_gw: a backgrounded function is a subshell, and $! must be natbox
    # itself (ip netns exec execs it) so that stop_natbox's signal reaches it.
    ip netns exec "$GW" "$NATBOX_BIN" run --config "$WORK/natbox.toml" ${NATBOX_ARGS:-} >"$WORK/natbox.log" 2>&1 &
    NATBOX_PID=$!
    for _ in $(seq 100); do
        grep -q "forwarding" "$WORK/natbox.log" && return 0
        kill -0 "$NATBOX_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "natbox did not start:"; cat "$WORK/natbox.log"; return 1
}

# Stops natbox (SIGTERM) and waits for its counters.
stop_natbox() {
    if [ "$E2E_BOX" = kernel ]; then
        kernel_box_stop
        return
    fi
    kill -TERM "$NATBOX_PID"
    wait "$NATBOX_PID" || true
    NATBOX_PID=""
    # Every run's "worker K: rx_packets=N" lines, for finish (E2E_WORKERS).
    grep -oE "worker [0-9]+: rx_packets=[0-9]+" "$WORK/natbox.log" >>"$WORK/workers.rx" || true
}

# With E2E_WORKERS=N: "worker K: F frames" for each worker, F the frames it received
# over the suite's runs of natbox.
worker_frames() {
    local k
    for k in $(seq 0 $((E2E_WORKERS - 1))); do
        echo "worker $k: $(awk -F'rx_packets=' -v w="worker $k:" '$1 == w " " { s += $2 } END { print s + 0 }' "$WORK/workers.rx") frames"
    done
}

# The value of counter NAME from the "counters GROUP:" log line natbox printed at exit.
counter() {
    local group=$1 name=$2
    grep "counters $group:" "$WORK/natbox.log" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$name=//p" | head -n 1
}

# check "description" command...: runs the command, counts a pass or a failure.
check() {
    local what=$1; shift
    if "$@" >"$WORK/check.out" 2>&1; then
        PASSED=$((PASSED + 1)); echo "ok   - $what"
    else
        FAILED=$((FAILED + 1)); echo "FAIL - $what"; sed 's/^/       /' "$WORK/check.out" | tail -n 20
    fi
}

# log_counters GROUPS: natbox's "counters GROUP:" lines for GROUPS (an ERE alternation,
# e.g. "nat|drops"; a "+" in a group name is literal) as comments in the test log;
# nothing with E2E_BOX=kernel.
log_counters() {
    [ "$E2E_BOX" = kernel ] || grep -E "counters (${1//+/\\+}):" "$WORK/natbox.log" | sed 's/^.*counters/# counters/'
}

# skip_without_natbox: ends a suite that tests natbox itself (its port pool, shell,
# services) at once, passing, with E2E_BOX=kernel.
skip_without_natbox() {
    if [ "$E2E_BOX" = kernel ]; then
        echo "skip - every check of this suite tests natbox itself (E2E_BOX=kernel)"
        echo "0 passed, 0 failed"
        exit 0
    fi
}

# check_natbox "description" command...: a check of natbox itself (its counters, log,
# shell or config), not of the traffic: as check, but skipped with E2E_BOX=kernel.
check_natbox() {
    if [ "$E2E_BOX" = kernel ]; then
        echo "skip - $1 (E2E_BOX=kernel)"
        return 0
    fi
    check "$@"
}

# tcp_stream up|down FILE COPIES SECONDS: streams COPIES copies of FILE over TCP (wan's
# port 5300) from lan to wan (up) or from wan to lan (down); the receiving end writes
# what arrives, until EOF, to $WORK/recv. Each end is bounded by SECONDS; fails if
# either end fails.
tcp_stream() {
    local dir=$1 file=$2 copies=$3 seconds=$4 listener
    # shellcheck disable=SC2016 # expanded by the inner bash
    local send='for _ in $(seq "$2"); do cat "$1"; done'
    rm -f "$WORK/recv"
    if [ "$dir" = up ]; then
        in_wan timeout "$seconds" socat -u TCP-LISTEN:5300,bind=198.51.100.1,reuseaddr OPEN:"$WORK/recv",creat,trunc &
        listener=$!
        sleep 0.5
        in_lan timeout "$seconds" bash -c "$send | socat -u - TCP:198.51.100.1:5300" _ "$file" "$copies" || return 1
    else
        in_wan timeout "$seconds" bash -c "$send | socat -u - TCP-LISTEN:5300,bind=198.51.100.1,reuseaddr" _ "$file" "$copies" &
        listener=$!
        sleep 0.5
        in_lan timeout "$seconds" socat -u TCP:198.51.100.1:5300 OPEN:"$WORK/recv",creat,trunc || return 1
    fi
    wait "$listener"
}

# dhcp_server IFACE LOG [DNSMASQ_OPTION...]: dnsmasq in ns wan serving IFACE's link
# with 198.51.100.50-59 for 2 minutes, 198.51.100.1 as the router, plus the options
# given; logs to LOG (with --log-dhcp) and sets DHCP_SERVER to its PID. DHCP_NS,
# DHCP_RANGE and DHCP_ROUTER replace the namespace, range and router.
dhcp_server() {
    local iface=$1 log=$2
    shift 2
    # Not through in_wan: $! must be dnsmasq itself (ip netns exec execs it).
    ip netns exec "${DHCP_NS:-$WAN}" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface="$iface" \
        --bind-interfaces --dhcp-range="${DHCP_RANGE:-198.51.100.50,198.51.100.59,255.255.255.0,2m}" \
        --dhcp-option=option:router,"${DHCP_ROUTER:-198.51.100.1}" --dhcp-leasefile="$log.leases" --pid-file= \
        --log-dhcp "$@" >"$log" 2>&1 &
    DHCP_SERVER=$!
}

# Prints the closing line and exits non-zero on any failure.
finish() {
    [ "$E2E_TOPOLOGY" != one-armed ] || redirect_watch_check
    # A natbox still running stops here, so its exit lines (counters, workers) count.
    if [ -n "$NATBOX_PID" ] && [ "$E2E_BOX" = natbox ]; then
        stop_natbox
    fi
    if [ "${E2E_WORKERS:-1}" -gt 1 ] && [ "$E2E_BOX" = natbox ] && [ -s "$WORK/workers.rx" ]; then
        # run.sh adds these up over the suites and checks every worker received some
        # (a suite may have one inside host, whose frames all go to one worker).
        worker_frames | sed 's/^/# /'
    fi
    if [ "$FAILED" -gt 0 ]; then
        echo "--- natbox log"; tail -n 30 "$WORK/natbox.log" 2>/dev/null || true
    fi
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}

#!/usr/bin/env bash
# natbox vs the kernel's own forwarding, on the same topology and the same traffic.
#
# Usage (as root, from anywhere; not a timed test, prints a report):
#
#   tests/bench/compare.sh                 # DURATION=10 s per traffic run
#   DURATION=5 PROFILE=1 tests/bench/compare.sh
#   ROUNDS=2 tests/bench/compare.sh
#   VARIANTS="natbox old-tpacket" OLD_NATBOX_BIN=/tmp/natbox-old tests/bench/compare.sh
#   VARIANTS="rules1k rules1k-flows" tests/bench/compare.sh   # flow export's cost
#
# natbox is measured once per variant in VARIANTS (default: "natbox workers2": this
# build with one worker, pinned to the last CPU, and with `[dataplane] workers = 2`,
# its two threads free to run on every CPU), then
# the kernel, all interleaved, ROUNDS times (default 1); the table shows each one's mean
# over its rounds, the per-round values are printed as they are measured. A/B against
# an older build: a variant named old-X runs the binary OLD_NATBOX_BIN with NATBOX_RX=X
# (the receive path of builds that had several: bufring or tpacket), without the
# offload rows (builds before PACKET_VNET_HDR drop super-frames) unless OLD_OFFLOADS=1
# (an old build that has offloads).
#
# One run measures, first with natbox in host mode in ns gw, then with the kernel
# forwarding in ns gw (lan0 10.10.0.1/24 + 2001:db8:10::1/64, wan0 198.51.100.10/24 +
# 2001:db8:ff::10/64, ip_forward + IPv6 forwarding, nftables masquerade of 10.10.0.0/24
# out of wan0, IPv6 forward chain: established,related accept, iifname lan0 accept,
# drop otherwise):
#
#   pps      trafgen in ns lan sends 64-byte frames (14 Ethernet + 20 IPv4 + 8 UDP + 22
#            payload, no FCS) 10.10.0.2 -> 198.51.100.1:9 at max rate for DURATION s,
#            (i) one flow, (ii) 10 000 flows (source ports 10000..19999 in turn),
#            (iii) 10 048 flows from 64 hosts (10.10.0.2..65, 157 source ports each;
#            natbox's workers steer by the inside host, so one host's flows all go to
#            one worker and only several hosts can spread over workers).
#            "Delivered" = packets that reached ns wan: the receive counter of wan's eth0
#            (an nftables netdev ingress rule there drops them, so wan sends no ICMP
#            back). Counters and clocks are read together, in microseconds, by one
#            sampler at real-time priority, at 0.5 s and DURATION - 0.5 s after start.
#            All veth offloads off (tso gso gro tx rx).
#   TCP      iperf3 lan -> wan, DURATION s, one stream, four offload settings on the
#            four veth ends (the kernel run uses the very same): "off" = all off; "csum
#            on" = checksum offload on, TSO/GSO/GRO off (wire-sized frames with partial
#            checksums); "gw GRO on" = the hosts as in "csum on", the gateway's two ports
#            with GRO/GSO on, their defaults (a gateway receives wire-sized frames from
#            the network and merges them, as a VM's virtio NIC does); "all on" =
#            TSO/GSO/GRO and checksum offload on end to end, what a Linux host has on a
#            real NIC (natbox forwards GSO super-frames through PACKET_VNET_HDR; old-*
#            variants are not run in the last two, shown as n/a).
#            "CPU s per GB": busy time of the whole machine (see CPU) from 1 s after the
#            start to 1 s before the end, divided by the GB iperf3 received in those
#            seconds: both hosts' TCP and the forwarding; natbox's own process time per
#            GB too.
#   CPU      trafgen runs on CPU 0 (trafgen -P 1 binds there), natbox is pinned to the
#            last CPU. On veth the kernel's forwarding runs inline, in softirq in the
#            sender's context (trafgen's sendto), i.e. on CPU 0; natbox's share of the
#            work (everything after AF_PACKET queued the frame) runs on its own core.
#            (Steering the kernel's share to the other core with RPS on veth collapses
#            to a few hundred pps in this VM, so it is not done.)
#            Each pps run also shows how busy each of the two CPUs was: a CPU near
#            100% is the limit of that run (with natbox, the generator's CPU also pays
#            for AF_PACKET's copy of every frame into natbox's ring).
#            "gw CPU s per Mpkt", the same method for both modes: busy time of the
#            whole machine (/proc/stat: user, nice, system, irq and softirq of all CPUs)
#            in the measuring window (0.5 s after start to 0.5 s before end), minus
#            what trafgen alone costs per offered packet (the baseline: frames dropped
#            at lan0's IP input) times the packets offered, divided by delivered Mpkts.
#            Machine time, not process times: the kernel accounts softirq work (all of
#            the kernel's forwarding, AF_PACKET's copy into natbox's ring) as softirq
#            time, not to the process it interrupted, so process times miss most of
#            it. The machine must be otherwise idle for this (see the load lines).
#            natbox's own process time per Mpkt is shown as well.
#   RTT      ping lan -> wan (200 x 10 ms, idle), avg; plus a direct veth reference
#            (ping gw -> wan over wan0, kernel mode).
#
# PROFILE=1 adds, after the measurements, natbox runs under `strace -c -f` (syscall
# counts per packet) and `perf record -e cpu-clock` on the gw and the sender's CPU (top
# symbols of each); those
# runs are slowed by the tools and are not in the table.
#
# Only namespaces this script creates carry traffic; everything is torn down on exit.
# trafgen, iperf3 and natbox run at nice $NICE (default -10) in both modes.
# The machine should be otherwise idle: the script prints the load average, and the
# busy time of the CPUs before the run.

DURATION=${DURATION:-10}
# Priority of everything the benchmark runs (trafgen, iperf3, natbox), the same in both
# modes, so that other work on the machine disturbs it less.
NICE=${NICE:--10}
PROFILE=${PROFILE:-0}
VARIANTS=${VARIANTS:-natbox workers2}
ROUNDS=${ROUNDS:-1}
read -r -a VARIANT_LIST <<<"$VARIANTS"
# Hard bound on the whole script (seconds).
MAX_RUNTIME=${MAX_RUNTIME:-$(((DURATION * 20 + 80) * ${#VARIANT_LIST[@]} * ROUNDS + DURATION * 16 + 260))}

# shellcheck source=../e2e/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../e2e/lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "run as root"; exit 2; }
for tool in trafgen iperf3 ethtool nft ping python3 taskset; do
    command -v "$tool" >/dev/null || { echo "missing $tool (tests/setup.sh installs it)"; exit 2; }
done
if [ ! -x "$NATBOX_BIN" ]; then
    (cd "$E2E_ROOT" && cargo build --release -p appliance)
fi

# The watchdog is a job of this shell, so lib.sh's cleanup kills it.
( sleep "$MAX_RUNTIME"; echo "compare.sh: time limit ${MAX_RUNTIME}s reached" >&2; kill -TERM $$ ) &

# The sampler's priority (snapshots): real-time where allowed, else the highest nice.
if chrt -f 10 true 2>/dev/null; then SAMPLER_PRIORITY=(chrt -f 10); else SAMPLER_PRIORITY=(nice -n -20); fi
NCPU=$(nproc)
TG_CPU=0 # trafgen -P 1 binds its one worker to CPU 0 itself
GW_CPU=$((NCPU - 1))
HZ=$(getconf CLK_TCK)
VETHS=("$LAN:eth0" "$GW:lan0" "$GW:wan0" "$WAN:eth0")

# --- helpers ---------------------------------------------------------------------------

# offloads off|on|gro|all: on = checksum offload only; gro = checksum offload, and
# TSO/GSO/GRO on the gateway's two ports only (hosts send wire-sized frames); all =
# TSO/GSO/GRO everywhere.
offloads() {
    local v ns dev
    for v in "${VETHS[@]}"; do
        ns=${v%%:*} dev=${v#*:}
        case $1 in
        gro) if [ "$ns" = "$GW" ]; then
            ip netns exec "$ns" ethtool -K "$dev" tx on rx on tso on gso on gro on >/dev/null 2>&1 || true
        else
            ip netns exec "$ns" ethtool -K "$dev" tx on rx on tso off gso off gro off >/dev/null 2>&1 || true
        fi ;;
        off) ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true ;;
        on) ip netns exec "$ns" ethtool -K "$dev" tx on rx on tso off gso off gro off >/dev/null 2>&1 || true ;;
        all) ip netns exec "$ns" ethtool -K "$dev" tx on rx on tso on gso on gro on >/dev/null 2>&1 || true ;;
        esac
    done
}

# Busy and total ticks of one /proc/stat line ("cpu" or "cpuN").
cpu_ticks() {
    awk -v c="$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}

# snapshots PID START OFFSET...: one line per OFFSET, taken at START + OFFSET seconds
# (START: $EPOCHREALTIME when the traffic was launched), each with the clock, packets
# wan's eth0 received, packets lan's eth0 sent, the work done by the whole machine so
# far (user, nice, system, irq and softirq ticks of all CPUs; not idle, iowait or
# steal), process PID's ticks (utime + stime; PID 0: none), the busy ticks of the
# generator's CPU and of the gateway's, and how late the line was taken (s).
# One sampler, started before the traffic and run at real-time priority, so every
# number of a line is read within microseconds and at the planned time: under a flood
# both CPUs are saturated by the benchmark's nice -10 processes, and a command started
# then at normal priority waits its turn; a closing snapshot taken that way came up to
# a second late, after trafgen had stopped, and the idle tail diluted natbox's pps
# (in kernel mode the second CPU is idle, so it was never late there).
# The two namespaces' counters come from /proc/ANCHOR/net/dev of a process living in
# each (started after `topology`).
snapshots() {
    "${SAMPLER_PRIORITY[@]}" python3 - "$WAN_ANCHOR" "$LAN_ANCHOR" "$TG_CPU" "$GW_CPU" "$@" <<'PY'
import sys, time
wan, lan, tg_cpu, gw_cpu, pid, start, *offsets = sys.argv[1:]
def dev(anchor, field):
    for line in open(f"/proc/{anchor}/net/dev"):
        name, _, rest = line.partition(":")
        if name.strip() == "eth0":
            return int(rest.split()[field])
    return 0
def busy(stat, cpu):
    return sum(int(stat[cpu][i]) for i in (1, 2, 3, 6, 7))
for offset in offsets:
    due = float(start) + float(offset)
    time.sleep(max(0.0, due - time.time()))
    t = time.time()
    rx, tx = dev(wan, 1), dev(lan, 9)
    stat = {l.split()[0]: l.split() for l in open("/proc/stat") if l.startswith("cpu")}
    ticks = 0
    if pid != "0":
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        ticks = int(f[11]) + int(f[12])
    print(t, rx, tx, busy(stat, "cpu"), ticks, busy(stat, f"cpu{tg_cpu}"),
          busy(stat, f"cpu{gw_cpu}"), round(t - due, 3), flush=True)
PY
}

# window_open PID OPENING CLOSING: starts the sampler of a window from OPENING to
# CLOSING seconds after now, just before the traffic is launched; its two lines go to
# $WORK/window (snapshots).
window_open() {
    snapshots "$1" "$EPOCHREALTIME" "$2" "$3" >"$WORK/window" &
    SAMPLER=$!
}

# window_close: waits for the window's sampler and warns of a snapshot taken more than
# 0.1 s after its time.
window_close() {
    wait "$SAMPLER"
    awk '$8 > 0.1 { print "  warning: " (NR == 1 ? "opening" : "closing") " snapshot " $8 " s late" }' "$WORK/window"
}

# busy_pct TICKS0 TICKS1 SECONDS: how busy a CPU was (%), from its busy ticks.
busy_pct() {
    calc "round(($2 - $1) / $HZ / $3 * 100)"
}

wan_sink() {
    in_wan nft -f - <<'EOF'
table netdev sink {
    chain in {
        type filter hook ingress device "eth0" priority 0;
        ip daddr 198.51.100.1 udp dport 9 drop
    }
}
EOF
}

# trafgen config for FLOWS: 1, 10000 (one host) or hosts (64 hosts, 157 flows each;
# trafgen sends its packets in turn).
trafgen_conf() {
    local flows=$1 da sa h
    da=$(in_gw cat /sys/class/net/lan0/address)
    sa=$(in_lan cat /sys/class/net/eth0/address)
    packet() { # SOURCE SPORT
        printf '{\n  eth(da=%s, sa=%s, type=0x0800),\n  ipv4(saddr=%s, daddr=198.51.100.1, ttl=64),\n  udp(sp=%s, dp=9),\n  fill(0x41, 22)\n}\n' \
            "$da" "$sa" "$1" "$2"
    }
    case $flows in
    1) packet 10.10.0.2 40000 ;;
    hosts) for h in $(seq 2 65); do packet "10.10.0.$h" "dinc(10000, 10156)"; done ;;
    *) packet 10.10.0.2 "dinc(10000, $((10000 + flows - 1)))" ;;
    esac >"$WORK/tg$flows.cfg"
}

calc() { python3 -c "print($1)"; }

declare -A R # R[mode.metric] = value

# pps_run MODE FLOWS [PID]: trafgen at max rate for DURATION s. Counters are read in a
# window from 0.5 s after the start to 0.5 s before the end (no start/stop transients):
# delivered pps, offered pps, busy CPU seconds of the machine, and (with PID) natbox's
# own CPU s per Mpkt.
pps_run() {
    local mode=$1 flows=$2 pid=${3:-}
    local d0 d1 tx0 tx1 k0 k1 p0 p1 g0 g1 w0 w1 t0 t1 tg _
    trafgen_conf "$flows"
    window_open "${pid:-0}" 0.5 "$(calc "$DURATION - 0.5")"
    in_lan timeout -s INT "$DURATION" nice -n "$NICE" taskset -c "$TG_CPU" \
        trafgen -Q -P 1 -o eth0 -i "$WORK/tg$flows.cfg" >"$WORK/trafgen.log" 2>&1 &
    tg=$!
    window_close
    wait "$tg" || true
    { read -r t0 d0 tx0 k0 p0 g0 w0 _; read -r t1 d1 tx1 k1 p1 g1 w1 _; } <"$WORK/window"
    local dt n=$((d1 - d0)) sent=$((tx1 - tx0))
    dt=$(calc "$t1 - $t0")
    R[$mode.pps$flows]=$(calc "round($n / $dt)")
    R[$mode.offered$flows]=$(calc "round($sent / $dt)")
    R[$mode.busy$flows]=$(calc "($k1 - $k0) / $HZ")
    R[$mode.sent$flows]=$sent
    R[$mode.deliv$flows]=$n
    R[$mode.tgbusy$flows]=$(busy_pct "$g0" "$g1" "$dt")
    R[$mode.gwbusy$flows]=$(busy_pct "$w0" "$w1" "$dt")
    [ -n "$pid" ] && R[$mode.pcpu$flows]=$(calc "round(($p1 - $p0) / $HZ / max($n, 1) * 1e6, 3)")
    echo "  $mode, $flows flow(s): delivered ${R[$mode.pps$flows]} pps of ${R[$mode.offered$flows]} offered;" \
        "machine busy ${R[$mode.busy$flows]} CPU s in ${dt%????????}s; CPU $TG_CPU" \
        "${R[$mode.tgbusy$flows]}% busy, CPU $GW_CPU ${R[$mode.gwbusy$flows]}%"
}

# Per-Mpkt gw CPU of MODE for FLOWS, minus the baseline's cost per offered packet.
gw_cpu() {
    local mode=$1 flows=$2
    # Noise can make the difference negative; shown as n/a then.
    R[$mode.cpu$flows]=$(calc "(lambda v: round(v, 3) if v >= 0 and ${R[base.busy1]} > 0 else 'n/a')((${R[$mode.busy$flows]} - ${R[base.busy1]} / max(${R[base.sent1]}, 1) * ${R[$mode.sent$flows]}) / max(${R[$mode.deliv$flows]}, 1) * 1e6)")
}

# tcp_run MODE LABEL [PID]: iperf3 for DURATION s; Gbps, and CPU s per GB in the
# window from 1 s after the start to 1 s before the end (see the header).
tcp_run() {
    local mode=$1 label=$2 pid=${3:-} server client k0 k1 p0 p1 g0 g1 w0 w1 t0 t1 _
    in_wan timeout $((DURATION + 20)) nice -n "$NICE" taskset -c "$TG_CPU" iperf3 -s -1 >/dev/null 2>&1 &
    server=$!
    sleep 0.5
    window_open "${pid:-0}" 1 "$((DURATION - 1))"
    in_lan timeout $((DURATION + 15)) nice -n "$NICE" taskset -c "$TG_CPU" \
        iperf3 -c 198.51.100.1 -t "$DURATION" -J >"$WORK/iperf.json" 2>&1 &
    client=$!
    window_close
    { read -r t0 _ _ k0 p0 g0 w0 _; read -r t1 _ _ k1 p1 g1 w1 _; } <"$WORK/window"
    if wait "$client"; then
        R[$mode.tcp$label]=$(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['end']['sum_received']['bits_per_second']/1e9, 3))" "$WORK/iperf.json")
        # GB received in the intervals [1 s, DURATION - 1 s].
        local gb
        gb=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(sum(i['sum']['bytes'] for i in r['intervals'] if 1 <= round(i['sum']['start']) and round(i['sum']['end']) <= $DURATION - 1) / 1e9)" "$WORK/iperf.json")
        R[$mode.cpugb$label]=$(calc "round(($k1 - $k0) / $HZ / max($gb, 1e-9), 3)")
        [ -n "$pid" ] && R[$mode.pcpugb$label]=$(calc "round(($p1 - $p0) / $HZ / max($gb, 1e-9), 3)")
    else
        R[$mode.tcp$label]=0
        echo "  iperf3 failed:"; tail -n 5 "$WORK/iperf.json"
    fi
    wait "$server" 2>/dev/null || true
    echo "  $mode, TCP offloads $label: ${R[$mode.tcp$label]} Gbps, CPU s per GB ${R[$mode.cpugb$label]:-n/a}${pid:+ (natbox ${R[$mode.pcpugb$label]:-n/a})};" \
        "CPU $TG_CPU $(busy_pct "$g0" "$g1" "$(calc "$t1 - $t0")")% busy," \
        "CPU $GW_CPU $(busy_pct "$w0" "$w1" "$(calc "$t1 - $t0")")%"
}

rtt() { # avg ms of 200 pings from namespace $1 to $2
    { ip netns exec "$1" timeout 30 ping -q -c 200 -i 0.01 "$2" || true; } | awk -F/ '/^rtt|^round-trip/ { print $5 }'
}

# warm-up: neighbours resolved, paths work.
warm_up() {
    in_lan timeout 10 ping -c 3 -i 0.2 -W 2 198.51.100.1 >/dev/null
}

measure() { # MODE [PID]
    local mode=$1 pid=${2:-}
    warm_up
    offloads off
    pps_run "$mode" 1 "$pid"
    pps_run "$mode" 10000 "$pid"
    pps_run "$mode" hosts "$pid"
    tcp_run "$mode" off "$pid"
    offloads on
    tcp_run "$mode" on "$pid"
    R[$mode.rtt]=$(rtt "$LAN" 198.51.100.1)
    echo "  $mode, RTT lan->wan avg ${R[$mode.rtt]} ms"
    if [[ "$mode" == old-* && -z "${OLD_OFFLOADS:-}" ]]; then
        local k
        for k in tcpgro cpugbgro pcpugbgro tcpall cpugball pcpugball; do R[$mode.$k]=n/a; done
        echo "  $mode, TCP offloads gro and all: n/a (an old build: no offload support assumed)"
    else
        offloads gro
        tcp_run "$mode" gro "$pid"
        offloads all
        tcp_run "$mode" all "$pid"
    fi
}

# --- the run ---------------------------------------------------------------------------

echo "natbox vs kernel: $NCPU CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), kernel $(uname -r)"
echo "duration ${DURATION}s per run; traffic generator on CPU $TG_CPU, gw on CPU $GW_CPU"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
read -r b0 a0 < <(cpu_ticks cpu); sleep 1; read -r b1 a1 < <(cpu_ticks cpu)
echo "machine busy before start: $(calc "round(($b1 - $b0) * 100 / max($a1 - $a0, 1))")% (should be ~0)"
[ "$NCPU" -ge 2 ] || echo "warning: one CPU: traffic generator and gw share it"

topology
wan_sink
# Processes in ns wan and ns lan, whose /proc/PID/net/dev are those namespaces' (snapshot).
ip netns exec "$WAN" sleep infinity &
WAN_ANCHOR=$!
ip netns exec "$LAN" sleep infinity &
LAN_ANCHOR=$!

# The kernel's NAT on the gw: addresses on lan0/wan0, forwarding, nftables masquerade
# and the IPv6 filter; kernel_off takes it all away again for natbox.
kernel_on() {
    in_gw sysctl -qw net.ipv6.conf.lan0.disable_ipv6=0 net.ipv6.conf.wan0.disable_ipv6=0
    in_gw sysctl -qw net.ipv6.conf.lan0.accept_dad=0 net.ipv6.conf.wan0.accept_dad=0
    ip -n "$GW" addr add 10.10.0.1/24 dev lan0
    ip -n "$GW" addr add 2001:db8:10::1/64 dev lan0 nodad
    ip -n "$GW" addr add 198.51.100.10/24 dev wan0
    ip -n "$GW" addr add 2001:db8:ff::10/64 dev wan0 nodad
    ip -n "$GW" link set lan0 up
    ip -n "$GW" link set wan0 up
    in_gw sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    in_gw nft -f - <<'EOF'
table ip nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wan0" ip saddr 10.10.0.0/24 masquerade
    }
}
table ip6 filter {
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        iifname "lan0" accept
    }
}
EOF
}
kernel_off() {
    in_gw nft delete table ip nat
    in_gw nft delete table ip6 filter
    in_gw sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
    ip -n "$GW" addr flush dev lan0
    ip -n "$GW" addr flush dev wan0
    in_gw sysctl -qw net.ipv6.conf.lan0.disable_ipv6=1 net.ipv6.conf.wan0.disable_ipv6=1
}

echo "== baseline: trafgen alone (gw forwards nothing; frames dropped at lan0)"
ip -n "$GW" link set lan0 up
ip -n "$GW" link set wan0 up
in_gw sysctl -qw net.ipv6.conf.lan0.disable_ipv6=1 net.ipv6.conf.wan0.disable_ipv6=1
offloads off
pps_run base 1

# variant_config VARIANT: what variant VARIANT appends to natbox.toml (issue #18's
# "dataplane pps with 1k rules and flow export on, against the same without"):
#   rules1k        1 000 egress policy rules (deny rules for other destinations; the
#                  benchmark's traffic falls to the default, allow: every rule is
#                  compiled in, none matches)
#   rules1k-flows  the same with flow logs on: IPFIX to 198.51.100.1:4739 in ns wan
#                  (dropped there like the traffic), interim records every 10 s
variant_config() {
    case $1 in
    rules1k | rules1k-flows)
        printf '\n[policy]\ndefault = "allow"\n'
        for i in $(seq 0 999); do
            printf '[[policy.rule]]\naction = "deny"\ndestination = "172.16.%d.%d"\n' $((i / 250)) $((i % 250 + 1))
        done
        if [ "$1" = rules1k-flows ]; then
            printf '\n[flow_log]\nipfix = "198.51.100.1:4739"\ninterval = 10\n'
        fi
        ;;
    esac
}

# Like-for-like with conntrack, which has no per-host limit: room for 10k flows of one host.
write_config '/^mss_clamp/a max_sessions_per_host = 16384\nmax_ports_per_host = 16384'
# Each round measures every natbox variant and then the kernel, so slow drifts of the
# shared machine hit all of them alike.
for round in $(seq "$ROUNDS"); do
for variant in "${VARIANT_LIST[@]}" kernel; do
if [ "$variant" = kernel ]; then
    echo "== kernel (ip_forward + nftables masquerade), round $round"
    kernel_on
    # natbox answered for 10.10.0.1 with lan0's MAC; the kernel does too: same neighbours.
    measure "kernel.$round"
    R[direct.rtt]=$(rtt "$GW" 198.51.100.1)
    kernel_off
    continue
fi
if [ "$variant" = workers2 ]; then
    echo "== natbox variant $variant, round $round (host mode, 2 workers, on every CPU)"
    cp "$WORK/natbox.toml" "$WORK/natbox-one-worker.toml"
    printf '\n[dataplane]\nworkers = 2\n' >>"$WORK/natbox.toml"
    start_natbox
    mv "$WORK/natbox-one-worker.toml" "$WORK/natbox.toml"
else
    echo "== natbox variant $variant, round $round (host mode, pinned to CPU $GW_CPU)"
    cp "$WORK/natbox.toml" "$WORK/natbox-base.toml"
    variant_config "$variant" >>"$WORK/natbox.toml"
    if [[ "$variant" == old-* ]]; then
        NATBOX_BIN=${OLD_NATBOX_BIN:?old-* variants need OLD_NATBOX_BIN} NATBOX_RX=${variant#old-} start_natbox
    else
        start_natbox
    fi
    mv "$WORK/natbox-base.toml" "$WORK/natbox.toml"
    taskset -a -p -c "$GW_CPU" "$NATBOX_PID" >/dev/null
fi
grep -o "receive ring.*\|receive path: .*\|dataplane: .* workers.*" "$WORK/natbox.log" | sed 's/^/  /' 
renice -n "$NICE" -p "$NATBOX_PID" >/dev/null
measure "$variant.$round" "$NATBOX_PID"

if [ "$PROFILE" = 1 ] && [ "$round" = 1 ]; then
    echo "== natbox profile (not in the table)"
    offloads off
    if command -v strace >/dev/null; then
        read -r _ d0 _ < <(snapshots 0 "$EPOCHREALTIME" 0)
        timeout $((DURATION + 10)) strace -c -f -p "$NATBOX_PID" -o "$WORK/strace.txt" &
        spid=$!
        sleep 0.5
        in_lan timeout -s INT "$DURATION" trafgen -Q -P 1 -o eth0 -i "$WORK/tg1.cfg" >/dev/null 2>&1 || true
        sleep 0.3
        kill -INT "$spid" 2>/dev/null; wait "$spid" 2>/dev/null || true
        read -r _ d1 _ < <(snapshots 0 "$EPOCHREALTIME" 0)
        n=$((d1 - d0))
        echo "  under strace: $n packets delivered (1 flow)"
        sed 's/^/  /' "$WORK/strace.txt" | head -n 15 || true
        calls=$(awk '/io_uring_enter/ { print $4 }' "$WORK/strace.txt")
        [ -n "$calls" ] && echo "  io_uring_enter calls per delivered packet: $(calc "round(${calls:-0} / max($n, 1), 4)")"
    fi
    if command -v perf >/dev/null; then
        timeout $((DURATION + 10)) perf record -q -e cpu-clock -C "$TG_CPU,$GW_CPU" -o "$WORK/perf.data" -- sleep "$DURATION" >/dev/null 2>&1 &
        ppid=$!
        in_lan timeout -s INT "$DURATION" trafgen -Q -P 1 -o eth0 -i "$WORK/tg1.cfg" >/dev/null 2>&1 || true
        wait "$ppid" 2>/dev/null || true
        for cpu in "$GW_CPU" "$TG_CPU"; do
            echo "  perf cpu-clock on CPU $cpu ($([ "$cpu" = "$GW_CPU" ] && echo natbox || echo trafgen), 1 flow), by command and object:"
            { perf report -i "$WORK/perf.data" --cpu "$cpu" --no-children -g none --sort comm,dso --stdio 2>/dev/null \
                | grep -E '^ +[0-9]' | head -n 8 | sed 's/^/  /'; } || true
            echo "  top symbols:"
            { perf report -i "$WORK/perf.data" --cpu "$cpu" --no-children -g none --sort comm,sym --stdio 2>/dev/null \
                | grep -E '^ +[0-9]' | head -n 30 | sed 's/^/  /'; } || true
        done
    fi
fi

stop_natbox
echo "  natbox counters at exit:"
grep -E "counters|worker [0-9]+: rx" "$WORK/natbox.log" | sed -E 's/^.*(counters|worker)/    \1/'
done
done

METRICS="pps1 pps10000 ppshosts offered1 offered10000 offeredhosts tgbusy1 tgbusy10000 tgbusyhosts gwbusy1 gwbusy10000 gwbusyhosts cpuhosts pcpuhosts tcpoff tcpon tcpgro tcpall cpu1 cpu10000 pcpu1 pcpu10000 cpugboff cpugbon cpugbgro cpugball pcpugboff pcpugbon pcpugbgro pcpugball rtt"
for v in "${VARIANT_LIST[@]}" kernel; do
    for round in $(seq "$ROUNDS"); do gw_cpu "$v.$round" 1; gw_cpu "$v.$round" 10000; gw_cpu "$v.$round" hosts; done
    for m in $METRICS; do # mean over the rounds that have a number
        vals="" other=""
        for round in $(seq "$ROUNDS"); do
            x=${R[$v.$round.$m]:-}
            if [[ "$x" =~ ^[0-9.]+$ ]]; then vals="$vals$x,"; elif [ -n "$x" ]; then other=$x; fi
        done
        if [ -n "$vals" ]; then
            R[$v.$m]=$(calc "(lambda l: (lambda a: round(a) if a >= 1000 else round(a, 3))(sum(l) / len(l)))([$vals])")
        elif [ -n "$other" ]; then
            R[$v.$m]=$other
        fi
    done
done

# --- the report ------------------------------------------------------------------------

row() { # label key [noratio]: one column per variant, the kernel, then variant/kernel ratios
    local v x k=${R[kernel.$2]:-} cols=() ratios=()
    for v in "${VARIANT_LIST[@]}"; do
        x=${R[$v.$2]:-}
        cols+=("${x:--}")
        if [ -z "${3:-}" ] && [[ "$x" =~ ^[0-9.]+$ ]] && [[ "$k" =~ ^[0-9.]+$ ]]; then
            ratios+=("$(calc "'%.2f' % ($x / $k) if $k else '-'")")
        else
            ratios+=("-")
        fi
    done
    printf '%-42s' "$1"; printf ' %14s' "${cols[@]}" "${k:--}" "${ratios[@]}"; echo
}

echo
echo "== results (DURATION=${DURATION}s, ROUNDS=$ROUNDS, 64-byte UDP; trafgen on CPU $TG_CPU, natbox on CPU $GW_CPU)"
printf '%-42s' metric; printf ' %14s' "${VARIANT_LIST[@]}" kernel; for v in "${VARIANT_LIST[@]}"; do printf ' %14s' "$v/kernel"; done; echo
row "pps delivered, 1 flow" pps1
row "pps delivered, 10k flows" pps10000
row "pps delivered, 10k flows from 64 hosts" ppshosts
row "  (offered by trafgen, 1 flow)" offered1
row "  (offered by trafgen, 10k flows)" offered10000
row "  (offered by trafgen, 64 hosts)" offeredhosts
row "  (generator's CPU $TG_CPU busy %, 1 flow)" tgbusy1 noratio
row "  (generator's CPU $TG_CPU busy %, 10k flows)" tgbusy10000 noratio
row "  (generator's CPU $TG_CPU busy %, 64 hosts)" tgbusyhosts noratio
row "  (gateway's CPU $GW_CPU busy %, 1 flow)" gwbusy1 noratio
row "  (gateway's CPU $GW_CPU busy %, 10k flows)" gwbusy10000 noratio
row "  (gateway's CPU $GW_CPU busy %, 64 hosts)" gwbusyhosts noratio
row "TCP Gbps, offloads off" tcpoff
row "TCP Gbps, csum offload on (TSO/GSO off)" tcpon
row "TCP Gbps, hosts TSO off, gw GRO/GSO on" tcpgro
row "TCP Gbps, offloads all on (TSO/GSO/GRO)" tcpall
row "gw CPU s per Mpkt, 1 flow" cpu1
row "gw CPU s per Mpkt, 10k flows" cpu10000
row "gw CPU s per Mpkt, 64 hosts" cpuhosts
row "natbox process CPU s per Mpkt, 1 flow" pcpu1
row "natbox process CPU s per Mpkt, 10k flows" pcpu10000
row "natbox process CPU s per Mpkt, 64 hosts" pcpuhosts
row "TCP CPU s per GB, offloads off" cpugboff
row "TCP CPU s per GB, csum on" cpugbon
row "TCP CPU s per GB, gw GRO on" cpugbgro
row "TCP CPU s per GB, offloads all on" cpugball
row "natbox process CPU s per GB, offloads off" pcpugboff
row "natbox process CPU s per GB, csum on" pcpugbon
row "natbox process CPU s per GB, gw GRO on" pcpugbgro
row "natbox process CPU s per GB, all on" pcpugball
row "RTT lan->wan avg ms (lower is better)" rtt
printf '%-42s %14s\n' "RTT direct veth gw->wan avg ms" "${R[direct.rtt]:--}"
echo
meets() {
    [[ "${R[$1.$2]:-}" =~ ^[0-9.]+$ ]] || { echo n/a; return; }
    calc "'yes' if ${R[$1.$2]} >= $3 * ${R[kernel.$2]:-1} else 'NO'"
}
for v in "${VARIANT_LIST[@]}"; do
    echo "$v: goal >= 1.5x kernel pps: 1 flow $(meets "$v" pps1 1.5), 10k flows $(meets "$v" pps10000 1.5);" \
        ">= 1.0x kernel TCP: offloads off $(meets "$v" tcpoff 1.0), csum on $(meets "$v" tcpon 1.0), gw GRO on $(meets "$v" tcpgro 1.0), all on $(meets "$v" tcpall 1.0)"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

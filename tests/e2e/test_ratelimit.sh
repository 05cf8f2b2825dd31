#!/usr/bin/env bash
# Per-inside-host rate limits (issue #18 section 1, `[host_limits]`) with real
# clients and two inside hosts (10.10.0.2 and 10.10.0.3, 2001:db8:10::2 and ::3 on the
# lan; natbox keeps buckets per address):
# - new sessions: 10.10.0.3 sends one UDP datagram to each of thousands of wan ports
#   (a scan) for 3 s; the wan sees at most burst + rate x time of them (tcpdump), the
#   drop counter host_session_rate rises, `show policy` names 10.10.0.3 and not
#   10.10.0.2, whose curl and ping meanwhile work. The same for IPv6 from ::3.
# - packets: a commit sets packets_per_second (applied live); iperf3 from 10.10.0.3
#   offers UDP at 1000 packets/s and the wan receives about the limit a second, while
#   10.10.0.2's ping loses nothing.
source "$(dirname "$0")/lib.sh"
NATBOX_ARGS="--admin $SOCK"
echo "# test_ratelimit: per-host new-session and packet rate limits"
skip_without_natbox
if [ "$E2E_TOPOLOGY" != two-port ]; then
    echo "skip - the two inside hosts are set up in the two-port topology only"
    echo "0 passed, 0 failed"; exit 0
fi
topology
# The second inside host: another address on the lan (natbox limits per address).
ip -n "$LAN" addr add 10.10.0.3/24 dev eth0
ip -n "$LAN" addr add 2001:db8:10::3/64 dev eth0 nodad
RATE=50
write_config
cat >>"$WORK/natbox.toml" <<EOF

[host_limits]
new_sessions_per_second = $RATE
EOF
start_natbox

mkdir -p "$WORK/www"
echo "natbox-e2e-$$-ratelimit" >"$WORK/www/index.html"
in_wan timeout 150 python3 -m http.server 8080 --bind :: --directory "$WORK/www" >/dev/null 2>&1 &
sleep 1

# scan SRC DST SECONDS: one UDP datagram to each port from 20000 up (at most 30000),
# from SRC, for SECONDS; prints "sent N in T s".
scan() {
    in_lan timeout $(($3 + 10)) python3 - "$@" <<'PYEOF'
import socket, sys, time
src, dst, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind((src, 0))
start, n = time.monotonic(), 0
while time.monotonic() - start < secs and n < 30000:
    try:
        s.sendto(b"scan", (dst, 20000 + n))
    except OSError:
        pass  # an ICMP error of an earlier datagram, reported on this socket
    n += 1
    if n % 50 == 0:
        time.sleep(0.001)  # about 15 000 a second, not a CPU spin
print(f"sent {n} in {time.monotonic() - start:.2f} s")
PYEOF
}
# The new sessions the wan saw: distinct destination ports of the scan in a pcap.
seen_ports() {
    in_wan tcpdump -n -r "$1" 2>/dev/null | grep -oE '\.([0-9]+): UDP' | sort -u | wc -l
}
drops() {
    shell 'show stats --json' | python3 -c "import json,sys; print(json.load(sys.stdin)['drops']['$1'])"
}

fetch() {
    local got
    got=$(in_lan timeout 10 curl -sS --max-time 5 --interface 10.10.0.2 http://198.51.100.1:8080/index.html)
    echo "got: $got"
    [ "$got" = "natbox-e2e-$$-ratelimit" ]
}

# --- IPv4 new-session scan from 10.10.0.3 -------------------------------------------
ip netns exec "$WAN" timeout 20 tcpdump -Z root -n -U -i eth0 -w "$WORK/scan4.pcap" \
    "udp and dst host 198.51.100.1 and dst portrange 20000-49999" >/dev/null 2>&1 &
TCPDUMP=$!
sleep 1
scan 10.10.0.3 198.51.100.1 3 >"$WORK/scan4.out" 2>&1 &
SCAN=$!
sleep 1
check "during 10.10.0.3's scan: 10.10.0.2's curl http://198.51.100.1:8080/ works" fetch
check "during 10.10.0.3's scan: 10.10.0.2's ping 198.51.100.1 works" \
    in_lan timeout 10 ping -c 3 -i 0.2 -W 2 -I 10.10.0.2 198.51.100.1
wait "$SCAN"
sleep 0.5
kill "$TCPDUMP" 2>/dev/null; wait "$TCPDUMP" 2>/dev/null || true
cat "$WORK/scan4.out"
SENT=$(sed -nE 's/^sent ([0-9]+) in .*/\1/p' "$WORK/scan4.out")
SECS=$(sed -nE 's/^sent [0-9]+ in ([0-9.]+) s/\1/p' "$WORK/scan4.out")
SEEN=$(seen_ports "$WORK/scan4.pcap")
# At most burst (= rate) + rate x time, with half a second of slack for the clocks;
# at least half of rate x time (a limit, not a block).
within_rate() {
    local sent=$1 secs=$2 seen=$3
    echo "sent $sent in $secs s; the wan saw $seen new sessions (rate $RATE/s, burst $RATE)"
    python3 -c "
sent, secs, seen, rate = $sent, $secs, $seen, $RATE
hi = rate + rate * (secs + 0.5)
lo = rate * secs / 2
assert sent > 4 * hi, f'the scan sent too little to test the limit: {sent}'
assert lo <= seen <= hi, f'{seen} not in [{lo:.0f}, {hi:.0f}]'
"
}
check "IPv4 scan: the wan saw at most burst + rate x time of 10.10.0.3's new sessions" \
    within_rate "${SENT:-0}" "${SECS:-0}" "$SEEN"
D4=$(drops host_session_rate)
check "drops host_session_rate counted the refused scan datagrams ($D4 of $SENT sent, $SEEN through)" \
    test "$D4" -ge $(( ${SENT:-0} - SEEN - ${SENT:-0} / 10 ))
policy_names_scanner() {
    shell 'show policy' >"$WORK/policy.txt"; cat "$WORK/policy.txt"
    grep -q "host limits: new sessions $RATE a second, burst $RATE ([0-9]* refused); packets no limit" "$WORK/policy.txt" &&
        grep -qE '^  10\.10\.0\.3: [0-9]+ refused' "$WORK/policy.txt" &&
        ! grep -q '10\.10\.0\.2:' "$WORK/policy.txt"
}
check "show policy: the limits, and 10.10.0.3 (not 10.10.0.2) among the hosts refused most" policy_names_scanner
check "metrics: natbox_drops_total{reason=\"host_session_rate\"} and natbox_host_limit_evictions_total" bash -c \
    "$(declare -f shell); SOCK=$SOCK; shell 'show metrics' >$WORK/metrics.txt; grep -E 'host_session_rate|host_limit' $WORK/metrics.txt; grep -qE '^natbox_drops_total\{reason=\"host_session_rate\"\} [1-9]' $WORK/metrics.txt && grep -qE '^natbox_host_limit_evictions_total [0-9]+' $WORK/metrics.txt"

# --- IPv6 new-session scan from 2001:db8:10::3 ---------------------------------------
ip netns exec "$WAN" timeout 15 tcpdump -Z root -n -U -i eth0 -w "$WORK/scan6.pcap" \
    "udp and dst host 2001:db8:ff::1 and dst portrange 20000-49999" >/dev/null 2>&1 &
TCPDUMP=$!
sleep 1
scan 2001:db8:10::3 2001:db8:ff::1 2 >"$WORK/scan6.out" 2>&1
sleep 0.5
kill "$TCPDUMP" 2>/dev/null; wait "$TCPDUMP" 2>/dev/null || true
cat "$WORK/scan6.out"
SENT6=$(sed -nE 's/^sent ([0-9]+) in .*/\1/p' "$WORK/scan6.out")
SECS6=$(sed -nE 's/^sent [0-9]+ in ([0-9.]+) s/\1/p' "$WORK/scan6.out")
check "IPv6 scan: the wan saw at most burst + rate x time of ::3's new filter states" \
    within_rate "${SENT6:-0}" "${SECS6:-0}" "$(seen_ports "$WORK/scan6.pcap")"
check "IPv6: 2001:db8:10::2's ping -6 works" \
    in_lan timeout 10 ping -6 -c 3 -i 0.2 -W 2 -I 2001:db8:10::2 2001:db8:ff::1
check "drops host_session_rate rose with the IPv6 scan" test "$(drops host_session_rate)" -gt "$D4"

# --- packets per second, set by a live commit ---------------------------------------
PPS=300
commit_pps() {
    shell configure 'delete host_limits.new_sessions_per_second' \
        "set host_limits.packets_per_second $PPS" "set host_limits.packets_burst $PPS" commit \
        >"$WORK/commit.out"
    cat "$WORK/commit.out"; grep -q "applied live" "$WORK/commit.out"
}
check "commit: packets_per_second = $PPS, no session limit (applied live)" commit_pps
check "show policy shows the new limits" bash -c \
    "$(declare -f shell); SOCK=$SOCK; shell 'show policy' | grep 'host limits: new sessions no limit (.*); packets $PPS a second, burst $PPS'"
in_wan timeout 40 iperf3 -s -B 198.51.100.1 -p 5202 -1 >"$WORK/iperf-server.log" 2>&1 &
sleep 1
T=4
# 1000-byte datagrams at 8 Mbit/s: 1000 packets a second from 10.10.0.3.
in_lan timeout 30 iperf3 -c 198.51.100.1 -p 5202 -B 10.10.0.3 -u -b 8M -l 1000 -t $T --json \
    >"$WORK/iperf.json" 2>"$WORK/iperf.err" &
IPERF=$!
sleep 1
in_lan timeout 10 ping -c 10 -i 0.2 -W 2 -I 10.10.0.2 198.51.100.1 >"$WORK/ping.out" 2>&1
PING_RC=$?
wait "$IPERF"
IPERF_RC=$?
pps_received() {
    echo "iperf3 exit $IPERF_RC"; cat "$WORK/iperf.err"
    python3 - "$WORK/iperf.json" "$PPS" "$T" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
pps, t = int(sys.argv[2]), float(sys.argv[3])
s = r["end"]["sum"]
sent, lost = s["packets"], s["lost_packets"]
got = sent - lost
secs = s["seconds"]
print(f"iperf3: sent {sent} in {secs:.2f} s, the wan received {got} ({got / secs:.0f}/s; limit {pps}/s, burst {pps})")
expect = pps * secs + pps
assert sent >= 2 * expect, f"offered too little: {sent}"
assert 0.7 * expect <= got <= 1.15 * expect, f"{got} not within [0.7, 1.15] x {expect:.0f}"
PYEOF
}
check "iperf3 UDP from 10.10.0.3 at 1000/s: the wan receives about $PPS a second (+ burst)" pps_received
check "meanwhile 10.10.0.2's ping loses nothing" bash -c "cat $WORK/ping.out; [ $PING_RC -eq 0 ] && grep -q ' 0% packet loss' $WORK/ping.out"
check "drops host_packet_rate counted the packets over the limit" bash -c \
    "$(declare -f shell drops); SOCK=$SOCK; n=\$(drops host_packet_rate); echo \$n; [ \"\$n\" -gt 1000 ]"
finish

#!/usr/bin/env bash
# Bulk TCP through natbox with iperf3: a fixed-size transfer lan -> wan and wan -> lan
# (-R) completes, and the bytes both ends report match. iperf3 (3.12) takes the
# receiver's count when the sender says it is done, before the last in-flight data
# lands (seen without natbox too, on a plain veth pair), so its counts are compared
# within 2%; the exact check is a socat transfer of the same size whose SHA-256 and
# byte count are taken of what the receiver got until EOF. Offloads: see below.
source "$(dirname "$0")/lib.sh"
echo "# test_iperf: iperf3 bulk TCP"
topology
start_natbox
SIZE=200M
SIZE_BYTES=$((200 * 1024 * 1024))

in_wan timeout 120 iperf3 -s -B 198.51.100.1 -p 5201 >"$WORK/iperf-server.log" 2>&1 &
sleep 1

# iperf3 client JSON: bytes the sender sent and bytes the receiver received (the
# receiver's own count, which iperf3 gets from the other end).
run_iperf() {
    local tag=$1; shift
    in_lan timeout 60 iperf3 -c 198.51.100.1 -p 5201 -n "$SIZE" --json "$@" >"$WORK/$tag.json" 2>"$WORK/$tag.err" || {
        cat "$WORK/$tag.err"; tail -n 20 "$WORK/$tag.json"; return 1; }
    python3 - "$WORK/$tag.json" "$SIZE_BYTES" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
if "error" in r:
    print("iperf3 error:", r["error"]); sys.exit(1)
sent = r["end"]["sum_sent"]["bytes"]
recv = r["end"]["sum_received"]["bytes"]
retr = r["end"]["sum_sent"].get("retransmits")
bps = r["end"]["sum_received"]["bits_per_second"]
print(f"sent={sent} received={recv} retransmits={retr} rate={bps/1e6:.0f} Mbit/s reverse={r['start']['test_start'].get('reverse')}")
ok = sent >= int(sys.argv[2]) and sent - int(sys.argv[2]) <= 1 << 20 and recv <= sent and recv >= 0.98 * sent
sys.exit(0 if ok else 1)
PY
}
# Exact: 200 MiB of random data (a 50 MiB blob four times) through socat; the receiver
# hashes what arrives until EOF.
head -c $((50 * 1024 * 1024)) /dev/urandom >"$WORK/blob"
EXPECT=$(cat "$WORK/blob" "$WORK/blob" "$WORK/blob" "$WORK/blob" | sha256sum | cut -d' ' -f1)
run_socat() {
    local dir=$1 got n
    rm -f "$WORK/recv"
    if [ "${dir%%-*}" = up ]; then
        ip netns exec "$WAN" timeout 30 socat -u TCP-LISTEN:5300,bind=198.51.100.1,reuseaddr OPEN:"$WORK/recv",creat,trunc &
        sleep 0.5
        in_lan timeout 30 bash -c 'cat "$1" "$1" "$1" "$1" | socat -u - TCP:198.51.100.1:5300' _ "$WORK/blob" || return 1
    else
        ip netns exec "$WAN" timeout 30 bash -c 'cat "$1" "$1" "$1" "$1" | socat -u - TCP-LISTEN:5300,bind=198.51.100.1,reuseaddr' _ "$WORK/blob" &
        sleep 0.5
        in_lan timeout 30 socat -u TCP:198.51.100.1:5300 OPEN:"$WORK/recv",creat,trunc || return 1
    fi
    wait $! || true
    n=$(stat -c %s "$WORK/recv"); got=$(sha256sum "$WORK/recv" | cut -d' ' -f1)
    rm -f "$WORK/recv"
    echo "bytes received: $n, sha256 $got (expected $((4 * 50 * 1024 * 1024)) bytes, $EXPECT)"
    [ "$n" = $((4 * 50 * 1024 * 1024)) ] && [ "$got" = "$EXPECT" ]
}

check "iperf3 lan -> wan, -n $SIZE: completes, sender sent $SIZE, receiver counted >= 98%" run_iperf up
check "iperf3 wan -> lan (-R), -n $SIZE: completes, sender sent $SIZE, receiver counted >= 98%" run_iperf down -R
check "socat lan -> wan, 200 MiB random: receiver got every byte, SHA-256 matches" run_socat up
check "socat wan -> lan, 200 MiB random: receiver got every byte, SHA-256 matches" run_socat down

# The runs above had the veth defaults except TSO/GSO (lib.sh turns those two off:
# natbox does not segment GSO super-frames): transmit checksum offload on, so natbox
# completed partial checksums. Once more with transmit checksum offload off on both
# hosts, so natbox rewrites full checksums incrementally.
in_lan ethtool -k eth0 | grep -E '^(tx-checksumming|scatter-gather|tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload):' | tr '\n' ' ' | sed 's/^/# lan eth0 offloads in the runs above: /;s/$/\n/'
in_lan ethtool -K eth0 tx off >/dev/null
in_wan ethtool -K eth0 tx off >/dev/null
check "iperf3 lan -> wan, tx checksum offload off: completes, counts agree" run_iperf up-nocsum
check "iperf3 wan -> lan (-R), tx checksum offload off: completes, counts agree" run_iperf down-nocsum -R
check "socat lan -> wan, tx checksum offload off: exact bytes, SHA-256 matches" run_socat up-nocsum
check "socat wan -> lan, tx checksum offload off: exact bytes, SHA-256 matches" run_socat down-nocsum

stop_natbox
grep -E "counters (inside|outside|drops):" "$WORK/natbox.log" | sed 's/^.*counters/# counters/'
no_errors() {
    local e
    for port in inside outside; do
        for c in rx_errors tx_errors; do
            e=$(counter "$port" "$c"); echo "$port $c=$e"; [ "$e" = 0 ] || return 1
        done
    done
}
check "counters: no rx/tx errors on either port" no_errors
finish

#!/usr/bin/env bash
# Bulk TCP through natbox with iperf3: a fixed-size transfer lan -> wan and wan -> lan
# (-R) completes, and the bytes both ends report match. iperf3 (3.12) takes the
# receiver's count when the sender says it is done, before the last in-flight data
# lands (seen without natbox too, on a plain veth pair), so its counts are compared
# within 2%; the exact check is a socat transfer of the same size whose SHA-256 and
# byte count are taken of what the receiver got until EOF.
#
# Three rounds of the same four transfers, with the hosts' offloads:
#   1. as lib.sh set them (E2E_OFFLOADS; by default "on": TSO/GSO/GRO and checksum
#      offload, so natbox forwards GSO super-frames of up to 64 KiB with partial
#      checksums, and must show it: gso_frames > 0); tcpdump in wan meanwhile must see
#      only the public address, never a lan one;
#   2. TSO/GSO off: wire-sized frames whose checksums are still partial;
#   3. transmit checksum offload off too: full checksums, rewritten incrementally.
source "$(dirname "$0")/lib.sh"
echo "# test_iperf: iperf3 bulk TCP"
topology
start_natbox
SIZE=200M
SIZE_BYTES=$((200 * 1024 * 1024))

in_wan timeout 220 iperf3 -s -B 198.51.100.1 -p 5201 >"$WORK/iperf-server.log" 2>&1 &
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
    local got n
    tcp_stream "${1%%-*}" "$WORK/blob" 4 30 || return 1
    n=$(stat -c %s "$WORK/recv"); got=$(sha256sum "$WORK/recv" | cut -d' ' -f1)
    rm -f "$WORK/recv"
    echo "bytes received: $n, sha256 $got (expected $((4 * 50 * 1024 * 1024)) bytes, $EXPECT)"
    [ "$n" = $((4 * 50 * 1024 * 1024)) ] && [ "$got" = "$EXPECT" ]
}

# One round: the four transfers; TAG names their files, LABEL the checks.
transfers() {
    local tag=$1 label=$2
    in_lan ethtool -k eth0 | grep -E '^(tx-checksumming|tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload):' | tr '\n' ' ' | sed "s|^|# $label: lan eth0 |;s|\$|\n|"
    check "iperf3 lan -> wan, -n $SIZE ($label): completes, sender sent $SIZE, receiver counted >= 98%" run_iperf "up-$tag"
    check "iperf3 wan -> lan (-R), -n $SIZE ($label): completes, counts agree" run_iperf "down-$tag" -R
    check "socat lan -> wan, 200 MiB random ($label): receiver got every byte, SHA-256 matches" run_socat "up-$tag"
    check "socat wan -> lan, 200 MiB random ($label): receiver got every byte, SHA-256 matches" run_socat "down-$tag"
}

# Headers of every TCP packet wan sees in round 1 (GRO merges them on wan's eth0).
ip netns exec "$WAN" timeout 200 tcpdump -Z root -n -U -s 96 -i eth0 -w "$WORK/wan.pcap" tcp >"$WORK/tcpdump.log" 2>&1 &
TD=$!
sleep 1
transfers hosts "offloads $E2E_OFFLOADS"
sleep 0.5
kill "$TD" 2>/dev/null; wait "$TD" 2>/dev/null || true
only_public() {
    local public private
    public=$(tcpdump -n -r "$WORK/wan.pcap" 'host 198.51.100.10' 2>/dev/null | wc -l)
    private=$(tcpdump -n -r "$WORK/wan.pcap" 'net 10.10.0.0/24' 2>/dev/null | wc -l)
    echo "TCP packets in wan: $public to/from 198.51.100.10, $private to/from 10.10.0.0/24"
    [ "$public" -gt 1000 ] && [ "$private" -eq 0 ]
}
check "tcpdump in wan (round 1): only the public address 198.51.100.10, no lan address" only_public

host_offloads off
transfers notso "TSO/GSO off"
in_lan ethtool -K eth0 tx off >/dev/null
in_wan ethtool -K eth0 tx off >/dev/null
transfers nocsum "tx checksum offload off"

stop_natbox
log_counters "${BOX_ROLES// /|}|drops"
no_errors() {
    local e
    for port in $BOX_ROLES; do
        for c in rx_errors tx_errors; do
            e=$(counter "$port" "$c"); echo "$port $c=$e"; [ "$e" = 0 ] || return 1
        done
    done
}
check_natbox "counters: no rx/tx errors on any port ($BOX_ROLES)" no_errors
if [ "$E2E_OFFLOADS" = on ]; then
    gso_seen() {
        local port n
        for port in $BOX_ROLES; do
            n=$(counter "$port" gso_frames)
            echo "$port gso_frames=$n"
            [ "${n:-0}" -gt 0 ] || return 1
        done
    }
    check_natbox "counters: natbox forwarded GSO super-frames on every port ($BOX_ROLES: gso_frames > 0)" gso_seen
fi
if [ "$E2E_GW_OFFLOADS" = on ]; then
    # veth has TSO: GRO is turned on on every port toward the port its frames leave by
    # (one-armed: the port itself).
    gro_on() {
        local dev
        for dev in $BOX_PORTS; do
            grep -E "port $dev: GRO on \([a-z0-9]+ has TSO\)" "$WORK/natbox.log" || return 1
        done
    }
    check_natbox "GRO turned on on every port ($BOX_PORTS)" gro_on
fi
finish

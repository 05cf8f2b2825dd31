#!/usr/bin/env bash
# Regression: natbox on ports without checksum offload, TSO, GSO or GRO (the gateway's
# lan0/wan0 set `ethtool -K ... tx off rx off tso off gso off gro off` before it starts,
# as on a NIC without offloads), while the lan and wan hosts keep theirs. natbox used
# to turn GRO on anyway and to send every GSO super-frame with PACKET_QDISC_BYPASS,
# which drops a super-frame the kernel must segment in software (send: ENOBUFS): the
# other port's tx_errors equalled this port's gso_frames and no transfer completed.
# Now super-frames leave through the qdisc layer, which segments and checksums them,
# and GRO stays off on a port whose other port has no TSO.
E2E_GW_OFFLOADS=off
source "$(dirname "$0")/lib.sh"
echo "# test_gw_offloads: bulk TCP through ports without offloads"
topology
start_natbox
in_wan timeout 60 iperf3 -s -B 198.51.100.1 -p 5201 >"$WORK/iperf-server.log" 2>&1 &
sleep 1

# iperf3 -n 20M in direction $1 (up, or down with -R): completes within 20 s.
iperf_20m() {
    in_lan timeout 20 iperf3 -c 198.51.100.1 -p 5201 -n 20M ${2:-} >"$WORK/$1.out" 2>&1
    local rc=$?
    grep -E 'sender|receiver|error' "$WORK/$1.out"
    return $rc
}
check "gw offloads off: iperf3 lan -> wan, -n 20M completes" iperf_20m up
check "gw offloads off: iperf3 wan -> lan (-R), -n 20M completes" iperf_20m down -R
exact() {
    local n
    head -c $((10 * 1024 * 1024)) /dev/urandom >"$WORK/blob"
    tcp_stream "$1" "$WORK/blob" 2 20 || return 1
    n=$(stat -c %s "$WORK/recv"); echo "received $n bytes"
    cmp <(cat "$WORK/blob" "$WORK/blob") "$WORK/recv"
}
check "gw offloads off: socat lan -> wan, 20 MiB random: every byte, checksums completed in software" exact up
check "gw offloads off: socat wan -> lan, 20 MiB random: every byte" exact down
gro_off() {
    local dev
    for dev in lan0 wan0; do
        in_gw ethtool -k "$dev" | grep -E '^generic-receive-offload:' | sed "s/^/$dev /"
        in_gw ethtool -k "$dev" | grep -q '^generic-receive-offload: off' || return 1
    done
    grep -c 'GRO left as it is' "$WORK/natbox.log" | grep -qx 2
}
check "natbox left GRO off on both ports (neither other port has TSO) and said so" gro_off

stop_natbox
grep -E "counters (inside|outside):" "$WORK/natbox.log" | sed 's/^.*counters/# counters/'
no_tx_errors() {
    local port e g
    for port in inside outside; do
        e=$(counter "$port" tx_errors) g=$(counter "$port" gso_frames)
        echo "$port tx_errors=$e gso_frames=$g"
        [ "$e" = 0 ] || return 1
    done
}
check "counters: no tx_errors on either port (super-frames were segmented, not dropped)" no_tx_errors

# With MTU 9000 on natbox's ports, ring slots are 16 KiB: super-frames of a few
# segments fit a slot and take the ring path, where the bypass dropped them without a
# trace (not even a tx_error).
write_config 's/^port = "wan0"/&\nmtu = 9000/' 's/^port = "lan0"/&\nmtu = 9000/'
start_natbox
check "gw offloads off, MTU 9000: iperf3 lan -> wan, -n 20M completes" iperf_20m up
check "gw offloads off, MTU 9000: iperf3 wan -> lan (-R), -n 20M completes" iperf_20m down -R
stop_natbox
grep -E "counters (inside|outside):" "$WORK/natbox.log" | sed 's/^.*counters/# counters/'
check "counters (MTU 9000): no tx_errors on either port" no_tx_errors
finish

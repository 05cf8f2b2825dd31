#!/usr/bin/env bash
# Unsolicited IPv4 from wan never reaches lan: neither to the pool address on a port
# where lan listens, nor routed straight to the private address (RFC 4787 REQ-8 /
# RFC 5382: no mapping, no entry; private destinations are not reachable from outside).
source "$(dirname "$0")/lib.sh"
PY="python3 $E2E_ROOT/tests/e2e/helpers.py"
echo "# test_unsolicited4: unsolicited IPv4 from wan"
topology
start_natbox

in_lan timeout 15 $PY tcp-listen 0.0.0.0 7000 12 >"$WORK/tcp-listen.out" 2>&1 &
TCPL=$!
in_lan timeout 15 $PY udp-listen 0.0.0.0 7001 12 >"$WORK/udp-listen.out" 2>&1 &
UDPL=$!
sleep 0.5
check "lan's TCP listener on :7000 accepts lan's own connection" in_lan timeout 3 $PY tcp-connect 10.10.0.2 7000 2
check "ping lan -> wan works (natbox forwards)" in_lan timeout 10 ping -c 2 -i 0.2 -W 2 198.51.100.1

# To the pool address, on the ports lan listens on.
tcp_pool() { ! in_wan timeout 5 $PY tcp-connect 198.51.100.10 7000 3; }
check "TCP connect from wan to 198.51.100.10:7000 fails" tcp_pool
in_wan timeout 5 $PY udp-send 198.51.100.10 7001 10

# Straight to the private address, routed via natbox.
ip -n "$WAN" route add 10.10.0.0/24 via 198.51.100.10
tcp_private() { ! in_wan timeout 5 $PY tcp-connect 10.10.0.2 7000 3; }
check "TCP connect from wan to 10.10.0.2:7000 (route via natbox) fails" tcp_private
in_wan timeout 5 $PY udp-send 10.10.0.2 7001 10
ping_private() { ! in_wan timeout 5 ping -c 3 -i 0.2 -W 1 10.10.0.2; }
check "ping from wan to 10.10.0.2 (route via natbox) fails" ping_private

wait "$TCPL" "$UDPL" || true
cat "$WORK/tcp-listen.out" "$WORK/udp-listen.out" | sed 's/^/# /'
check "lan's TCP listener accepted only lan's own connection" grep -qx "accepted 1 connections" "$WORK/tcp-listen.out"
check "lan's UDP listener received nothing" grep -qx "got 0 datagrams" "$WORK/udp-listen.out"

stop_natbox
log_counters drops
no_mapping() { [ "$(counter drops no_mapping)" -ge 10 ]; }
check_natbox "counters: no_mapping >= 10 (UDP/TCP to the pool address)" no_mapping
not_translated() { [ "$(counter drops inbound_not_translated)" -ge 13 ]; }
check_natbox "counters: inbound_not_translated >= 13 (TCP/UDP/ping to 10.10.0.2)" not_translated
finish

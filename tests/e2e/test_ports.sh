#!/usr/bin/env bash
# Port exhaustion (RFC 6888): with an external port pool of 4 (nat.port_min = 61000,
# nat.port_max = 61003; validation only requires port_max >= 1024, RFC 4787 REQ-3),
# one long-lived UDP flow holds a port; of 6 more flows from lan only 3 get one, the
# rest are dropped and counted (ports_exhausted), and the first flow keeps working
# with the same external endpoint throughout. With E2E_WORKERS=N, a host's flows stay
# on one worker, which owns 4/N of the ports (the per-worker port split): 4/N - 1 get one.
source "$(dirname "$0")/lib.sh"
PY="python3 $E2E_ROOT/tests/e2e/helpers.py"
echo "# test_ports: port pool exhaustion"
skip_without_natbox
topology
write_config 's/^\[nat\]/&\nport_min = 61000\nport_max = 61003/'
grep -q '^port_max = 61003' "$WORK/natbox.toml"
check "natbox check accepts the 4-port pool" "$NATBOX_BIN" check "$WORK/natbox.toml"
start_natbox
in_wan timeout 60 $PY udp-echo 198.51.100.1 5000 50 >/dev/null 2>&1 &
sleep 0.5

in_lan timeout 40 $PY exhaust 198.51.100.1 5000 6 >"$WORK/exhaust.out" 2>&1 || true
sed 's/^/# /' "$WORK/exhaust.out"
first_ok() {
    grep -E "^first_before=\('198\.51\.100\.10', 6100[0-3]\)$" "$WORK/exhaust.out" &&
    grep -E "^first_during=\('198\.51\.100\.10', 6100[0-3]\)$" "$WORK/exhaust.out" &&
    grep -E "^first_after=\('198\.51\.100\.10', 6100[0-3]\)$" "$WORK/exhaust.out" &&
    grep -qx "first_kept_mapping=yes" "$WORK/exhaust.out"
}
check "the first flow works before, during and after, on the same external port in 61000-61003" first_ok
GOT=$((4 / ${E2E_WORKERS:-1} - 1))
check "exactly $GOT of 6 extra flows got an external port" grep -qx "extra_ok=$GOT" "$WORK/exhaust.out"
in_range() {
    ! grep -E "^extra.*198\.51\.100\.10" "$WORK/exhaust.out" | grep -vE "', 6100[0-3]\)$"
}
check "every external port handed out is in 61000-61003" in_range
stop_natbox
log_counters "nat|drops"
exhausted() { [ "$(counter drops ports_exhausted)" -ge $((6 - GOT)) ]; }
check "counters: ports_exhausted >= $((6 - GOT))" exhausted
finish

#!/usr/bin/env bash
# NAT behaviour discovery (RFC 5780) with coturn's turnserver in wan (two addresses,
# two ports) and turnutils_natdiscovery in lan, for each nat.filtering value:
# mapping must be endpoint-independent (RFC 4787 REQ-1), filtering what was
# configured (REQ-8), hairpinning supported (REQ-9) — checked with natdiscovery -H
# and directly with two UDP sockets and a UDP echo server in wan.
#
# One-armed, the VPC router hairpins: traffic to the public 198.51.100.10 comes back to
# the box from 198.51.100.10 (as in a cloud VPC), so natbox sees an ordinary inbound
# packet (filtered as configured) and counts no hairpin of its own. With E2E_BOX=kernel
# only address-and-port-dependent filtering runs: conntrack filters on the 5-tuple.
source "$(dirname "$0")/lib.sh"
PY="python3 $E2E_ROOT/tests/e2e/helpers.py"
echo "# test_natdiscovery: RFC 5780 discovery with coturn, hairpinning"
topology
ip -n "$WAN" addr add 198.51.100.2/24 dev eth0
# STUN only, no auth, no TLS, bounded in time. RFC 5780 needs two addresses and an
# alternative port (CHANGE-REQUEST).
in_wan timeout 240 turnserver -n -L 198.51.100.1 -L 198.51.100.2 --listening-port 3478 \
    --alt-listening-port 3479 --stun-only --no-auth --no-tls --no-dtls --no-cli \
    --log-file stdout --simple-log --pidfile "$WORK/turn.pid" --no-stdout-log \
    --userdb "$WORK/turndb" >"$WORK/turn.log" 2>&1 &
in_wan timeout 240 $PY udp-echo 198.51.100.1 5000 230 >/dev/null 2>&1 &
sleep 1

discover() {
    in_lan timeout 20 turnutils_natdiscovery "$@" 198.51.100.1 >"$WORK/nd.out" 2>&1 || true
    grep -E '^NAT |STUN receive timeout|hairpin' "$WORK/nd.out" || true
}

filterings="endpoint-independent address-dependent address-and-port-dependent"
[ "$E2E_BOX" != kernel ] || filterings=address-and-port-dependent
for filtering in $filterings; do
    echo "# nat.filtering = $filtering"
    write_config "s/^filtering = .*/filtering = \"$filtering\"/"
    grep -q "^filtering = \"$filtering\"" "$WORK/natbox.toml"
    start_natbox

    mapping() { discover -m; grep -qx 'NAT with Endpoint Independent Mapping!' "$WORK/nd.out"; }
    check "[$filtering] natdiscovery -m: endpoint-independent mapping" mapping

    case $filtering in
        endpoint-independent) expect='NAT with Endpoint Independent Filtering!' ;;
        address-dependent) expect='NAT with Address Dependent Filtering!' ;;
        address-and-port-dependent) expect='NAT with Address and Port Dependent Filtering!' ;;
    esac
    filter() { discover -f; grep -qx "$expect" "$WORK/nd.out"; }
    check "[$filtering] natdiscovery -f: \"$expect\"" filter

    if [ "$filtering" = endpoint-independent ]; then
        hair_nd() { discover -H; grep -q 'successful hairpinning' "$WORK/nd.out"; }
        check "[$filtering] natdiscovery -H: hairpinning works" hair_nd
        check "[$filtering] hairpin: B -> A's external endpoint arrives from B's external endpoint" \
            in_lan timeout 15 $PY hairpin 198.51.100.1 5000
    else
        # Hairpinned packets come from B's external endpoint, so A's filter applies:
        # unsolicited they are refused; once A sent to B's external endpoint they pass.
        hair_filtered() {
            ! in_lan timeout 15 $PY hairpin 198.51.100.1 5000 >"$WORK/hp.out" 2>&1
            cat "$WORK/hp.out"; grep -qx "A received nothing" "$WORK/hp.out"
        }
        check "[$filtering] hairpin without A -> B first: filtered (not received)" hair_filtered
        check "[$filtering] hairpin after A -> B's external endpoint: arrives from B's external endpoint" \
            in_lan timeout 15 $PY hairpin 198.51.100.1 5000 punch
    fi
    stop_natbox
    log_counters "nat|drops"
    if [ "$E2E_TOPOLOGY" = two-port ]; then
        hairpinned() { [ "$(counter nat hairpinned)" -ge 1 ]; }
        check_natbox "[$filtering] counters: hairpinned >= 1" hairpinned
    fi
    if [ "$filtering" != endpoint-independent ]; then
        filtered() { [ "$(counter drops filtered)" -ge 1 ]; }
        check_natbox "[$filtering] counters: filtered >= 1" filtered
    fi
done
finish

#!/usr/bin/env bash
# What natbox says while it waits (issue #17): a port the configuration names that
# does not exist yet, and a DHCP port nobody answers. natbox starts (host mode, as in
# the appliance) with outside `ipv4 = "dhcp"` on wan0, which is not there: it logs the
# missing port and tries again with a backoff (0.5 s doubling to 30 s), its shell
# shows the port as missing (`show interfaces`, `natbox_port_up` 0). wan0 is then
# created: natbox picks it up and forwards. No DHCP server answers yet: `show
# interfaces` and the metrics say so, and after 30 s the log does. dnsmasq then starts
# and natbox, still asking at the RFC 2131 backoff (at most 64 s apart), gets its lease
# and the lan reaches the wan.
source "$(dirname "$0")/lib.sh"
echo "# test_waiting: a port that appears late, a DHCP server that does not answer"
skip_without_natbox
[ "$E2E_TOPOLOGY" = two-port ] || { echo "skip - the two-port topology's wan0 is what appears late"; echo "0 passed, 0 failed"; exit 0; }
topology
command -v dnsmasq >/dev/null || { echo "FAIL - dnsmasq missing (tests/setup.sh installs it)"; FAILED=$((FAILED + 1)); finish; }
# Deleting wan0 deletes its peer, ns wan's eth0, too.
ip -n "$GW" link del wan0
write_config 's|^ipv4 = "198.51.100.10/24"|ipv4 = "dhcp"|' '/^gateway4 = /d'
ip netns exec "$GW" "$NATBOX_BIN" run --config "$WORK/natbox.toml" --admin "$SOCK" >"$WORK/natbox.log" 2>&1 &
NATBOX_PID=$!
# logged PATTERN TENTHS: until natbox's log has a line matching PATTERN (ERE).
logged() { for _ in $(seq "$2"); do grep -qE "$1" "$WORK/natbox.log" && return 0; sleep 0.1; done; return 1; }

check "the missing port is logged: outside port wan0, no interface, trying again" \
    logged 'outside port wan0: no interface named wan0: the dataplane is not running; trying again in' 50
missing() { shell 'show interfaces' | grep -E '^outside +wan0 +missing$' >/dev/null; }
check "show interfaces: outside wan0 missing (the shell is served meanwhile)" missing
port_down() { shell 'show metrics' | grep -x 'natbox_port_up{port="outside"} 0' >/dev/null; }
check "show metrics: natbox_port_up{port=\"outside\"} 0" port_down
sleep 3
tries=$(grep -c 'trying again in' "$WORK/natbox.log")
echo "# failed tries logged in the first ~5 s: $tries"
bounded() { [ "$tries" -ge 2 ] && [ "$tries" -le 6 ]; }
check "the retries back off (2 to 6 tries logged in the first 5 s, not one per tick)" bounded

# wan0 appears, with the wan host behind it.
ip link add eth0 netns "$WAN" type veth peer name wan0 netns "$GW"
ip -n "$WAN" addr add 198.51.100.1/24 dev eth0
ip -n "$WAN" link set eth0 up
check "the late port is picked up within the 30 s backoff cap: natbox forwards" logged 'natbox forwarding' 350
up() { shell 'show metrics' | grep -x 'natbox_port_up{port="outside"} 1' >/dev/null; }
check "show metrics: natbox_port_up{port=\"outside\"} 1" up

# No DHCP server yet.
no_answer() { shell 'show interfaces' | grep -E '^outside .* selecting, no answer for ' >/dev/null; }
check "show interfaces: the outside port's DHCP client is selecting, no answer" no_answer
unbound() { shell 'show metrics' | grep -x 'natbox_dhcp4_bound{port="outside"} 0' >/dev/null; }
check "metrics: natbox_dhcp4_bound{port=\"outside\"} 0" unbound
waited() { shell 'show metrics' | grep -E '^natbox_dhcp4_seconds_without_lease\{port="outside"\} [0-9]+$' >/dev/null; }
check "metrics: natbox_dhcp4_seconds_without_lease{port=\"outside\"}" waited
check "after 30 s without an answer the console says so (and that it keeps asking)" \
    logged 'outside port: no DHCP answer for 3[0-9] s; still asking' 400
shell 'show interfaces' | sed 's/^/# /'

dhcp_server eth0 "$WORK/dnsmasq.log"
check "dnsmasq answers the next DISCOVER (at most 64 s later): natbox is bound" \
    logged 'outside port: DHCP lease 198\.51\.100\.5[0-9]/24' 700
in_lan timeout 20 ping -c 5 -i 0.2 -W 2 198.51.100.1 >"$WORK/ping.log" 2>&1 || true
check "ping lan -> wan through the late port and the late lease" grep -q ' 0% packet loss' "$WORK/ping.log"
bound_now() { shell 'show interfaces' | grep -E '^outside .* bound ' >/dev/null; }
check "show interfaces: the outside port's DHCP client is bound" bound_now
grep -E 'trying again|no DHCP answer|DHCP lease|forwarding' "$WORK/natbox.log" | sed 's/^.*\] /# /'
finish

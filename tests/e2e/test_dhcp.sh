#!/usr/bin/env bash
# DHCPv4 on the outside port (RFC 2131), against a real server: dnsmasq in ns wan
# leases 198.51.100.50-59 for 2 minutes with T1 at 12 s and T2 at 20 s. natbox runs
# with outside `ipv4 = "dhcp"`, no gateway and no pool: the lease gives the address,
# the router and with them the NAT address. A ping flow from lan runs across the
# renewal at T1 and loses nothing; the configuration as written keeps "dhcp".
source "$(dirname "$0")/lib.sh"
echo "# test_dhcp: DHCPv4 client on the outside port"
topology
command -v dnsmasq >/dev/null || { echo "FAIL - dnsmasq missing (tests/setup.sh installs it)"; FAILED=$((FAILED + 1)); finish; }
in_wan dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=eth0 --bind-interfaces \
    --dhcp-range=198.51.100.50,198.51.100.59,255.255.255.0,2m \
    --dhcp-option=option:router,198.51.100.1 \
    --dhcp-option=option:T1,12 --dhcp-option=option:T2,20 \
    --dhcp-leasefile="$WORK/leases" --pid-file="$WORK/dnsmasq.pid" --log-dhcp \
    >"$WORK/dnsmasq.log" 2>&1 &
write_config 's|^ipv4 = "198.51.100.10/24"|ipv4 = "dhcp"|' '/^gateway4 = /d'
SOCK="$WORK/admin.sock"
NATBOX_ARGS="--admin $SOCK"
start_natbox
shell() { printf '%s\n' "$@" | timeout 10 socat -t 2 - "UNIX-CONNECT:$SOCK"; }

# The address the lease gave, from natbox's log.
leased() { grep -o 'outside port: DHCP lease 198\.51\.100\.5[0-9]' "$WORK/natbox.log" | grep -o '198[0-9.]*' | head -n 1; }
bound() { for _ in $(seq 100); do [ -n "$(leased)" ] && return 0; sleep 0.1; done; return 1; }
check "RFC 2131 3.1: natbox is bound within 10 s (DISCOVER, OFFER, REQUEST, ACK)" bound
ADDR=$(leased)
echo "# leased ${ADDR:-nothing}"
on_port() { shell 'show interfaces' | grep -q "${ADDR:-none}/24"; }
check "the lease's address is on natbox's outside port (show interfaces)" on_port
as_written() { shell 'show config' | grep -q 'ipv4 = "dhcp"'; }
check "show config keeps ipv4 = \"dhcp\" as written" as_written

# A flow across the renewal at T1 (12 s after the ACK): 20 s of pings.
in_lan timeout 40 ping -c 100 -i 0.2 -W 2 198.51.100.1 >"$WORK/ping.log" 2>&1
check "ping lan -> wan through the leased address: none lost across the renewal" \
    grep -q ' 0% packet loss' "$WORK/ping.log"
tail -n 2 "$WORK/ping.log" | sed 's/^/# /'
acks() { grep -c "DHCPACK(eth0) ${ADDR:-none}" "$WORK/dnsmasq.log"; }
renewed() { [ "$(acks)" -ge 2 ]; }
check "RFC 2131 4.4.5: natbox renewed at T1 (dnsmasq acked ${ADDR:-none} twice or more)" renewed
echo "# dnsmasq DHCPACKs for ${ADDR:-none}: $(acks)"
through() { shell 'show sessions proto icmp' | grep -q "${ADDR:-none}:"; }
check "the ping's session is translated to the leased address (show sessions)" through
shown() { shell 'show dhcp' | tee "$WORK/dhcp.out" | grep -E "^outside +(bound|renewing) +${ADDR:-none}/24 +198\.51\.100\.1 +198\.51\.100\.1 "; }
check "show dhcp: outside bound to the lease, server and router 198.51.100.1" shown
sed "s/^/# /" "$WORK/dhcp.out"; grep -E "DHCP(DISCOVER|OFFER|REQUEST|ACK|NAK)" "$WORK/dnsmasq.log" | sed "s/^/# dnsmasq: /"
gauged() { shell 'show metrics' | grep -qx 'natbox_dhcp4_bound{port="outside"} 1'; }
check "metrics: natbox_dhcp4_bound{port=\"outside\"} 1" gauged
kept() { ! grep -q 'DHCP moved the address' "$WORK/natbox.log"; }
check "no address change was logged (the renewal kept the address)" kept
finish

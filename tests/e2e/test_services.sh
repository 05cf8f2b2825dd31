#!/usr/bin/env bash
# The box's own services with real clients: curl scrapes Prometheus metrics from the
# inside address (and cannot from the outside), a syslog collector in the lan
# receives RFC 5424 NAT events (create and delete, no remote address, rate-limited
# with a drop counter), and `ping` from the box over the admin socket reaches hosts
# on both sides, IPv4 and IPv6, while a lan host pings the same target through NAT.
# One-armed, "the outside" is any source beyond the inside prefixes: the wan host's
# requests reach the box's only address through the router's 1:1 NAT and must still
# get nothing; the box's own pings leave from its pool address (POOL4).
source "$(dirname "$0")/lib.sh"
skip_without_natbox
NATBOX_ARGS="--admin $SOCK"
shell() { printf '%s\n' "$@" | timeout 30 socat -t 25 - "UNIX-CONNECT:$SOCK"; }
export -f shell
export SOCK

topology
write_config 's/^level = "info"/level = "info"\nsyslog = "10.10.0.2:5514"/'
printf '\n[metrics]\nlisten = "10.10.0.1:9100"\n' >>"$WORK/natbox.toml"

# The collector: every datagram to 10.10.0.2:5514, one per line, for at most 60 s.
in_lan python3 "$E2E_ROOT/tests/e2e/helpers.py" udp-listen 10.10.0.2 5514 60 "$WORK/syslog.txt" >/dev/null &
start_natbox
in_lan timeout 5 python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.10.0.2", 40000)); s.sendto(b"x", ("198.51.100.1", 9))'

got_event() { for _ in $(seq 50); do grep -q "$1" "$WORK/syslog.txt" && return 0; sleep 0.1; done; return 1; }
export -f got_event
export WORK
check "syslog: an RFC 5424 create event from the box's inside address" bash -c \
    "got_event 'event=\"create\" proto=\"udp\" inside=\"10.10.0.2:40000\" outside=\"$POOL4:$(ext_port 40000)\"' &&
     grep -E '^10\.10\.0\.1:514 <134>1 [0-9T:.-]+Z natbox natbox - NAT44 \[nat@32473 ' $WORK/syslog.txt"
check "syslog: no remote address in any event (RFC 6888 REQ-12)" bash -c \
    "! grep -q '198\.51\.100\.1[^0-9]' $WORK/syslog.txt"
check "syslog: clearing the session logs the mapping's delete event" bash -c \
    "shell 'clear sessions proto udp' | grep -q 'cleared' &&
     got_event 'event=\"delete\" proto=\"udp\" inside=\"10.10.0.2:40000\"'"

check "metrics: curl from lan scrapes Prometheus text over HTTP" bash -c \
    "out=\$(ip netns exec $LAN curl -sf --max-time 5 http://10.10.0.1:9100/metrics) &&
     grep -q '^natbox_sessions ' <<<\"\$out\" && grep -Eq '^natbox_nat_events_logged_total [1-9]' <<<\"\$out\" &&
     grep -q '^natbox_drops_total{reason=\"no_mapping\"}' <<<\"\$out\" &&
     grep -q '^natbox_io_socket_drops_total{port=\"$INSIDE_ROLE\"} [0-9][0-9]*\$' <<<\"\$out\""
check "show interfaces --json carries the I/O counters (socket drops, GSO super-frames)" bash -c \
    "shell 'show interfaces --json' | python3 -c 'import json,sys; p=json.load(sys.stdin); assert all(\"gso_frames\" in i and \"socket_drops\" in i for i in p), p'"
check "metrics: ten scrapes in a row all answer" bash -c \
    "for i in \$(seq 10); do ip netns exec $LAN curl -sf --max-time 5 -o /dev/null http://10.10.0.1:9100/metrics || exit 1; done"
check "metrics: other paths get 404, other methods 405" bash -c \
    "[ \$(ip netns exec $LAN curl -s --max-time 5 -o /dev/null -w '%{http_code}' http://10.10.0.1:9100/) = 404 ] &&
     [ \$(ip netns exec $LAN curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST http://10.10.0.1:9100/metrics) = 405 ]"
check "metrics: never served on the outside, on any address" bash -c \
    "ip netns exec $WAN ip route add 10.10.0.0/24 via 198.51.100.10 &&
     ! ip netns exec $WAN curl -s --max-time 3 http://198.51.100.10:9100/metrics &&
     ! ip netns exec $WAN curl -s --max-time 3 http://10.10.0.1:9100/metrics"

check "ping from the box to a wan host: replies with times" bash -c \
    "out=\$(shell 'ping 198.51.100.1 count 3'); echo \"\$out\";
     grep -q '^PING 198.51.100.1 from $POOL4' <<<\"\$out\" &&
     [ \$(grep -c 'bytes from 198.51.100.1: icmp_seq=' <<<\"\$out\") = 3 ] &&
     grep -q '3 packets transmitted, 3 received, 0% packet loss' <<<\"\$out\""
check "ping from the box to a lan host, from the inside address" bash -c \
    "out=\$(shell 'ping 10.10.0.2 count 2'); grep -q '^PING 10.10.0.2 from 10.10.0.1' <<<\"\$out\" &&
     grep -q '2 packets transmitted, 2 received' <<<\"\$out\""
check "ping from the box over IPv6" bash -c \
    "shell 'ping 2001:db8:ff::1 count 2' | grep -q '2 packets transmitted, 2 received'"
check "box ping and a lan host's ping through NAT to the same target both get every reply" bash -c \
    "ip netns exec $LAN ping -c 4 -i 0.5 -W 2 198.51.100.1 >$WORK/lanping.txt & lan=\$!;
     out=\$(shell 'ping 198.51.100.1 count 3'); wait \$lan;
     grep -q '3 received, 0% packet loss' <<<\"\$out\" && grep -q ' 0% packet loss' $WORK/lanping.txt"
check "ping to a silent address reports the loss; the shell answers again after" bash -c \
    "out=\$(shell 'ping 198.51.100.99 count 1' 'show uptime'); echo \"\$out\";
     grep -q '1 packets transmitted, 0 received, 100% packet loss' <<<\"\$out\" && grep -q '^up ' <<<\"\$out\""
check "ping refuses a bad address and a bad count" bash -c \
    "out=\$(shell 'ping nonsense' 'ping 198.51.100.1 count 0'); grep -q 'IPv4 or IPv6 address' <<<\"\$out\" && grep -q 'count must be 1 to 100' <<<\"\$out\""

check "syslog rate limit: a burst beyond log.event_rate is counted as dropped" bash -c \
    "shell configure 'set log.event_rate 5' commit | grep -q 'applied live' &&
     ip netns exec $LAN python3 -c '
import socket
for port in range(41000, 41040):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((\"10.10.0.2\", port)); s.sendto(b\"x\", (\"198.51.100.1\", 9)); s.close()
' && sleep 0.5 && shell 'show stats --json' | python3 -c '
import json, sys
c = json.load(sys.stdin)[\"counters\"]
assert c[\"nat_events_dropped\"] >= 30, c
'"
check "natbox stayed up and counted the local traffic" bash -c \
    "kill -0 $NATBOX_PID && shell 'show stats' | grep -E '^local_delivered +[1-9]'"
finish

#!/usr/bin/env bash
# The admin shell over the host-mode admin socket, driven the way scripts drive it
# (socat): live sessions and counters after real traffic, --json, a filter, clear,
# hostile input, and `poweroff` stopping natbox cleanly.
source "$(dirname "$0")/lib.sh"
NATBOX_ARGS="--admin $SOCK"

topology
start_natbox
in_lan timeout 10 ping -c 2 -W 2 198.51.100.1 >/dev/null
in_lan timeout 5 python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.10.0.2", 40000)); s.sendto(b"x", ("198.51.100.1", 9))'

check "show sessions lists the UDP flow with its external endpoint" bash -c \
    "$(declare -f shell); SOCK=$SOCK; shell 'show sessions proto udp' | grep -E '10\.10\.0\.2:40000 +198\.51\.100\.10:$(ext_port 40000) +198\.51\.100\.1:9'"
check "prefixes: 'sh int' shows both ports with their devices" bash -c \
    "$(declare -f shell); SOCK=$SOCK; out=\$(shell 'sh int'); grep -q lan0 <<<\"\$out\" && grep -q wan0 <<<\"\$out\""
check "show stats --json is JSON with the translated packet counts" bash -c \
    "$(declare -f shell); SOCK=$SOCK; shell 'show stats --json' | python3 -c 'import json,sys; c=json.load(sys.stdin)[\"counters\"]; assert c[\"nat_out_icmp\"] >= 2 and c[\"nat_out_udp\"] >= 1, c'"
check "show metrics is Prometheus text" bash -c \
    "$(declare -f shell); SOCK=$SOCK; shell 'show metrics' | grep '^natbox_sessions ' >/dev/null"
check "several commands in one connection, answered in order" bash -c \
    "$(declare -f shell); SOCK=$SOCK; out=\$(shell 'show version' 'show uptime'); head -n 1 <<<\"\$out\" | grep -q '^natbox ' && tail -n 1 <<<\"\$out\" | grep -q '^up '"
check "hostile line (escape sequences) gets an error, the shell keeps answering" bash -c \
    "$(declare -f shell); SOCK=$SOCK; out=\$(shell \$'show \\e[2J\\x01 stats' 'show version'); grep -q 'control characters' <<<\"\$out\" && grep -q '^natbox ' <<<\"\$out\""
check "huge binary input: natbox stays up and keeps forwarding" bash -c \
    "head -c 3000000 /dev/urandom | timeout 10 socat -t 1 - UNIX-CONNECT:$SOCK >/dev/null 2>&1; kill -0 $NATBOX_PID && ip netns exec $LAN timeout 10 ping -c 1 -W 2 198.51.100.1"
check "clear sessions removes them" bash -c \
    "$(declare -f shell); SOCK=$SOCK; shell 'clear sessions' | grep -q 'sessions cleared' && shell 'show sessions' | grep -q '0 shown of 0 sessions'"
check "poweroff from the shell stops natbox cleanly" bash -c \
    "$(declare -f shell); SOCK=$SOCK; shell poweroff | grep -q 'powering off'; for _ in \$(seq 50); do kill -0 $NATBOX_PID 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
wait "$NATBOX_PID" 2>/dev/null || true
NATBOX_PID=""
check "counters were logged at exit" grep -q "counters nat:" "$WORK/natbox.log"
finish

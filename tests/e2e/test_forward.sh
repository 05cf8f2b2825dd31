#!/usr/bin/env bash
# Static port forwarding (issue #18 section 2, [[forward]]) with real clients: a web
# server on the lan host reached from wan by curl at the public address:port, a UDP
# forward (socat from wan to a UDP echo server on the lan host, which answers with the
# source it saw), a source the allow list does not name refused (counted, nothing
# reaches the server), hairpinning from another inside address (10.10.0.3) through the
# public address:port, which the server sees as the box's public address (RFC 4787
# REQ-9 / RFC 5382 REQ-8: the client's translated endpoint), `show forwards` and the
# metrics counting it all, and a commit that removes the TCP forward ending its
# sessions. E2E_TOPOLOGY=one-armed: the wan host reaches the Elastic IP 198.51.100.10,
# which the VPC router maps to the box's own address, the pool; hairpin goes to that
# pool address (POOL4), as a VPC's hosts reach a NAT instance's private address.
# A fourth forward leads to a server on 10.10.0.3; with E2E_WORKERS = 2 that host's
# worker is worker 1, and the steering program must send the forwarded port's frames
# straight to it: ten downloads hand (almost) nothing between workers.
source "$(dirname "$0")/lib.sh"
PY="python3 $E2E_ROOT/tests/e2e/helpers.py"
NATBOX_ARGS="--admin $SOCK"
echo "# test_forward: port forwards from wan, UDP, allow lists, hairpin, live removal"
skip_without_natbox
topology
# Source NAT's ports start at 10000, so the forwarded ports below never collide.
write_config 's/^\[nat\]$/[nat]\nport_min = 10000/'
cat >>"$WORK/natbox.toml" <<'EOF2'

[[forward]]
protocol = "tcp"
port = 8080
to = "10.10.0.2"
to_port = 80
comment = "web"

[[forward]]
protocol = "udp"
port = "5353-5354"
to = "10.10.0.2"
to_port = 5300
allow = ["198.51.100.0/24"]

[[forward]]
protocol = "tcp"
port = 8081
to = "10.10.0.2"
to_port = 80
allow = ["203.0.113.0/24"]
comment = "not from the test's wan"

[[forward]]
protocol = "tcp"
port = 8090
to = "10.10.0.3"
to_port = 80
comment = "the second server"
EOF2
start_natbox
PUBLIC=198.51.100.10

# The second inside host's address (hairpin client), on the lan host's link.
ip -n "$LAN" addr add 10.10.0.3/24 dev eth0
mkdir -p "$WORK/www"
echo "natbox-e2e-$$-forward" >"$WORK/www/index.html"
# http.server logs each request's client address on stderr.
in_lan timeout 120 python3 -m http.server 80 --bind 10.10.0.2 --directory "$WORK/www" >/dev/null 2>"$WORK/http.log" &
in_lan timeout 120 python3 -m http.server 80 --bind 10.10.0.3 --directory "$WORK/www" >/dev/null 2>&1 &
in_lan timeout 60 $PY udp-echo 10.10.0.2 5301 60 >/dev/null 2>&1 &
in_lan timeout 60 $PY udp-echo 10.10.0.2 5300 60 >/dev/null 2>&1 &
# listening PROTO PORT: waits (at most 10 s, the machine may be loaded) for a socket.
listening() {
    for _ in $(seq 100); do
        in_lan ss -Hln"$1" "sport = :$2" | grep -q . && return 0
        sleep 0.1
    done
    echo "nothing listens on $1 port $2 in lan"; return 1
}
listening t 80; listening u 5300; listening u 5301
for _ in $(seq 100); do
    [ "$(in_lan ss -Hltn 'sport = :80' | grep -c LISTEN)" -ge 2 ] && break
    sleep 0.1
done

fetch() {
    local got
    got=$(in_wan timeout 10 curl -sS --max-time 5 "$@")
    echo "got: $got"
    [ "$got" = "natbox-e2e-$$-forward" ]
}
check "wan: curl http://$PUBLIC:8080/ reaches the lan host's web server (forward 0)" \
    fetch "http://$PUBLIC:8080/index.html"
check "the server saw the wan client's own address (198.51.100.1)" \
    grep -q '^198.51.100.1 .*GET /index.html' "$WORK/http.log"

udp_fwd() {
    local got
    got=$(in_wan timeout 10 bash -c "echo hello | socat -T 3 - UDP4:$PUBLIC:$1")
    echo "got: $got"
    [ "${got%% *}" = 198.51.100.1 ]
}
check "wan: UDP to $PUBLIC:5353 reaches the echo server on 10.10.0.2:5300 and its answer comes back (forward 1)" udp_fwd 5353
check "wan: UDP to $PUBLIC:5354 reaches 10.10.0.2:5301 (the range maps one to one)" udp_fwd 5354

refused() { ! in_wan timeout 10 curl -sS --max-time 3 "http://$PUBLIC:8081/index.html"; }
check "wan: curl to $PUBLIC:8081 gets nothing: 198.51.100.1 is not in forward 2's allow list" refused

HAIRPIN_TO=$POOL4
hairpin() {
    local got
    got=$(in_lan timeout 10 curl -sS --max-time 5 --interface 10.10.0.3 "http://$HAIRPIN_TO:8080/index.html")
    echo "got: $got"
    [ "$got" = "natbox-e2e-$$-forward" ]
}
check "hairpin: 10.10.0.3 reaches the server at $HAIRPIN_TO:8080" hairpin
check "hairpin: the server saw the box's public address ($POOL4), not 10.10.0.3" \
    bash -c "grep 'GET' '$WORK/http.log'; grep -q '^$POOL4 .*GET /index.html' '$WORK/http.log' && ! grep -q '^10.10.0.3 ' '$WORK/http.log'"

counters() {
    shell 'show forwards --json' >"$WORK/fwd.json"; cat "$WORK/fwd.json"
    python3 - "$WORK/fwd.json" <<'PYEOF'
import json, sys
f = json.load(open(sys.argv[1]))["forwards"]
hits = [x["hits"] for x in f]
refused = [x["refused"] for x in f]
# forward 0: the wan curl and the hairpin; forward 1: one datagram each port;
# forward 2: curl's SYN and its retransmissions, all refused.
assert hits == [2, 2, 0, 0], hits
assert refused[0] == 0 and refused[1] == 0 and refused[2] >= 1, refused
PYEOF
}
check "show forwards --json: hits [2, 2, 0, 0], forward 2 refused the wan's SYNs" counters
check "show forwards lists them" bash -c \
    "$(declare -f shell); SOCK=$SOCK; out=\$(shell 'show forwards'); echo \"\$out\"; grep -qE '^0 +tcp \*:8080 -> 10.10.0.2:80 +any +2 +0 +web' <<<\"\$out\""
check "metrics: natbox_forward_hits_total and natbox_forward_refused_total" bash -c \
    "$(declare -f shell); SOCK=$SOCK; m=\$(shell 'show metrics'); grep -x 'natbox_forward_hits_total{forward=\"1\"} 2' <<<\"\$m\" && grep -E '^natbox_forward_refused_total\{forward=\"2\"\} [1-9]' <<<\"\$m\""
check "show stats counts forward_source_denied" bash -c \
    "$(declare -f shell); SOCK=$SOCK; shell 'show stats --json' | python3 -c 'import json,sys; d=json.load(sys.stdin)[\"drops\"]; assert d[\"forward_source_denied\"] >= 1, d'"

handed_off() { shell 'show workers --json' | jq '[.[].handed_off] | add'; }
ten_downloads() {
    local i
    for i in $(seq 10); do fetch "http://$PUBLIC:8090/index.html" >/dev/null || return 1; done
}
before=$(handed_off)
check "wan: ten downloads from $PUBLIC:8090 reach the server on 10.10.0.3 (forward 3)" ten_downloads
after=$(handed_off)
# shard::host_worker, the steering program's hash of an inside host.
host_worker() {
    python3 -c "import ipaddress; h = int(ipaddress.ip_address('$1')) * 0x9e3779b1 % 2**32; print((h ^ (h >> 16)) % $2)"
}
workers=${E2E_WORKERS:-1}
if [ "$workers" -gt 1 ] && [ "$(host_worker 10.10.0.3 "$workers")" != 0 ]; then
    # Handed to 10.10.0.3's worker by worker 0, each of their ~50 inbound frames
    # would count; ARP copies to the other workers may count a few.
    steered() {
        echo "frames handed between workers: $before -> $after"
        [[ "$before" =~ ^[0-9]+$ && "$after" =~ ^[0-9]+$ ]] && [ $((after - before)) -lt 10 ]
    }
    check "steering: the forwarded port's frames went straight to 10.10.0.3's worker" steered
else
    echo "# skip: the steering check needs 10.10.0.3 on a worker other than 0 (E2E_WORKERS=$workers)"
fi

# Live change: a long TCP session through forward 0 (socat from wan, held open), then
# a commit that keeps only the UDP forward ends it.
in_lan timeout 60 socat TCP-LISTEN:81,bind=10.10.0.2,reuseaddr SYSTEM:'sleep 30' >/dev/null 2>&1 &
commit_out() {
    shell configure \
        'set forward [{protocol = "tcp", port = 8080, to = "10.10.0.2", to_port = 80, comment = "web"}, {protocol = "udp", port = "5353-5354", to = "10.10.0.2", to_port = 5300, allow = ["198.51.100.0/24"]}, {protocol = "tcp", port = 8082, to = "10.10.0.2", to_port = 81}]' \
        commit >"$WORK/commit.out"
    cat "$WORK/commit.out"
    grep -q "committed: applied live" "$WORK/commit.out"
}
check "commit: a new TCP forward 8082 -> 10.10.0.2:81 is added live (forward 2 removed)" commit_out
listening t 81
in_wan timeout 40 socat -T 30 - TCP4:$PUBLIC:8082 </dev/null >/dev/null 2>&1 &
held() {
    for _ in $(seq 50); do
        shell 'show sessions proto tcp inside 10.10.0.2:81' | grep -q ":8082" && return 0
        sleep 0.1
    done
    shell 'show sessions proto tcp'; return 1
}
check "the wan's connection to $PUBLIC:8082 is a session to 10.10.0.2:81" held
remove_out() {
    shell configure \
        'set forward [{protocol = "udp", port = "5353-5354", to = "10.10.0.2", to_port = 5300, allow = ["198.51.100.0/24"]}]' \
        commit >"$WORK/remove.out"
    cat "$WORK/remove.out"
    grep -qE "applied live: [1-9][0-9]* sessions of removed or changed port forwards ended" "$WORK/remove.out"
}
check "commit without the TCP forwards: their sessions end" remove_out
check "the session to 10.10.0.2:81 is gone" bash -c \
    "$(declare -f shell); SOCK=$SOCK; shell 'show sessions proto tcp inside 10.10.0.2:81' | grep -q '0 shown'"
gone() { ! in_wan timeout 10 curl -sS --max-time 3 "http://$PUBLIC:8080/index.html"; }
check "after the commit, curl to $PUBLIC:8080 gets no answer" gone
check "the UDP forward still works" udp_fwd 5353
finish

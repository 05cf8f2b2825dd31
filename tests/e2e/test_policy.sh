#!/usr/bin/env bash
# The egress policy (issue #18 section 1) with real clients, IPv4 and IPv6: allowed
# destinations work (curl, ping), denied ones get nothing (the wan listener sees no
# connection, no datagram), a rejected TCP connection fails at once with "connection
# refused" (curl, nc: natbox's RST), a rejected UDP datagram gets ICMP administratively
# prohibited (the socket's error, and tcpdump in lan sees it), `show policy` counts
# each rule's sessions, and a commit that removes the rules ends the sessions the new
# policy refuses, with a NAT event for their mapping.
source "$(dirname "$0")/lib.sh"
PY="python3 $E2E_ROOT/tests/e2e/helpers.py"
NATBOX_ARGS="--admin $SOCK"
echo "# test_policy: egress policy rules, rejects, hit counters, live change"
skip_without_natbox
topology
write_config 's/^level = "info"/level = "info"\nsyslog = "10.10.0.2:5514"/'
cat >>"$WORK/natbox.toml" <<'EOF'

[policy]
default = "deny"

[[policy.rule]]
action = "allow"
destination = "198.51.100.1"
protocol = "tcp"
port = 8080

[[policy.rule]]
action = "allow"
destination = "2001:db8:ff::1"
protocol = "tcp"
port = 8080

[[policy.rule]]
action = "reject"
protocol = "tcp"
port = 8081
comment = "refused at once"

[[policy.rule]]
action = "reject"
protocol = "udp"
port = 9

[[policy.rule]]
action = "allow"
destination = "198.51.100.1"
protocol = "icmp"
icmp_type = 8

[[policy.rule]]
action = "allow"
protocol = "icmpv6"
icmp_type = 128
EOF
start_natbox

mkdir -p "$WORK/www"
echo "natbox-e2e-$$-policy" >"$WORK/www/index.html"
in_wan timeout 120 python3 -m http.server 8080 --bind :: --directory "$WORK/www" >/dev/null 2>&1 &
# Listeners for what the policy denies: they must see nothing from lan.
in_wan timeout 60 $PY tcp-listen 198.51.100.1 8082 50 >"$WORK/denied-tcp.out" 2>&1 &
DENIED_TCP=$!
in_wan timeout 60 $PY udp-listen 2001:db8:ff::1 5353 50 >"$WORK/denied-udp6.out" 2>&1 &
DENIED_UDP=$!
# The NAT events (syslog) land in lan.
in_lan timeout 90 $PY udp-listen 10.10.0.2 5514 80 "$WORK/syslog.txt" >/dev/null 2>&1 &
ip netns exec "$LAN" timeout 60 tcpdump -Z root --immediate-mode -n -U -v -i eth0 -w "$WORK/lan.pcap" icmp or icmp6 >/dev/null 2>&1 &
TCPDUMP=$!
sleep 1.5

# fetch LOCAL_PORT CURL_ARGS...: the v4 and v6 fetches use their own local ports (a
# dual-stack bind of the v4 fetch's port fails while its socket is in TIME_WAIT).
fetch() {
    local got port=$1
    shift
    got=$(in_lan timeout 10 curl "$@" -sS --max-time 5 --local-port "$port")
    echo "got: $got"
    [ "$got" = "natbox-e2e-$$-policy" ]
}
check "allowed: curl http://198.51.100.1:8080/ (rule 0)" fetch 45678 http://198.51.100.1:8080/index.html
check "allowed: curl -6 http://[2001:db8:ff::1]:8080/ (rule 1)" fetch 45679 -6 "http://[2001:db8:ff::1]:8080/index.html"
check "allowed: ping 198.51.100.1 (rule 4)" in_lan timeout 10 ping -c 3 -i 0.2 -W 2 198.51.100.1
check "allowed: ping -6 2001:db8:ff::1 (rule 5)" in_lan timeout 10 ping -6 -c 3 -i 0.2 -W 2 2001:db8:ff::1

# Rejected TCP: natbox's RST ends the connect at once (curl exit 7, "Connection refused").
refused() {
    local start end rc
    start=$(date +%s%N)
    # -v: curl's own message says "Couldn't connect"; its trace names the errno.
    in_lan timeout 10 curl -v -sS --max-time 5 "$@" >"$WORK/refused.out" 2>&1; rc=$?
    end=$(date +%s%N)
    grep -iE "refused|curl:" "$WORK/refused.out"; echo "curl exit $rc after $(((end - start) / 1000000)) ms"
    [ "$rc" -eq 7 ] && grep -q "Connection refused" "$WORK/refused.out" && [ $((end - start)) -lt 2000000000 ]
}
check "rejected: curl http://198.51.100.1:8081/ fails at once, connection refused (rule 2)" \
    refused http://198.51.100.1:8081/
check "rejected: curl -6 http://[2001:db8:ff::1]:8081/ fails at once, connection refused" \
    refused -6 "http://[2001:db8:ff::1]:8081/"
nc_refused() {
    in_lan timeout 10 nc -v -z -w 3 198.51.100.1 8081 >"$WORK/nc.out" 2>&1 && return 1
    cat "$WORK/nc.out"; grep -qi "refused" "$WORK/nc.out"
}
check "rejected: nc -z 198.51.100.1 8081 says connection refused" nc_refused

# Rejected UDP: ICMP administratively prohibited comes back (Linux: EHOSTUNREACH for
# IPv4 type 3 code 13, EACCES for IPv6 type 1 code 1).
check "rejected: UDP to 198.51.100.1:9 gets ICMP admin prohibited (rule 3)" \
    in_lan timeout 10 $PY udp-prohibited 198.51.100.1 9
check "rejected: UDP to [2001:db8:ff::1]:9 gets ICMPv6 admin prohibited (rule 3)" \
    in_lan timeout 10 $PY udp-prohibited 2001:db8:ff::1 9

# Denied by the default: silently dropped, nothing reaches the wan.
denied_tcp() { ! in_lan timeout 10 curl -sS --max-time 3 http://198.51.100.1:8082/; }
check "denied: curl http://198.51.100.1:8082/ gets no answer (default deny)" denied_tcp
in_lan timeout 5 $PY udp-send 2001:db8:ff::1 5353 3

sleep 0.5
kill "$TCPDUMP" 2>/dev/null; wait "$TCPDUMP" 2>/dev/null || true
prohibited_seen() {
    in_lan tcpdump -n -v -r "$WORK/lan.pcap" 2>/dev/null >"$WORK/lan.txt"
    grep -E "unreachable|prohibited" "$WORK/lan.txt"
    grep -q "admin prohibited" "$WORK/lan.txt" && grep -q "unreachable prohibited" "$WORK/lan.txt"
}
check "tcpdump in lan: ICMP 'admin prohibited' and ICMPv6 'unreachable prohibited' arrived" prohibited_seen

wait "$DENIED_TCP" "$DENIED_UDP" 2>/dev/null || true
check "the wan's TCP listener on :8082 accepted nothing" grep -qx "accepted 0 connections" "$WORK/denied-tcp.out"
check "the wan's UDP listener on [2001:db8:ff::1]:5353 got nothing" grep -qx "got 0 datagrams" "$WORK/denied-udp6.out"

# The counters: one session per allowed flow, the rejects counted per attempt, the
# default at least the denied ones.
hits() {
    shell 'show policy --json' >"$WORK/policy.json"; cat "$WORK/policy.json"
    python3 - "$WORK/policy.json" <<'PYEOF'
import json, sys
p = json.load(open(sys.argv[1]))
hits = [r["hits"] for r in p["rules"]]
# rule 2: curl v4, curl v6, nc; rule 3: one datagram each family.
assert hits == [1, 1, 3, 2, 1, 1], hits
assert p["default"]["action"] == "deny" and p["default"]["hits"] >= 2, p["default"]
PYEOF
}
check "show policy --json: hits per rule [1, 1, 3, 2, 1, 1], default >= 2" hits
check "show policy lists the rules with their hits and comments" bash -c \
    "$(declare -f shell); SOCK=$SOCK; out=\$(shell 'show policy'); echo \"\$out\"; grep -qE '^2 +reject +tcp any -> any port 8081 +3 +refused at once' <<<\"\$out\""
check "metrics: natbox_policy_hits_total per rule" bash -c \
    "$(declare -f shell); SOCK=$SOCK; shell 'show metrics' | grep -x 'natbox_policy_hits_total{rule=\"3\"} 2'"
check "show stats counts policy_reject and policy_deny" bash -c \
    "$(declare -f shell); SOCK=$SOCK; shell 'show stats --json' | python3 -c 'import json,sys; d=json.load(sys.stdin)[\"drops\"]; assert d[\"policy_reject\"] >= 5 and d[\"policy_deny\"] >= 2, d'"

# Live change: a session of rule 0 is open (curl's from port 45678, closing); deleting
# the rules leaves the default alone, which refuses it: the commit ends it, with a
# mapping event.
check "the allowed curl's session is in the table" bash -c \
    "$(declare -f shell); SOCK=$SOCK; shell 'show sessions proto tcp inside 10.10.0.2:45678' | grep -q '198.51.100.1:8080'"
commit_out() {
    shell configure 'delete policy.rule' commit >"$WORK/commit.out"; cat "$WORK/commit.out"
    grep -qE "applied live: [0-9]+ sessions the new egress policy refuses ended" "$WORK/commit.out"
}
check "commit without the rules: the sessions the default refuses end" commit_out
check "the curl session is gone" bash -c \
    "$(declare -f shell); SOCK=$SOCK; shell 'show sessions proto tcp inside 10.10.0.2:45678' | grep -q '0 shown'"
event_seen() {
    for _ in $(seq 30); do
        grep -q 'mapping delete tcp 10.10.0.2:45678' "$WORK/syslog.txt" 2>/dev/null && return 0
        sleep 0.1
    done
    cat "$WORK/syslog.txt"; return 1
}
check "the ended mapping is a NAT event (syslog: mapping delete tcp 10.10.0.2:45678)" event_seen
now_denied() { ! in_lan timeout 10 curl -sS --max-time 3 http://198.51.100.1:8080/index.html; }
check "after the commit, curl to :8080 gets no answer" now_denied
finish

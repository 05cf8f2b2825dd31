#!/usr/bin/env bash
# Per-destination SLIs (issue #18 section 5) with real clients: curl to a listening
# port on the wan host succeeds (the SYN-ACK comes within 3 s: ok), curl to a port
# whose SYNs nft drops in the wan namespace gets no answer (failed, judged once 3 s
# have passed), curl to a closed port gets the wan kernel's RST (connection refused:
# failed at once). `show destinations` and the metrics show those counts for the wan
# host's /24, and the AWS NAT Gateway-named counters move with them. The same over
# IPv6 (the filter judges attempts too) for the wan host's /48. Flow logs are on (to
# a wan port nothing listens on), so bytes per destination are counted: the
# downloads' bytes (three pages and a 200 kB blob) are credited to the /24 when
# `clear sessions` ends them.
source "$(dirname "$0")/lib.sh"
NATBOX_ARGS="--admin $SOCK"
metric() { shell 'show metrics' | awk -v n="$1" '$1 == n { print $2 }'; }
echo "# test_destinations: top destinations, TCP connection success, AWS-named counters"
skip_without_natbox
topology
write_config
cat >>"$WORK/natbox.toml" <<EOF

[flow_log]
ipfix = "198.51.100.1:4739"
EOF
start_natbox

mkdir -p "$WORK/www"
echo "natbox-e2e-$$-destinations" >"$WORK/www/index.html"
in_wan timeout 90 python3 -m http.server 8080 --bind 198.51.100.1 --directory "$WORK/www" >/dev/null 2>&1 &
in_wan timeout 90 python3 -m http.server 8080 --bind 2001:db8:ff::1 --directory "$WORK/www" >/dev/null 2>&1 &
# Port 8083's SYNs vanish in the wan host; nothing listens on 8084 (the kernel resets).
in_wan nft -f - <<'NFT'
table inet nbdest {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport 8083 drop
    }
}
NFT
# The server is up before the first fetch (python starts slowly on a loaded machine).
for _ in $(seq 100); do
    [ "$(in_wan ss -Hltn 'sport = :8080' | grep -c LISTEN)" -ge 2 ] && break
    sleep 0.1
done

attempts0=$(metric natbox_connection_attempts_total)
established0=$(metric natbox_connections_established_total)
bytes0=$(metric natbox_bytes_out_to_destination_total)
echo "# before: attempts=$attempts0 established=$established0 bytes_out_to_destination=$bytes0"

fetch() {
    local got
    got=$(in_lan timeout 10 curl -sS --max-time 5 "http://198.51.100.1:8080/index.html")
    [ "$got" = "natbox-e2e-$$-destinations" ]
}
for i in 1 2 3; do
    check "curl http://198.51.100.1:8080/ ($i of 3) succeeds" fetch
done
refused() {
    local out
    out=$(in_lan timeout 10 curl -sS --max-time 5 http://198.51.100.1:8084/ 2>&1) && return 1
    echo "$out"
    grep -q "Connection refused\|Couldn't connect" <<<"$out"
}
check "curl http://198.51.100.1:8084/ (closed port) is refused" refused
dropped() {
    local out t0=$SECONDS
    out=$(in_lan timeout 10 curl -sS --max-time 5 http://198.51.100.1:8083/ 2>&1) && return 1
    echo "$out after $((SECONDS - t0)) s"
    grep -q "timed out" <<<"$out"
}
check "curl http://198.51.100.1:8083/ (SYNs dropped in wan) times out after 5 s" dropped
fetch6() {
    local got
    got=$(in_lan timeout 10 curl -6 -sS --max-time 5 "http://[2001:db8:ff::1]:8080/index.html")
    [ "$got" = "natbox-e2e-$$-destinations" ]
}
check "curl -6 http://[2001:db8:ff::1]:8080/ succeeds" fetch6
refused6() {
    local out
    out=$(in_lan timeout 10 curl -6 -sS --max-time 5 "http://[2001:db8:ff::1]:8084/" 2>&1) && return 1
    echo "$out"
    grep -q "Connection refused\|Couldn't connect" <<<"$out"
}
check "curl -6 http://[2001:db8:ff::1]:8084/ (closed port) is refused" refused6
# The dropped attempt's deadline (4 s at whole-second resolution) has passed while
# curl waited 5 s; a poll (every 100 ms) judges it.
sleep 1

shell 'show destinations --json' >"$WORK/dest.json"
cat "$WORK/dest.json"
dest_counts() {
    jq -e '.ipv4.top[] | select(.destination == "198.51.100.0/24")
        | .counted | .tcp_attempts == 5 and .tcp_established == 3 and .tcp_ok == 3 and .tcp_failed == 2' \
        "$WORK/dest.json"
}
check "show destinations --json: 198.51.100.0/24 has 5 attempts, 3 established, 3 ok, 2 failed" dest_counts
check "show destinations --json: the top-K is 32, nothing in other" \
    jq -e '.k == 32 and .ipv4.other.tcp_attempts == 0 and .unjudged == 0' "$WORK/dest.json"
check "show destinations --json: 2001:db8:ff::/48 has 2 attempts, 1 ok, 1 failed (refused)" \
    jq -e '.ipv6.top[] | select(.destination == "2001:db8:ff::/48")
        | .counted | .tcp_attempts == 2 and .tcp_established == 1 and .tcp_ok == 1 and .tcp_failed == 1' \
        "$WORK/dest.json"
dest_text() {
    local out
    out=$(shell 'show destinations')
    echo "$out"
    grep -qE '^198\.51\.100\.0/24 +[0-9]+ +[0-9]+ +5 +3 +3 +2 +60\.0%' <<<"$out"
}
check "show destinations: 198.51.100.0/24 with 60.0% success" dest_text
check "metrics: natbox_destination_tcp_ok_total and _tcp_failed_total for 198.51.100.0/24" bash -c \
    "$(declare -f shell); SOCK=$SOCK; out=\$(shell 'show metrics');
     grep -x 'natbox_destination_tcp_ok_total{destination=\"198.51.100.0/24\"} 3' <<<\"\$out\" &&
     grep -x 'natbox_destination_tcp_failed_total{destination=\"198.51.100.0/24\"} 2' <<<\"\$out\""

aws_moved() {
    local attempts established bytes
    attempts=$(metric natbox_connection_attempts_total)
    established=$(metric natbox_connections_established_total)
    bytes=$(metric natbox_bytes_out_to_destination_total)
    echo "after: attempts=$attempts established=$established bytes_out_to_destination=$bytes"
    [ "$((attempts - attempts0))" -eq 5 ] && [ "$((established - established0))" -eq 3 ] &&
        [ "$bytes" -gt "$bytes0" ]
}
check "AWS-named: ConnectionAttemptCount +5, ConnectionEstablishedCount +3, BytesOutToDestination grew" aws_moved
gauges() {
    local out
    out=$(shell 'show metrics')
    grep -E '^natbox_sessions_max [1-9][0-9]*$' <<<"$out" &&
        grep -E "^natbox_pool_ports_capacity\{address=\"$POOL4\",proto=\"tcp\"\} [1-9]" <<<"$out" &&
        grep -E '^natbox_host_sessions\{host="10.10.0.2"\} [1-9]' <<<"$out" &&
        grep -E '^natbox_packets_in_from_source_total [1-9]' <<<"$out" &&
        grep -x 'natbox_error_port_allocation_total 0' <<<"$out"
}
check "saturation gauges: sessions max, pool port capacity, top host; packets in from source" gauges
head -c 200000 /dev/urandom >"$WORK/www/blob"
blob() {
    in_lan timeout 10 curl -sS --max-time 5 -o "$WORK/blob" "http://198.51.100.1:8080/blob" &&
        cmp "$WORK/blob" "$WORK/www/blob"
}
check "curl downloads a 200 kB blob" blob
# Ending the sessions makes their flow records, which credit their bytes.
shell 'clear sessions' | sed 's/^/# /'
PAGE=$(stat -c %s "$WORK/www/index.html")
# natbox counts IP bytes: the bodies, plus HTTP and IP/TCP headers (under 32 KiB for
# these four connections' ~150 inbound segments).
bytes_in() {
    local got want=$((200000 + 3 * PAGE))
    got=$(shell 'show destinations --json' | jq -e 'select(.bytes_counted) | .ipv4.top[]
        | select(.destination == "198.51.100.0/24") | .counted.bytes_in')
    echo "bytes in from 198.51.100.0/24: $got, want $want..$((want + 32768))"
    [ -n "$got" ] && [ "$got" -ge "$want" ] && [ "$got" -le $((want + 32768)) ]
}
check "show destinations --json: bytes in from 198.51.100.0/24 are the downloads' plus headers" bytes_in
check "metrics: natbox_destination_bytes_out_total for 198.51.100.0/24" bash -c \
    "$(declare -f shell); SOCK=$SOCK; shell 'show metrics' | grep -E '^natbox_destination_bytes_out_total\{destination=\"198.51.100.0/24\"\} [1-9]'"
in_wan nft delete table inet nbdest
finish

#!/usr/bin/env bash
# Port blocks (issue #18 section 4, RFC 7422, RFC 8158 port-block events) with real
# clients: two inside hosts (10.10.0.2 and 10.10.0.3 in ns lan) each make 100 curl
# requests to a web server on wan, once with per-mapping allocation and once with
# `[port_block] size = 64`. The server side's capture (tcpdump on wan) shows every
# translated source port of a host inside a block that natbox's syslog named for that
# host, the two hosts' blocks never overlap, `show nat pool` lists the blocks and
# `show metrics` counts them, and the event lines on the syslog collector fall from one
# per mapping to one per block (created and, after `clear sessions` and the reuse hold,
# deleted). The counts of both runs are printed: that is the log reduction.
source "$(dirname "$0")/lib.sh"
PY="python3 $E2E_ROOT/tests/e2e/helpers.py"
NATBOX_ARGS="--admin $SOCK"
REQUESTS=100
echo "# test_portblock: port blocks, their events and the log volume they save"
skip_without_natbox
if [ "$E2E_TOPOLOGY" = one-armed ]; then
    # The one-armed segment has one inside host; the two-host check needs the lan.
    echo "skip - two inside hosts are set up on the two-port lan only (E2E_TOPOLOGY=one-armed)"
    echo "0 passed, 0 failed"
    exit 0
fi
topology
ip -n "$LAN" addr add 10.10.0.3/24 dev eth0
mkdir -p "$WORK/www"
echo "natbox-e2e-$$-portblock" >"$WORK/www/index.html"
in_wan timeout 200 python3 -m http.server 8080 --bind 198.51.100.1 --directory "$WORK/www" >/dev/null 2>&1 &
in_wan timeout 200 python3 -m http.server 8081 --bind 198.51.100.1 --directory "$WORK/www" >/dev/null 2>&1 &
sleep 1

# run NAME [TOML...]: natbox with the extra TOML, a syslog collector in lan, tcpdump on
# wan (SYNs only), 100 curl requests from each host (host .2 to :8080, host .3 to
# :8081, so the server's view tells them apart), then `clear sessions` and 3 s for the
# mappings' (or blocks') end events. Leaves $WORK/NAME.syslog, $WORK/NAME.syns,
# $WORK/NAME.pool and $WORK/NAME.metrics.
run() {
    local name=$1 extra=${2:-}
    rm -f "$WORK/natbox.toml"
    write_config 's/^level = "info"/level = "info"\nsyslog = "10.10.0.2:5514"\nevent_rate = 2000/' \
        's/^\[nat\]/[nat]\nport_reuse_hold = 1/'
    printf '%b' "$extra" >>"$WORK/natbox.toml"
    start_natbox
    # Not through in_lan: $! must be the collector itself, so that kill ends it.
    ip netns exec "$LAN" timeout 120 $PY udp-listen 10.10.0.2 5514 110 "$WORK/$name.syslog" >/dev/null 2>&1 &
    local collector=$!
    ip netns exec "$WAN" timeout 110 tcpdump -Z root --immediate-mode -n -U -i eth0 -w "$WORK/$name.pcap" \
        'tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn' >/dev/null 2>&1 &
    local dump=$!
    sleep 1.5
    local ok=0 src port
    for i in $(seq "$REQUESTS"); do
        for src in 10.10.0.2 10.10.0.3; do
            port=8080; [ "$src" = 10.10.0.3 ] && port=8081
            in_lan timeout 5 curl -sS --max-time 3 --interface "$src" "http://198.51.100.1:$port/index.html" \
                | grep -q "natbox-e2e-$$-portblock" && ok=$((ok + 1))
        done
        : "$i"
    done
    echo "$ok" >"$WORK/$name.ok"
    shell 'show nat pool' >"$WORK/$name.pool" 2>&1 || true
    shell 'show metrics' >"$WORK/$name.metrics" 2>&1 || true
    shell 'clear sessions' >/dev/null 2>&1 || true
    sleep 3.5
    stop_natbox
    kill "$collector" "$dump" 2>/dev/null || true
    wait "$collector" "$dump" 2>/dev/null || true
    touch "$WORK/$name.syslog"
    tcpdump -n -r "$WORK/$name.pcap" 2>/dev/null \
        | sed -nE 's/.* 198\.51\.100\.10\.([0-9]+) > 198\.51\.100\.1\.(808[01]):.*/\2 \1/p' >"$WORK/$name.syns"
}

run mappings
run blocks '\n[port_block]\nsize = 64\n'

# Strict in both runs: with blocks a port comes back sooner than in a whole range, and
# 1-4 of 200 connections once timed out against the server's TIME-WAIT while natbox
# dropped the inside's RST that ends it (engine::flow::track, RFC 9293 3.10.7.3).
all_fetched() { for n in mappings blocks; do echo "$n: $(cat "$WORK/$n.ok") of $((2 * REQUESTS))"; [ "$(cat "$WORK/$n.ok")" -eq $((2 * REQUESTS)) ] || return 1; done; }
check "every curl request got the page, in both runs" all_fetched

# The blocks natbox logged per host: "INSIDE FIRST LAST" lines.
blocks_of() { sed -nE 's/.*event="block-create" proto="tcp" inside="([0-9.]+)" outside="198\.51\.100\.10" first="([0-9]+)" last="([0-9]+)".*/\1 \2 \3/p' "$WORK/blocks.syslog"; }
in_blocks() {
    local host=$1 dport=$2 n=0 p
    blocks_of | grep "^$host " >"$WORK/own.blocks" || { echo "no block logged for $host"; cat "$WORK/blocks.syslog" | head; return 1; }
    cat "$WORK/own.blocks"
    while read -r d p; do
        [ "$d" = "$dport" ] || continue
        n=$((n + 1))
        awk -v p="$p" '$2 <= p && p <= $3 { f = 1 } END { exit !f }' "$WORK/own.blocks" || { echo "port $p of $host is in none of its blocks"; return 1; }
    done <"$WORK/blocks.syns"
    echo "$n connections of $host seen by the server, every source port in its blocks"
    [ "$n" -ge "$REQUESTS" ]
}
check "host 10.10.0.2: the server sees every source port inside its logged blocks" in_blocks 10.10.0.2 8080
check "host 10.10.0.3: the server sees every source port inside its logged blocks" in_blocks 10.10.0.3 8081
disjoint() {
    blocks_of | sort -n -k2 | awk '{ if (NR > 1 && $2 <= last) { print "overlap: " prev " / " $0; bad = 1 } last = $3; prev = $0 } END { exit bad }'
    [ "$(blocks_of | awk '{print $3 - $2 + 1}' | sort -u)" = 64 ]
}
check "the hosts' blocks never overlap and hold 64 ports each" disjoint
pool_shows() {
    cat "$WORK/blocks.pool"
    grep -qE '10\.10\.0\.2 +tcp +198\.51\.100\.10 +[0-9]+-[0-9]+' "$WORK/blocks.pool" &&
        grep -qE '10\.10\.0\.3 +tcp +198\.51\.100\.10 +[0-9]+-[0-9]+' "$WORK/blocks.pool"
}
check "show nat pool lists each host's blocks" pool_shows
metrics_show() {
    grep -E 'natbox_pool_blocks_in_use|natbox_nat_block_alloc_failures_total' "$WORK/blocks.metrics"
    local n; n=$(sed -nE 's/^natbox_pool_blocks_in_use\{address="198\.51\.100\.10"\} ([0-9]+)$/\1/p' "$WORK/blocks.metrics")
    [ "${n:-0}" -eq "$(blocks_of | wc -l)" ] && grep -q '^natbox_nat_block_alloc_failures_total 0$' "$WORK/blocks.metrics"
}
check "show metrics: blocks in use equal the blocks logged, no allocation failure" metrics_show

count() { grep -c "$1" "$WORK/$2.syslog" || true; }
reduction() {
    local mc md bc bd
    mc=$(count 'event="create"' mappings) md=$(count 'event="delete"' mappings)
    bc=$(count 'event="block-create"' blocks) bd=$(count 'event="block-delete"' blocks)
    echo "per-mapping run: $mc create + $md delete = $((mc + md)) event lines for $((2 * REQUESTS)) connections"
    echo "port-block run:  $bc block-create + $bd block-delete = $((bc + bd)) event lines"
    echo "reduction: $(((mc + md) / (bc + bd > 0 ? bc + bd : 1)))x fewer lines"
    [ "$(count 'event="create"' blocks)" -eq 0 ] || { echo "mapping events in the block run"; return 1; }
    # The collector is UDP: a few of the 2 x 200 mapping lines may be lost on the way.
    [ "$mc" -ge $((2 * REQUESTS * 9 / 10)) ] && [ "$md" -gt 0 ] && [ "$bc" -ge 2 ] && [ "$bd" -eq "$bc" ] &&
        [ $((bc + bd)) -le $(((mc + md) / 10)) ]
}
check "syslog: one line per block instead of one per mapping (created and deleted), >= 10x fewer" reduction
sed 's/^/# /' "$WORK/check.out"
grep -h 'block-create' "$WORK/blocks.syslog" | head -n 2 | sed 's/^/# /'
finish

#!/usr/bin/env bash
# Flow logs (issue #18 section 3) with real collectors: natbox exports IPFIX to
# nfdump's nfcapd in ns wan; curl (a known-size download) and iperf3 (an upload) make
# flows; after `clear sessions` ends them, `nfdump -r` shows each with its post-NAT
# (public) source and byte counts that match what the clients moved, and a second
# decoder (the Python `netflow` package, tests/e2e/ipfix_decode.py, on tcpdump's
# capture of the same datagrams) agrees record for record. The text form reaches the
# syslog collector in the AWS VPC flow-log v2 field order. Then a collector that does
# not listen (every datagram answered with ICMP port unreachable) stalls nothing:
# curl keeps working and the counters move.
#
# Byte counts: natbox counts IP datagrams (IP header and payload, IPFIX
# octetDeltaCount); curl and iperf3 report payload. The allowed difference is the
# headers: per packet at most 20 (IPv4) + 60 (TCP with options) bytes, plus, for the
# download, the HTTP response header (under 1 KiB); the download record may not be
# smaller than the file.
source "$(dirname "$0")/lib.sh"
PY="python3 $E2E_ROOT/tests/e2e/helpers.py"
NATBOX_ARGS="--admin $SOCK"
echo "# test_flowlog: IPFIX to nfcapd, a second decoder, AWS text form, a dead collector"
skip_without_natbox
for tool in nfcapd nfdump; do
    command -v "$tool" >/dev/null || { echo "FAIL - $tool missing (tests/setup.sh installs nfdump)"; echo "0 passed, 1 failed"; exit 1; }
done
python3 -c "import netflow.ipfix" || { echo "FAIL - python netflow missing (tests/setup.sh)"; echo "0 passed, 1 failed"; exit 1; }
topology
COLLECTOR=198.51.100.1
write_config 's/^level = "info"/level = "info"\nsyslog = "10.10.0.2:5514"/'
cat >>"$WORK/natbox.toml" <<EOF

[flow_log]
ipfix = "$COLLECTOR:4739"
syslog = true
interval = 60
template_interval = 10
observation_domain = 42
EOF
# The collector runs before natbox starts (natbox sends its templates at once, then
# every template_interval).
mkdir -p "$WORK/nf"
# Not through in_wan: $! must be nfcapd itself (ip netns exec execs it), to stop it.
ip netns exec "$WAN" nfcapd -w "$WORK/nf" -b "$COLLECTOR" -p 4739 -t 60 >"$WORK/nfcapd.log" 2>&1 &
NFCAPD=$!
ip netns exec "$WAN" timeout 120 tcpdump -Z root --immediate-mode -n -U -i eth0 -w "$WORK/ipfix.pcap" udp port 4739 >/dev/null 2>&1 &
TCPDUMP=$!
for _ in $(seq 50); do grep -q "Startup" "$WORK/nfcapd.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
start_natbox

mkdir -p "$WORK/www"
SIZE=3000000
head -c "$SIZE" /dev/urandom >"$WORK/www/blob"
in_wan timeout 120 python3 -m http.server 8080 --bind 198.51.100.1 --directory "$WORK/www" >/dev/null 2>&1 &
in_wan timeout 120 iperf3 -s -1 -B 198.51.100.1 -p 5201 >/dev/null 2>&1 &
in_lan timeout 60 $PY udp-listen 10.10.0.2 5514 60 "$WORK/syslog.txt" >/dev/null 2>&1 &
# The listeners are up (bounded wait: python starts slowly on a busy machine).
for _ in $(seq 100); do
    in_wan ss -ltn | grep -q '198.51.100.1:8080' && in_wan ss -ltn | grep -q ':5201' && break
    sleep 0.1
done
sleep 0.5

download() {
    in_lan timeout 20 curl -sS --max-time 15 --local-port 41001 -o "$WORK/got" http://198.51.100.1:8080/blob
    [ "$(stat -c %s "$WORK/got")" = "$SIZE" ]
}
check "curl downloads $SIZE bytes through natbox" download
upload() {
    in_lan timeout 20 iperf3 -c 198.51.100.1 -p 5201 --cport 41002 -t 2 -J >"$WORK/iperf.json"
}
check "iperf3 uploads for 2 s through natbox" upload
# The server may close before reading the last of the client's send buffer, so
# sum_received can fall short of sum_sent: every byte the server read crossed natbox,
# and nothing crossed it that the client did not send.
iperf_bytes() { python3 -c "import json; print(json.load(open('$WORK/iperf.json'))['end']['$1']['bytes'])" 2>/dev/null || echo 0; }
UP_SENT=$(iperf_bytes sum_sent)
UP_RECEIVED=$(iperf_bytes sum_received)
echo "# iperf3 sent $UP_SENT bytes, the server read $UP_RECEIVED"
sleep 0.5
check "clear sessions ends the flows (their records go out)" bash -c \
    "$(declare -f shell); SOCK=$SOCK; shell 'clear sessions' | grep -E '^[1-9][0-9]* sessions cleared'"
sleep 2
shell 'show stats' | grep -E 'flow_' | sed 's/^/# /'
# nfcapd writes its file when it stops.
kill -TERM "$NFCAPD" 2>/dev/null
for _ in $(seq 50); do kill -0 "$NFCAPD" 2>/dev/null || break; sleep 0.1; done
kill -TERM "$TCPDUMP" 2>/dev/null; wait "$TCPDUMP" 2>/dev/null || true

FMT='fmt:%sa %sp %da %dp %pr %byt %pkt %xsa %xsp %xda %xdp'
nfdump -R "$WORK/nf" -q -N -o "$FMT" 2>"$WORK/nfdump.err" | tr -s ' ' | sed 's/^ //' >"$WORK/flows.txt" || true
sed 's/^/# nfdump: /' "$WORK/flows.txt" | head -n 20
grep -h "Flows:" "$WORK/nfcapd.log" | sed 's/^/# nfcapd: /'; sed 's/^/# nfdump: /' "$WORK/nfdump.err"
# nf_field PATTERN N: column N of the first nfdump line matching PATTERN.
nf_field() { { grep -E "$1" "$WORK/flows.txt" || true; } | head -n 1 | cut -d' ' -f"$2"; }

# The download: the inbound record (server 198.51.100.1:8080 -> the box's public
# endpoint), and the outbound one with the post-NAT source.
in_record="^198\.51\.100\.1 8080 $POOL4 $(ext_port 41001) 6 "
out_record="^10\.10\.0\.2 41001 198\.51\.100\.1 8080 6 "
within() { # within GOT LOW HIGH
    echo "got $1, want $2..$3"
    [ -n "$1" ] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}
dl_bytes=$(nf_field "$in_record" 6)
dl_pkts=$(nf_field "$in_record" 7)
check "nfdump: the download's bytes are the file's plus at most the headers" \
    within "${dl_bytes:-0}" "$SIZE" "$((SIZE + ${dl_pkts:-0} * 80 + 1024))"
check "nfdump: the download's request shows the post-NAT source $POOL4" \
    bash -c "grep -E \"$out_record\" '$WORK/flows.txt' | grep -E ' $POOL4 $(ext_port 41001) 198\.51\.100\.1 8080$'"
up_bytes=$(nf_field "^10\.10\.0\.2 41002 198\.51\.100\.1 5201 6 " 6)
up_pkts=$(nf_field "^10\.10\.0\.2 41002 198\.51\.100\.1 5201 6 " 7)
check "nfdump: the iperf3 upload's bytes lie between what the server read and what the client sent plus the headers" \
    within "${up_bytes:-0}" "$UP_RECEIVED" "$((UP_SENT + ${up_pkts:-0} * 80 + 4096))"

DECODE_RC=0
python3 "$E2E_ROOT/tests/e2e/ipfix_decode.py" "$WORK/ipfix.pcap" 4739 >"$WORK/decoded.jsonl" 2>"$WORK/decode.err" || DECODE_RC=$?
check "the Python decoder reads every message, sequence numbers right (RFC 7011 3.1)" \
    bash -c "cat '$WORK/decode.err'; [ $DECODE_RC -eq 0 ] && [ -s '$WORK/decoded.jsonl' ]"
agree() {
    python3 - "$WORK/decoded.jsonl" "$WORK/flows.txt" <<'PY'
import json, sys
decoded = [json.loads(l) for l in open(sys.argv[1])]
nf = {}
for line in open(sys.argv[2]):
    f = line.split()
    if len(f) >= 7:
        key = (f[0], int(f[1]), f[2], int(f[3]), int(f[4]))
        b, p = nf.get(key, (0, 0))
        nf[key] = (b + int(f[5]), p + int(f[6]))
py = {}
for r in decoded:
    key = (r["sourceIPv4Address"], r["sourceTransportPort"], r["destinationIPv4Address"],
           r["destinationTransportPort"], r["protocolIdentifier"])
    b, p = py.get(key, (0, 0))
    py[key] = (b + r["octetDeltaCount"], p + r["packetDeltaCount"])
    assert r["_domain"] == 42, r
print(f"nfdump {len(nf)} flows, python {len(py)} flows")
bad = {k: (nf.get(k), py.get(k)) for k in set(nf) | set(py) if nf.get(k) != py.get(k)}
assert not bad, bad
assert len(py) >= 4, py
PY
}
check "nfdump and the Python decoder agree flow for flow (bytes, packets)" agree
text_form() {
    grep -E "FLOW - 2 - ${BOX_PORTS%% *} 10\.10\.0\.2 198\.51\.100\.1 41001 8080 6 [0-9]+ [0-9]+ [0-9]{10} [0-9]{10} ACCEPT OK$" "$WORK/syslog.txt"
}
check "syslog: the download's request in the AWS VPC flow-log v2 field order" text_form
check_counters() {
    local out
    out=$(shell 'show metrics')
    grep -E '^natbox_flow_' <<<"$out" | sed 's/^/# /'
    grep -E '^natbox_flow_records_exported_total [1-9]' <<<"$out" &&
        grep -E '^natbox_flow_templates_sent_total [1-9]' <<<"$out" &&
        grep -E '^natbox_flow_records_dropped_total 0$' <<<"$out"
}
check "metrics: records exported, templates sent, none dropped" check_counters
stop_natbox

# A collector with no listener: the wan host answers each datagram with ICMP port
# unreachable. Forwarding goes on; natbox counts what it sent.
write_config
printf '\n[flow_log]\nipfix = "%s:4740"\ninterval = 10\ntemplate_interval = 10\n' "$COLLECTOR" >>"$WORK/natbox.toml"
start_natbox
ip netns exec "$WAN" timeout 60 tcpdump -Z root --immediate-mode -n -U -i eth0 -w "$WORK/icmp.pcap" icmp >/dev/null 2>&1 &
TCPDUMP=$!
sleep 1
many_fetches() {
    local start=$SECONDS
    for _ in $(seq 20); do
        in_lan timeout 5 curl -sS --max-time 3 -o /dev/null "http://198.51.100.1:8080/blob" || return 1
        shell 'clear sessions' >/dev/null
    done
    echo "20 downloads in $((SECONDS - start)) s"
    [ $((SECONDS - start)) -lt 30 ]
}
check "dead collector: 20 downloads, each flow ended and exported, none stalls" many_fetches
sleep 1.5
kill -TERM "$TCPDUMP" 2>/dev/null; wait "$TCPDUMP" 2>/dev/null || true
check "dead collector: the wan host answered with ICMP port unreachable" \
    bash -c "tcpdump -n -r '$WORK/icmp.pcap' 2>/dev/null | grep -m1 'udp port 4740 unreachable'"
dead_counters() {
    local out
    out=$(shell 'show stats --json')
    python3 -c '
import json, sys
d = json.loads(sys.argv[1])
c, drops = d["counters"], d["drops"]
print({k: v for k, v in c.items() if k.startswith("flow_")}, "icmp_error_no_match", drops.get("icmp_error_no_match"))
assert c["flow_records_exported"] >= 20, "records went out"
assert drops["icmp_error_no_match"] >= 1, "the ICMP errors are counted where they land"
' "$out"
}
check "dead collector: records counted as sent, the ICMP errors as drops" dead_counters
finish

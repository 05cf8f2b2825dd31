#!/usr/bin/env bash
# Configuration from the cloud's metadata server, on the one-armed topology
# (topology_onearm.sh): the "VPC router" namespace also plays the cloud's DHCP server
# (dnsmasq on the segment, leasing the box 10.10.0.1 by its MAC, router 10.10.0.254)
# and its metadata server at 169.254.169.254:80 (metadata_server.py, as EC2 IMDSv2 or
# GCE). natbox runs `run --metadata seg0`: no configuration file at all. It must get
# a lease, ask the metadata server, and forward the lan host's traffic with what the
# user-data says and the metadata fills in (the port by MAC, the VPC CIDR as inside
# prefixes, the host name). Then the ways it must refuse or keep trying: an
# IMDSv1-only server (never asked a GET), a #cloud-config user-data, a server that
# hangs (bounded waits, retried, shell reachable).
E2E_TOPOLOGY=one-armed
source "$(dirname "$0")/lib.sh"
echo "# test_metadata: configuration from EC2 IMDSv2 and GCE metadata servers"
topology
for tool in dnsmasq python3 socat; do
    command -v "$tool" >/dev/null || { echo "FAIL - $tool missing (tests/setup.sh installs it)"; FAILED=$((FAILED + 1)); finish; }
done
SEG0_MAC=$(ip -n "$GW" -o link show seg0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
ip -n "$RTR" addr add 169.254.169.254/32 dev lo
DHCP_NS=$RTR DHCP_RANGE=10.10.0.1,static,255.255.255.0,10m DHCP_ROUTER=10.10.0.254 \
    dhcp_server br0 "$WORK/dnsmasq.log" --dhcp-host="$SEG0_MAC,10.10.0.1"
MD_SERVER=""

# metadata MODE [USER_DATA_FILE]: (re)starts the metadata server in ns rtr.
metadata() {
    [ -z "$MD_SERVER" ] || { kill "$MD_SERVER" 2>/dev/null; wait "$MD_SERVER" 2>/dev/null || true; }
    : >"$WORK/md.log"
    local user=()
    [ -z "${2:-}" ] || user=(--user-data "$2")
    # One interface: the VPC is 10.10.0.0/25 (the router's 10.10.0.254 outside it, as
    # in natbox-one-armed.toml); GCE gives the subnet only.
    local interfaces
    interfaces='[{"mac": "'$SEG0_MAC'", "local-ipv4s": ["10.10.0.1"], "subnet": "10.10.0.0/24",
                  "vpc-cidrs": ["10.10.0.0/25"], "gateway": "10.10.0.254"}]'
    ip netns exec "$RTR" python3 "$E2E_ROOT/tests/e2e/metadata_server.py" --mode "$1" \
        --bind 169.254.169.254 --port 80 --interfaces "$interfaces" \
        --hostname edge-1.example.internal --instance-id i-0e2e0000000000001 \
        --log "$WORK/md.log" "${user[@]}" >"$WORK/md.out" 2>&1 &
    MD_SERVER=$!
    for _ in $(seq 50); do
        ip netns exec "$RTR" ss -ltn | grep -q '169.254.169.254:80 ' && return 0
        sleep 0.1
    done
    echo "# the metadata server did not start:"; sed 's/^/# /' "$WORK/md.out"
}

# start_from_metadata: natbox with no configuration, asking through seg0.
start_from_metadata() {
    ip netns exec "$GW" "$NATBOX_BIN" run --metadata seg0 --admin "$SOCK" >"$WORK/natbox.log" 2>&1 &
    NATBOX_PID=$!
}
# waits up to $1 tenths of a second for the pattern $2 in natbox's log.
logs_within() {
    local n=$1 pattern=$2
    for _ in $(seq "$n"); do
        grep -qE "$pattern" "$WORK/natbox.log" && return 0
        sleep 0.1
    done
    return 1
}

# waits up to $1 tenths of a second for the real dataplane's lease: the search
# dataplane's was the first.
leased_again() {
    for _ in $(seq "$1"); do
        [ "$(grep -c 'port: DHCP lease 10\.10\.0\.1/' "$WORK/natbox.log")" -ge 2 ] && return 0
        sleep 0.1
    done
    return 1
}

# --- EC2, IMDSv2, a user-data that names only what differs from the defaults.
cat >"$WORK/user-data.toml" <<'TOML'
[nat]
filtering = "endpoint-independent"
mss_clamp = 1460
TOML
gzip -c "$WORK/user-data.toml" >"$WORK/user-data.toml.gz"
metadata imdsv2 "$WORK/user-data.toml.gz"
start_from_metadata
check "natbox forwards within 20 s from EC2 metadata (DHCP, IMDSv2, gzip user-data)" logs_within 200 " forwarding \(pool"
check "RFC 5227 section 2.1: the forwarding dataplane holds the search's address within 1 s, unprobed (the address is already in use)" leased_again 10
check "the forwarding dataplane asked to keep the search's address (INIT-REBOOT, RFC 2131 section 3.2)" \
    grep -q "asking by DHCP to keep 10.10.0.1, in use until now" "$WORK/natbox.log"
grep -E "metadata|configuration from|DHCP lease| forwarding" "$WORK/natbox.log" | sed 's/^/# /'
check "the log names the source: ec2 and the instance id" grep -qE "configuration from ec2.*i-0e2e0000000000001" "$WORK/natbox.log"
check "RFC 792: ping lan -> wan through natbox (public address via the VPC router)" \
    in_lan ping -c 3 -W 2 198.51.100.1
in_wan sh -c 'cd / && timeout 30 python3 -m http.server 8080 --bind 198.51.100.1' >/dev/null 2>&1 &
check "the wan host's web server listens" listening "$WAN" 8080
check "curl lan -> wan through natbox" in_lan curl -sf -o /dev/null --max-time 5 http://198.51.100.1:8080/
shell 'show config' >"$WORK/config.out"
check "show config: source ec2 with the instance id" grep -qE "source.*ec2.*i-0e2e0000000000001" "$WORK/config.out"
check "show config: the port is the MAC from the metadata, by DHCP" grep -qiE "port = \"$SEG0_MAC\"" "$WORK/config.out"
check "show config: inside prefixes from the VPC CIDR" grep -q 'inside_prefixes = \["10.10.0.0/25"\]' "$WORK/config.out"
check "show config: host name from local-hostname" grep -q 'hostname = "edge-1.example.internal"' "$WORK/config.out"
check "show config: the user-data's own settings (mss_clamp)" grep -q 'mss_clamp = 1460' "$WORK/config.out"
sed 's/^/# config: /' "$WORK/config.out" | head -n 30
check "IMDSv2: the token was asked first (PUT /latest/api/token)" sh -c "head -n 1 '$WORK/md.log' | grep -q '^PUT /latest/api/token 200'"
check "IMDSv2: no request went without a token (no 401)" sh -c "! grep -q ' 401' '$WORK/md.log'"
sed 's/^/# metadata: /' "$WORK/md.log" | head -n 20
stop_natbox

# --- GCE, plain user-data (GCE's MTU of 1460 is the port's: no mss_clamp of 1460).
printf '[nat]\nfiltering = "endpoint-independent"\n' >"$WORK/user-data-gce.toml"
metadata gce "$WORK/user-data-gce.toml"
start_from_metadata
check "natbox forwards within 30 s from the GCE metadata server (after EC2 says absent)" logs_within 300 " forwarding \(pool"
check "the forwarding dataplane keeps the search's lease within 1 s" leased_again 10
check "the log names the source: gce" grep -qE "configuration from gce" "$WORK/natbox.log"
check "ping lan -> wan through natbox configured by GCE metadata" in_lan ping -c 3 -W 2 198.51.100.1
check "GCE: every request carried Metadata-Flavor: Google (none refused)" sh -c "! grep -q ' 403' '$WORK/md.log'"
gce_mtu() { shell 'show config' | grep -q 'mtu = 1460'; }
check "GCE: the port's MTU is the metadata's 1460" gce_mtu
stop_natbox

# --- IMDSv1 only: refused, never asked a GET.
metadata imdsv1 "$WORK/user-data.toml"
start_from_metadata
check "an IMDSv1-only server is refused, saying why" logs_within 300 "IMDSv2"
grep -E "metadata" "$WORK/natbox.log" | sed 's/^/# /' | head -n 5
check "natbox never used IMDSv1 (no GET at all)" sh -c "! grep -q '^GET' '$WORK/md.log'"
check "forwarding is off: the lan host gets no answer" sh -c "! ip netns exec '$LAN' ping -c 2 -W 1 198.51.100.1"
check "the box stays up with the shell reachable" sh -c "kill -0 $NATBOX_PID && printf 'show version\n' | timeout 10 socat -t 2 - UNIX-CONNECT:$SOCK | grep -q natbox"
stop_natbox

# --- A #cloud-config user-data: refused with what natbox expects.
printf '#cloud-config\npackages: [nginx]\n' >"$WORK/cloud-config"
metadata imdsv2 "$WORK/cloud-config"
start_from_metadata
check "a #cloud-config user-data is refused naming what natbox reads" logs_within 200 "cloud-config.*natbox reads its own TOML"
check "the box stays up (refused, not crashed)" kill -0 "$NATBOX_PID"
stop_natbox

# --- A user-data of 10 MB: the exchange stops reading at its bound, the source is refused.
metadata huge
start_from_metadata
check "a 10 MB user-data is refused by its size, in bounded time" logs_within 300 "(larger|longer) than [0-9]+ (KiB|bytes)"
grep -E "ERROR.*metadata" "$WORK/natbox.log" | sed 's/^/# /' | head -n 2
check "the box stays up (refused, not crashed)" kill -0 "$NATBOX_PID"
stop_natbox

# --- A server that accepts and never answers: bounded waits, retried, shell up.
metadata hang
start_from_metadata
check "a hanging server costs bounded waits and a retry is announced" logs_within 250 "no configuration from the metadata server.*trying again"
grep -E "metadata" "$WORK/natbox.log" | sed 's/^/# /' | head -n 3
check "the shell answers meanwhile" sh -c "printf 'show version\n' | timeout 10 socat -t 2 - UNIX-CONNECT:$SOCK | grep -q natbox"
stop_natbox
finish

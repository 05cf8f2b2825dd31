#!/usr/bin/env python3
"""Writes the seed corpora: for the engine target, short sessions of valid frames in the
test topology (ARP; UDP/TCP/ICMP out and back; ICMPv4 errors; IPv4 fragments; IPv6 UDP,
TCP and echo out and back; ICMPv6 echo to the box and errors; NDP NS/NA/RS/RA to the
box with options; IPv6 fragments), in its record format [control, len_hi, len_lo,
frame]; for the offloaded target, sessions with virtio-net headers (TCP GSO
super-frames over IPv4 and IPv6, UDP GSO, partial-checksum UDP over IPv4 and IPv6) as
[control, len_hi, len_lo, vnet header, frame]; for the shell target, keystroke
sessions; for the config target, TOML files; for the metadata_disk target, disk images
written by `natbox-config build` (built with cargo); for the dhcp4_client target,
DHCP sessions (DORA, renewal, rebinding, expiry, NAKs, a probe conflict, option 121,
nonsense offers, INIT-REBOOT, release) as [op, payload] records; for the ipv6_autoconf
target, Router Advertisement sessions (router and SLAAC, DAD conflict, refused and
invalid prefixes and adverts) as [op, payload] records; for the dhcp6_client target,
DHCPv6 sessions (bound, renewal, rebinding, expiry, a Decline, NoBinding, refusals, a
moved address) as [op, payload] records; for the user_data
target, user-data (natbox TOML plain and gzip, a #cloud-config, a script) and metadata
texts; for the cloud_volume target, small cidata and config-2 volumes, vfat (mkfs.vfat,
mtools) and ISO 9660 (xorriso); for the metadata_http target, sessions with an EC2
(IMDSv2) or GCE metadata server (one-NIC, two-NIC, secondary addresses, gzip and
#cloud-config user-data, IMDSv1-only, a header-injecting token, retries, chunked and
partial responses, a server without Metadata-Flavor). Run from fuzz/."""
import gzip, ipaddress, os, shutil, struct, subprocess, tempfile

BOX_LAN = bytes([2, 0, 0, 0, 1, 1]); BOX_WAN = bytes([2, 0, 0, 0, 2, 1])
HOST = bytes([2, 0, 0, 0, 1, 2]); GW = bytes([2, 0, 0, 0, 2, 2])

def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack(f"!{len(b)//2}H", b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def ip4(a): return bytes(int(x) for x in a.split("."))

def ipv4(src, dst, proto, payload, ttl=64, flags=0x4000, ident=1):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags, ttl, proto, 0, ip4(src), ip4(dst))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload

def l4sum(src, dst, proto, seg):
    return csum(ip4(src) + ip4(dst) + struct.pack("!BBH", 0, proto, len(seg)) + seg)

def udp(src, sp, dst, dp, data=b"hello"):
    seg = struct.pack("!HHHH", sp, dp, 8 + len(data), 0) + data
    c = l4sum(src, dst, 17, seg)
    return ipv4(src, dst, 17, seg[:6] + struct.pack("!H", c) + seg[8:])

def tcp(src, sp, dst, dp, flags, opts=b""):
    seg = struct.pack("!HHIIBBHHH", sp, dp, 1, 0, (20 + len(opts)) // 4 << 4, flags, 65535, 0, 0) + opts
    c = l4sum(src, dst, 6, seg)
    return ipv4(src, dst, 6, seg[:16] + struct.pack("!H", c) + seg[18:])

def echo(src, dst, ident, typ=8):
    m = struct.pack("!BBHHH", typ, 0, 0, ident, 1) + b"ping"
    m = m[:2] + struct.pack("!H", csum(m)) + m[4:]
    return ipv4(src, dst, 1, m)

def eth(dst, src, et, payload): return dst + src + struct.pack("!H", et) + payload

def arp_req(mac, ip, target):
    return eth(b"\xff" * 6, mac, 0x0806, struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, ip4(ip), b"\0" * 6, ip4(target)))

def ip6(a): return ipaddress.IPv6Address(a).packed

def ipv6(src, dst, nh, payload, hops=64):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), nh, hops, ip6(src), ip6(dst)) + payload

def l6sum(src, dst, nh, seg):
    return csum(ip6(src) + ip6(dst) + struct.pack("!IxxxB", len(seg), nh) + seg)

def udp6(src, sp, dst, dp, data=b"hello"):
    seg = struct.pack("!HHHH", sp, dp, 8 + len(data), 0) + data
    return ipv6(src, dst, 17, seg[:6] + struct.pack("!H", l6sum(src, dst, 17, seg)) + seg[8:])

def tcp6(src, sp, dst, dp, flags):
    seg = struct.pack("!HHIIBBHHH", sp, dp, 1, 0, 5 << 4, flags, 65535, 0, 0)
    return ipv6(src, dst, 6, seg[:16] + struct.pack("!H", l6sum(src, dst, 6, seg)) + seg[18:])

def icmp6(src, dst, typ, code, body, hops=64):
    m = struct.pack("!BBH", typ, code, 0) + body
    return ipv6(src, dst, 58, m[:2] + struct.pack("!H", l6sum(src, dst, 58, m)) + m[4:], hops)

def echo6(src, dst, ident, typ=128, data=b"ping6"): return icmp6(src, dst, typ, 0, struct.pack("!HH", ident, 1) + data)

def icmp4_error(src, dst, typ, code, quoted, rest=0):
    m = struct.pack("!BBHI", typ, code, 0, rest) + quoted
    return ipv4(src, dst, 1, m[:2] + struct.pack("!H", csum(m)) + m[4:])

def ll_opt(kind, mac): return bytes([kind, 1]) + mac

def solicited_node(a):
    t = ip6(a)
    return str(ipaddress.IPv6Address(bytes.fromhex("ff02" + "00" * 9 + "01ff") + t[13:]))

def nd(src, dst, typ, body): return icmp6(src, dst, typ, 0, body, hops=255)

def ns(mac, src, target, dst=None):
    return eth6(mac, dst or solicited_node(target), nd(src, dst or solicited_node(target), 135, b"\0" * 4 + ip6(target) + ll_opt(1, mac)))

def eth6(mac, dst, ip, box=None):
    """An IPv6 frame from `mac` to the box (or to the multicast MAC of `dst`)."""
    if box is None and ipaddress.IPv6Address(dst).is_multicast:
        box = b"\x33\x33" + ip6(dst)[12:]
    return eth(box or (BOX_LAN if mac == HOST else BOX_WAN), mac, 0x86DD, ip)

def frag6(src, dst, nh, ident, offset, more, data):
    h = struct.pack("!BBHI", nh, 0, offset << 3 | more, ident)
    return ipv6(src, dst, 44, h + data)

def rec(port, frame, advance=0):
    return bytes([(advance << 1) | port]) + struct.pack("!H", len(frame)) + frame

lan = lambda ip: eth(BOX_LAN, HOST, 0x0800, ip)
wan = lambda ip: eth(BOX_WAN, GW, 0x0800, ip)
setup = rec(0, arp_req(HOST, "10.10.0.2", "10.10.0.1")) + rec(1, arp_req(GW, "198.51.100.1", "198.51.100.10"))
seeds = {
    "udp_round_trip": setup + rec(0, lan(udp("10.10.0.2", 40000, "203.0.113.5", 53)))
        + rec(1, wan(udp("203.0.113.5", 53, "198.51.100.10", 40000))),
    "tcp_handshake": setup + rec(0, lan(tcp("10.10.0.2", 40001, "203.0.113.5", 80, 0x02, b"\x02\x04\x05\xb4")))
        + rec(1, wan(tcp("203.0.113.5", 80, "198.51.100.10", 40001, 0x12)))
        + rec(0, lan(tcp("10.10.0.2", 40001, "203.0.113.5", 80, 0x11)), 50),
    "ping": setup + rec(0, lan(echo("10.10.0.2", "203.0.113.5", 7)))
        + rec(1, wan(echo("203.0.113.5", "198.51.100.10", 7, 0))) + rec(0, lan(echo("10.10.0.2", "10.10.0.1", 8))),
    "fragments": setup + rec(0, lan(ipv4("10.10.0.2", "203.0.113.5", 17, struct.pack("!HHHH", 5000, 53, 40, 0) + b"x" * 16, flags=0x2000, ident=9)))
        + rec(0, lan(ipv4("10.10.0.2", "203.0.113.5", 17, b"y" * 16, flags=3, ident=9))),
    "ttl_and_unsolicited": setup + rec(0, lan(ipv4("10.10.0.2", "203.0.113.5", 17, struct.pack("!HHHH", 40000, 33434, 8, 0), ttl=1)))
        + rec(1, wan(udp("203.0.113.9", 1234, "198.51.100.10", 5555))),
}
# The box's addresses and link-locals (EUI-64 of its MACs), the hosts' own.
LAN6, WAN6, HOST6, GW6, REMOTE6 = "2001:db8:10::1", "2001:db8:ff::10", "2001:db8:10::2", "2001:db8:ff::1", "2001:db8:77::5"
BOX_LAN_LL, BOX_WAN_LL, HOST_LL, GW_LL = "fe80::ff:fe00:101", "fe80::ff:fe00:201", "fe80::ff:fe00:102", "fe80::ff:fe00:202"
lan6 = lambda ip: eth(BOX_LAN, HOST, 0x86DD, ip)
wan6 = lambda ip: eth(BOX_WAN, GW, 0x86DD, ip)
setup6 = rec(0, ns(HOST, HOST6, LAN6)) + rec(1, ns(GW, GW6, WAN6))
out_udp = udp("10.10.0.2", 40000, "203.0.113.5", 53)
out_udp6 = udp6(HOST6, 40000, REMOTE6, 53)
# RA: cur hop limit, flags, lifetime, reachable, retrans; prefix information, MTU, SLLA.
ra_body = (struct.pack("!BBHII", 64, 0xc0, 1800, 30000, 1000)
    + struct.pack("!BBBBIII16s", 3, 4, 64, 0xc0, 86400, 14400, 0, ip6("2001:db8:ff::"))
    + struct.pack("!BBHI", 5, 1, 0, 1500) + ll_opt(1, GW))
seeds.update({
    "ipv6_udp_tcp_round_trip": setup6 + rec(0, lan6(out_udp6)) + rec(1, wan6(udp6(REMOTE6, 53, HOST6, 40000)))
        + rec(0, lan6(tcp6(HOST6, 40001, REMOTE6, 80, 0x02))) + rec(1, wan6(tcp6(REMOTE6, 80, HOST6, 40001, 0x12)))
        + rec(1, wan6(udp6(REMOTE6, 1234, HOST6, 5555))),
    "icmp6_echo_to_box": setup6 + rec(0, lan6(echo6(HOST6, LAN6, 1))) + rec(1, wan6(echo6(REMOTE6, WAN6, 2)))
        + rec(1, wan6(echo6(REMOTE6, LAN6, 3))) + rec(0, lan6(echo6(HOST_LL, BOX_LAN_LL, 4)))
        + rec(1, wan6(echo6(GW_LL, BOX_WAN_LL, 5)))
        # Echo headers without data: the shortest valid requests.
        + rec(0, lan6(echo6(HOST6, LAN6, 6, data=b""))) + rec(1, wan6(echo6(REMOTE6, WAN6, 7, data=b""))),
    "icmp6_echo_through": setup6 + rec(0, lan6(echo6(HOST6, REMOTE6, 9)))
        + rec(1, wan6(echo6(REMOTE6, HOST6, 9, 129))) + rec(1, wan6(echo6(REMOTE6, HOST6, 10))),
    "icmp6_errors": setup6 + rec(0, lan6(out_udp6))
        + rec(1, wan6(icmp6(REMOTE6, HOST6, 2, 0, struct.pack("!I", 1280) + out_udp6)))
        + rec(1, wan6(icmp6(REMOTE6, HOST6, 1, 4, b"\0" * 4 + out_udp6)))
        + rec(1, wan6(icmp6(REMOTE6, HOST6, 3, 0, b"\0" * 4 + out_udp6)))
        + rec(1, wan6(icmp6(REMOTE6, HOST6, 4, 1, struct.pack("!I", 6) + out_udp6)))
        + rec(1, wan6(icmp6(REMOTE6, WAN6, 1, 4, b"\0" * 4 + udp6(WAN6, 40000, REMOTE6, 53))))
        + rec(0, lan6(ipv6(HOST6, REMOTE6, 17, out_udp6[40:], hops=1))),
    "ndp_to_box": rec(0, ns(HOST, HOST6, LAN6)) + rec(0, ns(HOST, HOST_LL, BOX_LAN_LL))
        + rec(1, ns(GW, "::", WAN6))  # duplicate address detection
        + rec(1, eth6(GW, WAN6, nd(GW6, WAN6, 136, struct.pack("!I", 0x60000000) + ip6(GW6) + ll_opt(2, GW)), BOX_WAN))
        + rec(0, eth6(HOST, "ff02::2", nd(HOST_LL, "ff02::2", 133, b"\0" * 4 + ll_opt(1, HOST))))
        + rec(1, eth6(GW, "ff02::1", nd(GW_LL, "ff02::1", 134, ra_body)))
        + rec(1, eth6(GW, "ff02::1", nd(GW_LL, "ff02::1", 137, b"\0" * 4 + ip6(GW6) + ip6(REMOTE6))))
        # The same, unicast to the box's link-local addresses.
        + rec(0, eth6(HOST, BOX_LAN_LL, nd(HOST_LL, BOX_LAN_LL, 133, b"\0" * 4 + ll_opt(1, HOST))))
        + rec(1, eth6(GW, BOX_WAN_LL, nd(GW_LL, BOX_WAN_LL, 134, ra_body)))
        + rec(1, eth6(GW, BOX_WAN_LL, nd(GW_LL, BOX_WAN_LL, 137, b"\0" * 4 + ip6(GW6) + ip6(REMOTE6) + ll_opt(2, GW)))),
    "ipv6_fragments": setup6
        + rec(0, lan6(frag6(HOST6, REMOTE6, 17, 77, 0, 1, struct.pack("!HHHH", 5000, 53, 40, 0) + b"x" * 16)))
        + rec(0, lan6(frag6(HOST6, REMOTE6, 17, 77, 3, 0, b"y" * 16)))
        + rec(1, wan6(frag6(REMOTE6, HOST6, 17, 78, 3, 0, b"z" * 16)))
        + rec(1, wan6(frag6(REMOTE6, HOST6, 17, 78, 0, 1, struct.pack("!HHHH", 53, 5000, 40, 0) + b"w" * 16)))
        + rec(1, wan6(frag6(REMOTE6, WAN6, 58, 79, 0, 1, struct.pack("!BBHHH", 128, 0, 0, 1, 1) + b"v" * 8))),
    "icmp4_errors_and_box": setup + rec(0, lan(out_udp))
        + rec(1, wan(icmp4_error("203.0.113.5", "198.51.100.10", 3, 3, udp("198.51.100.10", 40000, "203.0.113.5", 53))))
        + rec(1, wan(icmp4_error("203.0.113.9", "198.51.100.10", 3, 4, udp("198.51.100.10", 40000, "203.0.113.5", 53), 1400)))
        + rec(1, wan(icmp4_error("203.0.113.9", "198.51.100.10", 11, 0, udp("198.51.100.10", 40000, "203.0.113.5", 53)[:28])))
        + rec(1, wan(echo("203.0.113.5", "198.51.100.10", 3))) + rec(1, wan(echo("203.0.113.5", "10.10.0.1", 4)))
        + rec(0, lan(udp("10.10.0.2", 5000, "10.10.0.1", 9))),
    "ipv4_fragments_both_ways": setup + rec(0, lan(out_udp))
        + rec(1, wan(ipv4("203.0.113.5", "198.51.100.10", 17, b"y" * 16, flags=3, ident=5)))
        + rec(1, wan(ipv4("203.0.113.5", "198.51.100.10", 17, struct.pack("!HHHH", 53, 40000, 40, 0) + b"x" * 16, flags=0x2000, ident=5)))
        + rec(0, lan(ipv4("10.10.0.2", "10.10.0.1", 1, struct.pack("!BBHHH", 8, 0, 0, 1, 1) + b"p" * 8, flags=0x2000, ident=6)))
        + rec(0, lan(ipv4("10.10.0.2", "203.0.113.5", 17, b"overlap!" * 2, flags=0x2001, ident=9)), 3),
})
os.makedirs("seeds/engine", exist_ok=True)
for name, data in seeds.items():
    with open(f"seeds/engine/{name}", "wb") as f:
        f.write(data)

def vnet(flags=0, gso=0, hdr_len=0, gso_size=0, start=0, offset=0):
    return struct.pack("<BBHHHH", flags, gso, hdr_len, gso_size, start, offset)

def orec(port, frame, hdr=vnet(), advance=0):
    return bytes([(advance << 1) | port]) + struct.pack("!H", len(frame)) + hdr + frame

def partial(src, dst, proto, seg, at):
    """`seg` with its checksum field holding the pseudo-header sum (CHECKSUM_PARTIAL)."""
    pseudo = ~csum(ip4(src) + ip4(dst) + struct.pack("!BBH", 0, proto, len(seg))) & 0xffff
    return seg[:at] + struct.pack("!H", pseudo) + seg[at + 2:]

def tcp_super(src, sp, dst, dp, payload):
    seg = struct.pack("!HHIIBBHHH", sp, dp, 1, 1, 5 << 4, 0x18, 65535, 0, 0) + payload
    return ipv4(src, dst, 6, partial(src, dst, 6, seg, 16))

def partial6(src, dst, nh, seg, at):
    pseudo = ~csum(ip6(src) + ip6(dst) + struct.pack("!IxxxB", len(seg), nh)) & 0xffff
    return seg[:at] + struct.pack("!H", pseudo) + seg[at + 2:]

def tcp6_super(src, sp, dst, dp, payload):
    seg = struct.pack("!HHIIBBHHH", sp, dp, 1, 1, 5 << 4, 0x18, 65535, 0, 0) + payload
    return ipv6(src, dst, 6, partial6(src, dst, 6, seg, 16))

def udp6_partial(src, sp, dst, dp, payload):
    seg = struct.pack("!HHHH", sp, dp, 8 + len(payload), 0) + payload
    return ipv6(src, dst, 17, partial6(src, dst, 17, seg, 6))

def udp_super(src, sp, dst, dp, payload):
    seg = struct.pack("!HHHH", sp, dp, 8 + len(payload), 0) + payload
    return ipv4(src, dst, 17, partial(src, dst, 17, seg, 6))

osetup = orec(0, arp_req(HOST, "10.10.0.2", "10.10.0.1")) + orec(1, arp_req(GW, "198.51.100.1", "198.51.100.10"))
osetup6 = orec(0, ns(HOST, HOST6, LAN6)) + orec(1, ns(GW, GW6, WAN6))
gso_tcp = vnet(1, 1, 54, 1448, 34, 16)
oseeds = {
    "gso_tcp_both_ways": osetup
        + orec(0, lan(tcp("10.10.0.2", 40001, "203.0.113.5", 80, 0x02, b"\x02\x04\x05\xb4")))
        + orec(1, wan(tcp("203.0.113.5", 80, "198.51.100.10", 40001, 0x12)))
        + orec(0, lan(tcp_super("10.10.0.2", 40001, "203.0.113.5", 80, b"a" * 4000)), gso_tcp)
        + orec(1, wan(tcp_super("203.0.113.5", 80, "198.51.100.10", 40001, b"b" * 4000)), gso_tcp),
    "partial_udp": osetup + orec(0, lan(ipv4("10.10.0.2", "203.0.113.5", 17,
        partial("10.10.0.2", "203.0.113.5", 17, struct.pack("!HHHH", 40000, 53, 13, 0) + b"hello", 6))),
        vnet(1, 0, 0, 0, 34, 6)),
    "gso_tcp6_both_ways": osetup6
        + orec(0, lan6(tcp6(HOST6, 40001, REMOTE6, 80, 0x02)))
        + orec(1, wan6(tcp6(REMOTE6, 80, HOST6, 40001, 0x12)))
        + orec(0, lan6(tcp6_super(HOST6, 40001, REMOTE6, 80, b"a" * 4000)), vnet(1, 4, 74, 1428, 54, 16))
        + orec(1, wan6(tcp6_super(REMOTE6, 80, HOST6, 40001, b"b" * 4000)), vnet(1, 4, 74, 1428, 54, 16)),
    "gso_udp_l4": osetup + osetup6
        + orec(0, lan(udp_super("10.10.0.2", 40000, "203.0.113.5", 443, b"q" * 3000)), vnet(1, 5, 42, 1200, 34, 6))
        + orec(0, lan6(udp6_partial(HOST6, 40000, REMOTE6, 443, b"r" * 3000)), vnet(1, 5, 62, 1200, 54, 6)),
    "partial_udp6": osetup6 + orec(0, lan6(udp6_partial(HOST6, 40000, REMOTE6, 53, b"hello")), vnet(1, 0, 0, 0, 54, 6))
        + orec(1, wan6(udp6_partial(REMOTE6, 53, HOST6, 40000, b"hello")), vnet(1, 0, 0, 0, 54, 6)),
}
os.makedirs("seeds/offloaded", exist_ok=True)
for name, data in oseeds.items():
    with open(f"seeds/offloaded/{name}", "wb") as f:
        f.write(data)

# The shell target: a flags byte (bit 0: a console password is set), then keystrokes.
# Time passes between chunks of 16 keys, so padding with ignored bytes lets a job run.
wait = b"\x00" * 16 * 30
shell_seeds = {
    "show_commands": b"\x00" + b"help\rshow ?\rsh?\rshow sessions\rshow sessions proto udp limit 2 --json\r"
        b"show stats --json\rshow interfaces\rshow nat pool\rshow neighbors\rshow routes\r"
        b"show config\rshow metrics\rshow states6\rshow version\rshow uptime\rshow policy --json\r",
    "configure_policy": b"\x00configure\rset policy.default reject\r"
        b"set policy.rule [{action = \"allow\", destination = \"203.0.113.0/24\"}, {action = \"deny\", protocol = \"tcp\", port = \"1-1023\"}]\r"
        b"diff\rcommit\rshow policy\rshow policy limit 1\r",
    "configure_forward": b"\x00configure\rset nat.port_min 10000\r"
        b"set forward [{protocol = \"tcp\", port = 8080, to = \"10.10.0.2\", to_port = 80}, {protocol = \"udp\", port = \"53-54\", to = \"10.10.0.3\", allow = [\"203.0.113.0/24\"]}]\r"
        b"diff\rcommit\rshow forwards\rshow forwards --json\rconfigure\rdelete forward\rcommit\r",
    "configure_commit": b"\x00configure\rset timeouts.udp 600\rset nat.filtering address-dependent\r"
        b"set nat.pool [\"198.51.100.10\", \"198.51.100.11\"]\rset ipv6.max_states 100\r"
        b"delete timeouts.udp\rdiff\rcommit\r",
    "configure_addressing": b"\x00configure\rset hostname edge-1\rset inside.ipv4 10.20.0.1/24\r"
        b"set outside.routes [{prefix = \"192.0.2.0/24\", via = \"198.51.100.1\"}]\rset nat.port_min 20000\r"
        b"diff\rcommit\rconfigure\rset icmp.rate_limit 5\rdiff\rabort\r",
    "editor_keys": b"\x00sh\tses\t\rshow x\x7f\x08\x1b[D\x1b[C\x1b[3~\x01\x05\x15\x17\x0b"
        b"\x1b[A\x1b[B\x10\x0e\x1b[1~\x1b[4~\x1bOH\x03\rterminal length 5\rshow stats\r \r\rq",
    "ping_jobs": b"\x00ping 203.0.113.5 count 2\r" + wait + b"ping 2001:db8:77::5 count 3\r" + b"\x00" * 40
        + b"\x03ping 10.10.0.2\r" + wait,
    "login": b"\x01wrong\r" + wait + b"secret\rshow version\rexit\r",
    "clear_and_log": b"\x00clear sessions proto tcp\rclear sessions\rclear stats\rlog level debug\r"
        b"log level nonsense\rreboot\rpoweroff\rexit\r",
}
os.makedirs("seeds/shell", exist_ok=True)
for name, data in shell_seeds.items():
    with open(f"seeds/shell/{name}", "wb") as f:
        f.write(data)

# The config target: TOML files, from the example to one that sets every section.
example = open("../natbox.toml", "rb").read()
config_seeds = {
    "example": example,
    "every_section": example.replace(b'[log]\nlevel = "info"\n', b"").replace(b"[nat]\n", b"""[nat]
pool = ["198.51.100.10", "198.51.100.11"]
port_min = 1024
port_max = 65535
inside_prefixes = ["10.10.0.0/16"]
max_sessions = 1000
max_sessions_per_host = 100
max_ports_per_host = 50
icmp_on_limit = true
port_reuse_hold = 120
udp_inbound_refresh = true
""") + b"""
[ipv6]
enabled = true
inside_prefixes = ["2001:db8:10::/48"]
max_states = 1000

[timeouts]
tcp_established = 7440
tcp_transitory = 240
tcp_incoming_syn = 6
udp = 300
icmp = 60
fragment = 5

[icmp]
rate_limit = 100
burst = 50

[shell]
password_hash = "$6$natboxsalt$0HThqMT32bYBWMr7y50qCVP1Y82/Xe.ykuCCfv4DoiyvSO8jnWCN05.QoRohXBxqOIkCHat8ZnUrgOxfDL4hE0"

[metrics]
listen = "10.10.0.1:9100"

[[inside.routes]]
prefix = "10.20.0.0/16"
via = "10.10.0.254"

[[inside.routes]]
prefix = "2001:db8:20::/48"
via = "2001:db8:10::fe"

[log]
level = "debug"
syslog = "10.10.0.9:514"
event_rate = 1000
""",
}
config_seeds["policy"] = example + b"""
[policy]
default = "deny"

[[policy.rule]]
action = "allow"
source = "10.10.0.0/24"
destination = "203.0.113.0/24"
protocol = "tcp"
port = "443"
comment = "web"

[[policy.rule]]
action = "reject"
destination = "2001:db8:77::/48"
protocol = "icmpv6"
icmp_type = 128

[[policy.rule]]
action = "allow"
protocol = "udp"
port = "1000-2000"
"""
config_seeds["forward"] = example.replace(b"[nat]\n", b"[nat]\nport_min = 10000\n") + b"""
[[forward]]
protocol = "tcp"
port = 8080
to = "10.10.0.2"
to_port = 80
comment = "web"

[[forward]]
protocol = "udp"
port = "5353-5354"
to = "10.10.0.3"
to_port = 5300
address = "198.51.100.10"
allow = ["198.51.100.0/24", "203.0.113.7/32"]
"""
os.makedirs("seeds/config", exist_ok=True)
for name, data in config_seeds.items():
    with open(f"seeds/config/{name}", "wb") as f:
        f.write(data)

# The metadata_disk target: the smallest disk (3 blocks) with one generation in slot A,
# and a copy with a second generation in slot B.
os.makedirs("seeds/metadata_disk", exist_ok=True)
def natbox_config(*args):
    subprocess.run(["cargo", "run", "-q", "--manifest-path", "../Cargo.toml", "-p", "firmware-config",
        "--bin", "natbox-config", "--", *args], check=True, stdout=subprocess.DEVNULL)
for name in ["one_generation", "two_generations"]:
    if os.path.exists(f"seeds/metadata_disk/{name}"):
        os.remove(f"seeds/metadata_disk/{name}")
natbox_config("build", "seeds/config/example", "-o", "seeds/metadata_disk/one_generation", "--size", "12288")
shutil.copy("seeds/metadata_disk/one_generation", "seeds/metadata_disk/two_generations")
natbox_config("build", "seeds/config/every_section", "-o", "seeds/metadata_disk/two_generations")

# The dhcp4_client target: a start byte (0: INIT), then records [control, len_hi, len_lo,
# op, payload] (op 0 reply, +4 stamps the client's xid and chaddr; 1 timeout; 2 probe
# answer, +4 conflict; 3 release). Replies from a server at 192.0.2.1 for 192.0.2.10/24.
DHCP_SERVER = "192.0.2.1"
def dhcp_opt(code, value): return bytes([code, len(value)]) + value
def dhcp_u32(code, n): return dhcp_opt(code, struct.pack("!I", n))
def dhcp_reply(kind, yiaddr="192.0.2.10", extra=b"", lease=3600, mask="255.255.255.0"):
    header = struct.pack("!BBBBIHH4s4s4s4s16s64s128s4s", 2, 1, 6, 0, 0, 0, 0, b"\0" * 4,
        ip4(yiaddr), ip4(DHCP_SERVER), b"\0" * 4, b"\0" * 16, b"", b"", bytes([99, 130, 83, 99]))
    opts = dhcp_opt(53, bytes([kind])) + dhcp_opt(54, ip4(DHCP_SERVER))
    if kind != 6:  # a NAK carries no lease
        opts += dhcp_opt(1, ip4(mask)) + dhcp_opt(3, ip4(DHCP_SERVER)) + dhcp_u32(51, lease)
        opts += dhcp_opt(6, ip4("192.0.2.53")) + extra
    return header + opts + b"\xff"
OFFER, ACK, NAK = 2, 5, 6
def drec(op, payload=b"", advance=0): return struct.pack("!BHB", advance << 1, len(payload), op) + payload
def dreply(msg, advance=0): return drec(4, msg, advance)
TIMEOUT, PROBE_OK, PROBE_CONFLICT, RELEASE = drec(1), drec(2), drec(6), drec(3)
dora = [TIMEOUT, dreply(dhcp_reply(OFFER)), dreply(dhcp_reply(ACK)), PROBE_OK]
routes = dhcp_opt(121, bytes([0, 192, 0, 2, 254, 25, 198, 51, 100, 128, 192, 0, 2, 2]))
dhcp4_seeds = {
    # DORA, renewal at T1, rebinding at T2 with a new address, then expiry.
    # (T1, five retransmissions and T2 are 7 timeouts; 14 more pass expiry.)
    "dora_renew_rebind_expire": dora + [TIMEOUT, dreply(dhcp_reply(ACK))] + [TIMEOUT] * 7
        + [dreply(dhcp_reply(ACK, yiaddr="192.0.2.20"))] + [TIMEOUT] * 14,
    "probe_conflict_decline": [TIMEOUT, dreply(dhcp_reply(OFFER)), dreply(dhcp_reply(ACK)),
        PROBE_CONFLICT, TIMEOUT, dreply(dhcp_reply(OFFER))],
    "nak_requesting_and_renewing": [TIMEOUT, dreply(dhcp_reply(OFFER)), dreply(dhcp_reply(NAK)),
        TIMEOUT] + dora + [TIMEOUT, dreply(dhcp_reply(NAK))],
    "classless_routes_mtu_timers": [TIMEOUT, dreply(dhcp_reply(OFFER)), dreply(dhcp_reply(ACK,
        extra=routes + dhcp_opt(26, struct.pack("!H", 1400)) + dhcp_u32(58, 100) + dhcp_u32(59, 200),
        lease=300)), PROBE_OK] + [TIMEOUT] * 6,
    "nonsense_offers": [TIMEOUT, dreply(dhcp_reply(OFFER, mask="0.0.0.0")),
        dreply(dhcp_reply(OFFER, lease=0)), dreply(dhcp_reply(OFFER, extra=dhcp_opt(3, ip4("198.51.100.1")))),
        dreply(dhcp_reply(OFFER))],
    "release": dora + [RELEASE],
}
os.makedirs("seeds/dhcp4_client", exist_ok=True)
for name, records_ in dhcp4_seeds.items():
    with open(f"seeds/dhcp4_client/{name}", "wb") as f:
        f.write(b"\0" + b"".join(records_))
with open("seeds/dhcp4_client/init_reboot", "wb") as f:
    f.write(b"\x01" + b"".join([TIMEOUT, dreply(dhcp_reply(ACK)), PROBE_OK, TIMEOUT]))

# The ipv6_autoconf target: a mode byte (bit 0 router, bit 1 SLAAC), then records
# [control, len_hi, len_lo, op, payload] (op 0 a raw IPv6 datagram; 1 an RA body after
# type and code, wrapped from fe80::2:2 with hop limit 255 and its checksum; 2 timeout;
# 3 DAD verdict, +4 conflict).
def pio(prefix, length, valid, preferred, flags=0xc0):
    return struct.pack("!BBBBIII16s", 3, 4, length, flags, valid, preferred, 0, ip6(prefix))
def ra(lifetime, *opts): return struct.pack("!BBHII", 64, 0x80, lifetime, 0, 0) + b"".join(opts) + ll_opt(1, GW)
def arec(op, payload=b"", advance=0): return struct.pack("!BHB", advance << 1, len(payload), op) + payload
A_TIMEOUT, DAD_OK, DAD_CONFLICT = arec(2), arec(3), arec(7)
slash64 = pio("2001:db8:ff::", 64, 86400, 14400)
autoconf_seeds = {
    # Solicitations, an RA with a /64: DAD passes, then lifetime 0 and expiry.
    "router_and_slaac": b"\x03" + b"".join([A_TIMEOUT, arec(1, ra(1800, slash64)), A_TIMEOUT, DAD_OK,
        arec(1, ra(0, pio("2001:db8:ff::", 64, 60, 0))), A_TIMEOUT, A_TIMEOUT, A_TIMEOUT]),
    "dad_conflict": b"\x02" + b"".join([arec(1, ra(0, slash64)), A_TIMEOUT, DAD_CONFLICT, arec(1, ra(0, slash64))]),
    # A /48, preferred over valid, a link-local prefix, no A flag, an MTU option and an
    # unknown one, infinite lifetimes.
    "refused_prefixes": b"\x03" + b"".join([arec(1, ra(600, pio("2001:db8::", 48, 600, 300),
        pio("2001:db8:1::", 64, 300, 600), pio("fe80::", 64, 600, 300), pio("2001:db8:2::", 64, 600, 300, 0x80),
        struct.pack("!BBHI", 5, 1, 0, 1500), b"\x99\x01" + b"\0" * 6)),
        arec(1, ra(65535, pio("2001:db8:ff::", 64, 0xffffffff, 0xffffffff))), A_TIMEOUT, DAD_OK]),
    # An RA whose option has length 0, one not from a link-local, one forwarded.
    "invalid_adverts": b"\x01" + b"".join([arec(1, ra(1800) + b"\x01\x00" + b"\0" * 6),
        arec(0, icmp6(GW6, "ff02::1", 134, 0, ra(1800), hops=255)),
        arec(0, icmp6(GW_LL, "ff02::1", 134, 0, ra(1800), hops=64))]),
}

# The dhcp6_client target: records [control, len_hi, len_lo, op, payload] (op 0 a
# server message, +4 stamps the client's last xid; 1 timeout; 2 address check, +4
# conflict). The client's DUID-LL and IAID come from its MAC 02:00:00:00:02:01.
C_DUID = bytes([0, 3, 0, 1]) + BOX_WAN
S_DUID = bytes([0, 3, 0, 1]) + GW
def o6(code, value): return struct.pack("!HH", code, len(value)) + value
def ia_na(t1, t2, *inner, iaid=0x201): return o6(3, struct.pack("!III", iaid, t1, t2) + b"".join(inner))
def ia_addr(a, preferred, valid, *inner): return o6(5, ip6(a) + struct.pack("!II", preferred, valid) + b"".join(inner))
def status6(code): return o6(13, struct.pack("!H", code) + b"msg")
def server6(kind, *opts): return bytes([kind, 0, 0, 0]) + o6(1, C_DUID) + o6(2, S_DUID) + b"".join(opts)
lease6 = ia_na(150, 240, ia_addr("2001:db8:ff::100", 300, 600))
ADV = server6(2, o6(7, b"\xff"), lease6, o6(23, ip6("2001:db8::53")))
REP = server6(7, lease6)
def r6(msg): return arec(4, msg)
D_TIMEOUT, CHECK_OK, CHECK_CONFLICT = arec(1), arec(2), arec(6)
bound6 = [D_TIMEOUT, r6(ADV), r6(REP), CHECK_OK]
dhcp6_seeds = {
    # Solicit, Advertise, Request, Reply, the check, Renew at T1, Rebind at T2, expiry.
    "bound_renew_rebind_expire": bound6 + [D_TIMEOUT, r6(REP), D_TIMEOUT] + [D_TIMEOUT] * 12,
    "decline": [D_TIMEOUT, r6(ADV), r6(REP), CHECK_CONFLICT, D_TIMEOUT, D_TIMEOUT],
    "no_binding_then_request": bound6 + [D_TIMEOUT, r6(server6(7, ia_na(0, 0, status6(3)))), r6(REP)],
    "refusals": [D_TIMEOUT, r6(server6(2, ia_na(0, 0, status6(2)))), r6(server6(2, ia_na(300, 100,
        ia_addr("2001:db8:ff::100", 300, 600)))), r6(server6(2, ia_na(0, 0, ia_addr("fe80::1", 300, 600)))),
        r6(server6(2, status6(1), lease6)), r6(server6(10)), r6(server6(2, o6(13, b""))), D_TIMEOUT],
    "moved_address": bound6 + [D_TIMEOUT, r6(server6(7, ia_na(150, 240, ia_addr("2001:db8:ff::101", 300, 600)))), CHECK_OK],
}
os.makedirs("seeds/dhcp6_client", exist_ok=True)
for name, records_ in dhcp6_seeds.items():
    with open(f"seeds/dhcp6_client/{name}", "wb") as f:
        f.write(b"".join(records_))
os.makedirs("seeds/ipv6_autoconf", exist_ok=True)
for name, data in autoconf_seeds.items():
    with open(f"seeds/ipv6_autoconf/{name}", "wb") as f:
        f.write(data)

# The user_data target: what a cidata or config-2 volume holds.
user_data_seeds = {
    "toml": example,
    "toml_gzip": gzip.compress(example, mtime=0),
    "cloud_config": b"#cloud-config\npackages: [nginx]\n",
    "script": b"#!/bin/sh\niptables -t nat -A POSTROUTING -j MASQUERADE\n",
    "meta_data": b"instance-id: iid-1\nlocal-hostname: nat-1.example\npublic-keys:\n  - ssh-rsa AAA\n",
    "meta_data_json": b'{"uuid": "83679162-1378-4288-a2d4-70e13ec132aa", "hostname": "nat-1", "meta": {}}',
}
os.makedirs("seeds/user_data", exist_ok=True)
for name, data in user_data_seeds.items():
    with open(f"seeds/user_data/{name}", "wb") as f:
        f.write(data)

# The cloud_volume target: a 64 KiB vfat cidata volume, an ISO 9660 one (Joliet and
# Rock Ridge, unpadded) and a vfat config drive.
os.makedirs("seeds/cloud_volume", exist_ok=True)
with tempfile.TemporaryDirectory() as tmp:
    meta = b"instance-id: iid-1\nlocal-hostname: nat-1\n"
    vfat = "seeds/cloud_volume/nocloud_vfat"
    for path in [vfat, "seeds/cloud_volume/configdrive_vfat"]:
        if os.path.exists(path):
            os.remove(path)
    for name, data in [("user-data", example), ("meta-data", meta)]:
        with open(f"{tmp}/{name}", "wb") as f:
            f.write(data)
    subprocess.run(["mkfs.vfat", "-C", "-n", "cidata", vfat, "64"], check=True, capture_output=True)
    subprocess.run(["mcopy", "-i", vfat, f"{tmp}/user-data", f"{tmp}/meta-data", "::"], check=True)
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-V", "cidata", "-J", "-R", "-no-pad",
        "-o", "seeds/cloud_volume/nocloud_iso", f"{tmp}/user-data", f"{tmp}/meta-data"],
        check=True, capture_output=True)
    drive = "seeds/cloud_volume/configdrive_vfat"
    subprocess.run(["mkfs.vfat", "-C", "-n", "config-2", drive, "64"], check=True, capture_output=True)
    subprocess.run(["mmd", "-i", drive, "::openstack", "::openstack/latest"], check=True)
    with open(f"{tmp}/meta_data.json", "wb") as f:
        f.write(user_data_seeds["meta_data_json"])
    subprocess.run(["mcopy", "-i", drive, f"{tmp}/user-data", "::openstack/latest/user_data"], check=True)
    subprocess.run(["mcopy", "-i", drive, f"{tmp}/meta_data.json", "::openstack/latest/meta_data.json"], check=True)

# The metadata_http target: sessions with a scripted EC2 (IMDSv2) or GCE metadata
# server, one record per request: [control, len_hi, len_lo, op, payload] with op 0 the
# response's bytes, 1 a body wrapped by the target (status index in bits 2-4, bit 5
# Metadata-Flavor: Google), 2 no answer, 3 the response's bytes in two reads.
def http_response(status, body, headers=(), chunked=False):
    head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    if chunked:
        data = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7]) for i in range(0, len(body), 7))
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + data + b"0\r\n\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body

def mrec(op, payload): return struct.pack("!BHB", 0, len(payload), op) + payload
def raw(status, body, **kw): return mrec(0, http_response(status, body, **kw))
def wrapped(status, body, google=False):
    return mrec(1 | [200, 404, 403, 405, 500, 401].index(status) << 2 | (0x20 if google else 0), body)

MAC0, MAC1 = b"0e:49:61:0f:c3:11", b"0e:49:61:0f:c3:22"
ec2_user = b'[nat]\nfiltering = "address-dependent"\n'
def ec2_session(user_data, macs=(MAC0,), ipv4s=b"10.0.1.23", chunked=False):
    recs = [raw(200, b"AQAEAFt0kjb8R3mXoBXVNnYq3lYJ5yQ1Qq0bJxO2Jm6w9kGz8mQ==",
                headers=[("X-aws-ec2-metadata-token-ttl-seconds", "21600")])]
    recs.append(raw(200, user_data, chunked=chunked) if user_data is not None else raw(404, b"Not Found"))
    recs += [raw(200, b"i-0abc1234def567890"), raw(200, b"ip-10-0-1-23.ec2.internal"), raw(200, macs[0]),
             raw(200, b"\n".join(m + b"/" for m in macs), chunked=chunked)]
    recs += [raw(200, str(i).encode()) for i in range(len(macs))]
    recs += [raw(200, ipv4s), raw(200, b"10.0.1.0/24"), raw(200, b"10.0.0.0/16\n100.64.0.0/16")]
    return recs

gce_nics = (b'[{"gateway":"10.128.0.1","ip":"10.128.0.2","mac":"42:01:0a:80:00:02","mtu":1460,'
            b'"subnetmask":"255.255.240.0"},{"ip":"10.20.0.2","mac":"42:01:0a:14:00:02","mtu":1460,'
            b'"subnetmask":"255.255.255.0"}]')
google = [("Metadata-Flavor", "Google")]
metadata_seeds = {
    "ec2_one_nic": [0] + ec2_session(ec2_user),
    "ec2_two_nics_no_user_data_chunked": [0] + ec2_session(None, macs=(MAC0, MAC1), chunked=True),
    "ec2_secondary_ips_gzip": [0] + ec2_session(gzip.compress(ec2_user, mtime=0), ipv4s=b"10.0.1.23\n10.0.1.24\n10.0.1.25"),
    "ec2_cloud_config": [0] + ec2_session(b"#cloud-config\npackages: [nginx]\n"),
    "ec2_imdsv1_only": [0, raw(405, b"Method Not Allowed")],
    "ec2_bad_token": [0, raw(200, b"abc\r\nX-Evil: 1")],
    "ec2_retries_then_partial": [0, raw(200, b"token"), raw(503, b""), mrec(2, b""),
        mrec(3 | 40 << 2, http_response(200, ec2_user))] + ec2_session(ec2_user)[2:],
    "ec2_wrapped": [0, wrapped(200, b"token"), wrapped(200, ec2_user), wrapped(200, b"i-1"),
        wrapped(404, b""), wrapped(200, MAC0), wrapped(200, MAC0 + b"/"), wrapped(200, b"0"),
        wrapped(200, b"10.0.1.23"), wrapped(200, b"10.0.1.0/24"), wrapped(200, b"10.0.0.0/16")],
    "gce_two_nics": [1, raw(200, b'[log]\nlevel = "debug"\n', headers=google), raw(200, b"4520031799277581759", headers=google),
        raw(200, b"nat-1.us-central1-a.c.proj.internal", headers=google), raw(200, gce_nics, headers=google, chunked=True)],
    "gce_no_user_data_wrapped": [1, wrapped(404, b"", True), wrapped(200, b"1", True), wrapped(200, b"nat-1", True),
        wrapped(200, gce_nics, True)],
    "gce_no_flavor": [1, raw(200, b"user-data")],
}
os.makedirs("seeds/metadata_http", exist_ok=True)
for name, (mode, *recs) in metadata_seeds.items():
    with open(f"seeds/metadata_http/{name}", "wb") as f:
        f.write(bytes([mode]) + b"".join(recs))

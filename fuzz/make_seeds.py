#!/usr/bin/env python3
"""Writes the seed corpora: for the engine target, short sessions of valid frames in the
test topology (ARP, UDP/TCP/ICMP out and back, IPv6 neighbour discovery and UDP), in
its record format [control, len_hi, len_lo, frame]; for the offloaded target, sessions
with virtio-net headers (a TCP GSO super-frame out and back, a partial-checksum UDP
datagram) as [control, len_hi, len_lo, vnet header, frame]. Run from fuzz/."""
import os, struct

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

osetup = orec(0, arp_req(HOST, "10.10.0.2", "10.10.0.1")) + orec(1, arp_req(GW, "198.51.100.1", "198.51.100.10"))
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
}
os.makedirs("seeds/offloaded", exist_ok=True)
for name, data in oseeds.items():
    with open(f"seeds/offloaded/{name}", "wb") as f:
        f.write(data)

#!/usr/bin/env python3
"""Small socket tools for the end-to-end tests (stdlib only).

Every command is bounded in time; exit status 0 means "what the test expects happened"
unless stated otherwise. Output lines are meant for the test log.

  udp-refused HOST PORT           connected UDP socket: exit 0 iff send+recv raises
                                  ECONNREFUSED (ICMP port unreachable came back)
  udp-prohibited HOST PORT        connected UDP socket: exit 0 iff send+recv raises the
                                  error of ICMP administratively prohibited
                                  (EHOSTUNREACH for IPv4 type 3 code 13, EACCES for
                                  IPv6 type 1 code 1, as Linux maps them)
  udp-echo BIND PORT SECONDS      UDP server answering every datagram with the
                                  source it saw ("ip port")
  udp-listen BIND PORT SECONDS [FILE]
                                  prints "got N datagrams" at the end (exit 0); with
                                  FILE, appends "IP:PORT DATA" per datagram to it
                                  (a syslog collector)
  tcp-listen BIND PORT SECONDS    prints "accepted FROM" per connection, then
                                  "accepted N connections" (exit 0)
  udp-send HOST PORT COUNT        sends COUNT datagrams (from one socket)
  tcp-connect HOST PORT SECONDS   exit 0 iff the connection is established
  hairpin ECHO PORT [punch]       A and B learn their external endpoints from the
                                  echo server, B sends to A's external endpoint;
                                  exit 0 iff A receives it from B's external endpoint.
                                  With "punch", A first sends to B's external endpoint
                                  (opens an address/port-dependent filter).
  exhaust ECHO PORT EXTRA         one long-lived flow plus EXTRA more (one socket each);
                                  prints first_before/first_during/first_after, extra_ok
  udp-mapped BIND PORT REMOTE RPORT SECONDS
                                  as udp-listen, after sending one datagram to
                                  REMOTE:RPORT (opens a NAT mapping)
  inject IFACE DSTMAC             sends malformed frames on IFACE (AF_PACKET)

Attacks (forged frames on IFACE, AF_PACKET, to DSTMAC; see test_attacks.sh):
  icmp6-short IFACE DSTMAC DST... 4-byte ICMPv6 echo requests from 2001:db8:ff::1
  spoof-udp IFACE DSTMAC DST DPORT COUNT SRC...
                                  COUNT datagrams from each forged SRC
  offpath-rst IFACE DSTMAC PORT   RSTs far outside the window of the TCP connection
                                  whose segments leave IFACE from PORT
  flood KIND IFACE DSTMAC SECONDS RATE
                                  random frames: syn, udp, frag (to the pool address),
                                  arp, ndp (random senders, from lan)
  drops-delta BEFORE AFTER PORT LEAST
                                  drop reasons that grew between two `show stats
                                  --json` (and socket drops between the `show
                                  interfaces --json` beside them); exit 0 iff they
                                  grew, cover both ports' drops, and PORT's drops
                                  grew by >= LEAST
"""
import json
import os
import random
import socket
import struct
import sys
import time


def addr_family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def udp_refused(host, port):
    s = socket.socket(addr_family(host), socket.SOCK_DGRAM)
    s.settimeout(3)
    s.connect((host, int(port)))
    for _ in range(3):
        try:
            s.send(b"hello?")
            s.recv(1500)
            print("unexpected reply")
            return 1
        except ConnectionRefusedError as e:
            print(f"connection refused: {e}")
            return 0
        except socket.timeout:
            continue
    print("no ICMP error came back (timeout)")
    return 1


def udp_prohibited(host, port):
    import errno
    want = errno.EACCES if ":" in host else errno.EHOSTUNREACH
    s = socket.socket(addr_family(host), socket.SOCK_DGRAM)
    s.settimeout(3)
    s.connect((host, int(port)))
    for _ in range(3):
        try:
            s.send(b"hello?")
            s.recv(1500)
            print("unexpected reply")
            return 1
        except socket.timeout:
            continue
        except OSError as e:
            print(f"error: {e}")
            return 0 if e.errno == want else 1
    print("no ICMP error came back (timeout)")
    return 1


def udp_echo(bind, port, seconds):
    s = socket.socket(addr_family(bind), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((bind, int(port)))
    end = time.time() + float(seconds)
    while time.time() < end:
        s.settimeout(max(0.05, end - time.time()))
        try:
            data, src = s.recvfrom(2048)
        except socket.timeout:
            break
        s.sendto(f"{src[0]} {src[1]}".encode(), src)
    return 0


def udp_listen(bind, port, seconds, log=None):
    s = socket.socket(addr_family(bind), socket.SOCK_DGRAM)
    s.bind((bind, int(port)))
    return receive_all(s, seconds, log)


def udp_mapped(bind, port, remote, rport, seconds):
    """As udp-listen, after one datagram to REMOTE:RPORT (opens a NAT mapping)."""
    s = socket.socket(addr_family(bind), socket.SOCK_DGRAM)
    s.bind((bind, int(port)))
    s.sendto(b"open", (remote, int(rport)))
    return receive_all(s, seconds)


def receive_all(s, seconds, log=None):
    """Receives on s for SECONDS: prints each datagram's source, then the count."""
    out = open(log, "a") if log else None
    n = 0
    end = time.time() + float(seconds)
    while time.time() < end:
        s.settimeout(max(0.05, end - time.time()))
        try:
            data, src = s.recvfrom(4096)
            n += 1
            print(f"datagram from {src[0]} {src[1]}", flush=True)
            if out:
                out.write(f"{src[0]}:{src[1]} {data.decode(errors='replace')}\n")
                out.flush()
        except socket.timeout:
            break
    print(f"got {n} datagrams", flush=True)
    return 0


def tcp_listen(bind, port, seconds):
    s = socket.socket(addr_family(bind), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((bind, int(port)))
    s.listen(16)
    n = 0
    end = time.time() + float(seconds)
    while time.time() < end:
        s.settimeout(max(0.05, end - time.time()))
        try:
            c, src = s.accept()
            n += 1
            print(f"accepted {src[0]} {src[1]}", flush=True)
            c.close()
        except socket.timeout:
            break
    print(f"accepted {n} connections", flush=True)
    return 0


def udp_send(host, port, count):
    s = socket.socket(addr_family(host), socket.SOCK_DGRAM)
    for i in range(int(count)):
        s.sendto(f"unsolicited {i}".encode(), (host, int(port)))
        time.sleep(0.05)
    return 0


def tcp_connect(host, port, seconds):
    s = socket.socket(addr_family(host), socket.SOCK_STREAM)
    s.settimeout(float(seconds))
    try:
        s.connect((host, int(port)))
    except OSError as e:
        print(f"connect failed: {e}")
        return 1
    print("connected")
    return 0


def ask(sock, server, tries=3):
    """Sends a probe to the echo server; returns the (ip, port) it saw, or None."""
    sock.settimeout(1)
    for _ in range(tries):
        sock.sendto(b"who am i", server)
        try:
            while True:
                data, src = sock.recvfrom(2048)
                if src == server:
                    ip, port = data.decode().split()
                    return ip, int(port)
        except socket.timeout:
            continue
    return None


def hairpin(echo, port, mode=""):
    server = (echo, int(port))
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("0.0.0.0", 0))
    b.bind(("0.0.0.0", 0))
    ext_a, ext_b = ask(a, server), ask(b, server)
    print(f"A local {a.getsockname()} external {ext_a}; B local {b.getsockname()} external {ext_b}")
    if not ext_a or not ext_b:
        print("echo server did not answer")
        return 1
    if mode == "punch":
        a.sendto(b"punch", ext_b)  # B does not expect it; opens A's filter for B
        time.sleep(0.2)
    a.settimeout(1)
    for _ in range(3):
        b.sendto(b"hairpin", ext_a)
        try:
            while True:
                data, src = a.recvfrom(2048)
                if data == b"hairpin":
                    print(f"A received from {src}")
                    return 0 if src == ext_b else 1
        except socket.timeout:
            continue
    print("A received nothing")
    return 1


def exhaust(echo, port, extra):
    server = (echo, int(port))
    first = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    first.bind(("0.0.0.0", 0))
    before = ask(first, server)
    print(f"first_before={before}")
    ok = 0
    socks = []
    for i in range(int(extra)):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 0))
        socks.append(s)
        got = ask(s, server, tries=2)
        print(f"extra[{i}] local {s.getsockname()[1]} -> {got}")
        if got:
            ok += 1
        if i == int(extra) // 2:
            print(f"first_during={ask(first, server)}")
    after = ask(first, server)
    print(f"first_after={after}")
    print(f"extra_ok={ok}")
    same = before is not None and before == after
    print(f"first_kept_mapping={'yes' if same else 'no'}")
    return 0


def csum(b):
    """The Internet checksum (RFC 1071) of b."""
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return ~t & 0xFFFF


def inject(iface, dstmac):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    mymac = s.getsockname()[4]
    dst = bytes.fromhex(dstmac.replace(":", ""))
    eth = dst + mymac

    def ipv4(payload, ihl=5, total=None, bad_csum=False, proto=17):
        total = total if total is not None else 20 + len(payload)
        h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 1, 0, 64, proto, 0,
                        socket.inet_aton("10.10.0.2"), socket.inet_aton("198.51.100.1"))
        c = csum(h)
        if bad_csum:
            c ^= 0x5555
        return h[:10] + struct.pack("!H", c) + h[12:]

    udp = struct.pack("!HHHH", 40000, 9, 8 + 4, 0) + b"junk"
    frames = {
        "truncated IPv4 (header cut)": eth + b"\x08\x00" + ipv4(udp)[:12],
        "IPv4 total length > frame": eth + b"\x08\x00" + ipv4(udp, total=1400) + udp,
        "IPv4 bad header checksum": eth + b"\x08\x00" + ipv4(udp, bad_csum=True) + udp,
        "IPv4 IHL < 5": eth + b"\x08\x00" + ipv4(udp, ihl=3) + udp,
        "IPv4 version 6 in IPv4 ethertype": eth + b"\x08\x00" + b"\x65" + ipv4(udp)[1:] + udp,
        "UDP header truncated": eth + b"\x08\x00" + ipv4(udp[:4], total=24) + udp[:4],
        "VLAN-tagged IPv4": eth + b"\x81\x00\x00\x05\x08\x00" + ipv4(udp) + udp,
        "foreign destination MAC": b"\x02\x11\x22\x33\x44\x55" + mymac + b"\x08\x00" + ipv4(udp) + udp,
        "unknown ethertype": eth + b"\x88\xb5" + b"\0" * 46,
        "truncated ARP": eth + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04",
        "truncated IPv6": eth + b"\x86\xdd" + b"\x60\0\0\0\0\x20\x11\x40" + b"\x20\x01",
    }
    rng = random.Random(4787)
    for i in range(20):
        frames[f"random bytes {i}"] = eth + bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
    for i in range(20):
        frames[f"random frame {i}"] = bytes(rng.getrandbits(8) for _ in range(rng.randint(14, 300)))
    sent = 0
    for name, f in frames.items():
        # (A frame shorter than the Ethernet header cannot be sent: the kernel refuses.)
        if len(f) < 60:
            f = f + b"\0" * (60 - len(f))
        try:
            s.send(f)
            sent += 1
        except OSError as e:
            print(f"{name}: not sent: {e}")
    print(f"sent {sent} malformed frames")
    # A jumbo frame: only if the interface MTU allows it (the test raises it).
    jumbo_payload = b"J" * (9000 - 20 - 8)
    ju = struct.pack("!HHHH", 40000, 9, 8 + len(jumbo_payload), 0) + jumbo_payload
    try:
        s.send(eth + b"\x08\x00" + ipv4(ju) + ju)
        print("sent jumbo frame (9014 bytes)")
    except OSError as e:
        print(f"jumbo frame not sent: {e}")
    return 0


# Frame builders for the attack commands below (each returns bytes; checksums correct).
def raw_port(iface):
    """An AF_PACKET socket sending on iface, and the interface's MAC."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    return s, s.getsockname()[4]


def mac_bytes(text):
    return bytes.fromhex(text.replace(":", ""))


def ip4(src, dst, proto, payload, ident=0, frag=0):
    """IPv4 header + payload; frag is the flags/fragment-offset field (MF = 0x2000)."""
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def l4_csum4(src, dst, proto, seg):
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, proto, len(seg))
    return csum(pseudo + seg)


def udp4(src, sport, dst, dport, data):
    u = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    c = l4_csum4(src, dst, 17, u) or 0xFFFF
    return u[:6] + struct.pack("!H", c) + u[8:]


def tcp4(src, sport, dst, dport, seq, flags):
    """A TCP segment without options or data (ack 0)."""
    t = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, 0, 5 << 4, flags, 65535, 0, 0)
    return t[:16] + struct.pack("!H", l4_csum4(src, dst, 6, t)) + t[18:]


def icmp6(src, dst, msg, bad_csum=False):
    """msg (type, code, two checksum bytes, rest) with its checksum filled in."""
    pseudo = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
              + struct.pack("!I3xB", len(msg), 58))
    c = csum(pseudo + msg[:2] + b"\0\0" + msg[4:]) ^ (0x5555 if bad_csum else 0)
    return msg[:2] + struct.pack("!H", c) + msg[4:]


def ip6(src, dst, nh, payload, hlim=64):
    return (struct.pack("!IHBB", 6 << 28, len(payload), nh, hlim)
            + socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) + payload)


def icmp6_short(iface, dstmac, *dsts):
    """ICMPv6 echo requests from the wan host whose body is only type, code and
    checksum (4 of the 8 bytes of an echo header), checksum right and wrong."""
    s, mymac = raw_port(iface)
    src = "2001:db8:ff::1"
    for dst in dsts:
        for bad in (False, True):
            body = icmp6(src, dst, b"\x80\x00\0\0", bad_csum=bad)
            s.send(mac_bytes(dstmac) + mymac + b"\x86\xdd" + ip6(src, dst, 58, body))
            print(f"sent a 4-byte ICMPv6 echo request to {dst} ({'wrong' if bad else 'right'} checksum)")
    return 0


def spoof_udp(iface, dstmac, dst, dport, count, *srcs):
    """COUNT UDP datagrams from each of SRCS (port 9999) to DST:DPORT, forged on the wire."""
    s, mymac = raw_port(iface)
    eth = mac_bytes(dstmac) + mymac + b"\x08\x00"
    for src in srcs:
        for i in range(int(count)):
            s.send(eth + ip4(src, dst, 17, udp4(src, 9999, dst, int(dport), f"spoofed {src} {i}".encode()), ident=i))
        print(f"sent {count} datagrams from {src}:9999 to {dst}:{dport}")
    return 0


def offpath_rst(iface, dstmac, port):
    """Waits (at most 5 s) for a TCP segment leaving IFACE from PORT, then sends RSTs as
    from its source to its destination with sequence numbers a quarter, half and three
    quarters of the sequence space away from its own: never inside the receiver's window."""
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    sniff.bind((iface, 0))
    sniff.settimeout(0.5)
    end = time.time() + 5
    while time.time() < end:
        try:
            data, addr = sniff.recvfrom(2048)
        except socket.timeout:
            continue
        ip = data[14:]
        if (addr[2] != socket.PACKET_OUTGOING or data[12:14] != b"\x08\x00" or ip[9] != 6
                or len(ip) < 40):
            continue
        ihl = (ip[0] & 0x0F) * 4
        sport, dport, seq = struct.unpack("!HHI", ip[ihl:ihl + 8])
        if sport == int(port):
            break
    else:
        print(f"no TCP segment from port {port} seen on {iface}")
        return 1
    src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
    s, mymac = raw_port(iface)
    print(f"segment {src}:{sport} -> {dst}:{dport} seq {seq}")
    for off in (1 << 30, 1 << 31, 3 << 30):
        rst = tcp4(src, sport, dst, dport, seq + off, 0x04)
        s.send(mac_bytes(dstmac) + mymac + b"\x08\x00" + ip4(src, dst, 6, rst))
        print(f"sent RST seq {(seq + off) & 0xFFFFFFFF} (seq + {off})")
    return 0


def rand_mac(rng):
    """A random locally administered unicast MAC."""
    b = bytearray(rng.getrandbits(8) for _ in range(6))
    b[0] = (b[0] & 0xFC) | 0x02
    return bytes(b)


def rand_ip4(rng):
    return socket.inet_ntoa(struct.pack("!I", rng.getrandbits(32)))


def lan_ip4(rng):
    """A random lan address other than natbox's (.1), the lan host's (.2) and the one
    test_attacks.sh adds after the storm (.3)."""
    return f"10.10.0.{rng.randint(4, 254)}"


def flood_frame(kind, rng, mymac, dstmac, avoid):
    """One random frame of a flood: syn, udp and frag from wan to the pool address (to
    a destination port not in AVOID: the public ports of live mappings, which a frame
    from anywhere may reach under endpoint-independent filtering), arp and ndp from lan
    (random sender MACs; random sender addresses, for arp half of them on the lan
    prefix and half anywhere)."""
    pool = "198.51.100.10"
    if kind in ("syn", "udp", "frag"):
        src, sport, dport = rand_ip4(rng), rng.randint(1, 65535), rng.randint(1024, 29999)
        while dport in avoid:
            dport = rng.randint(1024, 29999)
        eth = dstmac + mymac + b"\x08\x00"
        if kind == "syn":
            return eth + ip4(src, pool, 6, tcp4(src, sport, pool, dport, rng.getrandbits(32), 0x02))
        if kind == "udp":
            return eth + ip4(src, pool, 17, udp4(src, sport, pool, dport, b"flood" * 4))
        ident = rng.getrandbits(16)
        if rng.random() < 0.5:  # a first fragment whose rest never comes
            return eth + ip4(src, pool, 17, udp4(src, sport, pool, dport, b"f" * 64)[:32], ident, 0x2000)
        frag = rng.randint(1, 1000) | (0x2000 if rng.random() < 0.5 else 0)
        return eth + ip4(src, pool, 17, bytes(32), ident, frag)
    sender = rand_mac(rng)
    if kind == "arp":
        op = 1 if rng.random() < 0.75 else 2
        target = "10.10.0.1" if rng.random() < 0.5 else lan_ip4(rng)
        dst = b"\xff" * 6 if op == 1 else dstmac
        spa = lan_ip4(rng) if rng.random() < 0.5 else rand_ip4(rng)
        arp = (struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + sender + socket.inet_aton(spa)
               + (dstmac if op == 2 else bytes(6)) + socket.inet_aton(target))
        return dst + sender + b"\x08\x06" + arp
    # ndp: a neighbour solicitation with a source link-layer address option, from a
    # random address of the lan prefix (interface identifier above 0xffff: never ::1 or
    # ::2), for natbox's address or another random one, to the target's solicited-node
    # multicast address.
    src = f"2001:db8:10::{rng.getrandbits(16) | 0x8000:x}:{rng.getrandbits(16):x}"
    target = "2001:db8:10::1" if rng.random() < 0.5 else f"2001:db8:10::{rng.getrandbits(16) | 0x8000:x}:{rng.getrandbits(16):x}"
    t = socket.inet_pton(socket.AF_INET6, target)
    dst = "ff02::1:ff" + t[13:14].hex() + ":" + t[14:16].hex()
    ns = icmp6(src, dst, b"\x87\x00\0\0" + bytes(4) + t + b"\x01\x01" + sender)
    return b"\x33\x33" + socket.inet_pton(socket.AF_INET6, dst)[12:] + sender + b"\x86\xdd" + ip6(src, dst, 58, ns, 255)


def flood(kind, iface, dstmac, seconds, rate, avoid=""):
    """Sends random frames of KIND (see flood_frame) on IFACE at RATE frames/s for
    SECONDS (a cycle of 16384 distinct frames, seeded: the same every run; more
    distinct senders than natbox's neighbour cache has entries, 4096). AVOID: the
    comma-separated destination ports the frames must not use."""
    s, mymac = raw_port(iface)
    rng = random.Random(f"natbox {kind} flood")
    ports = {int(p) for p in avoid.split(",") if p}
    frames = [flood_frame(kind, rng, mymac, mac_bytes(dstmac), ports) for _ in range(16384)]
    rate, seconds = int(rate), float(seconds)
    sent = refused = 0
    t0 = time.time()
    while time.time() - t0 < seconds:
        due = min(int((time.time() - t0) * rate), int(seconds * rate))
        while sent + refused < due:
            try:
                s.send(frames[(sent + refused) % len(frames)])
                sent += 1
            except OSError:  # the veth's queue is full: the frame is lost, as on a wire
                refused += 1
        time.sleep(0.002)
    took = time.time() - t0
    print(f"sent {sent} {kind} frames in {took:.1f} s ({sent / took:.0f}/s; {refused} refused by the kernel)")
    return 0


def drops_delta(before, after, port, least):
    """Compares the counters natbox showed before and after an attack: BEFORE and AFTER
    are `show stats --json` outputs, each with its `show interfaces --json` beside it
    (NAME-ports.json for NAME.json). Prints every drop reason that grew, the ports' drop
    counters and the socket drops below the engine. Exit 0 iff the drop reasons grew
    (at least 1 in all), by at least as much as both ports' drop counters together
    (every drop has a named reason), and PORT's drops, its socket drops and the drops
    tied to no port (parked frames given up) add up to at least LEAST."""
    try:
        b, a = (json.load(open(f)) for f in (before, after))
        bp, ap = ({i["port"]: i for i in json.load(open(f.replace(".json", "-ports.json")))}
                  for f in (before, after))
    except (OSError, ValueError) as e:  # natbox did not answer the admin shell
        print(f"no counters to compare: {e}")
        return 1
    grew = {k: v - b["drops"].get(k, 0) for k, v in a["drops"].items() if v != b["drops"].get(k, 0)}
    total = sum(grew.values())
    ports = {p: a["counters"][f"{p}_drops"] - b["counters"][f"{p}_drops"] for p in ("inside", "outside")}
    sockets = {p: ap[p]["socket_drops"] - bp[p]["socket_drops"] for p in ("inside", "outside")}
    portless = total - ports["inside"] - ports["outside"]
    accounted = ports[port] + sockets[port] + portless
    print("drop reasons grew: " + (" ".join(f"{k}=+{v}" for k, v in sorted(grew.items())) or "none"))
    print(f"sum +{total}; port drops: inside +{ports['inside']} outside +{ports['outside']}; "
          f"socket drops: inside +{sockets['inside']} outside +{sockets['outside']}; "
          f"{port}: {accounted} accounted for (at least {least} expected)")
    return 0 if total >= 1 and portless >= 0 and accounted >= int(least) else 1


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {
        "udp-refused": udp_refused,
        "udp-prohibited": udp_prohibited,
        "udp-echo": udp_echo,
        "udp-listen": udp_listen,
        "udp-mapped": udp_mapped,
        "tcp-listen": tcp_listen,
        "udp-send": udp_send,
        "tcp-connect": tcp_connect,
        "hairpin": hairpin,
        "exhaust": exhaust,
        "inject": inject,
        "icmp6-short": icmp6_short,
        "spoof-udp": spoof_udp,
        "offpath-rst": offpath_rst,
        "flood": flood,
        "drops-delta": drops_delta,
    }[cmd]
    sys.exit(fn(*args))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Small socket tools for the end-to-end tests (stdlib only).

Every command is bounded in time; exit status 0 means "what the test expects happened"
unless stated otherwise. Output lines are meant for the test log.

  udp-refused HOST PORT           connected UDP socket: exit 0 iff send+recv raises
                                  ECONNREFUSED (ICMP port unreachable came back)
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
  inject IFACE DSTMAC             sends malformed frames on IFACE (AF_PACKET)
"""
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


def inject(iface, dstmac):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    mymac = s.getsockname()[4]
    dst = bytes.fromhex(dstmac.replace(":", ""))
    eth = dst + mymac

    def csum(b):
        if len(b) % 2:
            b += b"\0"
        t = sum(struct.unpack(f"!{len(b) // 2}H", b))
        while t >> 16:
            t = (t & 0xFFFF) + (t >> 16)
        return ~t & 0xFFFF

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


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {
        "udp-refused": udp_refused,
        "udp-echo": udp_echo,
        "udp-listen": udp_listen,
        "tcp-listen": tcp_listen,
        "udp-send": udp_send,
        "tcp-connect": tcp_connect,
        "hairpin": hairpin,
        "exhaust": exhaust,
        "inject": inject,
    }[cmd]
    sys.exit(fn(*args))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Decodes the IPFIX messages in a pcap (UDP datagrams to PORT) with the `netflow`
package from PyPI (installed, pinned, by tests/setup.sh): a second decoder beside
nfdump for test_flowlog.sh. Prints one JSON object per data record, with the
record's fields by IANA name (enterprise fields as "pen:id"), plus "_template",
"_sequence" and "_domain" of its message; exits 1 if a message does not decode or
a message's sequence number is not the count of data records before it.

Usage: ipfix_decode.py FILE.pcap PORT
"""
import ipaddress
import json
import struct
import sys

from netflow.ipfix import IPFIXExportPacket


def datagrams(path, port):
    """UDP payloads to `port` in a classic pcap of Ethernet frames (bounded by the file)."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    at = 24
    while at + 16 <= len(data):
        incl = struct.unpack(endian + "IIII", data[at:at + 16])[2]
        frame = data[at + 16:at + 16 + incl]
        at += 16 + incl
        if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 17:
            continue
        udp = ip[ihl:]
        if struct.unpack("!H", udp[2:4])[0] == port:
            yield udp[8:struct.unpack("!H", udp[4:6])[0]]


def main():
    path, port = sys.argv[1], int(sys.argv[2])
    templates = {}
    seen = 0
    for payload in datagrams(path, port):
        packet = IPFIXExportPacket(payload, templates)
        h = packet.header
        if packet.flows and h.sequence_number != seen:
            print(f"sequence {h.sequence_number}, expected {seen}", file=sys.stderr)
            sys.exit(1)
        for record in packet.flows:
            # (The package spells the header field "obervation_domain_id".)
            out = {"_sequence": h.sequence_number, "_domain": h.obervation_domain_id}
            for key, value in record.data.items():
                if isinstance(value, bytes):
                    value = value.hex()
                elif "IPv4Address" in str(key) or "IPv6Address" in str(key):
                    value = str(ipaddress.ip_address(value))
                out[str(key)] = value
            print(json.dumps(out, sort_keys=True))
        seen += len(packet.flows)


if __name__ == "__main__":
    main()

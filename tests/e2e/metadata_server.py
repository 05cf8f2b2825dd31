#!/usr/bin/env python3
"""A small cloud metadata server for the end-to-end tests (stdlib only), run in a
namespace at 169.254.169.254:80 (both are options, so it can be tried on loopback).

  metadata_server.py --mode MODE [--bind ADDR] [--port N] [--user-data FILE]
      [--interfaces JSON] [--hostname NAME] [--instance-id ID] [--log FILE]
      [--duration SECONDS]
  metadata_server.py --self-check      serves on 127.0.0.1 and checks itself

Modes:
  imdsv2  EC2's IMDSv2 with HttpTokens=required: PUT /latest/api/token needs
          X-aws-ec2-metadata-token-ttl-seconds (1-21600, else 400), is refused with 403
          when it carries X-Forwarded-For (as AWS refuses proxied PUTs), and answers
          a token with the TTL header echoed; every GET without a valid, unexpired
          X-aws-ec2-metadata-token is 401.
  imdsv1  an IMDSv1-only server: the token PUT is 405, GETs need no token.
  gce     the GCE metadata server: requests without Metadata-Flavor: Google, or with
          X-Forwarded-For, are 403; every response carries Metadata-Flavor: Google.
  hang    accepts connections and never answers.
  huge    imdsv2, with a user-data of 10 MB.

--interfaces is a JSON list, in device order, of objects with "mac", "local-ipv4s"
(list, the first is the primary), "subnet" (CIDR), "vpc-cidrs" (list), and optionally
"device-number" (default: the position), "gateway" (default: the subnet's first
address) and "mtu" (GCE; default 1460). EC2 serves them under
/latest/meta-data/network/interfaces/macs/, GCE as instance/network-interfaces/.
Without --user-data, the user-data path answers 404.

--log appends one line per request, "METHOD PATH STATUS", so a test can assert that
no GET went out without a token (IMDSv1). The server stops after --duration seconds
(default 600).
"""
import argparse
import http.client
import http.server
import ipaddress
import json
import os
import secrets
import sys
import tempfile
import threading
import time

EC2_TTL_MAX = 21600
HUGE = 10 << 20


class State:
    """What the server serves, and its log."""

    def __init__(self, args):
        self.mode = args.mode
        self.user_data = None
        if args.user_data:
            with open(args.user_data, "rb") as f:
                self.user_data = f.read()
        if self.mode == "huge":
            self.user_data = b"#" * HUGE
        self.interfaces = json.loads(args.interfaces) if args.interfaces else []
        for i, nic in enumerate(self.interfaces):
            nic.setdefault("device-number", i)
            net = ipaddress.ip_network(nic["subnet"], strict=False)
            nic.setdefault("gateway", str(next(net.hosts())))
            nic.setdefault("mtu", 1460)
        self.hostname = args.hostname
        self.instance_id = args.instance_id
        self.tokens = {}
        self.lock = threading.Lock()
        self.log = open(args.log, "a", buffering=1) if args.log else None

    def record(self, method, path, status):
        if self.log:
            with self.lock:
                self.log.write(f"{method} {path} {status}\n")

    def new_token(self, ttl):
        token = secrets.token_urlsafe(42)
        with self.lock:
            self.tokens[token] = time.monotonic() + ttl
        return token

    def token_valid(self, token):
        with self.lock:
            return token is not None and self.tokens.get(token, 0) > time.monotonic()

    def ec2_value(self, path):
        """The body at an EC2 path, or None (404)."""
        if path == "/latest/user-data":
            return self.user_data
        meta = "/latest/meta-data/"
        if not path.startswith(meta):
            return None
        rest = path[len(meta):]
        macs = "network/interfaces/macs/"
        first = self.interfaces[0] if self.interfaces else None
        leaves = {
            "": "instance-id\nlocal-hostname\nmac\nnetwork/",
            "instance-id": self.instance_id,
            "local-hostname": self.hostname,
            "hostname": self.hostname,
            "local-ipv4": first["local-ipv4s"][0] if first else None,
            "mac": first["mac"] if first else None,
            macs: "\n".join(f"{n['mac']}/" for n in self.interfaces),
        }
        if rest in leaves:
            value = leaves[rest]
            return None if value is None else value.encode()
        if not rest.startswith(macs):
            return None
        mac, _, leaf = rest[len(macs):].partition("/")
        nic = next((n for n in self.interfaces if n["mac"] == mac), None)
        if nic is None:
            return None
        values = {
            "": "device-number\nlocal-ipv4s\nmac\nsubnet-ipv4-cidr-block\nvpc-ipv4-cidr-blocks",
            "device-number": str(nic["device-number"]),
            "local-ipv4s": "\n".join(nic["local-ipv4s"]),
            "mac": nic["mac"],
            "subnet-ipv4-cidr-block": nic["subnet"],
            "vpc-ipv4-cidr-blocks": "\n".join(nic["vpc-cidrs"]),
        }
        value = values.get(leaf)
        return None if value is None else value.encode()

    def gce_value(self, path):
        base = "/computeMetadata/v1/instance/"
        if not path.startswith(base):
            return None
        rest = path[len(base):]
        if rest == "attributes/user-data":
            return self.user_data
        if rest == "id":
            return self.instance_id.encode()
        if rest == "hostname":
            return self.hostname.encode()
        if rest == "network-interfaces/":
            return "".join(f"{i}/\n" for i in range(len(self.interfaces))).encode()
        if rest == "network-interfaces/?recursive=true":
            nics = []
            for nic in self.interfaces:
                net = ipaddress.ip_network(nic["subnet"], strict=False)
                nics.append({
                    "accessConfigs": [],
                    "dnsServers": ["169.254.169.254"],
                    "forwardedIps": [],
                    "gateway": nic["gateway"],
                    "ip": nic["local-ipv4s"][0],
                    "ipAliases": [],
                    "mac": nic["mac"],
                    "mtu": nic["mtu"],
                    "network": "projects/1/networks/default",
                    "subnetmask": str(net.netmask),
                    "targetInstanceIps": [],
                })
            return json.dumps(nics).encode()
        return None


def handler(state):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "metadata"
        sys_version = ""

        def log_message(self, *args):
            pass

        def reply(self, status, body=b"", headers=()):
            self.close_connection = True
            state.record(self.command, self.path, status)
            self.send_response(status)
            if state.mode == "gce":
                self.send_header("Metadata-Flavor", "Google")
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_PUT(self):
            if state.mode == "hang":
                return self.hang()
            if state.mode == "gce":
                return self.reply(405)
            if state.mode == "imdsv1" or self.path != "/latest/api/token":
                return self.reply(405)
            if self.headers.get("X-Forwarded-For") is not None:
                return self.reply(403)
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if ttl is None or not ttl.isdigit() or not 1 <= int(ttl) <= EC2_TTL_MAX:
                return self.reply(400)
            token = state.new_token(int(ttl))
            self.reply(200, token.encode(), [("X-aws-ec2-metadata-token-ttl-seconds", ttl)])

        def do_GET(self):
            if state.mode == "hang":
                return self.hang()
            if state.mode == "gce":
                if (self.headers.get("Metadata-Flavor") != "Google"
                        or self.headers.get("X-Forwarded-For") is not None):
                    return self.reply(403)
                value = state.gce_value(self.path)
            else:
                token = self.headers.get("X-aws-ec2-metadata-token")
                if state.mode != "imdsv1" and not state.token_valid(token):
                    return self.reply(401)
                value = state.ec2_value(self.path)
            if value is None:
                return self.reply(404, b"Not Found")
            self.reply(200, value)

        def do_POST(self):
            self.reply(405)

        def hang(self):
            state.record(self.command, self.path, "-")
            time.sleep(3600)

    return Handler


def serve(args):
    state = State(args)
    server = http.server.ThreadingHTTPServer((args.bind, args.port), handler(state))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def request(port, method, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), body


def self_check():
    """Runs each mode on 127.0.0.1 and checks what it answers."""
    nics = json.dumps([
        {"mac": "0e:00:00:00:00:01", "local-ipv4s": ["10.0.1.23", "10.0.1.24"],
         "subnet": "10.0.1.0/24", "vpc-cidrs": ["10.0.0.0/16"]},
        {"mac": "0e:00:00:00:00:02", "local-ipv4s": ["10.0.2.5"],
         "subnet": "10.0.2.0/24", "vpc-cidrs": ["10.0.0.0/16"]},
    ])
    passed = failed = 0

    def check(what, ok):
        nonlocal passed, failed
        print(("ok   - " if ok else "FAIL - ") + what)
        passed += 1 if ok else 0
        failed += 0 if ok else 1

    with tempfile.TemporaryDirectory() as tmp:
        user = os.path.join(tmp, "user-data")
        with open(user, "w") as f:
            f.write("[nat]\nfiltering = \"address-dependent\"\n")
        log = os.path.join(tmp, "log")

        def start(mode, user_data=None):
            args = argparse.Namespace(mode=mode, bind="127.0.0.1", port=0, user_data=user_data,
                                      interfaces=nics, hostname="ip-10-0-1-23.ec2.internal",
                                      instance_id="i-0abc", log=log)
            server = serve(args)
            return server, server.server_address[1]

        server, port = start("imdsv2", user)
        ttl = {"X-aws-ec2-metadata-token-ttl-seconds": "21600"}
        check("imdsv2: GET without a token is 401",
              request(port, "GET", "/latest/user-data")[0] == 401)
        check("imdsv2: PUT without the TTL header is 400",
              request(port, "PUT", "/latest/api/token")[0] == 400)
        check("imdsv2: PUT with X-Forwarded-For is 403",
              request(port, "PUT", "/latest/api/token", dict(ttl, **{"X-Forwarded-For": "1.2.3.4"}))[0] == 403)
        status, headers, token = request(port, "PUT", "/latest/api/token", ttl)
        check("imdsv2: PUT gives a token and echoes the TTL",
              status == 200 and headers.get("X-aws-ec2-metadata-token-ttl-seconds") == "21600")
        auth = {"X-aws-ec2-metadata-token": token.decode()}
        check("imdsv2: user-data with the token",
              request(port, "GET", "/latest/user-data", auth)[2].startswith(b"[nat]"))
        macs = "/latest/meta-data/network/interfaces/macs/"
        check("imdsv2: the MAC listing",
              request(port, "GET", macs, auth)[2] == b"0e:00:00:00:00:01/\n0e:00:00:00:00:02/")
        check("imdsv2: local-ipv4s",
              request(port, "GET", macs + "0e:00:00:00:00:01/local-ipv4s", auth)[2] == b"10.0.1.23\n10.0.1.24")
        check("imdsv2: device-number of the second",
              request(port, "GET", macs + "0e:00:00:00:00:02/device-number", auth)[2] == b"1")
        check("imdsv2: a bad token is 401",
              request(port, "GET", "/latest/meta-data/mac", {"X-aws-ec2-metadata-token": "x"})[0] == 401)
        server.shutdown()

        server, port = start("imdsv1")
        check("imdsv1: the token PUT is 405", request(port, "PUT", "/latest/api/token", ttl)[0] == 405)
        check("imdsv1: no user-data is 404", request(port, "GET", "/latest/user-data")[0] == 404)
        check("imdsv1: GETs need no token",
              request(port, "GET", "/latest/meta-data/instance-id")[2] == b"i-0abc")
        server.shutdown()

        server, port = start("gce", user)
        base = "/computeMetadata/v1/instance/"
        status, headers, _ = request(port, "GET", base + "id")
        check("gce: without Metadata-Flavor 403, and the header answered",
              status == 403 and headers.get("Metadata-Flavor") == "Google")
        flavor = {"Metadata-Flavor": "Google"}
        nics_json = json.loads(request(port, "GET", base + "network-interfaces/?recursive=true", flavor)[2])
        check("gce: network interfaces with ip and subnetmask",
              nics_json[1]["ip"] == "10.0.2.5" and nics_json[0]["subnetmask"] == "255.255.255.0")
        check("gce: user-data", request(port, "GET", base + "attributes/user-data", flavor)[0] == 200)
        server.shutdown()

        server, port = start("huge")
        _, _, token = request(port, "PUT", "/latest/api/token", ttl)
        body = request(port, "GET", "/latest/user-data", {"X-aws-ec2-metadata-token": token.decode()})[2]
        check("huge: 10 MB of user-data", len(body) == HUGE)
        server.shutdown()

        server, port = start("hang")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.request("GET", "/latest/user-data")
            conn.getresponse()
            hung = False
        except OSError:
            hung = True
        conn.close()
        check("hang: no answer within 1 s", hung)
        server.shutdown()

        with open(log) as f:
            lines = f.read().splitlines()
        check("the log has one line per request", "GET /latest/user-data 401" in lines
              and "PUT /latest/api/token 405" in lines and len(lines) == 18)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["imdsv2", "imdsv1", "gce", "hang", "huge"])
    p.add_argument("--bind", default="169.254.169.254")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--user-data")
    p.add_argument("--interfaces", "--macs", dest="interfaces")
    p.add_argument("--hostname", default="ip-10-0-1-23.ec2.internal")
    p.add_argument("--instance-id", default="i-0123456789abcdef0")
    p.add_argument("--log")
    p.add_argument("--duration", type=float, default=600)
    p.add_argument("--self-check", action="store_true")
    args = p.parse_args()
    if args.self_check:
        return self_check()
    if not args.mode:
        p.error("--mode is required")
    server = serve(args)
    print(f"metadata server ({args.mode}) on {args.bind}:{server.server_address[1]}", flush=True)
    time.sleep(args.duration)
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A BGP speaker just large enough to receive a router's OPEN and UPDATEs.

Listens on one address/port, accepts one connection, answers the peer's OPEN with ours
(MP IPv4+IPv6 unicast, route refresh, 4-octet AS, graceful restart) and a KEEPALIVE,
then writes every message it receives, one hex string per line, to the output file,
until it has seen End-of-RIB for IPv4 and IPv6 (or the time is up). It never sends
routes. Used by capture.sh; the tests only read the .hex files it wrote.
"""
import argparse
import socket
import struct
import sys
import time

MARKER = b"\xff" * 16


def msg(t, body):
    return MARKER + struct.pack("!HB", 19 + len(body), t) + body


def our_open(asn, router_id, hold):
    caps = b""
    for afi in (1, 2):
        caps += bytes([1, 4]) + struct.pack("!HBB", afi, 0, 1)
    caps += bytes([2, 0])
    caps += bytes([65, 4]) + struct.pack("!I", asn)
    caps += bytes([64, 10]) + struct.pack("!H", 120) + struct.pack("!HBB", 1, 1, 0x80) + struct.pack("!HBB", 2, 1, 0x80)
    params = bytes([2, len(caps)]) + caps
    my_as = asn if asn < 65536 else 23456
    body = struct.pack("!BHH", 4, my_as, hold) + socket.inet_aton(router_id) + bytes([len(params)]) + params
    return msg(1, body)


def is_eor(m):
    """(afi) when m is an End-of-RIB UPDATE."""
    if m[18] != 2:
        return None
    body = m[19:]
    if body == b"\x00\x00\x00\x00":
        return 1
    wlen = struct.unpack("!H", body[:2])[0]
    alen = struct.unpack("!H", body[2 + wlen:4 + wlen])[0]
    attrs = body[4 + wlen:4 + wlen + alen]
    if wlen == 0 and len(body) == 4 + alen and len(attrs) in (6, 7):
        flags, code = attrs[0], attrs[1]
        if code == 15:
            val = attrs[4:] if flags & 0x10 else attrs[3:]
            if len(val) == 3:
                return struct.unpack("!H", val[:2])[0]
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True, help="address")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--asn", type=int, default=64500)
    ap.add_argument("--router-id", default="192.0.2.1")
    ap.add_argument("--hold", type=int, default=90)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--linger", type=float, default=3, help="keep reading after both End-of-RIBs")
    a = ap.parse_args()

    fam = socket.AF_INET6 if ":" in a.listen else socket.AF_INET
    srv = socket.socket(fam, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((a.listen, a.port))
    srv.listen(1)
    srv.settimeout(a.seconds)
    conn, peer = srv.accept()
    print(f"connection from {peer}", file=sys.stderr)
    conn.settimeout(1)
    deadline = time.time() + a.seconds
    buf = b""
    eors = set()
    out = open(a.out, "w")
    sent_open = False
    lingering = False
    while time.time() < deadline:
        if eors == {1, 2} and not lingering:
            # Some routers (FRR) send End-of-RIB before their last routes.
            lingering = True
            deadline = min(deadline, time.time() + a.linger)
        try:
            data = conn.recv(65536)
        except socket.timeout:
            continue
        if not data:
            break
        buf += data
        while len(buf) >= 19:
            length = struct.unpack("!H", buf[16:18])[0]
            if len(buf) < length:
                break
            m, buf = buf[:length], buf[length:]
            out.write(m.hex() + "\n")
            out.flush()
            t = m[18]
            if t == 1 and not sent_open:
                conn.sendall(our_open(a.asn, a.router_id, a.hold) + msg(4, b""))
                sent_open = True
            elif t == 4:
                conn.sendall(msg(4, b""))
            elif t == 3:
                print("NOTIFICATION " + m[19:].hex(), file=sys.stderr)
                deadline = 0
            af = is_eor(m)
            if af:
                eors.add(af)
    # Leave without a Cease: the router just sees the connection close.
    conn.close()
    print(f"done, End-of-RIB seen for AFIs {sorted(eors)}", file=sys.stderr)


if __name__ == "__main__":
    main()

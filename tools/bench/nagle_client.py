#!/usr/bin/python3
"""A client that leaves Nagle on, as Python requests (urllib3), bare ssl sockets and wget do.

Opens N fresh connections one after another: TCP connect, CONNECT through the proxy (when
--proxy-port is given), TLS with verification against --cafile, one GET, the whole response.
Prints one JSON line: {"ms": [latency of each connection, connect() to the end of the response]}.
A TLS 1.3 server that does not send its session tickets right after the handshake makes such a
client wait for a delayed ACK (40 ms on Linux) before its request leaves.
"""
import argparse
import json
import socket
import ssl
import sys
import time


def read_until(sock, marker, limit=65536):
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before %r" % marker)
        data += chunk
        if len(data) > limit:
            raise ConnectionError("reply too large")
    return data


def one(args, ctx):
    start = time.perf_counter()
    raw = socket.create_connection(("127.0.0.1", args.proxy_port or args.port), timeout=10)
    # Nagle stays on: no TCP_NODELAY, as urllib3 does towards a proxy.
    authority = "%s:%d" % (args.host, args.port)
    if args.proxy_port:
        raw.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (authority, authority)).encode())
        reply = read_until(raw, b"\r\n\r\n")
        if not reply.startswith(b"HTTP/1.1 200"):
            raise ConnectionError("CONNECT refused: %r" % reply[:80])
    tls = ctx.wrap_socket(raw, server_hostname=args.host)
    tls.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                 % (args.path, authority)).encode())
    data = read_until(tls, b"\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError("answered %r" % head[:80])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while length is None or len(body) < length:
        chunk = tls.recv(65536)
        if not chunk:
            break
        body += chunk
    elapsed = (time.perf_counter() - start) * 1000
    tls.close()
    return elapsed


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--proxy-port", type=int, default=0)
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/bytes")
    p.add_argument("--cafile", required=True)
    p.add_argument("--count", type=int, default=20)
    args = p.parse_args()
    ctx = ssl.create_default_context(cafile=args.cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    out = []
    for _ in range(max(1, min(args.count, 1000))):
        out.append(one(args, ctx))
    print(json.dumps({"ms": out}))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one line the bench can show
        print("nagle_client: %s" % e, file=sys.stderr)
        sys.exit(1)

#!/usr/bin/env python3
"""A small HTTP CONNECT proxy for the upstream-mode tests:
connect_forwarder.py [--tls CERT KEY] [USER:PASS].
Listens on 127.0.0.1 port 0 (over TLS with CERT and KEY: an HTTPS proxy, which logs "TLS" once
each client's handshake is done), prints "port N", then for each client reads a CONNECT request,
prints "CONNECT host:port" (flushed), connects and answers 200, and relays bytes both ways.
With USER:PASS, a request without that Proxy-Authorization gets 407. A target that refuses
gets 502. Runs until terminated."""

import base64
import select
import socket
import ssl
import sys
import threading


def relay(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def relay_tls(client, upstream):
    """Both directions in one thread: an SSL socket must not be read and written from two
    threads at once. Ends when either side closes."""
    socks = [client, upstream]
    try:
        while True:
            ready = [client] if client.pending() else select.select(socks, [], [], 60)[0]
            if not ready:
                return
            for s in ready:
                data = s.recv(65536)
                if not data:
                    return
                (upstream if s is client else client).sendall(data)
    except (OSError, ssl.SSLError):
        return


def handle(client, credentials, tls):
    if tls is not None:
        try:
            client = tls.wrap_socket(client, server_side=True)
        except (OSError, ssl.SSLError) as e:
            print(f"TLS failed: {e}", flush=True)
            client.close()
            return
        print("TLS", flush=True)
    with client:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk or len(head) > 65536:
                return
            head += chunk
        lines = head.split(b"\r\n")
        method, target, _ = lines[0].decode("latin-1").split(" ", 2)
        print(f"{method} {target}", flush=True)
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        if credentials:
            want = b"proxy-authorization: basic " + base64.b64encode(credentials.encode())
            if not any(l.lower() == want.lower() for l in lines[1:]):
                client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                               b"Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
                return
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        upstream.settimeout(None)
        with upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if tls is not None:
                relay_tls(client, upstream)
                return
            t = threading.Thread(target=relay, args=(upstream, client), daemon=True)
            t.start()
            relay(client, upstream)
            t.join()


def main():
    args = sys.argv[1:]
    tls = None
    if args[:1] == ["--tls"]:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args[1], args[2])
        args = args[3:]
    credentials = args[0] if args else ""
    server = socket.create_server(("127.0.0.1", 0))
    print(f"port {server.getsockname()[1]}", flush=True)
    while True:
        client, _ = server.accept()
        threading.Thread(target=handle, args=(client, credentials, tls), daemon=True).start()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""HTTP/1 clients through mitmd to servers that speak only HTTP/2.
Usage: h1_to_h2.py PROXY_PORT MITMD_CA SERVER_CERT SERVER_KEY NGHTTPD_PORT
Starts an h2-only echo server (Python h2; ALPN h2 and nothing else) on 127.0.0.1. Through the
proxy, trusting only mitmd's root:
  - Python requests (ALPN http/1.1) GETs /big.bin from nghttpd and POSTs a body to the echo
    server;
  - a raw HTTP/1.1 client without ALPN sends, on one kept-alive TLS connection, a chunked POST
    with a trailer and connection-specific headers, then a GET;
  - http.client (no ALPN) GETs from nghttpd;
  - requests GETs from a second echo server that sends its HTTP/2 preface even without ALPN h2.
The echo server answers each stream with what it received (headers, body length and SHA-256,
trailers) as JSON, without a content-length, then a trailer. Prints one JSON line."""
import hashlib
import json
import socket
import ssl
import sys
import threading
import http.client

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import requests

import proxy_connect  # beside this script

proxy_port, mitmd_ca, cert, key, nghttpd_port = (int(sys.argv[1]), sys.argv[2], sys.argv[3],
                                                 sys.argv[4], int(sys.argv[5]))
PROXY = f"http://127.0.0.1:{proxy_port}"


def serve_h2(conn):
    config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
    h2c = h2.connection.H2Connection(config=config)
    h2c.initiate_connection()
    conn.sendall(h2c.data_to_send())
    streams = {}
    while True:
        data = conn.recv(65536)
        if not data:
            return
        for event in h2c.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                streams[event.stream_id] = {"headers": event.headers, "body": b"", "trailers": []}
            elif isinstance(event, h2.events.DataReceived):
                streams[event.stream_id]["body"] += event.data
                h2c.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.TrailersReceived):
                streams[event.stream_id]["trailers"] = event.headers
            elif isinstance(event, h2.events.StreamEnded):
                s = streams.pop(event.stream_id)
                body = json.dumps({"headers": s["headers"], "body_len": len(s["body"]),
                                   "body_sha256": hashlib.sha256(s["body"]).hexdigest(),
                                   "trailers": s["trailers"]}).encode()
                h2c.send_headers(event.stream_id, [(":status", "200"),
                                                   ("content-type", "application/json")])
                h2c.send_data(event.stream_id, body)
                h2c.send_headers(event.stream_id, [("x-echo-trailer", "yes")], end_stream=True)
        conn.sendall(h2c.data_to_send())


def serve_and_close(conn):
    try:
        serve_h2(conn)
    except (h2.exceptions.ProtocolError, OSError):
        pass  # an HTTP/1.1 request to an h2_anyway server
    conn.close()


def echo_server(h2_anyway=False):
    """h2_anyway: a connection without ALPN h2 gets the HTTP/2 preface all the same (SETTINGS,
    then a GOAWAY on the HTTP/1 request), as some h2-only servers do."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2"])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def accept():
        while True:
            raw, _ = listener.accept()
            try:
                conn = ctx.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                raw.close()
                continue
            if conn.selected_alpn_protocol() != "h2" and not h2_anyway:
                conn.close()  # speaks only HTTP/2, like nghttpd
                continue
            threading.Thread(target=serve_and_close, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1]


def tunnel(port):
    """A TLS connection to localhost:port through a CONNECT, without ALPN."""
    sock = proxy_connect.connect(proxy_port, "localhost", port)
    ctx = ssl.create_default_context(cafile=mitmd_ca)
    return ctx.wrap_socket(sock, server_hostname="localhost")


class Reader:
    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit(f"connection closed mid-response: {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("latin-1")

    def exactly(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit("connection closed mid-body")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self):
        status = self.line()
        headers = []
        while (line := self.line()):
            name, value = line.split(":", 1)
            headers.append([name, value.strip()])
        names = {n.lower(): v for n, v in headers}
        body, trailers = b"", []
        if names.get("transfer-encoding", "").lower() == "chunked":
            while (size := int(self.line().split(";")[0], 16)) > 0:
                body += self.exactly(size)
                self.line()
            while (line := self.line()):
                name, value = line.split(":", 1)
                trailers.append([name.lower(), value.strip()])
        elif "content-length" in names:
            body = self.exactly(int(names["content-length"]))
        return {"status": status, "headers": headers, "body": body.decode("latin-1"),
                "trailers": trailers}


def raw_client(port):
    sock = tunnel(port)
    reader = Reader(sock)
    chunks = [b"a" * 1000, b"b" * 70000, b"c"]
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    sock.sendall(
        (f"POST /upload?x=1 HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: keep-alive, "
         f"X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: gone\r\nTE: trailers\r\n"
         f"Transfer-Encoding: chunked\r\nX-Custom: Kept\r\n\r\n").encode()
        + body + b"0\r\nX-Checksum: 42\r\n\r\n")
    post = reader.response()
    sock.sendall(f"GET /second HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode())
    second = reader.response()
    sock.close()
    expected = hashlib.sha256(b"".join(chunks)).hexdigest()
    return {"post": post, "second": second, "expected_sha256": expected}


def main():
    port = echo_server()
    out = {"echo_port": port}
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE or https_proxy would override what is set here
    session.proxies = {"https": PROXY}
    session.verify = mitmd_ca
    r = session.get(f"https://localhost:{nghttpd_port}/big.bin", timeout=30)
    out["requests_big"] = {"status": r.status_code, "len": len(r.content),
                           "sha256": hashlib.sha256(r.content).hexdigest()}
    parts = [b"x" * 5000, b"y" * 5000]
    # A body of known length: requests sends a generator's chunks on a connection of its own
    # that skips the proxy's CONNECT (its bug, not what this test is about).
    r = session.post(f"https://localhost:{port}/gen", data=b"".join(parts), timeout=30)
    out["requests_post"] = {"status": r.status_code, "echo": r.json(),
                            "expected_sha256": hashlib.sha256(b"".join(parts)).hexdigest()}
    out["raw"] = raw_client(port)
    frames_port = echo_server(h2_anyway=True)
    r = session.get(f"https://localhost:{frames_port}/frames", timeout=30)
    out["requests_frames"] = {"status": r.status_code, "echo": r.json()}
    ctx = ssl.create_default_context(cafile=mitmd_ca)  # no ALPN offered
    conn = http.client.HTTPSConnection("127.0.0.1", proxy_port, context=ctx, timeout=30)
    conn.set_tunnel("localhost", nghttpd_port)
    conn.request("GET", "/index.html")
    resp = conn.getresponse()
    out["http_client"] = {"status": resp.status, "version": resp.version,
                          "body": resp.read().decode()}
    conn.close()
    print(json.dumps(out))


main()

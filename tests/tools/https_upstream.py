#!/usr/bin/env python3
"""A loopback HTTPS server for the tools tests: https_upstream.py CERT KEY BODY_FILE.
Listens on 127.0.0.1 port 0, prints "port N", serves BODY_FILE as text/html for every GET,
until terminated."""

import http.server
import ssl
import sys


def main(cert, key, body_file):
    with open(body_file, "rb") as f:
        body = f.read()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            sys.stderr.write("upstream: " + (fmt % args) + "\n")

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: https_upstream.py CERT KEY BODY_FILE")
    main(*sys.argv[1:])

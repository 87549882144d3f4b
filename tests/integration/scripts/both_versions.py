#!/usr/bin/python3
"""curl --http1.1 through mitmd to a server that speaks both HTTP/2 and HTTP/1.1.
Usage: both_versions.py PROXY_PORT MITMD_CA SERVER_CERT SERVER_KEY
Starts a TLS server on 127.0.0.1 that offers ALPN h2 and http/1.1, preferring h2 (as nginx
does), and answers each connection in the protocol chosen: HTTP/2 through python3-h2, HTTP/1.1
with a response whose bytes a normalising relay would change (reason phrase, header case and
spacing). Runs curl --http1.1 -i through the proxy twice (two connections) and prints one JSON
line: what curl printed, the response's bytes as sent, and the protocol of each connection."""
import json
import socket
import ssl
import subprocess
import sys
import threading

import h2.config
import h2.connection
import h2.events

proxy_port, mitmd_ca, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

RESPONSE = (b"HTTP/1.1 200 Quite  Fine\r\nX-MiXeD-Case:   spaced value \r\nContent-Length: 6\r\n"
            b"zz-Last: 1\r\n\r\nhello\n")
chosen = []


def serve_h2(conn):
    h2c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
    h2c.initiate_connection()
    conn.sendall(h2c.data_to_send())
    while (data := conn.recv(65536)):
        for event in h2c.receive_data(data):
            if isinstance(event, h2.events.StreamEnded):
                h2c.send_headers(event.stream_id, [(":status", "200"), ("content-length", "6")])
                h2c.send_data(event.stream_id, b"hello\n", end_stream=True)
        conn.sendall(h2c.data_to_send())


def serve_http1(conn):
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = conn.recv(65536)
        if not chunk:
            return
        request += chunk
    conn.sendall(RESPONSE)
    conn.recv(1)  # until the client closes


def server():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2", "http/1.1"])  # OpenSSL picks by the server's order
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def serve(raw):
        try:
            conn = ctx.wrap_socket(raw, server_side=True)
            alpn = conn.selected_alpn_protocol()
            chosen.append(alpn)
            (serve_h2 if alpn == "h2" else serve_http1)(conn)
            conn.close()
        except (ssl.SSLError, OSError):
            raw.close()

    def accept():
        while True:
            raw, _ = listener.accept()
            threading.Thread(target=serve, args=(raw,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1]


port = server()
outputs = []
for _ in range(2):
    r = subprocess.run(["curl", "--http1.1", "-sS", "-i", "--suppress-connect-headers", "--max-time", "20", "--noproxy", "",
                        "--proxy", f"http://127.0.0.1:{proxy_port}", "--cacert", mitmd_ca,
                        f"https://localhost:{port}/page"], capture_output=True, timeout=30)
    if r.returncode != 0:
        raise SystemExit(f"curl failed: {r.stderr.decode()}")
    outputs.append(r.stdout.decode("latin-1"))
print(json.dumps({"curl": outputs, "sent": RESPONSE.decode("latin-1"), "chosen": chosen}))

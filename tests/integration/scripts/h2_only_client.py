#!/usr/bin/python3
"""An HTTP/2 client that offers only h2 (as nghttp and gRPC clients do), through mitmd.

Usage: h2_only_client.py PROXY_PORT HOST PORT CAFILE PATH...

Opens a CONNECT tunnel through mitmd on 127.0.0.1:PROXY_PORT to HOST:PORT, starts TLS with
ALPN ["h2"] only, trusting CAFILE, sends a GET for every PATH on its own stream (all at once) and
prints JSON: {"alpn": ..., "responses": {PATH: {"status", "headers", "trailers", "body_len",
"body_sha256", "body" (text, when short)}}}. Exits non-zero on any failure.
"""

import hashlib
import json
import ssl
import sys

import h2.config
import h2.connection
import h2.events

import proxy_connect  # beside this script


def main():
    proxy_port, host, port, cafile = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    paths = sys.argv[5:]
    sock = proxy_connect.connect(proxy_port, host, port, timeout=30)

    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["h2"])
    tls = ctx.wrap_socket(sock, server_hostname=host)
    alpn = tls.selected_alpn_protocol()
    if alpn != "h2":
        print(json.dumps({"alpn": alpn, "responses": {}}))
        sys.exit(1)

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    streams = {}
    for path in paths:
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "GET"), (":scheme", "https"),
                                (":authority", f"{host}:{port}"), (":path", path),
                                ("user-agent", "h2-only-client")], end_stream=True)
        streams[sid] = {"path": path, "status": 0, "headers": [], "trailers": [], "body": b""}
    tls.sendall(conn.data_to_send())

    open_streams = set(streams)
    while open_streams:
        data = tls.recv(65536)
        if not data:
            sys.exit("the connection closed with streams open")
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                s = streams[event.stream_id]
                s["headers"] = [[k.decode(), v.decode()] for k, v in event.headers]
                s["status"] = int(dict(event.headers)[b":status"])
            elif isinstance(event, h2.events.TrailersReceived):
                streams[event.stream_id]["trailers"] = [[k.decode(), v.decode()]
                                                        for k, v in event.headers]
            elif isinstance(event, h2.events.DataReceived):
                streams[event.stream_id]["body"] += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                open_streams.discard(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                sys.exit(f"stream {event.stream_id} reset: {event.error_code}")
        tls.sendall(conn.data_to_send())
    conn.close_connection()
    tls.sendall(conn.data_to_send())
    tls.close()

    out = {}
    for s in streams.values():
        body = s.pop("body")
        s["body_len"] = len(body)
        s["body_sha256"] = hashlib.sha256(body).hexdigest()
        if len(body) <= 65536:
            s["body"] = body.decode("utf-8", "replace")
        out[s.pop("path")] = s
    print(json.dumps({"alpn": alpn, "responses": out}))


if __name__ == "__main__":
    main()

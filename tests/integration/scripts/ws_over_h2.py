#!/usr/bin/python3
"""A WebSocket over HTTP/2 (RFC 8441) through mitmd, negotiated down to an HTTP/1.1 server.
Usage: ws_over_h2.py PROXY_PORT MITMD_CA SERVER_CERT SERVER_KEY
Starts a Python websockets echo server (TLS, HTTP/1.1) on 127.0.0.1. A Python h2 client
CONNECTs through the proxy, speaks h2 to mitmd (trusting only mitmd's root), checks that mitmd
announced SETTINGS_ENABLE_CONNECT_PROTOCOL, opens the WebSocket as an extended CONNECT stream
and sends a text message, a binary one, a ping, a 300 KB text (more than a stream window) and a
close (1000 "bye"); the server echoes each. Prints one JSON line with what the client got."""
import asyncio
import json
import os
import socket
import ssl
import struct
import sys
import threading

import h2.config
import h2.connection
import h2.events
import h2.settings
import websockets

import proxy_connect  # beside this script

proxy_port, mitmd_ca, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
BIG = "z" * 300_000


def start_server():
    ready = threading.Event()
    box = {}

    async def echo(ws, path=None):
        async for message in ws:
            await ws.send(message)

    async def run():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        async with websockets.serve(echo, "127.0.0.1", 0, ssl=ctx, max_size=4 << 20,
                                    compression=None) as server:
            box["port"] = server.sockets[0].getsockname()[1]
            ready.set()
            await asyncio.Future()

    threading.Thread(target=lambda: asyncio.run(run()), daemon=True).start()
    if not ready.wait(20):
        raise SystemExit("the websockets server did not start")
    return box["port"]


def frame(opcode, payload):
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Client:
    def __init__(self, port):
        raw = proxy_connect.connect(proxy_port, "localhost", port)
        ctx = ssl.create_default_context(cafile=mitmd_ca)
        ctx.set_alpn_protocols(["h2"])
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        if self.sock.selected_alpn_protocol() != "h2":
            raise SystemExit(f"mitmd answered ALPN {self.sock.selected_alpn_protocol()!r}")
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.h2.initiate_connection()
        self.sock.sendall(self.h2.data_to_send())
        self.buf = b""  # WebSocket bytes received on the stream
        self.status = None
        self.ended = False
        self.settings_seen = False

    def pump(self, until):
        while not until():
            data = self.sock.recv(65536)
            if not data:
                raise SystemExit("mitmd closed the connection")
            for event in self.h2.receive_data(data):
                if isinstance(event, h2.events.RemoteSettingsChanged):
                    self.settings_seen = True
                elif isinstance(event, h2.events.ResponseReceived):
                    self.status = dict(event.headers)[":status"]
                elif isinstance(event, h2.events.DataReceived):
                    self.buf += event.data
                    self.h2.acknowledge_received_data(event.flow_controlled_length,
                                                      event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    self.ended = True
                elif isinstance(event, h2.events.StreamReset):
                    raise SystemExit(f"mitmd reset the stream: {event.error_code}")
            self.sock.sendall(self.h2.data_to_send())

    def send(self, sid, data):
        while data:
            n = min(len(data), self.h2.local_flow_control_window(sid),
                    self.h2.max_outbound_frame_size)
            if n == 0:
                self.pump(lambda: self.h2.local_flow_control_window(sid) > 0)
                continue
            self.h2.send_data(sid, data[:n])
            self.sock.sendall(self.h2.data_to_send())
            data = data[n:]

    def message(self):
        """The next WebSocket frame from the server: (opcode, payload)."""
        def complete():
            if len(self.buf) < 2:
                return False
            n, at = self.buf[1] & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    return False
                n, at = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    return False
                n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
            return len(self.buf) >= at + n
        self.pump(complete)
        opcode = self.buf[0] & 0x0F
        n, at = self.buf[1] & 0x7F, 2
        if n == 126:
            n, at = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
        payload = self.buf[at:at + n]
        self.buf = self.buf[at + n:]
        return opcode, payload


def main():
    port = start_server()
    c = Client(port)
    c.pump(lambda: c.settings_seen)
    out = {"enable_connect_protocol":
           c.h2.remote_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)}
    sid = c.h2.get_next_available_stream_id()
    c.h2.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"),
                            (":scheme", "https"), (":path", "/chat?room=1"),
                            (":authority", f"localhost:{port}"),
                            ("sec-websocket-version", "13"), ("origin", "https://localhost")])
    c.sock.sendall(c.h2.data_to_send())
    c.pump(lambda: c.status is not None)
    out["status"] = c.status
    got = []
    c.send(sid, frame(0x1, b"hello"))
    got.append(c.message()[1].decode())
    c.send(sid, frame(0x2, b"\x00\x01\xff"))
    got.append(c.message()[1].hex())
    c.send(sid, frame(0x9, b"p1"))
    opcode, payload = c.message()
    got.append([opcode, payload.decode()])
    c.send(sid, frame(0x1, BIG.encode()))
    got.append(len(c.message()[1]))
    c.send(sid, frame(0x8, struct.pack("!H", 1000) + b"bye"))
    opcode, payload = c.message()
    got.append([opcode, struct.unpack("!H", payload[:2])[0], payload[2:].decode()])
    c.h2.end_stream(sid)
    c.sock.sendall(c.h2.data_to_send())
    c.pump(lambda: c.ended)
    out["got"] = got
    out["server_port"] = port
    print(json.dumps(out))


main()

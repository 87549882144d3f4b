#!/usr/bin/python3
"""A WebSocket over HTTP/2 (RFC 8441) through mitmd, to an HTTP/1.1 or an HTTP/2 server.
Usage: ws_over_h2.py PROXY_PORT MITMD_CA SERVER_CERT SERVER_KEY [h1|h2|h2-noext|h2-reset|h2-drop]
Starts an echo server on 127.0.0.1: h1 (the default) a Python websockets server (TLS,
HTTP/1.1); h2 a Python h2 server (TLS, ALPN h2 only) that announces
SETTINGS_ENABLE_CONNECT_PROTOCOL, accepts an extended CONNECT :protocol websocket with 200 and
echoes the WebSocket frames of the stream (a ping as a pong, a close as a close), recording the
request's pseudo-headers in the output ("server_saw"). The variants of that server:
h2-noext does not announce ENABLE_CONNECT_PROTOCOL (and closes any non-h2 connection, as an
HTTP/2-only server does); h2-reset answers the first message, then resets the stream
(INTERNAL_ERROR); h2-drop answers the first message, then closes the TCP connection. With these
two the client sends one message and reports how mitmd ended its stream ("reset": the code).
A Python h2 client
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
server_mode = sys.argv[5] if len(sys.argv) > 5 else "h1"
server_saw = {}  # h2 server: the extended CONNECT's pseudo-headers and sec-websocket-version
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


def frame(opcode, payload, masked=True):
    head = bytes([0x80 | opcode])
    bit = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def parse_frame(buf):
    """The first complete frame of |buf| as (opcode, unmasked payload, rest), or None."""
    if len(buf) < 2:
        return None
    n, at = buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, at = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, at = struct.unpack("!Q", buf[2:10])[0], 10
    mask = b""
    if buf[1] & 0x80:
        mask, at = buf[at:at + 4], at + 4
    if len(buf) < at + n:
        return None
    payload = buf[at:at + n]
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return buf[0] & 0x0F, payload, buf[at + n:]


def start_h2_server():
    """The h2 echo server (see the usage), a thread per connection."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2"])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)

    def accept():
        while True:  # mitmd may connect more than once (its first look at the server's TLS)
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(raw,), daemon=True).start()

    def serve(raw):
        raw.settimeout(30)
        try:
            sock = ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError) as e:
            server_saw.setdefault("errors", []).append(f"TLS handshake: {e}")
            raw.close()
            return
        with sock:
            alpn = sock.selected_alpn_protocol()
            server_saw.setdefault("alpn", []).append(alpn)
            if alpn == "h2":  # an HTTP/2-only server closes any other client
                try:
                    serve_h2(sock)
                except Exception as e:  # noqa: BLE001 (told to the test, not a hang)
                    server_saw.setdefault("errors", []).append(repr(e))

    def serve_h2(sock):
        sock.settimeout(30)
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        if server_mode != "h2-noext":
            conn.local_settings = h2.settings.Settings(
                client=False,
                initial_values={h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        bufs, out, closed = {}, {}, set()

        def flush(sid):
            while out.get(sid):
                n = min(len(out[sid]), conn.local_flow_control_window(sid),
                        conn.max_outbound_frame_size)
                if n == 0:
                    return
                conn.send_data(sid, out[sid][:n])
                out[sid] = out[sid][n:]
            if sid in closed and not out.get(sid):
                conn.end_stream(sid)
                closed.discard(sid)

        while True:
            try:
                data = sock.recv(65536)
            except (OSError, ssl.SSLError):
                return
            if not data:
                return
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    headers = dict(event.headers)
                    for name in (":method", ":protocol", ":scheme", ":path", ":authority",
                                 "sec-websocket-version"):
                        server_saw[name] = headers.get(name)
                    if headers.get(":method") == "CONNECT" and \
                            headers.get(":protocol") == "websocket":
                        conn.send_headers(event.stream_id, [(":status", "200")])
                        bufs[event.stream_id] = b""
                    else:
                        conn.send_headers(event.stream_id, [(":status", "400")],
                                          end_stream=True)
                elif isinstance(event, h2.events.DataReceived):
                    sid = event.stream_id
                    conn.acknowledge_received_data(event.flow_controlled_length, sid)
                    bufs[sid] = bufs.get(sid, b"") + event.data
                    while (parsed := parse_frame(bufs[sid])) is not None:
                        opcode, payload, bufs[sid] = parsed
                        reply = 0xA if opcode == 0x9 else opcode
                        out[sid] = out.get(sid, b"") + frame(reply, payload, masked=False)
                    flush(sid)
                    if server_mode in ("h2-reset", "h2-drop"):  # after the first answer
                        if server_mode == "h2-reset":
                            conn.reset_stream(sid, error_code=2)
                        sock.sendall(conn.data_to_send())
                        if server_mode == "h2-drop":
                            return  # closes the connection (no GOAWAY, no close_notify)
                elif isinstance(event, h2.events.StreamEnded):
                    closed.add(event.stream_id)
                    flush(event.stream_id)
                elif isinstance(event, h2.events.WindowUpdated):
                    for sid in list(out):
                        flush(sid)
            sock.sendall(conn.data_to_send())

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1]


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
        self.reset = None  # the code of mitmd's RST_STREAM
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
                    self.reset = int(event.error_code)
            self.sock.sendall(self.h2.data_to_send())
            if self.reset is not None and not until():
                raise SystemExit(f"mitmd reset the stream: {self.reset}")

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
        self.pump(lambda: parse_frame(self.buf) is not None)
        opcode, payload, self.buf = parse_frame(self.buf)
        return opcode, payload


def main():
    port = start_server() if server_mode == "h1" else start_h2_server()
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
    out["server_port"] = port
    if server_mode != "h1":
        out["server_saw"] = server_saw
    if c.status != "200":  # refused: nothing to exchange
        print(json.dumps(out))
        return
    got = []
    c.send(sid, frame(0x1, b"hello"))
    got.append(c.message()[1].decode())
    if server_mode in ("h2-reset", "h2-drop"):
        c.pump(lambda: c.reset is not None)
        out["got"], out["reset"] = got, c.reset
        print(json.dumps(out))
        return
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
    print(json.dumps(out))


main()

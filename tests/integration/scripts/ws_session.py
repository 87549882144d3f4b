#!/usr/bin/python3
"""A WebSocket session through mitmd (Python websockets): a TLS echo server on 127.0.0.1 with
permessage-deflate, and a client that CONNECTs through the proxy, trusting only mitmd's root.
Usage: ws_session.py PROXY_PORT MITMD_CA SERVER_CERT SERVER_KEY
The client sends text, binary, a ping and a 1 MB text; the server echoes each, then closes
with 4001 "done". Prints one JSON line with what the client received."""
import asyncio
import json
import socket
import ssl
import sys

import websockets

import proxy_connect  # beside this script

proxy_port, mitmd_ca, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
BIG = "x" * (1 << 20)


async def echo(ws, path=None):
    async for message in ws:
        await ws.send(message)
        if message == BIG:
            await ws.close(4001, "done")


def connect_through_proxy(port):
    sock = proxy_connect.connect(proxy_port, "localhost", port)
    sock.settimeout(None)
    sock.setblocking(False)
    return sock


async def main():
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    async with websockets.serve(echo, "127.0.0.1", 0, ssl=server_ctx, max_size=4 << 20) as server:
        port = server.sockets[0].getsockname()[1]
        client_ctx = ssl.create_default_context(cafile=mitmd_ca)
        sock = connect_through_proxy(port)
        got = []
        async with websockets.connect(f"wss://localhost:{port}/chat", ssl=client_ctx, sock=sock,
                                      server_hostname="localhost", max_size=4 << 20) as ws:
            await ws.send("hello")
            got.append(await ws.recv())
            await ws.send(b"\x00\x01\xff")
            got.append((await ws.recv()).hex())
            pong = await ws.ping(b"p1")
            await asyncio.wait_for(pong, 20)
            await ws.send(BIG)
            got.append(len(await ws.recv()))
            try:
                await ws.recv()
            except websockets.ConnectionClosed as closed:
                got.append([closed.rcvd.code, closed.rcvd.reason] if closed.rcvd else None)
        print(json.dumps({"got": got, "extensions": [e.name for e in ws.extensions]}))


asyncio.run(main())

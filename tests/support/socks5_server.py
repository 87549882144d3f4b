#!/usr/bin/env python3
"""A small SOCKS5 proxy (RFC 1928, username/password RFC 1929) for the upstream-mode tests:
socks5_server.py [USER:PASS]. Listens on 127.0.0.1 port 0, prints "port N", then for each
client: the method (no authentication, or username/password when USER:PASS is given: wrong ones
are refused), a CONNECT request, printed as "CONNECT host:port (name|ipv4|ipv6)" (flushed), a
connection to the target (reply 5, connection refused, when it fails) and bytes relayed both
ways. Other commands get reply 7. Runs until terminated."""

import asyncio
import ipaddress
import sys


async def relay(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass


def reply(code):
    return bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0])


async def handle(reader, writer, credentials):
    try:
        version, n = await reader.readexactly(2)
        methods = await reader.readexactly(n)
        want = 2 if credentials else 0
        if version != 5 or want not in methods:
            writer.write(bytes([5, 0xFF]))
            return
        writer.write(bytes([5, want]))
        if credentials:
            _, ulen = await reader.readexactly(2)
            user = await reader.readexactly(ulen)
            plen = (await reader.readexactly(1))[0]
            password = await reader.readexactly(plen)
            ok = f"{user.decode()}:{password.decode()}" == credentials
            writer.write(bytes([1, 0 if ok else 1]))
            if not ok:
                print("AUTH refused", flush=True)
                return
        _, cmd, _, atyp = await reader.readexactly(4)
        if atyp == 1:
            host, kind = str(ipaddress.IPv4Address(await reader.readexactly(4))), "ipv4"
        elif atyp == 4:
            host, kind = str(ipaddress.IPv6Address(await reader.readexactly(16))), "ipv6"
        else:
            host, kind = (await reader.readexactly((await reader.readexactly(1))[0])).decode(), "name"
        port = int.from_bytes(await reader.readexactly(2), "big")
        print(f"CONNECT {host}:{port} ({kind})", flush=True)
        if cmd != 1:
            writer.write(reply(7))
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.write(reply(5))
            return
        writer.write(reply(0))
        await asyncio.gather(relay(reader, up_writer), relay(up_reader, writer))
        up_writer.close()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()


async def main():
    credentials = sys.argv[1] if len(sys.argv) > 1 else ""
    server = await asyncio.start_server(lambda r, w: handle(r, w, credentials), "127.0.0.1", 0)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())

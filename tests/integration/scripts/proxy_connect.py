"""Opens a CONNECT tunnel through mitmd for the test scripts beside this file."""
import socket


def connect(proxy_port, host, port, timeout=20):
    """A socket to host:port through mitmd's CONNECT; exits the script with the reason if refused."""
    sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=timeout)
    sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("proxy closed during CONNECT")
        reply += chunk
    if b" 200 " not in reply.split(b"\r\n")[0]:
        raise SystemExit(f"CONNECT failed: {reply!r}")
    return sock

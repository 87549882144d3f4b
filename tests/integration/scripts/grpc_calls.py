#!/usr/bin/python3
"""gRPC through mitmd: a TLS gRPC server on 127.0.0.1 (generic handlers, no generated code) and a
client that reaches it through the proxy (grpc.http_proxy), trusting only mitmd's root.
Usage: grpc_calls.py PROXY_URL MITMD_CA SERVER_CERT SERVER_KEY
Prints one JSON line: what the unary and server-streaming calls returned."""
import json
import sys
from concurrent import futures

import grpc

proxy, mitmd_ca, cert, key = sys.argv[1:5]
ident = lambda b: b


def echo(request, context):
    context.set_trailing_metadata((("x-echo", "1"),))
    return request[::-1]


def count(request, context):
    for i in range(1, 4):
        yield bytes([0x08, i, 0x12, 0x03]) + b"msg"  # {1: i, 2: "msg"}


def fail(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")


handler = grpc.method_handlers_generic_handler("test.Svc", {
    "Echo": grpc.unary_unary_rpc_method_handler(echo, ident, ident),
    "Count": grpc.unary_stream_rpc_method_handler(count, ident, ident),
    "Fail": grpc.unary_unary_rpc_method_handler(fail, ident, ident),
})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((handler,))
creds = grpc.ssl_server_credentials([(open(key, "rb").read(), open(cert, "rb").read())])
port = server.add_secure_port("127.0.0.1:0", creds)
server.start()

channel = grpc.secure_channel(
    f"localhost:{port}",
    grpc.ssl_channel_credentials(root_certificates=open(mitmd_ca, "rb").read()),
    options=[("grpc.http_proxy", proxy), ("grpc.enable_retries", 0)])
out = {"port": port}
unary = channel.unary_unary("/test.Svc/Echo", ident, ident)
out["echo"] = unary(b"\x0a\x05hello", timeout=20).hex()
stream = channel.unary_stream("/test.Svc/Count", ident, ident)
out["count"] = [m.hex() for m in stream(b"", timeout=20)]
try:
    channel.unary_unary("/test.Svc/Fail", ident, ident)(b"", timeout=20)
    out["fail"] = "no error"
except grpc.RpcError as e:
    out["fail"] = [e.code().name, e.details()]
channel.close()
server.stop(0)
print(json.dumps(out))

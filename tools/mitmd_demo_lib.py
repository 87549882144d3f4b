"""Shared pieces of tools/demo-pinning and tools/demo-mtls: a scratch directory, test
certificates made with the openssl CLI, a loopback HTTPS upstream (Python's ssl), mitmd runs,
curl runs and the flow records they leave. Everything started here is stopped by Demo.close().
Python 3 standard library only."""

import base64
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

# Variables that would change which proxy or which CA bundle curl uses behind the demo's back.
CLIENT_ENV_DROP = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY",
                   "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR",
                   "CURL_CA_BUNDLE", "SSLKEYLOGFILE")
MITMD_START_TIMEOUT = 15.0
FLOW_WAIT = 5.0


class DemoError(Exception):
    pass


def find_mitmd(explicit):
    """The mitmd binary: --mitmd, $MITMD, `mitmd` on PATH, or the repository's build/mitmd."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [explicit, os.environ.get("MITMD"), shutil.which("mitmd"),
                  os.path.join(here, "..", "build", "mitmd")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return os.path.abspath(c)
    if explicit:
        raise DemoError(f"--mitmd {explicit}: not an executable file")
    raise DemoError("cannot find mitmd: build it (scripts/build.sh build) or give --mitmd PATH")


def need(program, package):
    if shutil.which(program) is None:
        raise DemoError(f"'{program}' is not installed (apt-get install {package})")


class Style:
    def __init__(self, enabled):
        self.enabled = enabled

    def _wrap(self, code, text):
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    def bold(self, t):
        return self._wrap("1", t)

    def good(self, t):
        return self._wrap("32", t)

    def bad(self, t):
        return self._wrap("31", t)

    def dim(self, t):
        return self._wrap("2", t)


class Upstream:
    """An HTTPS server on 127.0.0.1 port 0 serving one text response per connection.
    |respond(tls_socket)| returns the body. Handshake failures are kept in |events|."""

    def __init__(self, context, respond):
        self.context = context
        self.respond = respond
        self.events = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _note(self, text):
        with self.lock:
            self.events.append(text)

    def take_events(self):
        with self.lock:
            out, self.events = self.events, []
        return out

    def _accept_loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(10)
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self._note(f"handshake failed: {getattr(e, 'reason', None) or e}")
            conn.close()
            return
        try:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                head += chunk
            if b"\r\n\r\n" not in head:
                self._note("a client finished the handshake but sent no request")
                return
            body = self.respond(tls).encode()
            # Noted before answering, so the event is there by the time the client has the answer.
            self._note(f"served {head.split(b' ', 2)[:2][-1].decode('latin-1')} "
                       f"over {tls.version()}")
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        except (ssl.SSLError, OSError) as e:
            self._note(f"connection failed after the handshake: {getattr(e, 'reason', None) or e}")
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Mitmd:
    def __init__(self, demo, name, extra_args):
        self.demo = demo
        self.name = name
        self.flows = os.path.join(demo.dir, f"{name}-flows.jsonl")
        self.log = os.path.join(demo.dir, f"{name}-stderr.log")
        self.args = [demo.mitmd, "--listen", "127.0.0.1:0", "--confdir", demo.confdir,
                     "--flows", self.flows, "--no-web", "--upstream-allow", "127.0.0.0/8,::1",
                     "--upstream-ca", demo.path("server-ca.pem")] + list(extra_args)
        self.flow_offset = 0
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=err,
                                         stdin=subprocess.DEVNULL, env=demo.client_env(),
                                         start_new_session=True)
        demo.processes.append(self.proc)
        self.port = self._wait_listening()

    def _wait_listening(self):
        found = {}

        def reader():
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").strip()
                if line.startswith("proxy listening on ") and "port" not in found:
                    found["port"] = int(line.rsplit(":", 1)[1])
                    found["event"].set()
            found["event"].set()

        found["event"] = threading.Event()
        threading.Thread(target=reader, daemon=True).start()
        found["event"].wait(MITMD_START_TIMEOUT)
        if "port" not in found:
            self.stop()
            tail = open(self.log, errors="replace").read()[-2000:]
            raise DemoError(f"mitmd did not start ({' '.join(self.args[1:])}):\n{tail}")
        return found["port"]

    @property
    def proxy_url(self):
        return f"http://127.0.0.1:{self.port}"

    def new_flows(self, expect=1):
        """The flow records written since the last call; waits up to FLOW_WAIT for |expect|."""
        deadline = time.monotonic() + FLOW_WAIT
        while True:
            records = []
            try:
                with open(self.flows, "rb") as f:
                    f.seek(self.flow_offset)
                    data = f.read()
            except FileNotFoundError:
                data = b""
            complete = data[:data.rfind(b"\n") + 1]
            for line in complete.splitlines():
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
            if len(records) >= expect or time.monotonic() > deadline:
                self.flow_offset += len(complete)
                return records
            time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Demo:
    def __init__(self, mitmd, keep, color):
        self.mitmd = find_mitmd(mitmd)
        need("openssl", "openssl")
        need("curl", "curl")
        self.dir = tempfile.mkdtemp(prefix="mitmd-demo-")
        self.confdir = os.path.join(self.dir, "mitmd")
        self.keep = keep
        self.style = Style(color)
        self.processes = []
        self.servers = []
        self.mitmds = []
        self.unexpected = []
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        self.close()
        sys.exit(128 + signum)

    def path(self, name):
        return os.path.join(self.dir, name)

    def client_env(self):
        env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV_DROP}
        env["HOME"] = self.dir
        return env

    def close(self):
        for m in self.mitmds:
            m.stop()
        for p in self.processes:
            if p.poll() is None:
                p.kill()
                p.wait()
        for s in self.servers:
            s.close()
        if self.keep:
            print(f"(kept {self.dir})")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- certificates -------------------------------------------------------------------------

    def openssl(self, *args):
        p = subprocess.run(["openssl", *args], cwd=self.dir, capture_output=True, text=True)
        if p.returncode != 0:
            raise DemoError(f"openssl {args[0]} failed: {p.stderr.strip()}")
        return p.stdout

    def make_ca(self, name, subject):
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                     "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
                     "-subj", f"/CN={subject}",
                     "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def make_leaf(self, name, ca, subject, extensions):
        with open(self.path(f"{name}.ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\n" + "".join(e + "\n" for e in extensions))
        self.openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={subject}")
        self.openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey",
                     f"{ca}.key", "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
                     "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem")

    def make_server_cert(self):
        self.make_ca("server-ca", "demo upstream CA")
        self.make_leaf("server", "server-ca", "localhost",
                       ["subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
                        "extendedKeyUsage=serverAuth"])

    def spki_pin(self, key_file):
        """curl's --pinnedpubkey form: sha256// + base64(SHA-256 of the public key's DER)."""
        p = subprocess.run(["openssl", "pkey", "-in", key_file, "-pubout", "-outform", "DER"],
                           cwd=self.dir, capture_output=True)
        if p.returncode != 0:
            raise DemoError(f"openssl pkey failed on {key_file}")
        return "sha256//" + base64.b64encode(hashlib.sha256(p.stdout).digest()).decode()

    def bundle(self, name, *parts):
        with open(self.path(name), "w") as out:
            for part in parts:
                with open(part if os.path.isabs(part) else self.path(part)) as f:
                    out.write(f.read())
        return self.path(name)

    # --- processes ----------------------------------------------------------------------------

    def upstream(self, context, respond):
        s = Upstream(context, respond)
        self.servers.append(s)
        return s

    def start_mitmd(self, name, *extra):
        m = Mitmd(self, name, extra)
        self.mitmds.append(m)
        return m

    def curl(self, *args):
        cmd = ["curl", "-sS", "--max-time", "10", *args]
        p = subprocess.run(cmd, capture_output=True, text=True, env=self.client_env(),
                           cwd=self.dir)
        return p

    # --- output -------------------------------------------------------------------------------

    def step(self, title):
        print()
        print(self.style.bold(title))

    def show_command(self, args):
        shown = " ".join(shlex.quote(a) for a in args)
        print(self.style.dim("  $ " + shown.replace(self.dir + "/", "")))

    def explain(self, text):
        for line in text.strip().splitlines():
            print("  " + line.strip())

    def expect(self, ok, what):
        if ok:
            print("  " + self.style.good("as expected: ") + what)
        else:
            print("  " + self.style.bad("UNEXPECTED: ") + what)
            self.unexpected.append(what)

    def show_flows(self, records):
        if not records:
            print("  flow records: none")
            return
        print(f"  flow record{'s' if len(records) > 1 else ''}:")
        for r in records:
            print("    " + flow_summary(r))
            print(self.style.dim("    " + json.dumps(prune(r), separators=(",", ":"))))

    def finish(self):
        print()
        if self.unexpected:
            print(self.style.bad(f"The demo did not behave as expected ({len(self.unexpected)}):"))
            for u in self.unexpected:
                print("  - " + u)
            return 1
        print(self.style.good("The demo behaved as expected."))
        return 0


def flow_bytes(r):
    b = r.get("bytes") or {}
    return b.get("up", 0), b.get("down", 0)


def flow_summary(r):
    server = r.get("server", {})
    where = f"{server.get('host', '?')}:{server.get('port', '?')}"
    parts = [f"[{r.get('kind', '?')}] {where}"]
    req, resp, err = r.get("request"), r.get("response"), r.get("error")
    if req:
        parts.append(f"{req.get('method')} {req.get('path') or req.get('target')}")
    if resp:
        parts.append(f"-> {resp.get('status')}")
    if err:
        parts.append(f"error in {err.get('phase')}: {err.get('message')}")
    if r.get("kind") == "tunnel":
        up, down = flow_bytes(r)
        parts.append(f"{up} bytes up, {down} bytes down")
    if r.get("note"):
        parts.append(f"note: {r['note']}")
    return "; ".join(parts)


def prune(r):
    """A flow record without the bulky parts (headers, timings, certificates)."""
    keep = {k: r[k] for k in ("id", "kind", "error", "note", "bytes") if k in r}
    server = r.get("server") or {}
    keep["server"] = {k: server[k] for k in ("host", "port") if k in server}
    for side in ("client", "server"):
        tls = (r.get(side) or {}).get("tls")
        if isinstance(tls, dict):
            keep[side + "_tls"] = tls.get("version")
    if "request" in r:
        keep["request"] = {k: r["request"].get(k) for k in ("method", "url")}
    if "response" in r:
        keep["response"] = {"status": r["response"].get("status"),
                            "body": response_body_text(r)[:200]}
    return keep


def response_body_text(record):
    """The recorded response body as text."""
    body = (record.get("response") or {}).get("body")
    if not isinstance(body, dict) or not isinstance(body.get("content"), str):
        return ""
    if body.get("encoding") == "base64":
        return base64.b64decode(body["content"]).decode("utf-8", "replace")
    return body["content"]


def common_arguments(parser_args, usage):
    """Parses --mitmd PATH, --keep, --no-color, --help from |parser_args| (plus demo-specific
    ones handled by the caller). Returns (opts, rest)."""
    opts = {"mitmd": None, "keep": False, "color": sys.stdout.isatty()}
    rest = []
    i = 0
    while i < len(parser_args):
        a = parser_args[i]
        if a in ("-h", "--help"):
            print(usage.strip())
            sys.exit(0)
        elif a == "--mitmd":
            if i + 1 >= len(parser_args):
                raise DemoError("--mitmd needs a path")
            opts["mitmd"] = parser_args[i + 1]
            i += 1
        elif a.startswith("--mitmd="):
            opts["mitmd"] = a.split("=", 1)[1]
        elif a == "--keep":
            opts["keep"] = True
        elif a == "--no-color":
            opts["color"] = False
        else:
            rest.append(a)
        i += 1
    return opts, rest

"""What mitmd-shell and `mitmd-proxy on` put in a client's environment so that it goes through
mitmd and trusts mitmd's root: a CA bundle (the system's CAs plus the root), a Java truststore
made from the same, and the variables common clients read. Imported by the tools, not run.
"""

import hashlib
import os
import re
import shutil
import subprocess

SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# Where Debian's ca-certificates-java keeps the JDK's trusted roots.
JAVA_CACERTS = ["/etc/ssl/certs/java/cacerts"]
JAVA_STORE_PASSWORD = "changeit"  # the JDK's well-known default; the store holds no secrets

# Proxy variables, both cases: curl, wget, Python, Go, Ruby, undici's EnvHttpProxyAgent ...
PROXY_VARS = ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"]
NO_PROXY_VARS = ["no_proxy", "NO_PROXY"]
# Variables that name a file of trusted roots, each read by a family of clients:
# OpenSSL-based programs (SSL_CERT_FILE), curl, Python requests, git, pip, the AWS CLI/SDKs,
# Deno; Node adds NODE_EXTRA_CA_CERTS to its built-in roots.
CA_BUNDLE_VARS = ["SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO",
                  "PIP_CERT", "AWS_CA_BUNDLE", "DENO_CERT"]
CA_ROOT_VARS = ["NODE_EXTRA_CA_CERTS"]
# Node 22.21+/24.5+ make http/https/fetch honour the proxy variables with this set.
NODE_VARS = ["NODE_USE_ENV_PROXY"]
JAVA_VAR = "JAVA_TOOL_OPTIONS"
# Everything `mitmd-proxy on` may change, so `off` can restore it.
ALL_VARS = PROXY_VARS + NO_PROXY_VARS + CA_BUNDLE_VARS + CA_ROOT_VARS + NODE_VARS + [JAVA_VAR]


class EnvError(Exception):
    pass


def root_path(confdir):
    return os.path.join(confdir, "mitmd-ca.pem")


def read_root(confdir):
    path = root_path(confdir)
    try:
        with open(path, "rb") as f:
            pem = f.read()
    except FileNotFoundError:
        raise EnvError(f"no root CA at {path}: start mitmd once with --confdir {confdir} "
                       "(it creates the root), or give the right --confdir")
    except OSError as e:
        raise EnvError(f"cannot read {path}: {e.strerror}")
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise EnvError(f"{path} holds no PEM certificate")
    return path, pem


def _write_if_changed(path, data):
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return
    except OSError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_bundle(confdir, system_bundle=SYSTEM_BUNDLE):
    """<confdir>/shell/ca-bundle.pem: the system's CAs, then mitmd's root. Returns its path."""
    root, pem = read_root(confdir)
    try:
        with open(system_bundle, "rb") as f:
            system = f.read()
    except OSError as e:
        raise EnvError(f"cannot read the system CA bundle {system_bundle} ({e.strerror}); "
                       "install ca-certificates")
    out_dir = os.path.join(confdir, "shell")
    os.makedirs(out_dir, exist_ok=True)
    bundle = os.path.join(out_dir, "ca-bundle.pem")
    if system and not system.endswith(b"\n"):
        system += b"\n"
    _write_if_changed(bundle, system + b"# mitmd root CA (" + root.encode() + b")\n" + pem)
    return bundle


def write_java_truststore(confdir, warn):
    """<confdir>/shell/truststore.p12: the JDK's roots plus mitmd's, made with keytool. Returns
    its path, or None (with a warning) when keytool is missing or fails."""
    keytool = shutil.which("keytool")
    if keytool is None:
        return None  # no Java here: nothing to configure
    root, pem = read_root(confdir)
    source = next((p for p in JAVA_CACERTS if os.path.exists(p)), None)
    out_dir = os.path.join(confdir, "shell")
    os.makedirs(out_dir, exist_ok=True)
    store = os.path.join(out_dir, "truststore.p12")
    stamp_path = store + ".stamp"
    stamp = hashlib.sha256(pem).hexdigest()
    if source:
        stamp += f" {source} {os.stat(source).st_mtime_ns}"
    try:
        with open(stamp_path) as f:
            if f.read() == stamp and os.path.exists(store):
                return store  # keytool takes seconds: reuse the store while its inputs stand
    except OSError:
        pass
    tmp = store + ".tmp"
    if os.path.exists(tmp):
        os.unlink(tmp)
    steps = []
    if source:
        steps.append([keytool, "-importkeystore", "-noprompt", "-srckeystore", source,
                      "-srcstorepass", JAVA_STORE_PASSWORD, "-destkeystore", tmp,
                      "-deststoretype", "PKCS12", "-deststorepass", JAVA_STORE_PASSWORD])
    steps.append([keytool, "-importcert", "-noprompt", "-alias", "mitmd-root", "-file", root,
                  "-keystore", tmp, "-storetype", "PKCS12", "-storepass", JAVA_STORE_PASSWORD])
    for step in steps:
        p = subprocess.run(step, capture_output=True, text=True)
        if p.returncode != 0:
            warn(f"Java truststore not made ({' '.join(step[:2])} failed: "
                 f"{(p.stderr or p.stdout).strip()[:300]}); Java programs will not trust mitmd")
            if os.path.exists(tmp):
                os.unlink(tmp)
            return None
    os.replace(tmp, store)
    with open(stamp_path, "w") as f:
        f.write(stamp)
    if not source:
        warn("no JDK roots found (ca-certificates-java): the Java truststore holds mitmd's root "
             "only, so Java programs trust only hosts reached through mitmd")
    return store


def java_options(existing, store, proxy_host, proxy_port, no_proxy):
    """JAVA_TOOL_OPTIONS with the truststore and the proxy, after what was there (minus the
    settings this replaces)."""
    ours = {}
    if store:
        ours.update({"javax.net.ssl.trustStore": store,
                     "javax.net.ssl.trustStoreType": "PKCS12",
                     "javax.net.ssl.trustStorePassword": JAVA_STORE_PASSWORD})
    if proxy_host:
        ours.update({"http.proxyHost": proxy_host, "http.proxyPort": str(proxy_port),
                     "https.proxyHost": proxy_host, "https.proxyPort": str(proxy_port),
                     # Java's default skips localhost; mitmd-shell does not unless asked.
                     "http.nonProxyHosts": "|".join(h for h in no_proxy.split(",") if h)})
    kept = [o for o in (existing or "").split()
            if not (o.startswith("-D") and o[2:].split("=", 1)[0] in ours)]
    return " ".join(kept + [f"-D{k}={v}" for k, v in ours.items()])


def url_host(host):
    return f"[{host}]" if ":" in host else host


def parse_host_port(text, what):
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\[\]]+):(\d+)", text)
    if not m:
        raise EnvError(f"{what}: '{text}' is not HOST:PORT (IPv6 as [::1]:8080)")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if not 0 < port < 65536:
        raise EnvError(f"{what}: port {port} is not in 1-65535")
    return host, port


def client_env(environ, confdir, proxy_host, proxy_port, no_proxy, token, warn):
    """The variables to set (name -> value) and to remove (names) so that clients use mitmd at
    proxy_host:proxy_port and trust its root. |no_proxy| None: nothing bypasses the proxy."""
    from urllib.parse import quote
    bundle = write_bundle(confdir)
    root, _ = read_root(confdir)
    store = write_java_truststore(confdir, warn)
    auth = f"mitmd:{quote(token, safe='')}@" if token else ""
    url = f"http://{auth}{url_host(proxy_host)}:{proxy_port}"
    env = {v: url for v in PROXY_VARS}
    unset = []
    if no_proxy is None:
        unset += NO_PROXY_VARS
    else:
        env.update({v: no_proxy for v in NO_PROXY_VARS})
    env.update({v: bundle for v in CA_BUNDLE_VARS})
    env.update({v: root for v in CA_ROOT_VARS})
    env.update({v: "1" for v in NODE_VARS})
    env[JAVA_VAR] = java_options(environ.get(JAVA_VAR), store, proxy_host, proxy_port,
                                 no_proxy or "")
    return env, unset

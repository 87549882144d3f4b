#include "web/ca_page.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/mem.h>
#include <openssl/x509.h>

#include <cstdio>

#include "core/strings.h"
#include "web/qr.h"

namespace mitmd::web {
namespace {

constexpr char kPemName[] = "mitmd-ca.pem";
constexpr char kDerName[] = "mitmd-ca.cer";

std::string NameOneLine(X509_NAME* name) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return {};
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

std::string TimeText(const ASN1_TIME* t) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || !ASN1_TIME_print(bio.get(), t)) return {};
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

// The page is self-contained (served through the proxy too): inline styles, no scripts.
constexpr std::string_view kStyle = R"css(
:root{--bg:#f6f7f9;--fg:#1d2330;--muted:#5b6577;--card:#fff;--line:#e2e6ec;--accent:#2563eb;--code:#f0f2f5}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--fg:#e6e9ee;--muted:#9aa4b2;--card:#1a1f26;--line:#2a313b;--accent:#6ea8ff;--code:#0c0f13}}
*{box-sizing:border-box}body{margin:0;font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
main{max-width:860px;margin:0 auto;padding:32px 20px 64px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:0 0 10px}h3{font-size:15px;margin:18px 0 6px}
.sub{color:var(--muted);margin:0 0 24px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px;margin:0 0 16px}
.dl{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0 4px}
.dl a{display:inline-block;padding:9px 14px;border-radius:8px;background:var(--accent);color:#fff;text-decoration:none;font-weight:600}
.dl a.alt{background:transparent;color:var(--accent);border:1px solid var(--accent)}
code,pre{font:13px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:var(--code);border:1px solid var(--line);border-radius:8px;padding:10px 12px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
code{background:var(--code);padding:1px 5px;border-radius:4px}
.fp{word-break:break-all}
nav{display:flex;flex-wrap:wrap;gap:8px;margin:0 0 16px}
nav a{color:var(--accent);text-decoration:none;border:1px solid var(--line);background:var(--card);padding:4px 10px;border-radius:999px;font-size:14px}
.warn{border-left:4px solid #d97706}
ol{padding-left:22px}li{margin:4px 0}
)css";

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

Result<CaDownloads> CaDownloads::Create(X509* root, std::string pem, std::string fingerprint) {
  if (root == nullptr) return Fail("no root certificate to offer for download");
  uint8_t* der = nullptr;
  int len = i2d_X509(root, &der);
  if (len <= 0) return Fail("cannot encode the root certificate as DER");
  CaDownloads d;
  d.der_.assign(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  char name[24];
  std::snprintf(name, sizeof(name), "%08lx.0", X509_subject_name_hash_old(root) & 0xffffffffUL);
  d.android_name_ = name;
  d.pem_ = std::move(pem);
  d.fingerprint_ = std::move(fingerprint);
  d.subject_ = NameOneLine(X509_get_subject_name(root));
  d.not_after_ = TimeText(X509_get0_notAfter(root));
  return d;
}

std::string CaDownloads::PageHtml(const CaPageInfo& info) const {
  const std::string proxy = HtmlEscape(info.proxy.empty() ? "127.0.0.1:8080" : info.proxy);
  const std::string proxy_host = proxy.substr(0, proxy.rfind(':'));
  const std::string proxy_port = proxy.substr(proxy.rfind(':') + 1);
  const std::string confdir = HtmlEscape(info.confdir.empty() ? "~/.mitmd" : info.confdir);
  const std::string pem_url = StrCat("/ca/", kPemName);
  const std::string der_url = StrCat("/ca/", kDerName);
  const std::string android_url = StrCat("/ca/", android_name_);
  std::string h;
  h += "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
       "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
       "<title>Trust the mitmd root certificate</title><style>";
  h += kStyle;
  h += "</style></head><body><main>";
  h += "<h1>Trust the mitmd root certificate</h1>"
       "<p class=\"sub\">mitmd decrypts HTTPS by presenting certificates it signs with this "
       "root. Clients accept them only once they trust the root. It was created for this "
       "install alone: its private key never left this machine.</p>";

  if (!info.setup_url.empty()) {
    if (auto qr = QrSvg(info.setup_url)) {
      h += StrCat("<section class=\"card\" id=\"phone\"><h2>On a phone</h2>"
                  "<div class=\"qr\">", *qr, "</div><p>Scan this with the phone's camera to open "
                  "this page on it: <code>", HtmlEscape(info.setup_url), "</code>. The phone must "
                  "be on the same network, and mitmd must let it in without a token "
                  "(<code>--allow-clients</code> with its network, e.g. 192.168.1.0/24).</p>"
                  "</section>");
    }
  }
  h += "<section class=\"card\"><h2>Download</h2>";
  h += StrCat("<p>Subject <code>", HtmlEscape(subject_), "</code>");
  if (!not_after_.empty()) h += StrCat(", valid until ", HtmlEscape(not_after_));
  h += "</p>";
  h += StrCat("<p>SHA-256 fingerprint (compare it with what mitmd printed at start):<br>"
              "<code class=\"fp\">", HtmlEscape(fingerprint_), "</code></p>");
  h += StrCat("<div class=\"dl\"><a href=\"", pem_url, "\" download>PEM (", kPemName, ")</a>",
              "<a class=\"alt\" href=\"", der_url, "\" download>DER (", kDerName, ")</a>",
              "<a class=\"alt\" href=\"", android_url, "\" download>Android (",
              HtmlEscape(android_name_), ")</a></div>");
  h += "</section>";

  h += "<nav><a href=\"#linux\">Linux</a><a href=\"#firefox\">Firefox</a><a href=\"#macos\">macOS</a>"
       "<a href=\"#windows\">Windows</a><a href=\"#android\">Android</a><a href=\"#ios\">iOS</a>"
       "<a href=\"#cli\">Command line</a></nav>";

  h += StrCat(
      "<section class=\"card\" id=\"linux\"><h2>Linux</h2>"
      "<h3>Chromium and Chrome (NSS database)</h3>"
      "<pre>certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n mitmd -i ", kPemName, "</pre>"
      "<p>Install <code>certutil</code> with <code>apt install libnss3-tools</code> "
      "(Debian, Ubuntu) or <code>dnf install nss-tools</code> (Fedora). Restart the browser.</p>"
      "<h3>System store (curl, wget, Python, most programs)</h3>"
      "<p>Debian, Ubuntu:</p><pre>sudo cp ", kPemName,
      " /usr/local/share/ca-certificates/mitmd.crt\nsudo update-ca-certificates</pre>"
      "<p>Fedora, RHEL:</p><pre>sudo cp ", kPemName,
      " /etc/pki/ca-trust/source/anchors/mitmd.pem\nsudo update-ca-trust</pre>"
      "<p>Arch:</p><pre>sudo trust anchor --store ", kPemName, "</pre>"
      "<p>To stop trusting it later, remove the file and run the same update command "
      "(Debian: <code>sudo update-ca-certificates --fresh</code>).</p></section>");

  h += StrCat(
      "<section class=\"card\" id=\"firefox\"><h2>Firefox (any system)</h2>"
      "<p>Firefox keeps its own trust store.</p><ol>"
      "<li>Open <code>about:preferences#privacy</code>, scroll to <b>Certificates</b>, click "
      "<b>View Certificates…</b></li>"
      "<li>On the <b>Authorities</b> tab click <b>Import…</b> and choose <code>", kPemName,
      "</code>.</li>"
      "<li>Tick <b>Trust this CA to identify websites</b> and confirm.</li></ol>"
      "<p>Alternatively set <code>security.enterprise_roots.enabled</code> to true in "
      "<code>about:config</code> to use the system store on Windows and macOS.</p></section>");

  h += StrCat(
      "<section class=\"card\" id=\"macos\"><h2>macOS</h2>"
      "<pre>sudo security add-trusted-cert -d -r trustRoot \\\n"
      "  -k /Library/Keychains/System.keychain ", kPemName, "</pre>"
      "<p>Or double-click the file, add it to the <b>System</b> keychain in Keychain Access, "
      "open it, expand <b>Trust</b> and set <b>When using this certificate</b> to "
      "<b>Always Trust</b>.</p></section>");

  h += StrCat(
      "<section class=\"card\" id=\"windows\"><h2>Windows</h2>"
      "<p>In an administrator command prompt:</p><pre>certutil -addstore root ", kDerName, "</pre>"
      "<p>or PowerShell (as administrator):</p>"
      "<pre>Import-Certificate -FilePath ", kDerName,
      " -CertStoreLocation Cert:\\LocalMachine\\Root</pre>"
      "<p>Or double-click <code>", kDerName, "</code>, choose <b>Install Certificate…</b>, "
      "<b>Local Machine</b>, <b>Place all certificates in the following store</b>, "
      "<b>Trusted Root Certification Authorities</b>.</p></section>");

  const std::string pac =
      info.pac_url.empty() ? std::string()
                           : StrCat(" (or <b>Proxy Auto-Config</b> with <code>",
                                    HtmlEscape(info.pac_url), "</code>)");
  h += StrCat(
      "<section class=\"card\" id=\"android\"><h2>Android</h2>"
      "<h3>1. Point the Wi-Fi at mitmd</h3><ol>"
      "<li>Settings → Network &amp; internet → Internet → the Wi-Fi network's gear → pencil "
      "(or long-press the network → <b>Modify</b>) → <b>Advanced options</b>.</li>"
      "<li><b>Proxy</b>: <b>Manual</b>, hostname <code>", proxy_host, "</code>, port <code>",
      proxy_port, "</code>", pac, ". Save.</li></ol>"
      "<p>Android's proxy settings have no password field: start mitmd with "
      "<code>--allow-clients</code> naming the phone's network.</p>"
      "<h3>Over USB instead of Wi-Fi</h3>"
      "<pre>adb reverse tcp:", proxy_port, " tcp:", proxy_port,
      "\nadb shell settings put global http_proxy 127.0.0.1:", proxy_port,
      "\n# when done:\nadb shell settings put global http_proxy :0</pre>"
      "<p>The phone then reaches mitmd on its own loopback, so no token and no "
      "<code>--allow-clients</code> are needed.</p>"
      "<h3>2. Install the root (user store)</h3><ol>"
      "<li>Open <code>http://mitmd.cert/</code> in the phone's browser (through the proxy) and "
      "download <code>", kDerName, "</code>.</li>"
      "<li>Android 11 and later: Settings → Security &amp; privacy → More security settings "
      "(or Advanced) → Encryption &amp; credentials → Install a certificate → <b>CA "
      "certificate</b> → <b>Install anyway</b>, and pick the file. Older versions: Settings → "
      "Security → Install from storage.</li>"
      "<li>Check it under Encryption &amp; credentials → Trusted credentials → <b>User</b>.</li>"
      "</ol>"
      "<p>Chrome and apps that opt in trust user CAs. Since Android 7 other apps trust only the "
      "system store:</p>"
      "<h3>System store (emulator or rooted device)</h3>"
      "<p>Android 13 and earlier:</p>"
      "<pre>adb root &amp;&amp; adb remount\nadb push ", HtmlEscape(android_name_),
      " /system/etc/security/cacerts/\nadb shell chmod 644 /system/etc/security/cacerts/",
      HtmlEscape(android_name_), "\nadb reboot</pre>"
      "<p>Android 14 and later read the system store from the Conscrypt APEX "
      "(<code>/apex/com.android.conscrypt/cacerts</code>), which is read-only: as root, "
      "overlay it with a copy that adds the root, in every app's mount namespace (until the "
      "next reboot):</p>"
      "<pre>adb root\nadb push ", HtmlEscape(android_name_), " /data/local/tmp/\nadb shell\n"
      "mkdir -m 700 /data/local/tmp/ca &amp;&amp; cp /apex/com.android.conscrypt/cacerts/* "
      "/data/local/tmp/ca/\ncp /data/local/tmp/", HtmlEscape(android_name_),
      " /data/local/tmp/ca/ &amp;&amp; chmod 644 /data/local/tmp/ca/*\n"
      "mount -t tmpfs tmpfs /system/etc/security/cacerts\n"
      "cp /data/local/tmp/ca/* /system/etc/security/cacerts/\n"
      "chcon u:object_r:system_file:s0 /system/etc/security/cacerts/*\n"
      "for pid in 1 $(pgrep zygote) $(pgrep zygote64); do\n"
      "  nsenter --mount=/proc/$pid/ns/mnt -- mount --bind /system/etc/security/cacerts "
      "/apex/com.android.conscrypt/cacerts\ndone</pre>"
      "<p>The file name is the certificate's subject hash, which Android requires. Restart the "
      "apps (or the device's runtime) to make them read the store again.</p></section>");

  h += StrCat(
      "<section class=\"card\" id=\"ios\"><h2>iOS and iPadOS</h2><ol>"
      "<li>Settings → Wi-Fi → ⓘ next to the network → <b>Configure Proxy</b> → <b>Manual</b>: "
      "server <code>", proxy_host, "</code>, port <code>", proxy_port,
      "</code>, authentication off", pac.empty() ? "" : StrCat(" (or <b>Automatic</b> with URL <code>",
      HtmlEscape(info.pac_url), "</code>)"), ". mitmd must allow the phone's network with "
      "<code>--allow-clients</code>.</li>"
      "<li>Open <code>http://mitmd.cert/</code> in <b>Safari</b> (other browsers cannot install "
      "profiles) and tap the <b>DER</b> link; allow the profile download.</li>"
      "<li>Settings → General → VPN &amp; Device Management → the mitmd profile → "
      "<b>Install</b>.</li>"
      "<li>Settings → General → About → Certificate Trust Settings → turn on full trust for the "
      "mitmd root. Without this step Safari and apps still refuse mitmd's certificates.</li>"
      "</ol><p>When done, remove the profile and set the proxy back to <b>Off</b>.</p></section>");

  h += StrCat(
      "<section class=\"card\" id=\"cli\"><h2>Command-line tools, one at a time</h2>"
      "<pre>curl --cacert ", kPemName, " --proxy http://", proxy, " https://example.com/\n"
      "export REQUESTS_CA_BUNDLE=$PWD/", kPemName, "      # Python requests\n"
      "export NODE_EXTRA_CA_CERTS=$PWD/", kPemName, "     # Node.js\n"
      "export SSL_CERT_FILE=$PWD/", kPemName, "           # OpenSSL-based tools\n"
      "keytool -importcert -cacerts -alias mitmd -file ", kDerName, "   # Java</pre></section>");

  h += "<section class=\"card warn\"><h2>When you are done</h2><p>Anyone holding this root's "
       "private key could read traffic from every client that trusts it. Keep <code>" +
       confdir + "</code> private, and remove the root from the stores above when you no "
       "longer inspect traffic.</p></section>";
  h += "</main></body></html>";
  return h;
}

std::optional<StaticResponse> CaDownloads::Serve(std::string_view path,
                                                const CaPageInfo& info) const {
  if (path == "/" || path == "/ca" || path == "/ca/") {
    return StaticResponse{200, "text/html; charset=utf-8", PageHtml(info), ""};
  }
  if (!path.starts_with("/ca/")) return std::nullopt;
  std::string_view name = path.substr(4);
  if (name == kPemName) return StaticResponse{200, "application/x-pem-file", pem_, kPemName};
  if (name == kDerName) return StaticResponse{200, "application/x-x509-ca-cert", der_, kDerName};
  if (name == android_name_) {
    return StaticResponse{200, "application/x-pem-file", pem_, android_name_};
  }
  return std::nullopt;
}

}  // namespace mitmd::web

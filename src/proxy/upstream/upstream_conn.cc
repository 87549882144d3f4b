#include "proxy/upstream/upstream_conn.h"

#include "core/strings.h"

namespace mitmd::proxy {

const std::optional<CertInfo>& UpstreamConn::cert() const {
  static const std::optional<CertInfo> kNone;
  return verification ? verification->cert : kNone;
}

void ReportBytes(ConnectionRegistry& registry, UpstreamConn& conn) {
  if (!conn.wire) return;
  uint64_t in = conn.wire->bytes_read(), out = conn.wire->bytes_written();
  registry.AddBytes(conn.id, in - conn.bytes_in_reported, out - conn.bytes_out_reported);
  conn.bytes_in_reported = in;
  conn.bytes_out_reported = out;
}

void CloseUpstream(ConnectionRegistry& registry, UpstreamConn& conn, std::string_view reason) {
  ReportBytes(registry, conn);
  registry.Close(conn.id, conn.peer_closed ? ClosedBy::kPeer : ClosedBy::kMitmd,
                 std::string(reason));
  if (conn.wire) {
    conn.wire->set_observer(nullptr);
    conn.wire->Close(Wire::Linger::kUpstream);
  }
}

std::string UpstreamTlsFailure(const UpstreamKey& key, const UpstreamVerification& v,
                               const std::string& tls_error) {
  std::string where = StrCat(key.host, ":", key.port);
  if (v.client_cert_requested && v.client_cert_source.empty()) {
    return StrCat("the upstream server ", where, " requires a client certificate (mutual TLS) "
                  "and mitmd has none to present (", tls_error, "); give mitmd one with "
                  "--client-cert FILE or --client-cert-dir DIR (DIR/", v.host, ".pem)");
  }
  if (v.client_cert_requested) {
    return StrCat("the upstream server ", where, " rejected the client certificate mitmd "
                  "presented from ", v.client_cert_source, " (", tls_error, ")");
  }
  return StrCat("upstream TLS handshake with ", where, " failed: ", tls_error);
}

std::string DurationText(std::chrono::milliseconds ms) {
  if (ms.count() % 1000 == 0) return StrCat(ms.count() / 1000, " s");
  return StrCat(ms.count(), " ms");
}

}  // namespace mitmd::proxy

#pragma once

#include <openssl/x509.h>

#include <string>

#include "flow/flow.h"

namespace mitmd::proxy {

// Subject, issuer, SANs, SHA-256 and validity of |cert|, for the flow record.
// (verified / verify_error are left for the caller.)
CertInfo DescribeCert(X509* cert);

// RFC 2253 one-line form: "CN=example.com,O=Example".
std::string NameToString(const X509_NAME* name);

// "2025-01-01T00:00:00Z"
std::string AsnTimeToIso(const ASN1_TIME* t);

}  // namespace mitmd::proxy

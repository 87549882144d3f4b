#pragma once
// The proxy auto-config (PAC) file the viewer serves at /proxy.pac, so a browser or desktop can
// be pointed at mitmd with one URL (`mitmd-proxy on` prints it; GNOME's "automatic" proxy mode
// takes it). Sans-I/O.

#include <string>
#include <string_view>

#include "core/address.h"

namespace mitmd::web {

// The media type browsers expect for a PAC file.
inline constexpr std::string_view kPacContentType = "application/x-ns-proxy-autoconfig";

// A PAC script whose FindProxyForURL sends every request through |proxy|, with no DIRECT
// fallback: a user who asked for inspection must not get silently uninspected traffic when mitmd
// is down. An unspecified address (empty, 0.0.0.0, ::), which a client cannot connect to, is
// replaced by the loopback address of the same family. IPv6 hosts are bracketed.
std::string BuildPac(const HostPort& proxy);

}  // namespace mitmd::web

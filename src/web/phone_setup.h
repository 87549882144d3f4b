#pragma once
// Setting up a phone or another machine on the LAN: this machine's LAN addresses, and the lines
// the start-up banner prints (where the phone points its Wi-Fi proxy, the URL of the root's page
// with a QR code of it).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mitmd::web {

// This machine's IPv4 addresses on interfaces that are up, not loopback (getifaddrs), in the
// kernel's order. Empty when there are none.
std::vector<std::string> LanAddresses();

struct LanSetup {
  std::vector<std::string> lan_addresses;  // LanAddresses()
  uint16_t proxy_port = 0;
  // Set when the viewer listens beyond loopback (a phone can open its /ca page).
  std::optional<uint16_t> viewer_port;
  bool viewer_tls = false;
  bool clients_allowed = false;  // --allow-clients was given
  bool qr = true;                // draw the setup URL as a QR code (a terminal)
};

// The URL a phone opens to trust the root: the viewer's /ca page on the first LAN address, or
// http://mitmd.cert/ (through the proxy) when the viewer is loopback-only.
std::string PhoneSetupUrl(const LanSetup& setup);

// The banner's LAN lines, for a proxy that listens beyond loopback.
std::string LanBanner(const LanSetup& setup);

}  // namespace mitmd::web

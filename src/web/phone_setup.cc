#include "web/phone_setup.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include "core/strings.h"
#include "web/qr.h"

namespace mitmd::web {

std::vector<std::string> LanAddresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if ((i->ifa_flags & IFF_UP) == 0 || (i->ifa_flags & IFF_LOOPBACK) != 0) continue;
    char buf[INET_ADDRSTRLEN];
    auto* sin = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    if (inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)) != nullptr) out.emplace_back(buf);
  }
  freeifaddrs(list);
  return out;
}

std::string PhoneSetupUrl(const LanSetup& setup) {
  if (setup.viewer_port && !setup.lan_addresses.empty()) {
    return StrCat(setup.viewer_tls ? "https://" : "http://", setup.lan_addresses.front(), ":",
                  *setup.viewer_port, "/ca");
  }
  return "http://mitmd.cert/";
}

std::string LanBanner(const LanSetup& setup) {
  if (setup.lan_addresses.empty()) {
    return "LAN          no LAN address found: a phone cannot reach this machine\n";
  }
  std::string out = "LAN          ";
  for (size_t i = 0; i < setup.lan_addresses.size(); ++i) {
    out += StrCat(i ? ", " : "", setup.lan_addresses[i], ":", setup.proxy_port);
  }
  out += StrCat("   (a phone's Wi-Fi proxy: host ", setup.lan_addresses.front(), ", port ",
                setup.proxy_port, ")\n");
  if (!setup.clients_allowed) {
    out += "             phones cannot send the proxy token: allow their network with "
           "--allow-clients, e.g. --allow-clients " +
           setup.lan_addresses.front().substr(0, setup.lan_addresses.front().rfind('.')) +
           ".0/24\n";
  }
  std::string url = PhoneSetupUrl(setup);
  out += StrCat("phone setup  ", url,
                setup.viewer_port ? "   (the root and the steps for Android and iOS)\n"
                                  : "   (through the proxy: the viewer listens on loopback)\n");
  if (setup.qr) {
    if (auto qr = QrTerminal(url)) out += *qr;
  }
  return out;
}

}  // namespace mitmd::web

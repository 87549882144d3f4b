// Setting a phone up: QR codes (libqrencode), the banner's LAN lines, and the /ca page naming
// the real proxy address, confdir and steps.

#include <gtest/gtest.h>

#include <algorithm>
#include <regex>

#include "ca/authority.h"
#include "support/temp_dir.h"
#include "web/ca_page.h"
#include "web/phone_setup.h"
#include "web/qr.h"

namespace mitmd::web {
namespace {

TEST(QrTest, SvgIsASquareOfWholeModulesWithoutScript) {
  auto svg = QrSvg("http://192.168.1.5:8081/ca");
  ASSERT_TRUE(svg) << svg.error().message;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(*svg, m, std::regex("viewBox=\"0 0 (\\d+) (\\d+)\"")));
  int size = std::stoi(m[1]);
  EXPECT_EQ(m[1], m[2]);
  EXPECT_EQ((size - 4 - 17) % 4, 0) << size;  // a QR code is 17 + 4 * version modules wide
  EXPECT_NE(svg->find("<path fill=\"#000\" d=\"M"), std::string::npos);
  EXPECT_EQ(svg->find("<script"), std::string::npos);
  EXPECT_EQ(svg->find("href"), std::string::npos);
}

TEST(QrTest, TerminalDrawsTwoModuleRowsPerLine) {
  auto text = QrTerminal("http://mitmd.cert/");
  ASSERT_TRUE(text) << text.error().message;
  auto svg = QrSvg("http://mitmd.cert/");
  ASSERT_TRUE(svg);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(*svg, m, std::regex("viewBox=\"0 0 (\\d+)")));
  int size = std::stoi(m[1]);
  size_t lines = static_cast<size_t>(std::count(text->begin(), text->end(), '\n'));
  EXPECT_EQ(lines, static_cast<size_t>((size + 1) / 2));
  // The finder pattern's first two rows: seven dark over dark, five light between two dark.
  EXPECT_NE(text->find("\u2588\u2580\u2580\u2580\u2580\u2580\u2588"), std::string::npos);
}

TEST(PhoneSetupTest, BannerNamesTheLanAddressTheSetupUrlAndWhatAPhoneNeeds) {
  LanSetup setup;
  setup.lan_addresses = {"192.168.1.5", "10.0.0.2"};
  setup.proxy_port = 8080;
  setup.viewer_port = 8081;
  setup.qr = false;
  std::string banner = LanBanner(setup);
  EXPECT_NE(banner.find("192.168.1.5:8080, 10.0.0.2:8080"), std::string::npos) << banner;
  EXPECT_NE(banner.find("http://192.168.1.5:8081/ca"), std::string::npos) << banner;
  EXPECT_NE(banner.find("--allow-clients 192.168.1.0/24"), std::string::npos) << banner;
  setup.clients_allowed = true;
  EXPECT_EQ(LanBanner(setup).find("--allow-clients"), std::string::npos);
  // A loopback-only viewer: the page is reached through the proxy.
  setup.viewer_port.reset();
  EXPECT_EQ(PhoneSetupUrl(setup), "http://mitmd.cert/");
  setup.qr = true;
  EXPECT_NE(LanBanner(setup).find("\u2588"), std::string::npos);
}

TEST(PhoneSetupTest, RootPageNamesTheRealProxyConfdirAndPhoneSteps) {
  testing::TempDir dir;
  auto ca = ca::Authority::LoadOrCreate(dir.File("conf"));
  ASSERT_TRUE(ca) << ca.error().message;
  auto files = CaDownloads::Create((*ca)->root(), (*ca)->root_pem(), "AA:BB");
  ASSERT_TRUE(files);
  CaPageInfo info{"192.168.1.5:9090", "/home/me/.config/mitmd", "http://192.168.1.5:8081/ca",
                  "http://192.168.1.5:8081/proxy.pac"};
  std::string page = files->Serve("/ca", info)->body;
  EXPECT_NE(page.find("--proxy http://192.168.1.5:9090"), std::string::npos);
  EXPECT_NE(page.find("hostname <code>192.168.1.5</code>, port <code>9090</code>"), std::string::npos);
  EXPECT_NE(page.find("adb reverse tcp:9090 tcp:9090"), std::string::npos);
  EXPECT_NE(page.find("/apex/com.android.conscrypt/cacerts"), std::string::npos);
  EXPECT_NE(page.find("Certificate Trust Settings"), std::string::npos);
  EXPECT_NE(page.find("/home/me/.config/mitmd"), std::string::npos);
  EXPECT_NE(page.find("http://192.168.1.5:8081/proxy.pac"), std::string::npos);
  EXPECT_NE(page.find("<svg"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("127.0.0.1:8080"), std::string::npos);
  // Without a setup URL (the viewer on loopback) there is no QR code.
  EXPECT_EQ(files->Serve("/ca")->body.find("<svg"), std::string::npos);
}

}  // namespace
}  // namespace mitmd::web

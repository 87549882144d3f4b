#include "web/ca_page.h"

#include <gtest/gtest.h>
#include <openssl/x509.h>

#include "ca/authority.h"
#include "support/temp_dir.h"

namespace mitmd::web {
namespace {

TEST(WebCaPageTest, EscapesHtml) {
  EXPECT_EQ(HtmlEscape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

TEST(WebCaPageTest, ServesThePageAndEachFormat) {
  testing::TempDir dir;
  auto ca = ca::Authority::LoadOrCreate(dir.File("conf"));
  ASSERT_TRUE(ca) << ca.error().message;
  auto files = CaDownloads::Create((*ca)->root(), (*ca)->root_pem(), "AA:BB");
  ASSERT_TRUE(files) << files.error().message;

  EXPECT_EQ(files->android_name().size(), 10u);  // 8 hex digits + ".0"
  EXPECT_EQ(files->android_name().substr(8), ".0");

  for (const char* path : {"/", "/ca", "/ca/"}) {
    auto page = files->Serve(path);
    ASSERT_TRUE(page) << path;
    EXPECT_EQ(page->content_type, "text/html; charset=utf-8");
    EXPECT_TRUE(page->filename.empty());
    EXPECT_NE(page->body.find("AA:BB"), std::string::npos);
    EXPECT_NE(page->body.find(files->android_name()), std::string::npos);
    EXPECT_EQ(page->body.find("<script"), std::string::npos);  // served through the proxy too
  }
  auto pem = files->Serve("/ca/mitmd-ca.pem");
  ASSERT_TRUE(pem);
  EXPECT_EQ(pem->body, (*ca)->root_pem());
  EXPECT_EQ(pem->filename, "mitmd-ca.pem");
  auto der = files->Serve("/ca/mitmd-ca.cer");
  ASSERT_TRUE(der);
  const uint8_t* p = reinterpret_cast<const uint8_t*>(der->body.data());
  bssl::UniquePtr<X509> cert(d2i_X509(nullptr, &p, static_cast<long>(der->body.size())));
  ASSERT_TRUE(cert);
  EXPECT_EQ(X509_cmp(cert.get(), (*ca)->root()), 0);
  auto android = files->Serve("/ca/" + files->android_name());
  ASSERT_TRUE(android);
  EXPECT_EQ(android->body, (*ca)->root_pem());
  EXPECT_FALSE(files->Serve("/ca/nothing.0"));
  EXPECT_FALSE(files->Serve("/app.js"));
}

}  // namespace
}  // namespace mitmd::web

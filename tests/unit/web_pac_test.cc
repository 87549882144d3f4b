#include "web/pac.h"

#include <gtest/gtest.h>

#include <string>

namespace mitmd::web {
namespace {

std::string ReturnLine(const std::string& pac) {
  size_t start = pac.find("return ");
  EXPECT_NE(start, std::string::npos) << pac;
  if (start == std::string::npos) return "";
  return pac.substr(start, pac.find('\n', start) - start);
}

TEST(WebPacTest, SendsEverythingThroughTheProxy) {
  std::string pac = BuildPac({"127.0.0.1", 8080});
  EXPECT_NE(pac.find("function FindProxyForURL(url, host) {"), std::string::npos) << pac;
  EXPECT_EQ(ReturnLine(pac), "return \"PROXY 127.0.0.1:8080\";");
  EXPECT_EQ(pac.find("DIRECT\""), std::string::npos) << "no silent bypass: " << pac;
}

TEST(WebPacTest, UsesTheGivenPortAndHostName) {
  EXPECT_EQ(ReturnLine(BuildPac({"localhost", 3128})), "return \"PROXY localhost:3128\";");
  EXPECT_EQ(ReturnLine(BuildPac({"10.1.2.3", 1})), "return \"PROXY 10.1.2.3:1\";");
}

TEST(WebPacTest, BracketsIpv6) {
  EXPECT_EQ(ReturnLine(BuildPac({"::1", 8080})), "return \"PROXY [::1]:8080\";");
}

TEST(WebPacTest, ReplacesUnspecifiedAddressesWithLoopback) {
  EXPECT_EQ(ReturnLine(BuildPac({"0.0.0.0", 8080})), "return \"PROXY 127.0.0.1:8080\";");
  EXPECT_EQ(ReturnLine(BuildPac({"", 8080})), "return \"PROXY 127.0.0.1:8080\";");
  EXPECT_EQ(ReturnLine(BuildPac({"::", 9090})), "return \"PROXY [::1]:9090\";");
}

TEST(WebPacTest, EscapesWhatCouldBreakOutOfTheString) {
  std::string pac = BuildPac({"evil\"+alert(1)+\"\n", 80});
  EXPECT_EQ(ReturnLine(pac), "return \"PROXY evil\\\"+alert(1)+\\\"\\x0a:80\";");
}

}  // namespace
}  // namespace mitmd::web

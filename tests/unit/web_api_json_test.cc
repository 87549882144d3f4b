#include "web/api_json.h"

#include <gtest/gtest.h>

#include "unit/web_test_flows.h"

namespace mitmd::web {
namespace {

using testing::MakeFlow;

TEST(WebApiJsonTest, SummaryCarriesTheTableColumns) {
  Flow f = MakeFlow({.method = "POST", .host = "h.test", .port = 8443, .path = "/a?b=1", .status = 201,
                     .content_type = "application/json; charset=utf-8", .response_body = "{}", .duration = 0.25});
  f.upstream_reused = true;
  nlohmann::json s = FlowSummaryJson(f, 42);
  EXPECT_EQ(s["seq"], 42);
  EXPECT_EQ(s["id"], f.id);
  EXPECT_EQ(s["method"], "POST");
  EXPECT_EQ(s["host"], "h.test");
  EXPECT_EQ(s["port"], 8443);
  EXPECT_EQ(s["path"], "/a?b=1");
  EXPECT_EQ(s["status"], 201);
  EXPECT_EQ(s["type"], "application/json");
  EXPECT_EQ(s["size"], 2);
  EXPECT_NEAR(s["dur"].get<double>(), 250.0, 0.1);
  EXPECT_EQ(s["reused"], true);
  EXPECT_EQ(s["conn"], 7);
  EXPECT_EQ(s["up"], 3);
  EXPECT_FALSE(s.contains("err"));
}

TEST(WebApiJsonTest, FailedAndTunnelFlows) {
  Flow failed = testing::MakeErrorFlow("x.test", "dns", "no such host: x.test");
  nlohmann::json s = FlowSummaryJson(failed, 1);
  EXPECT_EQ(s["status"], 0);
  EXPECT_EQ(s["err"], "no such host: x.test");

  Flow tunnel;
  tunnel.id = "t";
  tunnel.kind = Flow::Kind::kTunnel;
  tunnel.server_host = "pinned.test";
  tunnel.server_port = 443;
  tunnel.bytes_up = 10;
  tunnel.bytes_down = 90;
  nlohmann::json t = FlowSummaryJson(tunnel, 2);
  EXPECT_EQ(t["method"], "CONNECT");
  EXPECT_EQ(t["kind"], "tunnel");
  EXPECT_EQ(t["size"], 100);
  EXPECT_TRUE(t["dur"].is_null());
}

TEST(WebApiJsonTest, DetailCanLeaveBodiesOut) {
  Flow f = MakeFlow({.response_body = "payload", .gzip = true});
  nlohmann::json with = FlowDetailJson(f, 5, true);
  nlohmann::json without = FlowDetailJson(f, 5, false);
  EXPECT_EQ(with["seq"], 5);
  EXPECT_TRUE(with["response"]["body"].contains("content"));
  EXPECT_FALSE(without["response"]["body"].contains("content"));
  EXPECT_EQ(without["response"]["body"]["size"], f.response->body.size);
  EXPECT_EQ(without["response"]["body"]["content_encoding"], "gzip");
  EXPECT_EQ(without["request"]["body"]["content_encoding"], "");
}

}  // namespace
}  // namespace mitmd::web

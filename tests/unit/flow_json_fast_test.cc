// The streaming serializer (FlowToJsonLine, JsonWriter) against nlohmann's dump with
// error_handler_t::replace: the same canonical text (FlowToJson parses the line, and dumps it back
// unchanged), the same U+FFFD replacement of ill-formed UTF-8 in strings that are not headers.

#include <gtest/gtest.h>
#include <openssl/base64.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "flow/flow_json.h"
#include "flow/flow_store.h"
#include "flow/json_writer.h"
#include "support/temp_dir.h"

namespace mitmd {
namespace {

using nlohmann::json;

std::string DomLine(const Flow& f) {
  return FlowToJson(f).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string DomString(const std::string& s) {
  return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string FastString(const std::string& s) {
  std::string out;
  JsonWriter(out).String(s);
  return out;
}

std::string FastDouble(double d) {
  std::string out;
  JsonWriter(out).Double(d);
  return out;
}

// Every optional part present, with text the escaper has to work on.
Flow FullFlow() {
  Flow f;
  f.id = "0b6f4a1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b";
  f.client_conn_id = 41;
  f.upstream_conn_id = 18446744073709551615u;
  f.upstream_reused = true;
  f.client_addr = "[::1]:50412";
  f.server_host = "bücher.example";
  f.server_port = 8443;
  f.server_addr = "127.0.0.1:8443";
  f.insecure = true;
  f.note = "tunnelled: \"pinned\" client\n(second line)";
  f.client_tls = TlsInfo{"TLSv1.3", "TLS_AES_128_GCM_SHA256", "h2", "bücher.example",
                         {"h2", "http/1.1"}};
  f.server_tls = TlsInfo{"TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256", "", "", {}};
  f.server_cert = CertInfo{"CN=bücher.example,O=\"Quotes\\Inc\"", "CN=Test CA",
                           {}, "ab01", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", false,
                           "self-signed certificate"};
  HttpRequest req;
  req.method = "POST";
  req.scheme = "https";
  req.host = "bücher.example";
  req.port = 8443;
  req.target = "/a%20b?q=\"x\"&t=\t";
  req.path = "/a%20b?q=\"x\"&t=\t";
  req.version = "HTTP/1.1";
  req.headers = {{"Host", "bücher.example:8443"},
                 {"X-Ctl", std::string("a\x01\x1f\x7f" "b\x08\x0c\r\n", 9)},
                 {"X-Emoji", "\xf0\x9f\x98\x80 ok"},
                 {"X-Bad", std::string("\xc3\x28 \xff \xe2\x82", 7)}};
  req.trailers = {{"X-Sum", "9"}};
  std::string form = "a=1&b=\\&c=\"";
  req.body.Append(form.data(), form.size(), 64);
  f.request = req;
  HttpResponse resp;
  resp.status = 502;
  resp.reason = "Bad Gateway";
  resp.version = "HTTP/1.1";
  resp.headers = {{"Content-Type", "image/png"}};
  const char png[] = {'\x89', 'P', 'N', 'G', '\r', '\n', '\x1a', '\n', '\x00'};
  resp.body.Append(png, sizeof(png), 8);
  resp.trailers = {{"Grpc-Status", "0"}};
  resp.informational = {100, 103};
  f.response = resp;
  f.error = FlowError{"response", "upstream closed mid-body: \"EOF\""};
  f.timings = Timings{1700000000.5, 1700000000.25, 1700000000.75, 0.001, 1e-7,
                      1700000001.125, 1700000001.0625, 123456789012345678.0, -0.0};
  f.bytes_up = 1234;
  f.bytes_down = 0;
  f.body_record_cap = 8;
  return f;
}

// FullFlow().dump() from the DOM path, recorded when the streaming writer replaced it.
constexpr std::string_view kFullFlowGolden =
    R"g({"body_record_cap":8,"bytes":{"down":0,"up":1234},"client":{"addr":"[::1]:50412","conn":41,)g"
    R"g("tls":{"alpn":"h2","alpn_offered":["h2","http/1.1"],"cipher":"TLS_AES_128_GCM_SHA256",)g"
    R"g("sni":"bücher.example","version":"TLSv1.3"}},"error":{"message":"upstream closed )g"
    R"g(mid-body: \"EOF\"","phase":"response"},"id":"0b6f4a1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b",)g"
    R"g("insecure":true,"kind":"http","note":"tunnelled: \"pinned\" client\n(second line)",)g"
    R"g("request":{"body":{"content":"a=1&b=\\&c=\"","encoding":"text","size":11,)g"
    R"g("truncated":false},"headers":[["Host","bücher.example:8443"],["X-Ctl",)g"
    "\"a\\u0001\\u001f\x7f" R"g(b\b\f\r\n"],["X-Emoji","😀 ok"],["X-Bad","\\xc3( \\xff \\xe2\\x82",)g"
    R"g({"value_b64":"wygg/yDigg=="}]],)g"
    R"g("host":"bücher.example","method":"POST","path":"/a%20b?q=\"x\"&t=\t","port":8443,)g"
    R"g("scheme":"https","target":"/a%20b?q=\"x\"&t=\t","trailers":[["X-Sum","9"]],)g"
    R"g("url":"https://bücher.example:8443/a%20b?q=\"x\"&t=\t","version":"HTTP/1.1"},)g"
    R"g("response":{"body":{"content":"iVBORw0KGgo=","encoding":"base64","size":9,)g"
    R"g("truncated":true},"headers":[["Content-Type","image/png"]],"informational":[100,103],)g"
    R"g("reason":"Bad Gateway","status":502,"trailers":[["Grpc-Status","0"]],)g"
    R"g("version":"HTTP/1.1"},"schema":1,"server":{"addr":"127.0.0.1:8443","cert":{)g"
    R"g("issuer":"CN=Test CA","not_after":"2027-01-01T00:00:00Z","not_before":)g"
    R"g("2026-01-01T00:00:00Z","sans":[],"sha256":"ab01","subject":)g"
    R"g("CN=bücher.example,O=\"Quotes\\Inc\"","verified":false,"verify_error":)g"
    R"g("self-signed certificate"},"conn":18446744073709551615,"host":"bücher.example",)g"
    R"g("port":8443,"reused":true,"tls":{"alpn":"","cipher":"ECDHE-ECDSA-AES128-GCM-SHA256",)g"
    R"g("sni":"","version":"TLSv1.2"}},"state":"done","timings":{"accepted":1700000000.5,"client_tls_end":)g"
    R"g(1e-07,"request_end":1700000001.0625,"request_start":1700000001.125,"response_end":)g"
    R"g(-0.0,"response_start":1.2345678901234568e+17,"upstream_connect_end":1700000000.75,)g"
    R"g("upstream_connect_start":1700000000.25,"upstream_tls_end":0.001}})g";

TEST(FlowJsonFastTest, GoldenLine) {
  EXPECT_EQ(FlowToJsonLine(FullFlow()), kFullFlowGolden);
  EXPECT_EQ(DomLine(FullFlow()), kFullFlowGolden);
}

Flow WithBody(Flow f, std::string content, bool in_response) {
  BodyRecord b;
  b.Append(content.data(), content.size(), content.size() + 1);
  if (in_response) {
    if (!f.response) f.response = HttpResponse{};
    f.response->body = std::move(b);
  } else {
    if (!f.request) f.request = HttpRequest{};
    f.request->body = std::move(b);
  }
  return f;
}

// Flows covering each optional part absent and present, the tunnel kind, and bodies and
// header values the escaper and the UTF-8 check must get right.
std::vector<Flow> VariedFlows() {
  std::vector<Flow> flows;
  flows.push_back(Flow{});  // nothing set: no request, response, TLS, cert, error, note
  flows.push_back(FullFlow());

  Flow tunnel;
  tunnel.id = NewFlowId();
  tunnel.kind = Flow::Kind::kTunnel;
  tunnel.server_host = "pinned.example";
  tunnel.server_port = 443;
  tunnel.bytes_up = 5120;
  tunnel.bytes_down = 1u << 30;
  tunnel.note = "passthrough: --ignore-hosts";
  flows.push_back(tunnel);

  Flow error_only;
  error_only.error = FlowError{"dns", "cannot resolve host 'nope.invalid'"};
  flows.push_back(error_only);

  // Each optional member of FullFlow removed on its own.
  for (int drop = 0; drop < 9; ++drop) {
    Flow f = FullFlow();
    switch (drop) {
      case 0: f.client_tls.reset(); break;
      case 1: f.server_tls.reset(); break;
      case 2: f.server_cert.reset(); break;
      case 3: f.request.reset(); break;
      case 4: f.response.reset(); break;
      case 5: f.error.reset(); break;
      case 6: f.note.clear(); break;
      case 7: f.request->trailers.clear(); f.response->trailers.clear(); break;
      case 8: f.response->informational.clear(); f.client_tls->alpn_offered.clear(); break;
    }
    flows.push_back(f);
  }

  const Flow base = FullFlow();
  std::string all_bytes;
  for (int c = 0; c < 256; ++c) all_bytes.push_back(static_cast<char>(c));
  std::string controls;
  for (int c = 0; c < 0x20; ++c) controls.push_back(static_cast<char>(c));
  std::string unicode = "zoë – 日本語 – \xf0\x9f\x8e\x89 – \xf4\x8f\xbf\xbf – \xef\xbf\xbf";
  std::string big_text(1 << 20, 'a');
  for (size_t i = 0; i < big_text.size(); i += 997) big_text[i] = '"';
  std::string big_binary(1 << 20, '\0');
  for (size_t i = 0; i < big_binary.size(); ++i) big_binary[i] = static_cast<char>(i * 7919 >> 3);
  std::string late_invalid(100000, 'b');
  late_invalid.back() = '\xff';  // valid for 99,999 bytes, then binary: base64
  for (const std::string& body :
       {std::string(), all_bytes, controls, unicode, big_text, big_binary, late_invalid,
        std::string("\xed\xa0\x80"),                  // a surrogate: not UTF-8
        std::string("\xc0\xaf"),                      // overlong
        std::string("ends mid-sequence \xe6\x97")}) {
    flows.push_back(WithBody(base, body, /*in_response=*/true));
    flows.push_back(WithBody(base, body, /*in_response=*/false));
  }

  // Header names and values: controls, unicode, invalid UTF-8, huge.
  for (const std::string& value :
       {std::string(), controls, unicode, all_bytes, std::string(1 << 20, 'v'),
        std::string("\xe0\x80\x80\xf0\x80\x80\x80\xf5\xc1\xbf"), std::string(70000, '\x80'),
        std::string("x\xf0\x9f\x98") + std::string(100, 'y')}) {
    Flow f = base;
    f.request->headers.emplace_back("X-Value", value);
    f.response->headers.emplace_back(value, "as a name");
    f.note = value;
    f.error->message = value;
    flows.push_back(f);
  }
  return flows;
}

TEST(FlowJsonFastTest, SameTextAndValuesAsTheDom) {
  int index = 0;
  for (const Flow& f : VariedFlows()) {
    SCOPED_TRACE(::testing::Message() << "flow #" << index++);
    std::string line = FlowToJsonLine(f);
    ASSERT_EQ(line, DomLine(f));  // these flows' timings print alike in both
    EXPECT_EQ(line.find('\n'), std::string::npos);
    json parsed = json::parse(line);
    EXPECT_EQ(parsed, json::parse(DomLine(f)));
    auto back = FlowFromJson(parsed);
    ASSERT_TRUE(back) << back.error().message;
  }
}

TEST(FlowJsonFastTest, BodiesRoundTripByteForByte) {
  for (const Flow& f : VariedFlows()) {
    auto back = FlowFromJson(json::parse(FlowToJsonLine(f)));
    ASSERT_TRUE(back) << back.error().message;
    if (f.request) {
      EXPECT_EQ(back->request->body.content, f.request->body.content);
    }
    if (f.response) {
      EXPECT_EQ(back->response->body.content, f.response->body.content);
    }
  }
}

TEST(FlowJsonFastTest, InvalidUtf8BecomesOneReplacementPerMaximalSubpart) {
  const std::string r = "\xef\xbf\xbd";
  struct Case {
    std::string in;
    std::string want;  // the decoded value
  };
  std::vector<Case> cases = {
      {"\xc3\x28", r + "("},                  // lead then ASCII: the ASCII survives
      {"\xff", r},                            // never valid
      {"\x80\x80", r + r},                    // lone continuations: one each
      {"\xe2\x82", r},                        // truncated at the end: one
      {"\xe2\x82x", r + "x"},                 // truncated in the middle
      {"\xf0\x9f\x98", r},                    // truncated 4-byte sequence
      {"\xe0\x80\x80", r + r + r},            // overlong: E0 then two lone continuations
      {"\xed\xa0\x80", r + r + r},            // surrogate
      {"\xf4\x90\x80\x80", r + r + r + r},    // above U+10FFFF
      {"\xc0\xaf", r + r},                    // C0 is never a lead
      {"a\xf0\x9f\x98\x80z", "a\xf0\x9f\x98\x80z"},
  };
  for (const Case& c : cases) {
    std::string fast = FastString(c.in);
    EXPECT_EQ(fast, DomString(c.in));
    EXPECT_EQ(json::parse(fast).get<std::string>(), c.want);
  }
}

// Strings drawn from the bytes that matter (controls, quotes, backslashes, every lead and
// continuation class) and long enough to cross the 16-byte blocks of the vector scan.
TEST(FlowJsonFastTest, RandomStringsEscapeLikeNlohmann) {
  const std::vector<unsigned char> alphabet = {
      0x00, 0x01, 0x08, 0x09, 0x0a, 0x0c, 0x0d, 0x1f, 0x20, '"', '\\', '/', 'a', 0x7f, 0x80,
      0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef,
      0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff};
  std::mt19937 rng(20251121);
  for (int i = 0; i < 100000; ++i) {
    std::string s(rng() % 40, '\0');
    for (char& ch : s) {
      // Mostly plain text, so that runs and blocks of it occur between the specials.
      ch = rng() % 3 == 0 ? static_cast<char>(alphabet[rng() % alphabet.size()])
                          : static_cast<char>('a' + rng() % 26);
    }
    ASSERT_EQ(FastString(s), DomString(s)) << ::testing::PrintToString(s);
    std::string out;
    bool valid = JsonWriter(out).StringIfUtf8(s);
    bool dom_valid = true;
    try {
      (void)json(s).dump();
    } catch (const json::type_error&) {
      dom_valid = false;
    }
    ASSERT_EQ(valid, dom_valid) << ::testing::PrintToString(s);
    ASSERT_EQ(out, valid ? DomString(s) : std::string()) << ::testing::PrintToString(s);
  }
}

TEST(FlowJsonFastTest, SpecialsAtEveryOffsetOfALongString) {
  for (const std::string& special :
       {std::string("\""), std::string("\x01"), std::string("\xc3\xa9"),
        std::string("\xf0\x9f\x98\x80"), std::string("\xe2\x82"), std::string("\xff")}) {
    for (size_t at = 0; at < 40; ++at) {
      std::string s(48, 'q');
      s.replace(at, special.size(), special);
      ASSERT_EQ(FastString(s), DomString(s)) << ::testing::PrintToString(s);
    }
  }
}

void ExpectDoubleRoundTrips(double d) {
  std::string text = FastDouble(d);
  json parsed = json::parse(text);
  ASSERT_TRUE(parsed.is_number_float()) << text;  // "1.0", never "1"
  double back = parsed.get<double>();
  EXPECT_EQ(std::memcmp(&back, &d, sizeof(d)), 0) << text;
}

TEST(FlowJsonFastTest, DoublesRoundTripAndReadAsDoubles) {
  for (double d : {0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 100.0, 1e15, 1e15 - 1, 1e16, 123456789012345.6,
                   0.0001, 0.00012, 0.00001, 1e-5, 1e-7, 5e-324, 2.2250738585072014e-308,
                   std::numeric_limits<double>::max(), 1763750000.123456, 1763750000.0,
                   1700000000.1234567, 9007199254740993.0}) {
    ExpectDoubleRoundTrips(d);
  }
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> epoch(1.6e9, 1.9e9);
  for (int i = 0; i < 50000; ++i) {
    ExpectDoubleRoundTrips(epoch(rng));
    uint64_t bits = rng();
    double any;
    std::memcpy(&any, &bits, sizeof(any));
    if (std::isfinite(any)) ExpectDoubleRoundTrips(any);
  }
  EXPECT_EQ(FastDouble(std::nan("")), "null");
  EXPECT_EQ(FastDouble(-std::numeric_limits<double>::infinity()), "null");
}

TEST(FlowJsonFastTest, DoublesUseTheDomsLayout) {
  // Where the digits agree, the layout (fixed-point range, ".0", exponent form) is nlohmann's.
  for (double d : {0.0, -0.0, 1.0, 2.5, 100.0, 1e14, 1e15, 1e16, 1.5e16, 0.001, 0.0001, 0.00001,
                   1.25e-5, 1e-7, 1e100, 1e-100, 1.5e300, 5e-324, 1700000000.5, -42.125}) {
    EXPECT_EQ(FastDouble(d), json(d).dump()) << d;
  }
}

TEST(FlowJsonFastTest, Base64MatchesBoringSsl) {
  std::mt19937 rng(3);
  for (size_t len = 0; len < 100; ++len) {
    std::string bytes(len, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    std::string want(len / 3 * 4 + 8, '\0');
    want.resize(EVP_EncodeBlock(reinterpret_cast<uint8_t*>(want.data()),
                                reinterpret_cast<const uint8_t*>(bytes.data()), len));
    std::string out;
    JsonWriter(out).Base64String(bytes);
    EXPECT_EQ(out, "\"" + want + "\"") << len;
  }
}

TEST(FlowJsonFastTest, EscapeHeavyStringsGrowTheBufferCorrectly) {
  // Six output bytes per input byte, far beyond the first round's slack.
  std::string controls(100000, '\x01');
  EXPECT_EQ(FastString(controls), DomString(controls));
  std::string mixed;
  for (int i = 0; i < 20000; ++i) mixed += (i % 3 == 0) ? "\"\x02\xff" : "a\\";
  EXPECT_EQ(FastString(mixed), DomString(mixed));
}

TEST(FlowJsonFastTest, EmptyViewsWithoutStorageAreEmptyStrings) {
  // A default string_view has a null data(); the sanitizer stage fails if it reaches memcpy
  // (flows with omitted bodies wrote exactly that).
  std::string out;
  JsonWriter w(out);
  w.String(std::string_view());
  EXPECT_TRUE(w.StringIfUtf8(std::string_view()));
  w.Base64String(std::string_view());
  EXPECT_EQ(out, "\"\"\"\"\"\"");
}

TEST(FlowJsonFastTest, AppendsToWhatTheBufferHolds) {
  std::string buffer = "prefix:";
  AppendFlowJsonLine(FullFlow(), buffer);
  EXPECT_EQ(buffer, "prefix:" + std::string(kFullFlowGolden));
}

// The session store writes the log's line and the database's JSON from one serialization: the
// second is exactly what serializing without body contents gives, text and binary bodies alike.
TEST(FlowJsonFastTest, BothLinesAtOnceAreTheTwoLines) {
  std::vector<Flow> flows = VariedFlows();
  flows.push_back(WithBody(WithBody(FullFlow(), std::string("\x00\xff\x01binary", 9), true), "text", false));
  flows.push_back(WithBody(FullFlow(), std::string(70 << 10, 'x'), true));
  flows.push_back(Flow{});
  for (const Flow& f : flows) {
    std::string line = "old line\n", without = "old json;";
    AppendFlowJsonLines(f, line, without);
    EXPECT_EQ(line, "old line\n" + FlowToJsonLine(f));
    std::string omitted;
    AppendFlowJsonLine(f, omitted, BodyContent::kOmit);
    EXPECT_EQ(without, "old json;" + omitted);
  }
}

TEST(FlowStoreFastTest, EachLineIsTheFlowsLineWhateverCameBefore) {
  testing::TempDir dir;
  std::string path = dir.File("flows.jsonl");
  std::vector<Flow> flows = {
      WithBody(FullFlow(), std::string(600 << 10, 'h'), true),  // grows the buffer past its cap
      FullFlow(), Flow{}, WithBody(FullFlow(), "short", true)};
  {
    auto store = FlowStore::Open({.db_path = dir.File("s.sqlite"), .jsonl_path = path});
    ASSERT_TRUE(store) << store.error().message;
    for (const Flow& f : flows) (*store)->Record(std::make_shared<Flow>(f));
  }
  std::ifstream in(path);
  std::string line;
  for (const Flow& f : flows) {
    ASSERT_TRUE(std::getline(in, line));
    EXPECT_EQ(line, FlowToJsonLine(f));
  }
  EXPECT_FALSE(std::getline(in, line));
}

TEST(FlowStoreFastTest, UnsubscribedListenersAreNotCalled) {
  testing::TempDir dir;
  auto store = FlowStore::Open({.db_path = dir.File("s.sqlite")});
  ASSERT_TRUE(store) << store.error().message;
  int a = 0;
  int b = 0;
  uint64_t ta = (*store)->Subscribe([&](const std::shared_ptr<const Flow>&, uint64_t) { ++a; });
  (*store)->Subscribe([&](const std::shared_ptr<const Flow>&, uint64_t) { ++b; });
  (*store)->Record(std::make_shared<Flow>(FullFlow()));
  (*store)->Unsubscribe(ta);
  (*store)->Record(std::make_shared<Flow>(FullFlow()));
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 2);
  EXPECT_EQ((*store)->recorded_count(), 2u);
}

}  // namespace
}  // namespace mitmd

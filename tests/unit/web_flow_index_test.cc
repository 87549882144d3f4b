#include "web/flow_index.h"

#include <gtest/gtest.h>

#include "unit/web_test_flows.h"

namespace mitmd::web {
namespace {

using testing::FlowSpec;
using testing::MakeFlow;

std::shared_ptr<const Flow> Shared(Flow f) { return std::make_shared<const Flow>(std::move(f)); }

Filter Parse(std::string_view text) {
  auto f = Filter::Parse(text);
  EXPECT_TRUE(f) << f.error().message;
  return std::move(*f);
}

TEST(WebFlowIndexTest, PagesNewestFirstWithACursor) {
  FlowIndex index(100);
  for (int i = 0; i < 7; ++i) index.Put(Shared(MakeFlow({.path = "/" + std::to_string(i)})));
  Filter all;
  auto p1 = index.Query(all, 0, 3, 1000);
  ASSERT_EQ(p1.entries.size(), 3u);
  EXPECT_EQ(p1.entries[0]->flow->request->path, "/6");
  EXPECT_EQ(p1.entries[2]->flow->request->path, "/4");
  auto p2 = index.Query(all, p1.next_before, 3, 1000);
  EXPECT_EQ(p2.entries[0]->flow->request->path, "/3");
  auto p3 = index.Query(all, p2.next_before, 3, 1000);
  ASSERT_EQ(p3.entries.size(), 1u);
  EXPECT_EQ(p3.next_before, 0u);
}

TEST(WebFlowIndexTest, FilteredPagesSkipNonMatches) {
  FlowIndex index(100);
  for (int i = 0; i < 10; ++i) {
    index.Put(Shared(MakeFlow({.method = i % 3 == 0 ? "POST" : "GET", .path = "/" + std::to_string(i)})));
  }
  Filter posts = Parse("method:POST");
  auto page = index.Query(posts, 0, 10, 1000);
  ASSERT_EQ(page.entries.size(), 4u);  // 9, 6, 3, 0
  EXPECT_EQ(page.entries[0]->flow->request->path, "/9");
  EXPECT_EQ(page.entries[3]->flow->request->path, "/0");
  EXPECT_EQ(index.Matching(posts).front()->request->path, "/0");  // oldest first
}

TEST(WebFlowIndexTest, ScanLimitReturnsACursorToContinue) {
  FlowIndex index(100);
  for (int i = 0; i < 10; ++i) index.Put(Shared(MakeFlow({.method = i == 0 ? "POST" : "GET"})));
  Filter posts = Parse("method:POST");
  auto page = index.Query(posts, 0, 10, 4);
  EXPECT_TRUE(page.entries.empty());
  EXPECT_EQ(page.scanned, 4u);
  ASSERT_NE(page.next_before, 0u);
  size_t found = 0;
  uint64_t before = page.next_before;
  for (int guard = 0; before != 0 && guard < 10; ++guard) {
    auto next = index.Query(posts, before, 10, 4);
    found += next.entries.size();
    before = next.next_before;
  }
  EXPECT_EQ(found, 1u);
}

TEST(WebFlowIndexTest, SameIdReplacesInPlace) {
  FlowIndex index(10);
  Flow f = MakeFlow({.status = 200});
  auto first = index.Put(Shared(f));
  index.Put(Shared(MakeFlow({})));
  f.response->status = 500;
  auto again = index.Put(Shared(f));
  EXPECT_TRUE(again.replaced);
  EXPECT_EQ(again.seq, first.seq);
  EXPECT_EQ(index.size(), 2u);
  EXPECT_EQ(index.Find(f.id)->flow->response->status, 500);
}

TEST(WebFlowIndexTest, CapacityAndByteBudgetDropTheOldest) {
  FlowIndex by_count(3);
  for (int i = 0; i < 5; ++i) by_count.Put(Shared(MakeFlow({})));
  EXPECT_EQ(by_count.size(), 3u);
  EXPECT_EQ(by_count.last_seq(), 5u);

  Flow big = MakeFlow({.response_body = std::string(100000, 'x')});
  size_t one = ApproxFlowBytes(big);
  EXPECT_GT(one, 100000u);
  FlowIndex by_bytes(1000, one * 3 + one / 2);
  std::string oldest;
  for (int i = 0; i < 6; ++i) {
    Flow f = MakeFlow({.response_body = std::string(100000, 'x')});
    if (i == 0) oldest = f.id;
    by_bytes.Put(Shared(std::move(f)));
  }
  EXPECT_EQ(by_bytes.size(), 3u);
  EXPECT_LE(by_bytes.bytes(), one * 3 + one / 2);
  EXPECT_EQ(by_bytes.Find(oldest), nullptr);

  by_bytes.Clear();
  EXPECT_EQ(by_bytes.size(), 0u);
  EXPECT_EQ(by_bytes.bytes(), 0u);
  EXPECT_EQ(by_bytes.last_seq(), 6u);  // seqs keep growing across a clear
}

}  // namespace
}  // namespace mitmd::web

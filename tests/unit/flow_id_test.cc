// NewFlowId: RFC 9562 version 7 UUIDs, the shape the session store and the viewer expect.

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "flow/flow.h"

namespace mitmd {
namespace {

TEST(NewFlowId, IsAVersion7UuidInLowerCaseThatSortsByTime) {
  std::set<std::string> seen;
  std::string previous;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewFlowId();
    ASSERT_EQ(id.size(), 36u) << id;
    for (size_t at = 0; at < id.size(); ++at) {
      if (at == 8 || at == 13 || at == 18 || at == 23) {
        ASSERT_EQ(id[at], '-') << id;
      } else {
        ASSERT_TRUE((id[at] >= '0' && id[at] <= '9') || (id[at] >= 'a' && id[at] <= 'f')) << id;
      }
    }
    EXPECT_EQ(id[14], '7') << id;  // the version
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;  // the variant
    // The first 48 bits are milliseconds: a later id never sorts before an earlier one's time.
    if (!previous.empty()) EXPECT_GE(id.substr(0, 13), previous.substr(0, 13));
    previous = id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace mitmd

#pragma once
// The viewer's body: search, as the store's tests run it: the SQL prefilter (the index's matches
// and what it has not indexed), each candidate confirmed by the filter on the full flow.

#include <gtest/gtest.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "flow/filter.h"
#include "store/filter_sql.h"
#include "store/session_db.h"

namespace mitmd::testing {

inline std::vector<uint64_t> BodySearch(store::SessionDb& db, std::string_view text) {
  auto filter = Filter::Parse(text);
  EXPECT_TRUE(filter);
  store::SqlPrefilter pre = store::CompilePrefilter(text);
  store::ListQuery q;
  q.where = pre.where;
  q.where_args = pre.args;
  q.full_flows = pre.needs_full_flow;
  q.match = [&](const Flow& f) { return filter->Matches(f); };
  auto page = db.List(q);
  EXPECT_TRUE(page) << page.error().message;
  std::vector<uint64_t> seqs;
  if (page) {
    for (const auto& e : page->flows) seqs.push_back(e.row.seq);
  }
  return seqs;
}

}  // namespace mitmd::testing

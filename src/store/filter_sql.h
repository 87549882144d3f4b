#pragma once
// Turns the simple terms of a viewer filter (the language of flow/filter.h) into a SQL condition
// over the flows table that every matching flow satisfies, so a query over a million flows lets
// SQLite's indexes and the FTS index skip what cannot match. The condition is a superset: the
// filter itself still confirms each row, on the row's columns or, when a term needs headers or
// bodies, on the full flow.

#include <string>
#include <string_view>
#include <vector>

namespace mitmd::store {

struct SqlPrefilter {
  std::string where;  // "" when no term could be compiled
  std::vector<std::string> args;
  // Some term reads what only the full flow has (headers, bodies, the client's ALPN offer).
  bool needs_full_flow = false;
  // Every term was compiled exactly: the rows need no confirmation.
  bool exact = false;
};

SqlPrefilter CompilePrefilter(std::string_view filter_text);

// The host lower-cased and reversed ("Api.Example.com" -> "moc.elpmaxe.ipa"): the flows table's
// rhost column, whose index finds a host and its subdomains as one range.
std::string ReversedHost(std::string_view host);

}  // namespace mitmd::store

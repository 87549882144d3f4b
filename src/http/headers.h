#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mitmd {

// Headers keep their order and the case they were sent in.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Case-insensitive ASCII comparison, for header names and tokens.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// The first header named |name| (case-insensitive), or nullptr.
const std::string* FindHeader(const HeaderList& headers, std::string_view name);

// True when a comma-separated header (e.g. Connection) lists |token| (case-insensitive).
bool HeaderHasToken(const HeaderList& headers, std::string_view name, std::string_view token);

}  // namespace mitmd

#pragma once

#include <string_view>

namespace mitmd {

// Writes all of |data| to |fd|, retrying on EINTR and short writes. False on any other error.
bool WriteAll(int fd, std::string_view data);

}  // namespace mitmd

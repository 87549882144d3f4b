#pragma once
// The viewer's static files, compiled into the binary by cmake/EmbedFiles.cmake from web/.

#include <cstddef>
#include <string_view>

namespace mitmd::web {

struct StaticFile {
  std::string_view path;          // URL path: "/index.html"
  std::string_view content_type;
  std::string_view data;
  std::string_view etag;          // quoted, ready for the ETag header
};

// Generated. The array ends with an empty entry after kStaticFileCount real ones.
extern const StaticFile kStaticFiles[];
extern const size_t kStaticFileCount;

// The file served at |path|; "/" is "/index.html". nullptr when there is none.
const StaticFile* FindStaticFile(std::string_view path);

}  // namespace mitmd::web

#include "web/static_files.h"

namespace mitmd::web {

const StaticFile* FindStaticFile(std::string_view path) {
  if (path == "/") path = "/index.html";
  for (size_t i = 0; i < kStaticFileCount; ++i) {
    if (kStaticFiles[i].path == path) return &kStaticFiles[i];
  }
  return nullptr;
}

}  // namespace mitmd::web

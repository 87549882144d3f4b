#include "web/qr.h"

#include <qrencode.h>

#include <memory>
#include <vector>

#include "core/strings.h"

namespace mitmd::web {
namespace {

constexpr int kQuiet = 2;  // light modules around the code (scanners need a margin)

struct Modules {
  int width = 0;
  std::vector<bool> dark;  // width * width, row by row
  bool at(int x, int y) const {
    if (x < 0 || y < 0 || x >= width || y >= width) return false;
    return dark[static_cast<size_t>(y) * width + x];
  }
};

Result<Modules> Encode(std::string_view text) {
  std::string copy(text);
  std::unique_ptr<QRcode, decltype(&QRcode_free)> code(
      QRcode_encodeString8bit(copy.c_str(), 0, QR_ECLEVEL_M), &QRcode_free);
  if (!code) return Fail(StrCat("cannot draw a QR code of ", text.size(), " bytes"));
  Modules m;
  m.width = code->width;
  m.dark.resize(static_cast<size_t>(m.width) * m.width);
  for (size_t i = 0; i < m.dark.size(); ++i) m.dark[i] = (code->data[i] & 1) != 0;
  return m;
}

}  // namespace

Result<std::string> QrSvg(std::string_view text) {
  auto m = Encode(text);
  if (!m) return std::unexpected(m.error());
  int size = m->width + 2 * kQuiet;
  std::string path;
  for (int y = 0; y < m->width; ++y) {
    for (int x = 0; x < m->width; ++x) {
      if (m->at(x, y)) path += StrCat("M", x + kQuiet, " ", y + kQuiet, "h1v1h-1z");
    }
  }
  return StrCat("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 ", size, " ", size,
                "\" width=\"", size * 6, "\" height=\"", size * 6,
                "\" shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"QR code\">"
                "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
                path, "\"/></svg>");
}

Result<std::string> QrTerminal(std::string_view text) {
  auto m = Encode(text);
  if (!m) return std::unexpected(m.error());
  // Black on white (30;47) whatever the terminal's own colours: a block is two dark modules.
  std::string out;
  for (int y = -kQuiet; y < m->width + kQuiet; y += 2) {
    out += "\x1b[30;47m";
    for (int x = -kQuiet; x < m->width + kQuiet; ++x) {
      bool top = m->at(x, y), bottom = m->at(x, y + 1);
      out += top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ";
    }
    out += "\x1b[0m\n";
  }
  return out;
}

}  // namespace mitmd::web

#pragma once
// QR codes of a URL (Debian's libqrencode), for setting a phone up without typing: an inline SVG
// for the /ca page and lines of block characters for the terminal banner.

#include <string>
#include <string_view>

#include "core/result.h"

namespace mitmd::web {

// An <svg> element (no script, no external references) showing |text| as a QR code.
Result<std::string> QrSvg(std::string_view text);

// |text| as a QR code drawn with Unicode half blocks, two modules per character row, dark on a
// light quiet zone so that it scans from a dark terminal too. Ends with a newline.
Result<std::string> QrTerminal(std::string_view text);

}  // namespace mitmd::web

#include "flow/json_writer.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace mitmd {
namespace {

// Bytes a JSON string cannot carry as they are: '"', '\\' and controls need an escape, and
// bytes from 0x80 start a UTF-8 sequence that must be checked.
constexpr bool IsSpecial(unsigned char c) { return c < 0x20 || c == '"' || c == '\\' || c >= 0x80; }

// The index of the first special byte in p[i, n), or n.
size_t FindSpecial(const char* p, size_t i, size_t n) {
#ifdef __SSE2__
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  while (i + 16 <= n) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    // Signed comparison: bytes from 0x80 are negative, so "< 0x20" also finds them.
    __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                               _mm_cmplt_epi8(v, space));
    int mask = _mm_movemask_epi8(hit);
    if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
    i += 16;
  }
#endif
  while (i < n && !IsSpecial(static_cast<unsigned char>(p[i]))) ++i;
  return i;
}

// At a byte >= 0x80: the length of the well-formed UTF-8 sequence there (Unicode table 3-7), or
// minus the length of its maximal ill-formed subpart, which is what one U+FFFD replaces.
int Utf8SequenceAt(const unsigned char* p, size_t avail) {
  unsigned char c = p[0];
  int len;
  unsigned char lo = 0x80;
  unsigned char hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) lo = 0xa0;       // overlong
    else if (c == 0xed) hi = 0x9f;  // surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) lo = 0x90;       // overlong
    else if (c == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return -1;
  }
  for (int k = 1; k < len; ++k) {
    if (static_cast<size_t>(k) >= avail) return -k;
    unsigned char cc = p[k];
    if (cc < lo || cc > hi) return -k;
    lo = 0x80;
    hi = 0xbf;
  }
  return len;
}

constexpr char kHex[] = "0123456789abcdef";
constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr size_t kMaxEscapeBytes = 6;  // \u00XX; U+FFFD takes 3
constexpr std::string_view kReplacement = "\xef\xbf\xbd";  // U+FFFD

// The one-letter escape of each ASCII byte that has one ('"' -> '"', '\n' -> 'n', ...), else 0.
constexpr auto kShortEscapes = [] {
  std::array<char, 128> t{};
  t['"'] = '"';
  t['\\'] = '\\';
  t['\b'] = 'b';
  t['\t'] = 't';
  t['\n'] = 'n';
  t['\f'] = 'f';
  t['\r'] = 'r';
  return t;
}();

// Writes the escape of the ASCII byte |c| at |o|; returns the end.
inline char* WriteEscape(char* o, unsigned char c) {
  o[0] = '\\';
  if (char letter = kShortEscapes[c]; letter != 0) {
    o[1] = letter;
    return o + 2;
  }
  const char u[4] = {'u', '0', '0', kHex[c >> 4]};
  std::memcpy(o + 1, u, sizeof(u));
  o[5] = kHex[c & 0xf];
  return o + 6;
}

// Copies the plain run src[0, len) to |o|. Short runs, the common case between escapes, move as
// one fixed 16-byte block (no call into memcpy); |avail| bytes are readable at src, and the
// caller guarantees the same room at |o|.
inline char* CopyRun(char* o, const char* src, size_t len, size_t avail) {
  constexpr size_t kBlock = 16;
  if (len <= kBlock && avail >= kBlock) {
    std::memcpy(o, src, kBlock);
  } else {
    std::memcpy(o, src, len);
  }
  return o + len;
}

enum class EscapeEnd { kDone, kOutOfRoom, kInvalid };

// Escapes p[*pos, n) into [*out, limit), advancing both. Stops early, at a point where the next
// call can resume, when fewer than the plain rest plus one escape's bytes are left, or (without
// |replace_invalid|) at an ill-formed sequence. Works on locals so that the byte stores through
// the output pointer do not force reloads of the positions.
EscapeEnd EscapeInto(const char* p, size_t n, size_t* pos, char** out, const char* limit,
                     bool replace_invalid) {
  size_t i = *pos;
  size_t copied = i;  // p[copied, i) is plain text not yet written
  char* o = *out;
  EscapeEnd end = EscapeEnd::kDone;
  while ((i = FindSpecial(p, i, n)) < n) {
    unsigned char c = static_cast<unsigned char>(p[i]);
    if (c >= 0x80) {
      int len = Utf8SequenceAt(reinterpret_cast<const unsigned char*>(p + i), n - i);
      if (len > 0) {
        i += static_cast<size_t>(len);
        continue;
      }
      if (!replace_invalid) return EscapeEnd::kInvalid;
      o = CopyRun(o, p + copied, i - copied, n - copied);
      std::memcpy(o, kReplacement.data(), kReplacement.size());
      o += kReplacement.size();
      i += static_cast<size_t>(-len);
    } else {
      o = CopyRun(o, p + copied, i - copied, n - copied);
      o = WriteEscape(o, c);
      ++i;
    }
    copied = i;
    if (static_cast<size_t>(limit - o) < (n - copied) + kMaxEscapeBytes) {
      end = EscapeEnd::kOutOfRoom;
      break;
    }
  }
  // An empty view may carry a null pointer, which memcpy must never see, even for no bytes.
  if (end == EscapeEnd::kDone && n > copied) {
    std::memcpy(o, p + copied, n - copied);
    o += n - copied;
    copied = n;
  }
  *pos = copied;
  *out = o;
  return end;
}

}  // namespace

// Writes straight into the string's storage: room for the rest of the input plus some slack for
// escapes is made once, and made again (with twice the slack) only when escapes have used it up.
bool JsonWriter::Escaped(std::string_view s, bool replace_invalid) {
  const size_t n = s.size();
  size_t pos = 0;
  size_t slack = n / 8 + 64;
  EscapeEnd end;
  do {
    const size_t base = out_.size();
    out_.resize_and_overwrite(base + (n - pos) + kMaxEscapeBytes + slack,
                              [&](char* buf, size_t size) {
      char* o = buf + base;
      end = EscapeInto(s.data(), n, &pos, &o, buf + size, replace_invalid);
      return end == EscapeEnd::kInvalid ? base : static_cast<size_t>(o - buf);
    });
    slack *= 2;
  } while (end == EscapeEnd::kOutOfRoom);
  return end == EscapeEnd::kDone;
}

void JsonWriter::String(std::string_view s) {
  out_.push_back('"');
  Escaped(s, /*replace_invalid=*/true);
  out_.push_back('"');
}

bool JsonWriter::StringIfUtf8(std::string_view s) {
  const size_t start = out_.size();
  out_.push_back('"');
  if (!Escaped(s, /*replace_invalid=*/false)) {
    out_.resize(start);
    return false;
  }
  out_.push_back('"');
  return true;
}

void JsonWriter::Base64String(std::string_view bytes) {
  const auto* in = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  const size_t base = out_.size();
  out_.resize_and_overwrite(base + (n + 2) / 3 * 4 + 2, [&](char* buf, size_t) {
    char* o = buf + base;
    *o++ = '"';
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
      uint32_t v = uint32_t{in[i]} << 16 | uint32_t{in[i + 1]} << 8 | in[i + 2];
      o[0] = kBase64[v >> 18];
      o[1] = kBase64[(v >> 12) & 0x3f];
      o[2] = kBase64[(v >> 6) & 0x3f];
      o[3] = kBase64[v & 0x3f];
      o += 4;
    }
    if (i < n) {
      uint32_t v = uint32_t{in[i]} << 16 | (i + 1 < n ? uint32_t{in[i + 1]} << 8 : 0);
      o[0] = kBase64[v >> 18];
      o[1] = kBase64[(v >> 12) & 0x3f];
      o[2] = i + 1 < n ? kBase64[(v >> 6) & 0x3f] : '=';
      o[3] = '=';
      o += 4;
    }
    *o++ = '"';
    return static_cast<size_t>(o - buf);
  });
}

void JsonWriter::Uint(uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, end);
}

void JsonWriter::Int(int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, end);
}

void JsonWriter::Double(double v) {
  if (!std::isfinite(v)) {
    out_.append("null");
    return;
  }
  if (std::signbit(v)) {
    out_.push_back('-');
    v = -v;
  }
  if (v == 0) {
    out_.append("0.0");
    return;
  }
  // Shortest round-trip digits as d[.ddd]e±XX, then laid out the way nlohmann's format_buffer
  // does (printf %g style with a 15-digit fixed-point range).
  char sci[32];
  const char* sci_end = std::to_chars(sci, sci + sizeof(sci), v, std::chars_format::scientific).ptr;
  char digits[24];
  int k = 0;
  const char* q = sci;
  for (; q < sci_end && *q != 'e'; ++q) {
    if (*q != '.') digits[k++] = *q;
  }
  ++q;  // 'e'
  if (*q == '+') ++q;
  int exponent = 0;
  std::from_chars(q, sci_end, exponent);
  constexpr int kMinExp = -4;
  constexpr int kMaxExp = 15;  // std::numeric_limits<double>::digits10, as nlohmann uses
  const int n = exponent + 1;  // where the decimal point goes, counted from the first digit
  char buf[48];
  char* o = buf;
  if (k <= n && n <= kMaxExp) {
    for (int d = 0; d < k; ++d) *o++ = digits[d];
    for (int d = k; d < n; ++d) *o++ = '0';
    *o++ = '.';
    *o++ = '0';
  } else if (0 < n && n <= kMaxExp) {
    for (int d = 0; d < n; ++d) *o++ = digits[d];
    *o++ = '.';
    for (int d = n; d < k; ++d) *o++ = digits[d];
  } else if (kMinExp < n && n <= 0) {
    *o++ = '0';
    *o++ = '.';
    for (int d = n; d < 0; ++d) *o++ = '0';
    for (int d = 0; d < k; ++d) *o++ = digits[d];
  } else {
    *o++ = digits[0];
    if (k > 1) {
      *o++ = '.';
      for (int d = 1; d < k; ++d) *o++ = digits[d];
    }
    *o++ = 'e';
    int e = n - 1;
    *o++ = e < 0 ? '-' : '+';
    if (e < 0) e = -e;
    if (e < 10) *o++ = '0';
    o = std::to_chars(o, buf + sizeof(buf), e).ptr;
  }
  out_.append(buf, o);
}

std::string EscapeIllFormedUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 16);
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    if (p[i] < 0x80) {
      out.push_back(static_cast<char>(p[i++]));
      continue;
    }
    int len = Utf8SequenceAt(p + i, s.size() - i);
    if (len > 0) {
      out.append(s.substr(i, static_cast<size_t>(len)));
      i += static_cast<size_t>(len);
      continue;
    }
    for (int k = 0; k < -len; ++k, ++i) {
      const char escape[4] = {'\\', 'x', kHex[p[i] >> 4], kHex[p[i] & 0xf]};
      out.append(escape, sizeof(escape));
    }
  }
  return out;
}

}  // namespace mitmd

#include "http/body_decoder.h"

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <memory>

#include "core/strings.h"

namespace mitmd {
namespace {

constexpr size_t kChunk = 64 * 1024;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A zlib stream with a 2-byte header (RFC 1950) rather than raw deflate (RFC 1951). Servers
// send both under "deflate".
bool HasZlibHeader(std::string_view in) {
  if (in.size() < 2) return false;
  auto b0 = static_cast<unsigned char>(in[0]);
  auto b1 = static_cast<unsigned char>(in[1]);
  return (b0 & 0x0f) == 8 && ((b0 << 8) | b1) % 31 == 0;
}

// window_bits as for inflateInit2: 16+15 gzip, 15 zlib, -15 raw deflate.
Result<DecodedBody> Inflate(std::string_view in, int window_bits, size_t max_output,
                            std::string_view name) {
  z_stream zs{};
  if (inflateInit2(&zs, window_bits) != Z_OK) return Fail(StrCat("cannot start ", name, " decoder"));
  std::unique_ptr<z_stream, decltype(&inflateEnd)> guard(&zs, &inflateEnd);
  DecodedBody out;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  char buf[kChunk];
  while (true) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    int rc = inflate(&zs, Z_NO_FLUSH);
    size_t produced = sizeof(buf) - zs.avail_out;
    size_t room = max_output - out.data.size();
    out.data.append(buf, std::min(produced, room));
    if (produced > room) {
      out.partial = true;
      return out;
    }
    if (rc == Z_STREAM_END) {
      // gzip allows several members back to back (RFC 1952 2.2).
      if (window_bits > 15 && zs.avail_in > 0 && inflateReset(&zs) == Z_OK) continue;
      return out;
    }
    if (rc == Z_BUF_ERROR || (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0)) {
      if (zs.avail_in == 0) {
        out.partial = true;
        return out;
      }
      continue;
    }
    if (rc != Z_OK) {
      return Fail(StrCat("the body is not valid ", name, " data (", zs.msg ? zs.msg : "corrupt",
                         ")"));
    }
  }
}

Result<DecodedBody> Brotli(std::string_view in, size_t max_output) {
  std::unique_ptr<BrotliDecoderState, decltype(&BrotliDecoderDestroyInstance)> st(
      BrotliDecoderCreateInstance(nullptr, nullptr, nullptr), &BrotliDecoderDestroyInstance);
  if (!st) return Fail("cannot start br decoder");
  DecodedBody out;
  size_t avail_in = in.size();
  const uint8_t* next_in = reinterpret_cast<const uint8_t*>(in.data());
  uint8_t buf[kChunk];
  while (true) {
    size_t avail_out = sizeof(buf);
    uint8_t* next_out = buf;
    BrotliDecoderResult rc =
        BrotliDecoderDecompressStream(st.get(), &avail_in, &next_in, &avail_out, &next_out, nullptr);
    size_t produced = sizeof(buf) - avail_out;
    size_t room = max_output - out.data.size();
    out.data.append(reinterpret_cast<char*>(buf), std::min(produced, room));
    if (produced > room) {
      out.partial = true;
      return out;
    }
    switch (rc) {
      case BROTLI_DECODER_RESULT_SUCCESS:
        return out;
      case BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT:
        out.partial = true;
        return out;
      case BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT:
        continue;
      default:
        return Fail(StrCat("the body is not valid br data (",
                           BrotliDecoderErrorString(BrotliDecoderGetErrorCode(st.get())), ")"));
    }
  }
}

Result<DecodedBody> Zstd(std::string_view in, size_t max_output) {
  std::unique_ptr<ZSTD_DStream, decltype(&ZSTD_freeDStream)> ds(ZSTD_createDStream(),
                                                                  &ZSTD_freeDStream);
  if (!ds || ZSTD_isError(ZSTD_initDStream(ds.get()))) return Fail("cannot start zstd decoder");
  DecodedBody out;
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  char buf[kChunk];
  size_t last = 0;
  while (true) {
    ZSTD_outBuffer output{buf, sizeof(buf), 0};
    last = ZSTD_decompressStream(ds.get(), &output, &input);
    if (ZSTD_isError(last)) {
      return Fail(StrCat("the body is not valid zstd data (", ZSTD_getErrorName(last), ")"));
    }
    size_t room = max_output - out.data.size();
    out.data.append(buf, std::min(output.pos, room));
    if (output.pos > room) {
      out.partial = true;
      return out;
    }
    // Output filled: more may be buffered inside the decoder, so call again.
    if (output.pos == output.size) continue;
    if (input.pos == input.size) break;
  }
  // Non-zero means the last frame is incomplete.
  if (last != 0) out.partial = true;
  return out;
}

Result<DecodedBody> DecodeOne(std::string_view in, std::string_view coding, size_t max_output) {
  if (coding == "gzip" || coding == "x-gzip") return Inflate(in, 16 + MAX_WBITS, max_output, "gzip");
  if (coding == "deflate") {
    return Inflate(in, HasZlibHeader(in) ? MAX_WBITS : -MAX_WBITS, max_output, "deflate");
  }
  if (coding == "br") return Brotli(in, max_output);
  if (coding == "zstd") return Zstd(in, max_output);
  if (coding == "identity") {
    DecodedBody out{std::string(in.substr(0, max_output)), in.size() > max_output};
    return out;
  }
  return Fail(StrCat("the body uses the content coding '", coding,
                     "', which the viewer cannot decode (supported: gzip, deflate, br, zstd)"));
}

}  // namespace

std::vector<std::string> ParseContentEncoding(std::string_view value) {
  std::vector<std::string> out;
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string item = Lower(Trim(value.substr(0, comma)));
    if (!item.empty() && item != "identity") out.push_back(std::move(item));
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return out;
}

bool IsSupportedCoding(std::string_view coding) {
  return coding == "gzip" || coding == "x-gzip" || coding == "deflate" || coding == "br" ||
         coding == "zstd" || coding == "identity";
}

Result<DecodedBody> DecodeBody(std::string_view body, const std::vector<std::string>& codings,
                               size_t max_output) {
  DecodedBody current{std::string(body), false};
  // An empty body (HEAD, 204, 304) carries no coded stream even when a coding is declared.
  if (body.empty()) return current;
  for (auto it = codings.rbegin(); it != codings.rend(); ++it) {
    // Earlier layers of a multi-coded body may legitimately exceed the final cap only if the
    // last layer shrinks them again, which no real encoder does; one cap for all keeps the bound.
    auto next = DecodeOne(current.data, *it, max_output);
    if (!next) return next;
    next->partial = next->partial || current.partial;
    current = std::move(*next);
  }
  if (codings.empty() && current.data.size() > max_output) {
    current.data.resize(max_output);
    current.partial = true;
  }
  return current;
}

Result<DecodedBody> DecodeBodyForHeaders(std::string_view body, const HeaderList& headers,
                                         size_t max_output) {
  std::vector<std::string> codings;
  for (const auto& [name, value] : headers) {
    if (!EqualsIgnoreCase(name, "content-encoding")) continue;
    for (auto& c : ParseContentEncoding(value)) codings.push_back(std::move(c));
  }
  return DecodeBody(body, codings, max_output);
}

}  // namespace mitmd

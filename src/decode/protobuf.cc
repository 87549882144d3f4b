#include "decode/protobuf.h"

#include <cmath>
#include <cstring>

#include "core/strings.h"

namespace mitmd::decode {
namespace {

using nlohmann::json;

// Reads one message; |ok| false when the bytes are not a well-formed message.
class Reader {
 public:
  explicit Reader(const ProtobufLimits& limits) : limits_(limits) {}

  // The fields of |data|, or an error with the offset where reading failed.
  Result<json> Message(std::string_view data, int depth) {
    json fields = json::array();
    size_t pos = 0;
    while (pos < data.size()) {
      size_t at = pos;
      uint64_t key;
      if (!Varint(data, pos, key)) return Fail(StrCat("truncated field key at offset ", at));
      uint64_t number = key >> 3;
      int wire = static_cast<int>(key & 7);
      if (number == 0 || number > 0x1fffffff) {
        return Fail(StrCat("field number ", number, " out of range at offset ", at));
      }
      if (++count_ > limits_.max_fields) return Fail("more fields than the viewer shows");
      json f = {{"field", number}};
      switch (wire) {
        case 0: {
          uint64_t v;
          if (!Varint(data, pos, v)) return Fail(StrCat("truncated varint at offset ", at));
          f["wire"] = "varint";
          f["value"] = v;
          int64_t zigzag = static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
          if (zigzag != static_cast<int64_t>(v)) f["sint"] = zigzag;
          break;
        }
        case 1: {
          if (data.size() - pos < 8) return Fail(StrCat("truncated 64-bit field at offset ", at));
          uint64_t v = 0;
          for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(data[pos + i]);
          pos += 8;
          double d;
          std::memcpy(&d, &v, sizeof d);
          f["wire"] = "i64";
          f["value"] = v;
          if (std::isfinite(d)) f["double"] = d;
          break;
        }
        case 5: {
          if (data.size() - pos < 4) return Fail(StrCat("truncated 32-bit field at offset ", at));
          uint32_t v = 0;
          for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(data[pos + i]);
          pos += 4;
          float fl;
          std::memcpy(&fl, &v, sizeof fl);
          f["wire"] = "i32";
          f["value"] = v;
          if (std::isfinite(fl)) f["float"] = fl;
          break;
        }
        case 2: {
          uint64_t len;
          if (!Varint(data, pos, len) || len > data.size() - pos) {
            return Fail(StrCat("length-delimited field overruns the message at offset ", at));
          }
          std::string_view bytes = data.substr(pos, len);
          pos += len;
          f["wire"] = "len";
          f["size"] = len;
          Describe(f, bytes, depth);
          break;
        }
        case 3: {
          // A group: fields up to the matching end-group key.
          size_t start = pos;
          size_t end = 0;
          if (!SkipGroup(data, pos, number, end, depth)) {
            return Fail(StrCat("unterminated group at offset ", at));
          }
          f["wire"] = "group";
          auto nested = Message(data.substr(start, end - start), depth + 1);
          if (!nested) return nested;
          f["message"] = std::move(*nested);
          break;
        }
        default:
          return Fail(StrCat("wire type ", wire, " is not valid here (offset ", at, ")"));
      }
      fields.push_back(std::move(f));
    }
    return fields;
  }

 private:
  static bool Varint(std::string_view data, size_t& pos, uint64_t& out) {
    out = 0;
    for (int shift = 0; shift < 64 && pos < data.size(); shift += 7) {
      uint8_t b = static_cast<uint8_t>(data[pos++]);
      out |= uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }

  // Moves |pos| past the end-group key of group |number|; |end| is where that key starts.
  bool SkipGroup(std::string_view data, size_t& pos, uint64_t number, size_t& end, int depth) {
    if (depth >= limits_.max_depth) return false;
    while (pos < data.size()) {
      size_t at = pos;
      uint64_t key;
      if (!Varint(data, pos, key)) return false;
      int wire = static_cast<int>(key & 7);
      uint64_t v;
      switch (wire) {
        case 0: if (!Varint(data, pos, v)) return false; break;
        case 1: if (data.size() - pos < 8) return false; pos += 8; break;
        case 5: if (data.size() - pos < 4) return false; pos += 4; break;
        case 2:
          if (!Varint(data, pos, v) || v > data.size() - pos) return false;
          pos += v;
          break;
        case 3: {
          size_t inner_end;
          if (!SkipGroup(data, pos, key >> 3, inner_end, depth + 1)) return false;
          break;
        }
        case 4:
          if ((key >> 3) != number) return false;
          end = at;
          return true;
        default: return false;
      }
    }
    return false;
  }

  // Text only when it is strictly valid UTF-8 (no overlong forms, surrogates or code points past
  // U+10FFFF: those are shown as bytes, not replaced; protobuf_fuzz found a 0xF7 lead byte taken
  // for text) without control characters other than whitespace.
  static bool PrintableUtf8(std::string_view s) {
    for (char ch : s) {
      auto c = static_cast<unsigned char>(ch);
      if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f) return false;
    }
    return IsValidUtf8(s);
  }

  void Describe(json& f, std::string_view bytes, int depth) {
    // A nested message is a guess: only when every byte parses and it is not plain text.
    bool text = !bytes.empty() && PrintableUtf8(bytes);
    if (!bytes.empty() && depth + 1 < limits_.max_depth && !text) {
      size_t saved = count_;
      auto nested = Message(bytes, depth + 1);
      if (nested) {
        f["message"] = std::move(*nested);
        return;
      }
      count_ = saved;
    }
    if (text || bytes.empty()) {
      f["string"] = std::string(bytes);
    } else {
      f["bytes"] = Base64Encode(bytes);
    }
  }

  const ProtobufLimits& limits_;
  size_t count_ = 0;
};

}  // namespace

Result<json> DecodeProtobuf(std::string_view data, const ProtobufLimits& limits) {
  Reader reader(limits);
  return reader.Message(data, 0);
}

}  // namespace mitmd::decode

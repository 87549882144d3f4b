#pragma once
// JsonWriter: appends JSON values to a caller's string with no intermediate DOM. Each value is
// printed byte for byte as nlohmann::json::dump(-1, ' ', false, error_handler_t::replace) prints
// it, so a record written here is the same text the DOM path would produce (doubles aside: they
// use the shortest round-trip digits, which nlohmann's Grisu2 matches in almost every case).
// Structure (braces, commas, keys) is the caller's: Raw() appends it verbatim.

#include <cstdint>
#include <string>
#include <string_view>

namespace mitmd {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  // Appends |text| as is: punctuation and keys that are already valid JSON.
  void Raw(std::string_view text) { out_.append(text); }
  // The output's length so far: where the next value starts.
  size_t size() const { return out_.size(); }

  // A quoted string, escaped per RFC 8259 (only '"', '\\' and U+0000..U+001F; other UTF-8 is
  // copied). Each maximal ill-formed UTF-8 subpart becomes one U+FFFD, as nlohmann replaces it.
  void String(std::string_view s);

  // Like String() when |s| is valid UTF-8 and returns true; otherwise appends nothing and
  // returns false.
  bool StringIfUtf8(std::string_view s);

  // |bytes| base64-encoded (RFC 4648, padded), quoted.
  void Base64String(std::string_view bytes);

  void Uint(uint64_t v);
  void Int(int64_t v);
  void Bool(bool v) { out_.append(v ? "true" : "false"); }
  // Fixed-point within [1e-4, 1e15), exponent form outside it, always with a '.' or an exponent
  // so it reads back as a double; "null" for NaN and infinities.
  void Double(double v);

 private:
  // Appends the escaped body of |s| (no quotes). When |replace_invalid| is false it stops at the
  // first ill-formed sequence and returns false.
  bool Escaped(std::string_view s, bool replace_invalid);

  std::string& out_;
};

// |s| with every byte of each ill-formed UTF-8 subpart written as "\xHH" (lower-case hex) and the
// rest as it is: a visible stand-in for bytes that are not text, e.g. a header value in Latin-1.
// Not reversible on its own (a literal "\x41" looks the same): the flow schema keeps the bytes
// next to it (flow_json.h).
std::string EscapeIllFormedUtf8(std::string_view s);

}  // namespace mitmd

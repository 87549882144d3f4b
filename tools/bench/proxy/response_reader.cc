#include "response_reader.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string_view>

#include "core/strings.h"

namespace mitmd::bench {
namespace {

constexpr size_t kMaxHead = 64 * 1024;
constexpr size_t kMaxLine = 4 * 1024;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle) {
  for (size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    if (EqualsIgnoreCase(haystack.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' ||
                        s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

void ResponseReader::Reset() {
  state_ = State::kHead;
  line_.clear();
  status_ = 0;
  must_close_ = false;
  remaining_ = 0;
  body_bytes_ = 0;
}

Result<size_t> ResponseReader::Feed(const char* data, size_t len) {
  size_t used = 0;
  while (used < len && state_ != State::kDone) {
    const char* p = data + used;
    size_t avail = len - used;
    switch (state_) {
      case State::kHead: {
        size_t old = line_.size();
        line_.append(p, avail);
        size_t search_from = old >= 3 ? old - 3 : 0;
        size_t end = line_.find("\r\n\r\n", search_from);
        if (end == std::string::npos) {
          if (line_.size() > kMaxHead) return Fail("response head larger than 64 KiB");
          used = len;
          break;
        }
        used += end + 4 - old;
        line_.resize(end + 2);
        if (auto st = ParseHead(); !st) return std::unexpected(st.error());
        break;
      }
      case State::kLengthBody:
      case State::kChunkData:
      case State::kCloseBody: {
        uint64_t take = state_ == State::kCloseBody ? avail : std::min<uint64_t>(avail, remaining_);
        used += take;
        body_bytes_ += take;
        if (state_ == State::kCloseBody) break;
        remaining_ -= take;
        if (remaining_ == 0) {
          state_ = state_ == State::kLengthBody ? State::kDone : State::kChunkEnd;
          remaining_ = 2;  // the CRLF after chunk data
        }
        break;
      }
      case State::kChunkEnd: {
        uint64_t take = std::min<uint64_t>(avail, remaining_);
        used += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::kChunkSize;
        break;
      }
      case State::kChunkSize:
      case State::kTrailer: {
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', avail));
        size_t take = nl ? static_cast<size_t>(nl - p) + 1 : avail;
        line_.append(p, take);
        used += take;
        if (line_.size() > kMaxLine) return Fail("chunk-size or trailer line too long");
        if (!nl) break;
        if (state_ == State::kChunkSize) {
          if (auto st = ParseChunkSize(); !st) return std::unexpected(st.error());
        } else if (line_ == "\r\n" || line_ == "\n") {
          state_ = State::kDone;
        }
        line_.clear();
        break;
      }
      case State::kDone:
        break;
    }
  }
  return used;
}

Status ResponseReader::Eof() {
  if (state_ == State::kCloseBody) {
    state_ = State::kDone;
    return {};
  }
  if (state_ == State::kDone) return {};
  return Fail(StrCat("connection closed mid-response (", body_bytes_, " body bytes read)"));
}

Status ResponseReader::ParseHead() {
  std::string_view head(line_);
  size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12) {
    return Fail(StrCat("not an HTTP/1.x status line: ", status_line.substr(0, 80)));
  }
  auto [p, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, status_);
  if (ec != std::errc()) return Fail("malformed status code");
  if (status_line.substr(0, 8) == "HTTP/1.0") must_close_ = true;

  bool chunked = false;
  bool have_length = false;
  uint64_t length = 0;
  size_t pos = eol + 2;
  while (pos < head.size()) {
    size_t next = head.find("\r\n", pos);
    std::string_view field = head.substr(pos, next - pos);
    pos = next + 2;
    size_t colon = field.find(':');
    if (colon == field.npos) return Fail("malformed header line");
    std::string_view name = field.substr(0, colon);
    std::string_view value = Trim(field.substr(colon + 1));
    if (EqualsIgnoreCase(name, "content-length")) {
      auto [q, e] = std::from_chars(value.data(), value.data() + value.size(), length);
      if (e != std::errc()) return Fail("malformed Content-Length");
      have_length = true;
    } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
      chunked = ContainsIgnoreCase(value, "chunked");
    } else if (EqualsIgnoreCase(name, "connection")) {
      if (ContainsIgnoreCase(value, "close")) must_close_ = true;
    }
  }
  line_.clear();

  if (status_ >= 100 && status_ < 200 && status_ != 101) {
    status_ = 0;  // an interim response: the real one follows
    state_ = State::kHead;
  } else if (status_ == 204 || status_ == 304) {
    state_ = State::kDone;
  } else if (chunked) {
    state_ = State::kChunkSize;
  } else if (have_length) {
    remaining_ = length;
    state_ = length == 0 ? State::kDone : State::kLengthBody;
  } else {
    must_close_ = true;
    state_ = State::kCloseBody;
  }
  return {};
}

Status ResponseReader::ParseChunkSize() {
  std::string_view line = Trim(line_);
  line = line.substr(0, line.find(';'));
  uint64_t size = 0;
  auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), size, 16);
  if (ec != std::errc() || line.empty()) return Fail("malformed chunk size");
  if (size == 0) {
    state_ = State::kTrailer;
  } else {
    remaining_ = size;
    state_ = State::kChunkData;
  }
  return {};
}

}  // namespace mitmd::bench

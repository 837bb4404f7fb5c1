#include "ingest/codecs/codec_util.h"

#include <fmt/format.h>

namespace sw::ingest {

bool validUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    int n;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else
      return false;
    if (i + n >= s.size()) return false;
    for (int k = 1; k <= n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

Status validateKey(std::string_view key, const DecodeLimits& limits, const std::string& field) {
  if (key.empty()) return fail(Code::kInvalidArgument, "telemetry key must not be empty", field);
  if (key.size() > limits.max_key_bytes) {
    return fail(Code::kInvalidArgument, fmt::format("telemetry key is longer than {} bytes", limits.max_key_bytes),
                field);
  }
  for (char c : key) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      return fail(Code::kInvalidArgument, "telemetry key contains a control character", field);
    }
  }
  if (!validUtf8(key)) return fail(Code::kInvalidArgument, "telemetry key is not valid UTF-8", field);
  return ok();
}

bool validTimestamp(std::int64_t ts) {
  return ts >= 0 && ts <= kMaxTimestampMs;
}

void appendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  // Text from a request (a key in a query string) may not be UTF-8; escaping its high bytes
  // keeps the response valid JSON.
  const bool utf8 = validUtf8(s);
  for (char c : s) {
    if (!utf8 && static_cast<unsigned char>(c) >= 0x80) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20)
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        else
          out.push_back(c);
    }
  }
  out.push_back('"');
}

}  // namespace sw::ingest

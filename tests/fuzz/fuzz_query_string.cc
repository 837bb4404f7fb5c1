// libFuzzer target for the request-target parsers: query strings and percent-decoding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/http_types.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::pair<std::string, std::string>> query;
  if (sw::api::parseQuery(in, query)) {
    // Decoding never grows: every pair fits in the input.
    std::size_t total = 0;
    for (const auto& [k, v] : query) total += k.size() + v.size();
    if (total > size) __builtin_trap();
  }
  std::string out;
  if (sw::api::percentDecode(in, out, false) && out.size() > size) __builtin_trap();
  return 0;
}

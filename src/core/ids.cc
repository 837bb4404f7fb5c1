#include "core/ids.h"

#include <random>

#include "core/hex.h"

namespace sw {
std::string newUuid() {
  // Ids are not secrets (tokens are made with libsodium); a per-thread seeded engine is enough.
  thread_local std::mt19937_64 engine{std::random_device{}()};
  Uuid u;
  for (int i = 0; i < 16; i += 8) {
    std::uint64_t r = engine();
    for (int j = 0; j < 8; ++j) u[i + j] = static_cast<std::uint8_t>(r >> (8 * j));
  }
  u[6] = (u[6] & 0x0F) | 0x40;
  u[8] = (u[8] & 0x3F) | 0x80;
  return formatUuid(u);
}

std::optional<Uuid> parseUuid(std::string_view text) {
  if (text.size() != 36) return std::nullopt;
  Uuid u{};
  int byte = 0;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    int hi = hexValue(text[i]), lo = hexValue(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    u[byte++] = static_cast<std::uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return u;
}

std::string formatUuid(const Uuid& u) {
  const std::string hex = hexEncode(std::string_view(reinterpret_cast<const char*>(u.data()), u.size()));
  return hex.substr(0, 8) + '-' + hex.substr(8, 4) + '-' + hex.substr(12, 4) + '-' + hex.substr(16, 4) + '-' +
         hex.substr(20);
}

}  // namespace sw

#include "storage/backends/rocksdb/key_codec.h"

namespace sw::storage::rocks {

std::optional<std::string> tenantPrefix(const TenantId& tenant) {
  auto t = parseUuid(tenant.str());
  if (!t) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(t->data()), t->size());
}

std::optional<std::string> devicePrefix(const TenantId& tenant, const DeviceId& device) {
  auto t = tenantPrefix(tenant);
  auto d = parseUuid(device.str());
  if (!t || !d) return std::nullopt;
  t->append(reinterpret_cast<const char*>(d->data()), d->size());
  return t;
}

std::string seriesPrefix(std::string_view device_prefix, std::string_view key) {
  std::string s;
  s.reserve(device_prefix.size() + key.size() + 1 + 8);
  s.append(device_prefix);
  s.append(key);
  s.push_back('\0');
  return s;
}

void appendTs(std::int64_t ts, std::string& out) {
  auto u = static_cast<std::uint64_t>(ts) ^ (std::uint64_t{1} << 63);
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>(u >> (8 * i)));
}

std::int64_t readTs(const char* p) {
  std::uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<std::uint8_t>(p[i]);
  return static_cast<std::int64_t>(u ^ (std::uint64_t{1} << 63));
}

std::string prefixSuccessor(std::string prefix) {
  while (!prefix.empty()) {
    auto& c = prefix.back();
    if (static_cast<std::uint8_t>(c) != 0xFF) {
      c = static_cast<char>(static_cast<std::uint8_t>(c) + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(64, '\xFF');
}

std::string_view keyOfSeries(std::string_view series_prefix) {
  if (series_prefix.size() <= 2 * kUuidBytes) return {};
  auto k = series_prefix.substr(2 * kUuidBytes);
  if (!k.empty() && k.back() == '\0') k.remove_suffix(1);
  return k;
}

std::string_view deviceOf(std::string_view any_key) {
  return any_key.substr(0, 2 * kUuidBytes);
}

}  // namespace sw::storage::rocks

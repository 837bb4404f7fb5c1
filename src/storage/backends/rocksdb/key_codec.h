#pragma once
// Byte layout of the embedded store's keys. All integers are big-endian so that RocksDB's
// bytewise order is time order:
//   series prefix = tenant uuid (16) | device uuid (16) | key bytes | 0x00
//   chunk key     = series prefix | hour start (8, sign bit flipped)
// Rollup and dirty-marker keys use the same form (one per series and hour).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/ids.h"

namespace sw::storage::rocks {

inline constexpr std::size_t kUuidBytes = 16;

// Tenant (16) or tenant+device (32) prefix; nullopt when an id is not a UUID.
std::optional<std::string> tenantPrefix(const TenantId& tenant);
std::optional<std::string> devicePrefix(const TenantId& tenant, const DeviceId& device);
std::string seriesPrefix(std::string_view device_prefix, std::string_view key);

void appendTs(std::int64_t ts, std::string& out);
std::int64_t readTs(const char* p);

// Smallest byte string greater than every string starting with prefix (for range ends).
std::string prefixSuccessor(std::string prefix);

// Splits a series prefix (without ts) back into its key name.
std::string_view keyOfSeries(std::string_view series_prefix);
// The device prefix (first 32 bytes) of a series or point key.
std::string_view deviceOf(std::string_view any_key);

}  // namespace sw::storage::rocks

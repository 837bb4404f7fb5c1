#pragma once
// Resolves a device access token to its device. Only SHA-256 hashes of tokens are stored or
// cached. The cache is bounded and entries expire, so deleted devices and changed tenant limits
// take effect within kTtl even without an explicit eviction (evictions are immediate).
// Thread-safety: all methods may be called concurrently. authenticate() may block on the
// metadata store on a cache miss: call it from a blocking pool.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/ids.h"
#include "core/status.h"
#include "storage/metadata_store.h"

namespace sw::ingest {

struct DeviceRef {
  TenantId tenant_id;
  DeviceId device_id;
  std::string name;
  double max_msgs_per_s = 0;  // tenant override; 0 = server default
  bool gateway = false;       // may use the gateway API
};

class DeviceAuthenticator {
 public:
  static constexpr std::chrono::seconds kTtl{30};
  explicit DeviceAuthenticator(storage::MetadataStore& metadata, std::size_t max_entries = 100000)
      : metadata_(metadata), max_entries_(max_entries) {}

  Result<DeviceRef> authenticate(std::string_view token);
  void evictDevice(const DeviceId& device);
  void clear();

 private:
  struct Entry {
    DeviceRef ref;
    std::chrono::steady_clock::time_point fetched;
  };
  storage::MetadataStore& metadata_;
  std::size_t max_entries_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> cache_;  // token hash -> device
  // Bumped by every eviction: a lookup that started before an eviction must not cache what it
  // read (the token may have been revoked in between).
  std::uint64_t generation_ = 0;
};

}  // namespace sw::ingest

#include "ingest/device_authenticator.h"

#include "security/crypto.h"

namespace sw::ingest {

Result<DeviceRef> DeviceAuthenticator::authenticate(std::string_view token) {
  if (token.empty() || token.size() > 256) return fail(Code::kUnauthenticated, "unknown device access token");
  const std::string hash = security::sha256Hex(token);
  const auto now = std::chrono::steady_clock::now();
  std::uint64_t generation;
  {
    std::lock_guard lock(mutex_);
    if (auto it = cache_.find(hash); it != cache_.end() && now - it->second.fetched < kTtl) return it->second.ref;
    generation = generation_;
  }
  auto device = metadata_.findDeviceByTokenHash(hash);
  if (!device) {
    if (device.error().code == Code::kNotFound) return fail(Code::kUnauthenticated, "unknown device access token");
    return std::unexpected(device.error());
  }
  DeviceRef ref{device->tenant_id, device->id, device->name, 0, device->gateway};
  if (auto tenant = metadata_.getTenant(device->tenant_id)) ref.max_msgs_per_s = tenant->max_msgs_per_s;
  std::lock_guard lock(mutex_);
  if (generation != generation_) return ref;          // an eviction ran meanwhile: answer, do not cache
  if (cache_.size() >= max_entries_) cache_.clear();  // crude but bounded; refills from the store
  cache_[hash] = Entry{ref, now};
  return ref;
}

void DeviceAuthenticator::evictDevice(const DeviceId& device) {
  std::lock_guard lock(mutex_);
  ++generation_;
  std::erase_if(cache_, [&](const auto& kv) { return kv.second.ref.device_id == device; });
}

void DeviceAuthenticator::clear() {
  std::lock_guard lock(mutex_);
  ++generation_;
  cache_.clear();
}

}  // namespace sw::ingest

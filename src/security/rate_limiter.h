#pragma once
// Per-key token buckets (a key is a device id): `rate` messages per second sustained, `burst`
// at once. Memory is bounded: at most max_keys buckets; when full, buckets that have refilled
// completely (idle devices) are dropped, and if none has, an arbitrary one is.
// Thread-safety: all methods may be called concurrently (striped mutexes).
#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace sw::security {

class RateLimiter {
 public:
  RateLimiter(std::size_t max_keys = 1 << 20) : max_per_shard_(max_keys / kShards + 1) {}
  // Takes `cost` tokens for key. rate <= 0 means unlimited. now_ns is injectable for tests.
  bool allow(const std::string& key, double rate, double burst, double cost = 1, std::int64_t now_ns = -1);

 private:
  struct Bucket {
    double tokens;
    std::int64_t updated_ns;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Bucket> buckets;
  };
  static constexpr std::size_t kShards = 32;
  std::size_t max_per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace sw::security

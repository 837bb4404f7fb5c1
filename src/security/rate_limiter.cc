#include "security/rate_limiter.h"

#include <algorithm>
#include <functional>

namespace sw::security {

bool RateLimiter::allow(const std::string& key, double rate, double burst, double cost, std::int64_t now_ns) {
  if (rate <= 0) return true;
  if (now_ns < 0) {
    now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
                 .count();
  }
  burst = std::max(burst, std::max(rate, cost));
  Shard& shard = shards_[std::hash<std::string>{}(key) % kShards];
  std::lock_guard lock(shard.mutex);
  auto it = shard.buckets.find(key);
  if (it == shard.buckets.end()) {
    if (shard.buckets.size() >= max_per_shard_) {
      // Drop buckets that are full again: forgetting them changes nothing.
      std::erase_if(shard.buckets, [&](const auto& kv) {
        return kv.second.tokens + (now_ns - kv.second.updated_ns) * 1e-9 * rate >= burst;
      });
      if (shard.buckets.size() >= max_per_shard_) shard.buckets.erase(shard.buckets.begin());
    }
    it = shard.buckets.emplace(key, Bucket{burst, now_ns}).first;
  }
  Bucket& b = it->second;
  b.tokens = std::min(burst, b.tokens + (now_ns - b.updated_ns) * 1e-9 * rate);
  b.updated_ns = now_ns;
  if (b.tokens < cost) return false;
  b.tokens -= cost;
  return true;
}

}  // namespace sw::security

#include "http/rate_limiter.hpp"

#include <algorithm>
#include <functional>

namespace switchboard::host {

RateLimiter::Bucket& RateLimiter::refill(Shard& shard, const std::string& key, Clock::time_point now) {
  auto it = shard.buckets.find(key);
  if (it == shard.buckets.end()) {
    if (shard.buckets.size() >= max_keys_per_shard_) {
      // Forget keys whose bucket has refilled: they lose nothing.
      std::erase_if(shard.buckets, [&](const auto& kv) {
        double t = kv.second.tokens + std::chrono::duration<double>(now - kv.second.at).count() * per_second_;
        return t >= burst_;
      });
    }
    it = shard.buckets.emplace(key, Bucket{burst_, now}).first;
  }
  Bucket& b = it->second;
  b.tokens = std::min(burst_, b.tokens + std::chrono::duration<double>(now - b.at).count() * per_second_);
  b.at = now;
  return b;
}

bool RateLimiter::take(const std::string& key, double cost) {
  Shard& shard = shards_[std::hash<std::string>{}(key) % kShards];
  std::lock_guard lock(shard.mutex);
  Bucket& b = refill(shard, key, Clock::now());
  if (b.tokens < 1.0) return false;
  b.tokens -= cost;
  return true;
}

double RateLimiter::wait_seconds(const std::string& key) {
  Shard& shard = shards_[std::hash<std::string>{}(key) % kShards];
  std::lock_guard lock(shard.mutex);
  Bucket& b = refill(shard, key, Clock::now());
  return b.tokens >= 1.0 ? 0.0 : (1.0 - b.tokens) / per_second_;
}

}  // namespace switchboard::host

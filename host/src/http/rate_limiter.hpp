// Token buckets per key (a user, for REST), sharded so that callers on
// different workers rarely share a lock. Memory is bounded: past
// `max_keys` per shard, buckets that are full again (idle keys) are dropped.
#pragma once

#include <array>
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace switchboard::host {

class RateLimiter {
 public:
  RateLimiter(double per_second, double burst, std::size_t max_keys = 100000)
      : per_second_(per_second), burst_(burst), max_keys_per_shard_(max_keys / kShards + 1) {}

  // Takes `cost` tokens from `key`'s bucket; false (nothing taken) if it has
  // fewer than one. A cost above one may leave the bucket in debt.
  bool take(const std::string& key, double cost = 1.0);
  // Seconds until `key` has a token again (for Retry-After).
  double wait_seconds(const std::string& key);

 private:
  using Clock = std::chrono::steady_clock;
  struct Bucket {
    double tokens;
    Clock::time_point at;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Bucket> buckets;
  };
  static constexpr std::size_t kShards = 32;
  Bucket& refill(Shard& shard, const std::string& key, Clock::time_point now);

  double per_second_;
  double burst_;
  std::size_t max_keys_per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace switchboard::host

// Small helpers that every storage plugin needs and must compute the same
// way, so that data written by one storage plugin means the same to another.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <utility>

#include <optional>

#include "switchboard/storage.hpp"
#include "switchboard/types.hpp"

namespace switchboard {

// A fresh stream epoch: 16 random hex digits.
inline std::string new_epoch() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t v = rng();
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[static_cast<std::size_t>(i)] = kHex[v & 0xf];
  return out;
}

// Whether `op` with `wanted` changes the record as it is stored now
// (`existing`, empty if absent); the semantics of RecordOp in one place.
inline bool record_change_applies(RecordOp op, const std::optional<Record>& existing, const Record& wanted) {
  switch (op) {
    case RecordOp::put:
      return !existing || existing->message_id != wanted.message_id || existing->user != wanted.user ||
             existing->number != wanted.number || existing->value != wanted.value;
    case RecordOp::insert: return !existing;
    case RecordOp::raise: return !existing || wanted.number > existing->number;
    case RecordOp::remove: return existing.has_value();
  }
  return false;
}

}  // namespace switchboard

// The table bus-sql publishes into and polls: one implementation per
// database. Each instance keeps its own read position, so every host reads
// every message (a broadcast, not a work queue). Methods throw on failure;
// each is called from one thread only (append from the publisher, the rest
// from the poller).
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace sql_bus {

struct BusRow {
  std::string subject;
  std::string payload;
};

class MessageLog {
 public:
  virtual ~MessageLog() = default;
  // Appends the rows in one transaction.
  virtual void append(const std::vector<BusRow>& rows) = 0;
  // Rows committed after the previous poll (after start-up, the first time),
  // in commit order, at most `limit`; moves the read position past them.
  virtual std::vector<BusRow> poll(std::size_t limit) = 0;
  // Deletes rows older than `retention`; returns how many.
  virtual std::size_t prune(std::chrono::milliseconds retention) = 0;
};

}  // namespace sql_bus

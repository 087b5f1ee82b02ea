// Read connections, each owned by one thread. A read is queued (bounded) and
// runs on whichever connection is free, so a caller's thread — a host worker
// — never waits on a connection, a lock or SQLite's busy timeout.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "database.hpp"
#include "switchboard/services.hpp"

namespace sqlite_storage {

class ReadPool {
 public:
  // A queued read: runs on a read connection, or with nullptr when it is
  // refused (queue full, or stopping) and must answer `unavailable`.
  using Read = std::function<void(Database*)>;

  ReadPool(std::vector<std::unique_ptr<Database>> connections, std::size_t queue_max, switchboard::Logger& log,
           switchboard::Metrics& metrics);
  ~ReadPool();  // stop()

  void submit(Read read);
  // Refuses new reads, runs the queued ones, joins the threads. Idempotent.
  void stop();

 private:
  void run(Database& db);

  std::vector<std::unique_ptr<Database>> connections_;
  const std::size_t queue_max_;
  switchboard::Logger& log_;
  switchboard::Counter& refused_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Read> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace sqlite_storage

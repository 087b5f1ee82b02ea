#include "read_pool.hpp"

namespace sqlite_storage {

ReadPool::ReadPool(std::vector<std::unique_ptr<Database>> connections, std::size_t queue_max,
                   switchboard::Logger& log, switchboard::Metrics& metrics)
    : connections_(std::move(connections)),
      queue_max_(queue_max),
      log_(log),
      refused_(metrics.counter("storage_sqlite_refused_total",
                               "Operations refused with unavailable: queue full (queue_max) or storage stopping")) {
  for (auto& db : connections_) threads_.emplace_back([this, &db = *db] { run(db); });
}

ReadPool::~ReadPool() { stop(); }

void ReadPool::submit(Read read) {
  bool accepted = false;
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && queue_.size() < queue_max_) {
      queue_.push_back(std::move(read));
      accepted = true;
    }
  }
  if (!accepted) {
    refused_.add();
    read(nullptr);
    return;
  }
  wake_.notify_one();
}

void ReadPool::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void ReadPool::run(Database& db) {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything accepted has run
    Read read = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    try {
      read(&db);
    } catch (...) {
      log_.error("a storage completion threw; it was ignored");
    }
    read = nullptr;  // the completion's captures go before the lock is taken
    lock.lock();
  }
}

}  // namespace sqlite_storage

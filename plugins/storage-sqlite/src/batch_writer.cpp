#include "batch_writer.hpp"

#include <chrono>

namespace sqlite_storage {

using switchboard::Errc;
using switchboard::Error;

Error to_error(const std::exception& e) {
  if (auto* s = dynamic_cast<const SqliteError*>(&e); s && s->transient()) {
    return Error{Errc::unavailable, e.what()};
  }
  return Error{Errc::internal, e.what()};
}

BatchWriter::BatchWriter(std::unique_ptr<Database> db, std::size_t batch_max, std::size_t queue_max,
                         switchboard::Logger& log, switchboard::Metrics& metrics)
    : db_(std::move(db)),
      batch_max_(batch_max),
      queue_max_(queue_max),
      log_(log),
      commit_seconds_(metrics.histogram("storage_sqlite_commit_seconds", "Time to commit one batch of writes")),
      batches_(metrics.counter("storage_sqlite_batches_total", "Write batches committed")),
      refused_(metrics.counter("storage_sqlite_refused_total",
                               "Operations refused with unavailable: queue full (queue_max) or storage stopping")),
      thread_([this] { run(); }) {}

BatchWriter::~BatchWriter() { stop(); }

void BatchWriter::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BatchWriter::enqueue(std::unique_ptr<WriteJob> job) {
  const char* refused = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      refused = "storage-sqlite: stopping";
    } else if (queue_.size() >= queue_max_) {
      refused = "storage-sqlite: too many writes waiting (queue_max); retry later";
    } else {
      queue_.push_back(std::move(job));
      ++submitted_;
    }
  }
  if (refused) {
    refused_.add();
    Error error{Errc::unavailable, refused};
    job->finish(&error);
    return;
  }
  wake_.notify_one();
}

switchboard::Status BatchWriter::flush() {
  std::unique_lock lock(mutex_);
  std::uint64_t last = submitted_;
  std::uint64_t failures_before = failures_;
  finished_.wait(lock, [&] { return finished_count_ >= last; });
  std::uint64_t new_failures = std::min<std::uint64_t>(failures_ - failures_before, recent_failures_.size());
  for (auto it = recent_failures_.end() - static_cast<std::ptrdiff_t>(new_failures); it != recent_failures_.end(); ++it) {
    if (it->first < last) return switchboard::Status{it->second};  // a write before the flush failed
  }
  return {};
}

bool BatchWriter::healthy() const noexcept {
  std::lock_guard lock(mutex_);
  return healthy_;
}

std::string BatchWriter::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

void BatchWriter::run() {
  std::deque<std::unique_ptr<WriteJob>> batch;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty() && stopping_) return;
    while (!queue_.empty() && batch.size() < batch_max_) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    lock.unlock();
    std::size_t size = batch.size();
    std::optional<Error> failed = commit_batch(batch);
    batch.clear();
    lock.lock();
    std::uint64_t first = finished_count_;  // one thread, FIFO: writes finish in submission order
    finished_count_ += size;
    if (failed) {
      ++failures_;
      recent_failures_.emplace_back(first, std::move(*failed));
      if (recent_failures_.size() > 64) recent_failures_.pop_front();
    }
    finished_.notify_all();
  }
}

std::optional<Error> BatchWriter::commit_batch(std::deque<std::unique_ptr<WriteJob>>& batch) {
  auto started = std::chrono::steady_clock::now();
  std::optional<Error> failure;
  try {
    db_->exec("BEGIN IMMEDIATE");
    for (auto& job : batch) {
      db_->exec("SAVEPOINT job");
      if (job->run(*db_)) {
        db_->exec("RELEASE job");
      } else {
        db_->exec("ROLLBACK TO job");
        db_->exec("RELEASE job");
      }
    }
    db_->exec("COMMIT");
  } catch (const std::exception& e) {
    failure = to_error(e);
    if (!sqlite3_get_autocommit(db_->handle())) {
      try {
        db_->exec("ROLLBACK");
      } catch (const std::exception&) {
        // The connection rolled back by itself.
      }
    }
  }
  {
    std::lock_guard lock(mutex_);
    healthy_ = !failure;
    if (failure) last_error_ = failure->message;
  }
  if (failure) {
    log_.error("write batch failed", {{"error", failure->message}, {"writes", std::to_string(batch.size())}});
  } else {
    batches_.add();
    commit_seconds_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
  for (auto& job : batch) {
    try {
      job->finish(failure ? &*failure : nullptr);
    } catch (...) {
      log_.error("a storage completion threw; it was ignored");
    }
  }
  return failure;
}

}  // namespace sqlite_storage

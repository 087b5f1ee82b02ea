#include "batch_writer.hpp"

#include <chrono>
#include <future>

namespace sqlite_storage {

using switchboard::Errc;
using switchboard::Error;

Error to_error(const std::exception& e) {
  if (auto* s = dynamic_cast<const SqliteError*>(&e); s && s->transient()) {
    return Error{Errc::unavailable, e.what()};
  }
  return Error{Errc::internal, e.what()};
}

BatchWriter::BatchWriter(std::unique_ptr<Database> db, std::size_t batch_max, switchboard::Logger& log,
                         switchboard::Metrics& metrics)
    : db_(std::move(db)),
      batch_max_(batch_max),
      log_(log),
      commit_seconds_(metrics.histogram("storage_sqlite_commit_seconds", "Time to commit one batch of writes")),
      batches_(metrics.counter("storage_sqlite_batches_total", "Write batches committed")),
      thread_([this] { run(); }) {}

BatchWriter::~BatchWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void BatchWriter::enqueue(std::unique_ptr<WriteJob> job) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      queue_.push_back(std::move(job));
      job = nullptr;
    }
  }
  if (job) {
    Error closed{Errc::unavailable, "storage-sqlite: closing"};
    job->finish(&closed);
    return;
  }
  wake_.notify_one();
}

switchboard::Status BatchWriter::flush() {
  std::promise<switchboard::Status> done;
  auto future = done.get_future();
  submit<bool>([](Database&) -> switchboard::Result<bool> { return true; },
               [&done](switchboard::Result<bool> r) {
                 done.set_value(r.ok() ? switchboard::Status{} : switchboard::Status{r.error()});
               });
  return future.get();
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
    commit_batch(batch);
    batch.clear();
    lock.lock();
  }
}

void BatchWriter::commit_batch(std::deque<std::unique_ptr<WriteJob>>& batch) {
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
  for (auto& job : batch) job->finish(failure ? &*failure : nullptr);
}

}  // namespace sqlite_storage

// The single writer: one thread owns the write connection and commits every
// write queued meanwhile in one transaction (group commit), so throughput
// holds under many concurrent senders and seq allocation needs no locks.
// Each write runs in its own savepoint: one failing write does not undo the
// others in its batch. Completions run only after COMMIT returned.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "database.hpp"
#include "switchboard/result.hpp"
#include "switchboard/services.hpp"

namespace sqlite_storage {

class WriteJob {
 public:
  virtual ~WriteJob() = default;
  // Runs inside the batch; false rolls this job's savepoint back.
  virtual bool run(Database& db) = 0;
  // After the batch: committed, or failed with `error`.
  virtual void finish(const switchboard::Error* commit_error) = 0;
};

switchboard::Error to_error(const std::exception& e);

template <class T>
class TypedJob final : public WriteJob {
 public:
  TypedJob(std::function<switchboard::Result<T>(Database&)> body, std::function<void(switchboard::Result<T>)> done)
      : body_(std::move(body)), done_(std::move(done)) {}

  bool run(Database& db) override {
    try {
      result_.emplace(body_(db));
    } catch (const std::exception& e) {
      result_.emplace(to_error(e));
    }
    return result_->ok();
  }

  void finish(const switchboard::Error* commit_error) override {
    // No result: refused before it ran (stopping, queue full) or its batch
    // failed before reaching it.
    if (commit_error && (!result_ || result_->ok())) {
      done_(*commit_error);
    } else {
      done_(std::move(*result_));
    }
  }

 private:
  std::function<switchboard::Result<T>(Database&)> body_;
  std::function<void(switchboard::Result<T>)> done_;
  std::optional<switchboard::Result<T>> result_;
};

class BatchWriter {
 public:
  // At most `queue_max` writes wait; past it a write is refused at once with
  // `unavailable` instead of growing the queue until memory runs out.
  BatchWriter(std::unique_ptr<Database> db, std::size_t batch_max, std::size_t queue_max, switchboard::Logger& log,
              switchboard::Metrics& metrics);
  ~BatchWriter();  // stop()

  template <class T>
  void submit(std::function<switchboard::Result<T>(Database&)> body, std::function<void(switchboard::Result<T>)> done) {
    enqueue(std::make_unique<TypedJob<T>>(std::move(body), std::move(done)));
  }

  // Blocks until every write submitted before it is committed and its
  // completion returned. Never call it from a completion.
  switchboard::Status flush();
  // Refuses new writes (`unavailable`, completed at once on the caller's
  // thread), commits what is queued, joins the thread. Idempotent.
  void stop();
  // False after a commit failed, until one succeeds again.
  bool healthy() const noexcept;
  std::string last_error() const;

 private:
  void enqueue(std::unique_ptr<WriteJob> job);
  void run();
  // The batch's failure, if it did not commit.
  std::optional<switchboard::Error> commit_batch(std::deque<std::unique_ptr<WriteJob>>& batch);

  std::unique_ptr<Database> db_;
  const std::size_t batch_max_;
  const std::size_t queue_max_;
  switchboard::Logger& log_;
  switchboard::Histogram& commit_seconds_;
  switchboard::Counter& batches_;
  switchboard::Counter& refused_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable finished_;  // flush: a batch finished
  std::deque<std::unique_ptr<WriteJob>> queue_;
  std::uint64_t submitted_ = 0;  // writes accepted so far
  std::uint64_t finished_count_ = 0;  // of those, finished (in order: one thread, FIFO)
  std::uint64_t failures_ = 0;   // batches that failed to commit
  // The latest failed batches (their first write's position, their error),
  // so that flush reports only a failure of a write submitted before it.
  std::deque<std::pair<std::uint64_t, switchboard::Error>> recent_failures_;
  bool stopping_ = false;
  bool healthy_ = true;
  std::string last_error_;
  std::thread thread_;
};

}  // namespace sqlite_storage

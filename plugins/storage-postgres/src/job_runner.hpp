// Threads that each own one PostgreSQL connection and run queued jobs. A
// writer runner commits every job queued meanwhile (up to batch_max) in one
// transaction, each job in its own savepoint, so one failing write does not
// undo the others and throughput holds under many senders; completions run
// only after COMMIT returned. A reader runner runs one job per read-only
// transaction. A lost connection is reopened by the next job; while the
// server is unreachable jobs fail at once with `unavailable`.
//
// Nothing here keeps session state across transactions (no named prepared
// statements, no SET, no LISTEN), so it works through PgBouncer in
// transaction pooling mode.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <pqxx/connection>
#include <pqxx/transaction_base>
#include <string>
#include <thread>
#include <vector>

#include "pg_errors.hpp"
#include "switchboard/result.hpp"
#include "switchboard/services.hpp"

namespace postgres_storage {

class Job {
 public:
  virtual ~Job() = default;
  // Runs inside a transaction; false rolls this job's savepoint back. May run
  // again if the batch is retried, so it must not consume its inputs.
  // Rethrows connection and deadlock errors: they concern the whole batch.
  virtual bool run(pqxx::transaction_base& tx) = 0;
  // After the transaction: committed, or failed with `error`.
  virtual void finish(const switchboard::Error* error) = 0;
  // Reads only: false for a single statement, which needs no transaction
  // (saves the BEGIN and COMMIT round trips).
  virtual bool needs_snapshot() const { return true; }
  // Writes that run better together (appends: a few statements for the
  // whole run instead of a few each): a run of consecutive jobs of which
  // each `groups_with` the first is given to the first's run_group, in one
  // savepoint. It sets every job's outcome and answers true, or answers
  // false (the savepoint is rolled back and each job runs alone). Like
  // run(), it rethrows connection and deadlock errors.
  virtual bool groups_with(const Job&) const { return false; }
  virtual bool run_group(pqxx::transaction_base&, Job* const* /*jobs*/, std::size_t /*count*/) { return false; }
};

// A job with one answer of type T: its outcome in the transaction, or the
// batch's failure if that did not commit.
template <class T>
class AnsweringJob : public Job {
 public:
  explicit AnsweringJob(std::function<void(switchboard::Result<T>)> done) : done_(std::move(done)) {}

  void finish(const switchboard::Error* error) override {
    if (error && (!result_ || result_->ok())) {
      done_(*error);
    } else {
      done_(std::move(*result_));
    }
  }

 protected:
  // Runs `body` for the outcome (anew on a retried batch); connection and
  // deadlock errors concern the whole batch and are rethrown.
  template <class Body>
  bool attempt(Body&& body) {
    result_.reset();
    try {
      result_.emplace(body());
    } catch (const std::exception& e) {
      if (connection_lost(e) || retry_batch(e)) throw;
      result_.emplace(to_error(e));
    }
    return result_->ok();
  }

  std::function<void(switchboard::Result<T>)> done_;
  std::optional<switchboard::Result<T>> result_;
};

template <class T>
class TypedJob final : public AnsweringJob<T> {
 public:
  using Body = std::function<switchboard::Result<T>(pqxx::transaction_base&)>;
  TypedJob(Body body, std::function<void(switchboard::Result<T>)> done, bool snapshot = true)
      : AnsweringJob<T>(std::move(done)), body_(std::move(body)), snapshot_(snapshot) {}

  bool needs_snapshot() const override { return snapshot_; }
  bool run(pqxx::transaction_base& tx) override { return this->attempt([&] { return body_(tx); }); }

 private:
  Body body_;
  bool snapshot_ = true;
};

struct RunnerOptions {
  std::string name;  // "writer" or "reader", for logs and metrics
  std::string url;
  int threads = 1;
  std::size_t batch_max = 1;
  bool read_only = false;
  // Jobs waiting for a connection at most; past it a job is refused at once
  // with `unavailable` instead of growing the queue until memory runs out.
  std::size_t queue_max = 10000;
};

class JobRunner {
 public:
  JobRunner(RunnerOptions options, switchboard::Logger& log, switchboard::Metrics& metrics);
  ~JobRunner();  // stop()

  template <class T>
  void submit(typename TypedJob<T>::Body body, std::function<void(switchboard::Result<T>)> done,
              bool snapshot = true) {
    enqueue(std::make_unique<TypedJob<T>>(std::move(body), std::move(done), snapshot));
  }
  void submit(std::unique_ptr<Job> job) { enqueue(std::move(job)); }

  // Blocks until every job submitted before it has finished (its completion
  // returned), whichever thread runs it. Failed if any of them failed to commit.
  switchboard::Status flush();
  // Refuses new jobs (`unavailable`, completed at once on the caller's
  // thread), runs every job already queued to its completion, joins the
  // threads. Idempotent; after it returns no completion runs.
  void stop();
  // False after a connection or commit failed, until a transaction succeeds.
  bool healthy() const noexcept { return healthy_.load(); }
  // While unhealthy: queues one trivial transaction (at most one at a time)
  // so health recovers when the server is back, even without traffic.
  void probe();
  std::string last_error() const;

 private:
  struct Connection {
    std::unique_ptr<pqxx::connection> pq;
  };
  struct Queued {
    std::uint64_t ticket;
    std::unique_ptr<Job> job;
  };
  void enqueue(std::unique_ptr<Job> job);
  void run(std::size_t index);
  // The batch's failure, if it did not commit.
  std::optional<switchboard::Error> run_batch(Connection& connection, std::vector<std::unique_ptr<Job>>& batch);
  // The oldest ticket not finished yet (queued or running); next_ticket_ if none.
  std::uint64_t oldest_unfinished() const;
  void mark(bool ok, const std::string& error);

  RunnerOptions options_;
  switchboard::Logger& log_;
  switchboard::Histogram& commit_seconds_;
  switchboard::Counter& retries_;
  switchboard::Counter& reconnects_;

  switchboard::Counter& refused_;
  switchboard::Counter& grouped_fallbacks_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;      // runners: work or stop
  std::condition_variable finished_;  // flush: a batch finished
  std::deque<Queued> queue_;
  std::uint64_t next_ticket_ = 1;
  // Per runner thread: the first ticket of the batch it runs (0: idle).
  std::vector<std::uint64_t> running_;
  // Batches that failed to commit: how many, and the last one's error and
  // its oldest ticket (for flush's answer).
  std::uint64_t failures_ = 0;
  std::deque<std::pair<std::uint64_t, switchboard::Error>> recent_failures_;  // (first ticket, error), latest 64
  bool stopping_ = false;
  bool stopped_ = false;
  std::atomic<bool> healthy_{true};
  std::atomic<bool> probing_{false};
  std::string last_error_;
  std::vector<std::thread> threads_;
};

}  // namespace postgres_storage

#include "job_runner.hpp"

#include <chrono>
#include <future>
#include <pqxx/nontransaction>
#include <pqxx/transaction>

namespace postgres_storage {

using switchboard::Errc;
using switchboard::Error;

JobRunner::JobRunner(RunnerOptions options, switchboard::Logger& log, switchboard::Metrics& metrics)
    : options_(std::move(options)),
      log_(log),
      commit_seconds_(metrics.histogram("storage_postgres_" + options_.name + "_seconds",
                                        "Time to run one transaction (a batch of writes, or one read)")),
      retries_(metrics.counter("storage_postgres_" + options_.name + "_retries_total",
                               "Transactions run again after a deadlock, serialization failure or lost connection")),
      reconnects_(metrics.counter("storage_postgres_" + options_.name + "_connects_total",
                                  "Connections opened to PostgreSQL")) {
  for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { run(); });
}

JobRunner::~JobRunner() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void JobRunner::enqueue(std::unique_ptr<Job> job) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      queue_.push_back(std::move(job));
      job = nullptr;
    }
  }
  if (job) {
    Error closed{Errc::unavailable, "storage-postgres: closing"};
    job->finish(&closed);
    return;
  }
  wake_.notify_one();
}

switchboard::Status JobRunner::flush() {
  std::promise<switchboard::Status> done;
  auto future = done.get_future();
  // With several threads, a marker per thread: each finishes only after the
  // jobs its thread took before it.
  auto left = std::make_shared<std::atomic<int>>(options_.threads);
  auto failed = std::make_shared<std::optional<Error>>();
  auto failed_mutex = std::make_shared<std::mutex>();
  for (int i = 0; i < options_.threads; ++i) {
    submit<bool>([](pqxx::transaction_base&) -> switchboard::Result<bool> { return true; },
                 [&done, left, failed, failed_mutex](switchboard::Result<bool> r) {
                   if (!r) {
                     std::lock_guard lock(*failed_mutex);
                     *failed = r.error();
                   }
                   if (left->fetch_sub(1) == 1) {
                     done.set_value(*failed ? switchboard::Status{**failed} : switchboard::Status{});
                   }
                 });
  }
  return future.get();
}

void JobRunner::probe() {
  if (healthy_.load() || probing_.exchange(true)) return;
  submit<bool>(
      [](pqxx::transaction_base& tx) -> switchboard::Result<bool> {
        tx.exec("SELECT 1");
        return true;
      },
      [this](switchboard::Result<bool>) { probing_.store(false); });
}

std::string JobRunner::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

void JobRunner::mark(bool ok, const std::string& error) {
  bool was = healthy_.exchange(ok);
  if (!ok) {
    std::lock_guard lock(mutex_);
    last_error_ = error;
  }
  if (was && !ok) log_.error("PostgreSQL unavailable", {{"runner", options_.name}, {"error", error}});
  if (!was && ok) log_.info("PostgreSQL available again", {{"runner", options_.name}});
}

void JobRunner::run() {
  Connection connection;
  std::vector<std::unique_ptr<Job>> batch;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty() && stopping_) return;
    while (!queue_.empty() && batch.size() < options_.batch_max) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    lock.unlock();
    run_batch(connection, batch);
    batch.clear();
    lock.lock();
  }
}

void JobRunner::run_batch(Connection& connection, std::vector<std::unique_ptr<Job>>& batch) {
  constexpr int kAttempts = 5;
  std::optional<Error> failure;
  for (int attempt = 1;; ++attempt) {
    failure.reset();
    bool reconnected = false;
    auto started = std::chrono::steady_clock::now();
    try {
      if (!connection.pq || !connection.pq->is_open()) {
        connection.pq.reset();
        connection.pq = std::make_unique<pqxx::connection>(options_.url);
        reconnects_.add();
        reconnected = true;
      }
      if (options_.read_only && !batch.front()->needs_snapshot()) {
        // One statement, one round trip, in autocommit.
        pqxx::nontransaction tx(*connection.pq);
        for (auto& job : batch) job->run(tx);
      } else if (options_.read_only) {
        pqxx::read_transaction tx(*connection.pq);
        bool ok = true;
        for (auto& job : batch) ok = job->run(tx) && ok;
        if (ok) {
          tx.commit();
        } else {
          tx.abort();
        }
      } else {
        pqxx::work tx(*connection.pq);
        bool commit = true;
        if (batch.size() == 1) {
          // Nothing to isolate: a failed job only means nothing to commit.
          commit = batch.front()->run(tx);
        } else {
          // Each job in its own savepoint; closing one and opening the next
          // go together in one round trip.
          tx.exec("SAVEPOINT job");
          for (std::size_t i = 0; i < batch.size(); ++i) {
            bool ok = batch[i]->run(tx);
            bool last = i + 1 == batch.size();
            std::string next = ok ? "RELEASE SAVEPOINT job" : "ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job";
            tx.exec(last ? next : next + "; SAVEPOINT job");
          }
        }
        if (commit) {
          tx.commit();
        } else {
          tx.abort();
        }
      }
      commit_seconds_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      mark(true, {});
      break;
    } catch (const std::exception& e) {
      failure = to_error(e);
      bool lost = connection_lost(e);
      if (lost) connection.pq.reset();
      // A deadlock rolled everything back: run the batch again. A connection
      // found broken before COMMIT (e.g. after a server restart) committed
      // nothing: retry once on a fresh one. An unknown COMMIT outcome is
      // never retried here: the caller decides (client keys make it safe).
      bool in_doubt = dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr;
      bool again = attempt < kAttempts &&
                   (retry_batch(e) || (lost && !in_doubt && !reconnected && attempt == 1));
      if (!again) {
        if (lost) mark(false, failure->message);
        break;
      }
      retries_.add();
    }
  }
  for (auto& job : batch) job->finish(failure ? &*failure : nullptr);
}

}  // namespace postgres_storage

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
                                  "Connections opened to PostgreSQL")),
      refused_(metrics.counter("storage_postgres_" + options_.name + "_refused_total",
                               "Jobs refused with unavailable: queue full (queue_max) or storage stopping")),
      grouped_fallbacks_(metrics.counter("storage_postgres_" + options_.name + "_group_fallbacks_total",
                                         "Runs of grouped writes (appends) that failed together and ran one by one")),
      running_(static_cast<std::size_t>(options_.threads), 0) {
  for (int i = 0; i < options_.threads; ++i) {
    threads_.emplace_back([this, i] { run(static_cast<std::size_t>(i)); });
  }
}

JobRunner::~JobRunner() { stop(); }

void JobRunner::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopping_ = true;
    stopped_ = true;
  }
  wake_.notify_all();
  // Each thread leaves once the queue is empty: everything accepted runs.
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void JobRunner::enqueue(std::unique_ptr<Job> job) {
  const char* refused = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      refused = "storage-postgres: stopping";
    } else if (queue_.size() >= options_.queue_max) {
      refused = "storage-postgres: too many operations waiting (queue_max); retry later";
    } else {
      queue_.push_back(Queued{next_ticket_++, std::move(job)});
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

std::uint64_t JobRunner::oldest_unfinished() const {
  std::uint64_t oldest = queue_.empty() ? next_ticket_ : queue_.front().ticket;
  for (std::uint64_t t : running_) {
    if (t != 0 && t < oldest) oldest = t;
  }
  return oldest;
}

switchboard::Status JobRunner::flush() {
  std::unique_lock lock(mutex_);
  std::uint64_t last = next_ticket_ - 1;  // every job submitted before this call
  std::uint64_t failures_before = failures_;
  // A batch holds contiguous tickets and finishes as a whole, so once the
  // oldest unfinished ticket is past `last`, every earlier job is done —
  // including those another thread was still committing when we were called.
  finished_.wait(lock, [&] { return oldest_unfinished() > last; });
  std::uint64_t new_failures = std::min<std::uint64_t>(failures_ - failures_before, recent_failures_.size());
  for (auto it = recent_failures_.end() - static_cast<std::ptrdiff_t>(new_failures); it != recent_failures_.end(); ++it) {
    if (it->first <= last) return switchboard::Status{it->second};  // a job before the flush failed
  }
  return {};
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

void JobRunner::run(std::size_t index) {
  Connection connection;
  std::vector<std::unique_ptr<Job>> batch;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty() && stopping_) return;
    std::uint64_t first = queue_.front().ticket;
    while (!queue_.empty() && batch.size() < options_.batch_max) {
      batch.push_back(std::move(queue_.front().job));
      queue_.pop_front();
    }
    running_[index] = first;
    lock.unlock();
    std::optional<Error> failed;
    try {
      failed = run_batch(connection, batch);
    } catch (...) {
      // A completion threw: nothing of ours may leave this thread.
      log_.error("a storage completion threw; it was ignored", {{"runner", options_.name}});
    }
    batch.clear();
    lock.lock();
    running_[index] = 0;
    if (failed) {
      ++failures_;
      recent_failures_.emplace_back(first, std::move(*failed));
      if (recent_failures_.size() > 64) recent_failures_.pop_front();
    }
    finished_.notify_all();
  }
}

std::optional<Error> JobRunner::run_batch(Connection& connection, std::vector<std::unique_ptr<Job>>& batch) {
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
          // Each job in its own savepoint — or a run of jobs that group
          // (appends) in one; closing one and opening the next go together
          // in one round trip.
          tx.exec("SAVEPOINT job");
          auto close = [&](bool ok, bool last) {
            std::string next = ok ? "RELEASE SAVEPOINT job" : "ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job";
            tx.exec(last ? next : next + "; SAVEPOINT job");
          };
          std::vector<Job*> run;
          for (std::size_t i = 0; i < batch.size();) {
            run.assign(1, batch[i].get());
            while (i + run.size() < batch.size() && batch[i]->groups_with(*batch[i + run.size()])) {
              run.push_back(batch[i + run.size()].get());
            }
            if (run.size() > 1) {
              if (batch[i]->run_group(tx, run.data(), run.size())) {
                i += run.size();
                close(true, i == batch.size());
                continue;
              }
              grouped_fallbacks_.add();
              tx.exec("ROLLBACK TO SAVEPOINT job");  // the savepoint stays: each job alone
            }
            for (Job* job : run) {
              bool ok = job->run(tx);
              ++i;
              close(ok, i == batch.size());
            }
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
  for (auto& job : batch) {
    try {
      job->finish(failure ? &*failure : nullptr);
    } catch (...) {
      log_.error("a storage completion threw; it was ignored", {{"runner", options_.name}});
    }
  }
  return failure;
}

}  // namespace postgres_storage

// bus-sql: the bus over a table that every host appends to and polls, on
// PostgreSQL (also through PgBouncer in transaction pooling mode) or on a
// SQLite file shared by the processes of one machine. Every host reads every
// message and keeps those on subjects it subscribed to. Publishes are queued
// and appended in batches by one thread, so publish never blocks; the
// poller delivers on its own thread and prunes rows past their retention.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "postgres_log.hpp"
#include "sqlite_log.hpp"
#include "switchboard/bus.hpp"

namespace sql_bus {

using namespace switchboard;
using Clock = std::chrono::steady_clock;

class SqlBus final : public Bus {
 public:
  explicit SqlBus(PluginContext& context)
      : log_(context.logger()),
        published_(context.metrics().counter("bus_sql_published_total", "Messages appended to the bus table")),
        delivered_(context.metrics().counter("bus_sql_delivered_total", "Messages handed to this host")),
        dropped_(context.metrics().counter("bus_sql_dropped_total", "Publishes refused: the queue was full")),
        pruned_(context.metrics().counter("bus_sql_pruned_total", "Rows deleted past their retention")) {
    const PluginConfig& config = context.config();
    backend_ = config.require_string("backend");
    std::string table = config.string_or("table", "switchboard_bus");
    poll_interval_ = std::chrono::milliseconds(config.integer_or("poll_interval_ms", 50));
    retention_ = std::chrono::milliseconds(config.integer_or("retention_ms", 60000));
    auto queue_bytes = config.integer_or("queue_bytes", 16 << 20);
    batch_max_ = static_cast<std::size_t>(config.integer_or("batch_max", 500));
    if (poll_interval_.count() < 1 || poll_interval_.count() > 60000) {
      config.fail("poll_interval_ms", "must be between 1 and 60000");
    }
    if (retention_ < std::chrono::seconds(1)) config.fail("retention_ms", "must be at least 1000");
    if (queue_bytes < 1 << 20) config.fail("queue_bytes", "must be at least 1 MiB (a payload may be 1 MiB)");
    if (batch_max_ < 1) config.fail("batch_max", "must be at least 1");
    queue_bytes_ = static_cast<std::size_t>(queue_bytes);
    try {
      if (backend_ == "postgres") {
        auto url = config.string("url");
        if (!url) config.fail("url", "is required when backend = \"postgres\"");
        if (config.string("path")) config.fail("path", "is for backend = \"sqlite\"");
        log_table_ = std::make_unique<PostgresLog>(*url, table);
      } else if (backend_ == "sqlite") {
        auto path = config.string("path");
        if (!path) config.fail("path", "is required when backend = \"sqlite\"");
        if (config.string("url")) config.fail("url", "is for backend = \"postgres\"");
        log_table_ = std::make_unique<SqliteLog>(*path, table);
      } else {
        config.fail("backend", "must be \"postgres\" or \"sqlite\"");
      }
    } catch (const ConfigError&) {
      throw;
    } catch (const std::invalid_argument& e) {
      config.fail("table", e.what());
    } catch (const std::exception& e) {
      throw std::runtime_error("bus-sql: cannot open the " + backend_ + " bus table: " + e.what());
    }
  }

  ~SqlBus() override {
    stop();
    {
      std::lock_guard lock(queue_mutex_);
      closing_ = true;
    }
    queue_wake_.notify_all();
    if (publisher_.joinable()) publisher_.join();
  }

  Status start(BusHandler on_message) override {
    std::lock_guard lock(mutex_);
    if (stopped_) return make_error(Errc::conflict, "bus-sql: cannot restart a stopped bus");
    if (handler_) return make_error(Errc::conflict, "bus-sql: already started");
    handler_ = std::move(on_message);
    publisher_ = std::thread([this] { publish_loop(); });
    poller_ = std::thread([this] { poll_loop(); });
    return {};
  }

  void stop() noexcept override {
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
    }
    poll_wake_.notify_all();
    if (poller_.joinable() && poller_.get_id() != std::this_thread::get_id()) poller_.join();
    // The publisher drains what is queued before the destructor joins it.
  }

  Status publish(std::string_view subject, std::string_view payload) override {
    if (!valid_subject(subject)) {
      return make_error(Errc::bad_request, "bus-sql: invalid subject \"" + std::string(subject) + "\"");
    }
    {
      std::lock_guard lock(queue_mutex_);
      if (closing_) return make_error(Errc::unavailable, "bus-sql: closing");
      std::size_t cost = row_cost(subject, payload);
      if (queued_bytes_ + cost > queue_bytes_) {
        dropped_.add();
        return make_error(Errc::unavailable, "bus-sql: publish queue full (database slow or unreachable)");
      }
      queued_bytes_ += cost;
      queue_.push_back(BusRow{std::string(subject), std::string(payload)});
    }
    queue_wake_.notify_one();
    return {};
  }

  Status subscribe(std::string_view subject) override {
    if (!valid_subject(subject)) {
      return make_error(Errc::bad_request, "bus-sql: invalid subject \"" + std::string(subject) + "\"");
    }
    std::lock_guard lock(mutex_);
    subscriptions_.emplace(subject);
    return {};
  }

  Status unsubscribe(std::string_view subject) override {
    // Takes the delivery lock: after this returns, nothing more is delivered.
    std::lock_guard lock(mutex_);
    if (auto it = subscriptions_.find(subject); it != subscriptions_.end()) subscriptions_.erase(it);
    return {};
  }

  Health health() const noexcept override {
    std::lock_guard lock(health_mutex_);
    if (!publish_error_.empty()) return {false, "bus-sql: cannot publish: " + publish_error_};
    if (!poll_error_.empty()) return {false, "bus-sql: cannot poll: " + poll_error_};
    return {true, {}};
  }

 private:
  // What a queued message holds in memory, not only its payload.
  static std::size_t row_cost(std::string_view subject, std::string_view payload) {
    return sizeof(BusRow) + subject.size() + payload.size();
  }

  void set_error(std::string& slot, const std::string& error) {
    bool changed;
    {
      std::lock_guard lock(health_mutex_);
      changed = slot.empty() != error.empty();
      slot = error;
    }
    if (changed && !error.empty()) log_.error("bus-sql unavailable", {{"error", error}});
    if (changed && error.empty()) log_.info("bus-sql available again");
  }

  void publish_loop() {
    std::vector<BusRow> batch;
    for (;;) {
      {
        std::unique_lock lock(queue_mutex_);
        queue_wake_.wait(lock, [this] { return closing_ || !queue_.empty(); });
        if (queue_.empty() && closing_) return;
        std::size_t bytes = 0;
        while (!queue_.empty() && batch.size() < batch_max_) {
          bytes += row_cost(queue_.front().subject, queue_.front().payload);
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        queued_bytes_ -= bytes;
      }
      // A batch that cannot be written is retried until the database is back
      // or the bus closes; the queue meanwhile fills up and then refuses.
      for (int attempt = 0;; ++attempt) {
        try {
          log_table_->append(batch);
          published_.add(batch.size());
          set_error(publish_error_, {});
          break;
        } catch (const std::exception& e) {
          set_error(publish_error_, e.what());
          std::unique_lock lock(queue_mutex_);
          if (closing_ && attempt >= 3) {
            // Closing with the database unreachable: give up on the rest.
            // The events are in storage; other hosts' clients resume.
            std::size_t lost = batch.size() + queue_.size();
            queue_.clear();
            queued_bytes_ = 0;
            dropped_.add(lost);
            log_.error("bus-sql: messages not published at close", {{"count", std::to_string(lost)}});
            return;
          }
          queue_wake_.wait_for(lock, std::chrono::milliseconds(std::min(100 * (attempt + 1), 1000)));
        }
      }
      batch.clear();
    }
  }

  void poll_loop() {
    constexpr std::size_t kLimit = 1000;
    auto next_prune = Clock::now();
    std::unique_lock lock(mutex_);
    while (!stopped_) {
      lock.unlock();
      std::vector<BusRow> rows;
      try {
        rows = log_table_->poll(kLimit);
        if (Clock::now() >= next_prune) {
          pruned_.add(log_table_->prune(retention_));
          next_prune = Clock::now() + std::max<Clock::duration>(retention_ / 4, std::chrono::seconds(1));
        }
        set_error(poll_error_, {});
      } catch (const std::exception& e) {
        set_error(poll_error_, e.what());
      }
      lock.lock();
      for (const auto& row : rows) {
        if (stopped_) break;
        if (subscriptions_.contains(row.subject)) {
          handler_(row.subject, row.payload);
          delivered_.add();
        }
      }
      // A full page means more is waiting: read on at once.
      if (rows.size() < kLimit) poll_wake_.wait_for(lock, poll_interval_, [this] { return stopped_; });
    }
  }

  Logger& log_;
  Counter& published_;
  Counter& delivered_;
  Counter& dropped_;
  Counter& pruned_;
  std::string backend_;
  std::chrono::milliseconds poll_interval_{50};
  std::chrono::milliseconds retention_{60000};
  std::size_t batch_max_ = 500;
  std::size_t queue_bytes_ = 64 << 20;
  // One connection appends (publisher thread), another polls and prunes (poller thread).
  std::unique_ptr<MessageLog> log_table_;

  // Delivery: the handler runs under mutex_, so unsubscribe and stop wait for it.
  std::mutex mutex_;
  std::condition_variable poll_wake_;
  BusHandler handler_;
  std::set<std::string, std::less<>> subscriptions_;
  bool stopped_ = false;
  std::thread poller_;

  std::mutex queue_mutex_;
  std::condition_variable queue_wake_;
  std::deque<BusRow> queue_;
  std::size_t queued_bytes_ = 0;
  bool closing_ = false;
  std::thread publisher_;

  mutable std::mutex health_mutex_;
  std::string publish_error_;
  std::string poll_error_;
};

}  // namespace sql_bus

SWITCHBOARD_PLUGIN(bus, "bus-sql", "0.1.0", sql_bus::SqlBus)

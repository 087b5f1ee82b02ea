// bus-sql on PostgreSQL. Transactions may commit in another order than they
// inserted, so ids alone would skip rows committed late. Each row records
// its transaction id (xid8); a poll reads, in (txid, id) order, only rows of
// transactions older than the snapshot's xmin, which are all finished: no
// row can later appear below the read position. No LISTEN/NOTIFY, no
// session state: it works through PgBouncer in transaction pooling mode.
#pragma once

#include <memory>
#include <pqxx/connection>
#include <string>

#include "message_log.hpp"

namespace sql_bus {

class PostgresLog final : public MessageLog {
 public:
  PostgresLog(std::string url, std::string table);
  void append(const std::vector<BusRow>& rows) override;
  std::vector<BusRow> poll(std::size_t limit) override;
  std::size_t prune(std::chrono::milliseconds retention) override;

 private:
  pqxx::connection& connection(std::unique_ptr<pqxx::connection>& c);
  template <class F>
  auto with(std::unique_ptr<pqxx::connection>& c, F&& body);

  std::string url_;
  std::string table_;
  std::unique_ptr<pqxx::connection> writer_;
  std::unique_ptr<pqxx::connection> reader_;
  std::string cursor_txid_;  // xid8 as text
  std::int64_t cursor_id_ = 0;
};

}  // namespace sql_bus

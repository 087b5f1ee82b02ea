#include "postgres_log.hpp"

#include <pqxx/binarystring>
#include <pqxx/result>
#include <pqxx/except>
#include <pqxx/prepared_statement>
#include <pqxx/transaction>

namespace sql_bus {

namespace {

bool valid_table(const std::string& t) {
  if (t.empty() || t.size() > 63) return false;
  for (char c : t) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return !(t[0] >= '0' && t[0] <= '9');
}

}  // namespace

PostgresLog::PostgresLog(std::string url, std::string table) : url_(std::move(url)), table_(std::move(table)) {
  if (!valid_table(table_)) throw std::invalid_argument("table must be 1-63 of [a-z0-9_], not starting with a digit");
  pqxx::connection setup(url_);
  {
    pqxx::work tx(setup);
    // Hosts starting together: one creates, the others wait and see it.
    tx.exec("SELECT pg_advisory_xact_lock(1467187813)");
    tx.exec("CREATE TABLE IF NOT EXISTS " + table_ +
            " (txid xid8 NOT NULL DEFAULT pg_current_xact_id(), id bigserial NOT NULL, subject text NOT NULL,"
            " payload bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (txid, id))");
    tx.exec("CREATE INDEX IF NOT EXISTS " + table_ + "_by_time ON " + table_ + " (created_at)");
    tx.commit();
  }
  // Start after everything already finished: a host joins the bus now.
  pqxx::read_transaction tx(setup);
  cursor_txid_ = tx.exec("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")[0][0].as<std::string>();
  cursor_id_ = 0;
}

pqxx::connection& PostgresLog::connection(std::unique_ptr<pqxx::connection>& c) {
  if (!c || !c->is_open()) {
    c.reset();
    c = std::make_unique<pqxx::connection>(url_);
  }
  return *c;
}

template <class F>
auto PostgresLog::with(std::unique_ptr<pqxx::connection>& c, F&& body) {
  try {
    return body(connection(c));
  } catch (...) {
    c.reset();  // whatever broke, the next call starts on a fresh connection
    throw;
  }
}

void PostgresLog::append(const std::vector<BusRow>& rows) {
  if (rows.empty()) return;
  // One statement for the batch: subjects are $1..$n, payloads (binary) $n+1..$2n.
  std::vector<std::string> subjects;
  std::vector<pqxx::binarystring> payloads;
  std::string sql = "INSERT INTO " + table_ + " (subject, payload) VALUES ";
  std::size_t n = rows.size();
  for (std::size_t i = 0; i < n; ++i) {
    subjects.push_back(rows[i].subject);
    payloads.emplace_back(rows[i].payload.data(), rows[i].payload.size());
    sql += (i ? ", ($" : "($") + std::to_string(i + 1) + ", $" + std::to_string(n + i + 1) + ")";
  }
  with(writer_, [&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(sql, pqxx::prepare::make_dynamic_params(subjects), pqxx::prepare::make_dynamic_params(payloads));
    tx.commit();
  });
}

std::vector<BusRow> PostgresLog::poll(std::size_t limit) {
  return with(reader_, [&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params("SELECT txid::text, id, subject, payload FROM " + table_ +
                                " WHERE (txid, id) > ($1::xid8, $2::bigint)"
                                " AND txid < pg_snapshot_xmin(pg_current_snapshot())"
                                " ORDER BY txid, id LIMIT $3",
                            cursor_txid_, cursor_id_, static_cast<std::int64_t>(limit));
    std::vector<BusRow> out;
    out.reserve(r.size());
    for (const auto& row : r) {
      pqxx::binarystring payload(row[3]);
      out.push_back(BusRow{row[2].as<std::string>(), std::string(payload.get(), payload.size())});
    }
    tx.commit();
    if (!r.empty()) {
      cursor_txid_ = r.back()[0].as<std::string>();
      cursor_id_ = r.back()[1].as<std::int64_t>();
    }
    return out;
  });
}

std::size_t PostgresLog::prune(std::chrono::milliseconds retention) {
  return with(reader_, [&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r = tx.exec_params("DELETE FROM " + table_ + " WHERE created_at < now() - $1::bigint * interval '1 millisecond'",
                            static_cast<std::int64_t>(retention.count()));
    tx.commit();
    return static_cast<std::size_t>(r.affected_rows());
  });
}

}  // namespace sql_bus

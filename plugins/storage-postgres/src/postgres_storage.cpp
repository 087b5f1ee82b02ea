#include "postgres_storage.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <stdexcept>
#include <tuple>
#include <pqxx/result>
#include <pqxx/transaction>

#include "schema.hpp"
#include "switchboard/plugin.hpp"
#include "switchboard/storage_support.hpp"

namespace postgres_storage {

using namespace switchboard;
using Tx = pqxx::transaction_base;

namespace {

constexpr const char* kMessageColumns =
    "m.id, m.conversation_id, m.seq, m.author, m.text, m.reply_to, m.attachments, m.client_key, m.created_at, "
    "m.edited_at, m.deleted";
constexpr const char* kConversationColumns = "c.id, c.kind, c.name, c.creator, c.epoch, c.last_seq, c.created_at";
constexpr const char* kRecordColumns =
    "feature, conversation_id, key, message_id, user_id, number, value, updated_at";

std::int64_t i64(const pqxx::field& f) { return f.as<std::int64_t>(); }
std::string str(const pqxx::field& f) { return f.is_null() ? std::string() : f.as<std::string>(); }

Message message_from(const pqxx::row& r, int c) {
  Message m;
  m.id = i64(r[c]);
  m.conversation_id = i64(r[c + 1]);
  m.seq = i64(r[c + 2]);
  m.author = str(r[c + 3]);
  m.text = str(r[c + 4]);
  m.reply_to = i64(r[c + 5]);
  m.attachments = str(r[c + 6]);
  m.client_key = str(r[c + 7]);
  m.created_at = i64(r[c + 8]);
  m.edited_at = i64(r[c + 9]);
  m.deleted = r[c + 10].as<bool>();
  return m;
}

Conversation conversation_from(const pqxx::row& r) {
  Conversation c;
  c.id = i64(r[0]);
  c.kind = parse_conversation_kind(str(r[1])).value_or(ConversationKind::group);
  c.name = str(r[2]);
  c.creator = str(r[3]);
  c.epoch = str(r[4]);
  c.last_seq = i64(r[5]);
  c.created_at = i64(r[6]);
  return c;
}

Record record_from(const pqxx::row& r) {
  Record rec;
  rec.feature = str(r[0]);
  rec.conversation_id = i64(r[1]);
  rec.key = str(r[2]);
  rec.message_id = i64(r[3]);
  rec.user = str(r[4]);
  rec.number = i64(r[5]);
  rec.value = str(r[6]);
  rec.updated_at = i64(r[7]);
  return rec;
}

Error conversation_not_found(ConversationId id) {
  return make_error(Errc::not_found, "conversation " + std::to_string(id) + " not found");
}

std::optional<Conversation> load_conversation(Tx& tx, ConversationId id) {
  auto r = tx.exec_params(std::string("SELECT ") + kConversationColumns + " FROM conversations c WHERE c.id = $1", id);
  if (r.empty()) return std::nullopt;
  return conversation_from(r[0]);
}

std::optional<Message> load_message(Tx& tx, MessageId id) {
  auto r = tx.exec_params(std::string("SELECT ") + kMessageColumns + " FROM messages m WHERE m.id = $1", id);
  if (r.empty()) return std::nullopt;
  return message_from(r[0], 0);
}

std::optional<Member> load_member(Tx& tx, ConversationId id, const UserId& user) {
  auto r = tx.exec_params("SELECT role, joined_at FROM members WHERE conversation_id = $1 AND user_id = $2", id, user);
  if (r.empty()) return std::nullopt;
  return Member{id, user, parse_role(str(r[0][0])).value_or(Role::member), i64(r[0][1])};
}

std::optional<Record> load_record(Tx& tx, const std::string& feature, ConversationId id, const std::string& key) {
  auto r = tx.exec_params(std::string("SELECT ") + kRecordColumns +
                              " FROM records WHERE feature = $1 AND conversation_id = $2 AND key = $3",
                          feature, id, key);
  if (r.empty()) return std::nullopt;
  return record_from(r[0]);
}

// The conversation's next seq. The UPDATE locks the conversation's row until
// this transaction ends, so concurrent writers on every host queue behind it
// and a rolled-back write gives its seq back: seq is gap-free.
Result<Seq> next_seq(Tx& tx, ConversationId id) {
  auto r = tx.exec_params("UPDATE conversations SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq", id);
  if (r.empty()) return conversation_not_found(id);
  return i64(r[0][0]);
}

Event insert_event(Tx& tx, ConversationId id, Seq seq, EventDraft draft, TimeMs now) {
  if (draft.payload.empty()) draft.payload = "{}";
  tx.exec_params(
      "INSERT INTO events (conversation_id, seq, type, actor, message_id, payload, created_at) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7)",
      id, seq, draft.type, draft.actor, draft.message_id, draft.payload, now);
  return Event{id, seq, std::move(draft.type), std::move(draft.actor), draft.message_id, std::move(draft.payload),
               now, std::nullopt};
}

Result<Event> append(Tx& tx, ConversationId id, EventDraft draft, TimeMs now) {
  auto seq = next_seq(tx, id);
  if (!seq) return seq.error();
  return insert_event(tx, id, *seq, std::move(draft), now);
}

// Locks the conversation's row until the transaction ends, as next_seq
// does; false if it does not exist.
bool lock_conversation(Tx& tx, ConversationId id) {
  return !tx.exec_params("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", id).empty();
}

// The tail of an edit or delete: the event for the updated message row,
// with the message's state after the write attached.
Result<MessageWrite> message_changed(Tx& tx, const pqxx::row& updated, EventDraft event, TimeMs now) {
  Message after = message_from(updated, 0);
  auto seq = next_seq(tx, after.conversation_id);
  if (!seq) return seq.error();
  event.message_id = after.id;
  Event appended = insert_event(tx, after.conversation_id, *seq, std::move(event), now);
  appended.message = after;
  return MessageWrite{std::move(after), true, std::move(appended)};
}

bool valid_draft(const EventDraft& e) { return !e.type.empty(); }

constexpr bool kOneStatement = false;  // read(..., kOneStatement): no snapshot needed
Error bad_event() { return make_error(Errc::bad_request, "event type is empty"); }


Error not_a_member(ConversationId id) {
  return make_error(Errc::forbidden, "not a member of conversation " + std::to_string(id));
}

// One message alone: its seq, its author's membership (if asked), its
// client key, its reply_to, then the message and its event in one
// statement.
Result<MessageWrite> append_one(Tx& tx, const MessageDraft& draft, const EventDraft& event, TimeMs now,
                                bool as_member) {
  // The seq first: it locks the conversation, so a client key sent to
  // two hosts at once is seen by the second, and a removal committed
  // before is seen by the membership check. (A refused write gives the
  // seq back with its savepoint.)
  auto seq = next_seq(tx, draft.conversation_id);
  if (!seq) return seq.error();
  if (as_member && !load_member(tx, draft.conversation_id, draft.author)) return not_a_member(draft.conversation_id);
  if (!draft.client_key.empty()) {
    auto found = tx.exec_params(std::string("SELECT ") + kMessageColumns +
                                    " FROM messages m WHERE m.conversation_id = $1 AND m.author = $2"
                                    " AND m.client_key = $3",
                                draft.conversation_id, draft.author, draft.client_key);
    if (!found.empty()) {
      // Nothing is appended: give the seq back.
      tx.exec_params("UPDATE conversations SET last_seq = last_seq - 1 WHERE id = $1", draft.conversation_id);
      return MessageWrite{message_from(found[0], 0), false, std::nullopt};
    }
  }
  if (draft.reply_to != 0) {
    auto target = load_message(tx, draft.reply_to);
    if (!target || target->conversation_id != draft.conversation_id) {
      return make_error(Errc::not_found, "reply_to message " + std::to_string(draft.reply_to) +
                                             " not found in this conversation");
    }
  }
  // The message and its event in one statement: one round trip.
  std::string payload = event.payload.empty() ? std::string("{}") : event.payload;
  auto ins = tx.exec_params(
      "WITH m AS (INSERT INTO messages (conversation_id, seq, author, text, reply_to, attachments, client_key, "
      "created_at) VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), $8) RETURNING *), "
      "e AS (INSERT INTO events (conversation_id, seq, type, actor, message_id, payload, created_at) "
      "SELECT m.conversation_id, m.seq, $9, $10, m.id, $11, m.created_at FROM m) "
      "SELECT " + std::string(kMessageColumns) + " FROM m",
      draft.conversation_id, *seq, draft.author, draft.text, draft.reply_to,
      draft.attachments.empty() ? std::string("[]") : draft.attachments, draft.client_key, now, event.type,
      event.actor, payload);
  Message message = message_from(ins[0], 0);
  Event appended{draft.conversation_id, *seq, event.type, event.actor, message.id, payload, now, message};
  return MessageWrite{std::move(message), true, std::move(appended)};
}

std::string int_array(const std::vector<std::int64_t>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(values[i]);
  }
  return out + "}";
}

// A PostgreSQL array literal of texts: each element quoted, `"` and `\`
// escaped.
std::string text_array(const std::vector<std::string>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

// An append: alone, or with the appends queued next to it in a few
// statements for the whole run (the writer's batch): one locks their
// conversations in id order, one checks their authors' membership, one
// finds the client keys and reply_to targets they name, one inserts every
// new message and event and moves every conversation's last_seq. Same
// answers as alone: gap-free seqs, a non-member forbidden, a retried
// client key answers the original, a bad reply_to not_found.
class AppendJob final : public AnsweringJob<MessageWrite> {
 public:
  AppendJob(MessageDraft draft, EventDraft event, TimeMs now, bool as_member, Completion<MessageWrite> done)
      : AnsweringJob(std::move(done)), draft_(std::move(draft)), event_(std::move(event)), now_(now),
        as_member_(as_member) {
    if (event_.payload.empty()) event_.payload = "{}";
    if (draft_.attachments.empty()) draft_.attachments = "[]";
  }

  bool run(Tx& tx) override { return attempt([&] { return append_one(tx, draft_, event_, now_, as_member_); }); }

  bool groups_with(const Job& other) const override { return dynamic_cast<const AppendJob*>(&other) != nullptr; }

  bool run_group(Tx& tx, Job* const* jobs, std::size_t count) override {
    std::vector<AppendJob*> run;
    for (std::size_t i = 0; i < count; ++i) run.push_back(static_cast<AppendJob*>(jobs[i]));
    for (AppendJob* job : run) job->result_.reset();
    try {
      append_together(tx, run);
      return true;
    } catch (const std::exception& e) {
      if (connection_lost(e) || retry_batch(e)) throw;
      for (AppendJob* job : run) job->result_.reset();
      return false;
    }
  }


 private:
  static void append_together(Tx& tx, const std::vector<AppendJob*>& run) {
    std::vector<std::int64_t> ids;
    for (const AppendJob* j : run) ids.push_back(j->draft_.conversation_id);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    // Locked in id order (every host locks a run the same way), until the
    // transaction ends: the seqs below are this transaction's.
    std::map<ConversationId, Seq> last;
    for (const auto& row : tx.exec_params("SELECT id, last_seq FROM conversations WHERE id = ANY($1::bigint[]) "
                                          "ORDER BY id FOR UPDATE",
                                          int_array(ids))) {
      last[i64(row[0])] = i64(row[1]);
    }
    for (AppendJob* j : run) {
      j->result_.reset();
      if (!last.contains(j->draft_.conversation_id)) j->result_.emplace(conversation_not_found(j->draft_.conversation_id));
    }
    // Authors' membership, read under the conversations' locks (a removal
    // takes the same lock), one statement for the run.
    std::vector<std::int64_t> member_conversations, member_index;
    std::vector<std::string> member_users;
    for (std::size_t i = 0; i < run.size(); ++i) {
      const AppendJob* j = run[i];
      if (j->result_ || !j->as_member_) continue;
      member_conversations.push_back(j->draft_.conversation_id);
      member_users.push_back(j->draft_.author);
      member_index.push_back(static_cast<std::int64_t>(i));
    }
    if (!member_index.empty()) {
      std::vector<bool> is_member(run.size(), false);
      for (const auto& row : tx.exec_params(
               "SELECT k.i FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS k(conversation_id, user_id, i)"
               " JOIN members mb ON mb.conversation_id = k.conversation_id AND mb.user_id = k.user_id",
               int_array(member_conversations), text_array(member_users), int_array(member_index))) {
        is_member[static_cast<std::size_t>(i64(row[0]))] = true;
      }
      for (std::int64_t i : member_index) {
        AppendJob* j = run[static_cast<std::size_t>(i)];
        if (!is_member[static_cast<std::size_t>(i)]) j->result_.emplace(not_a_member(j->draft_.conversation_id));
      }
    }
    // reply_to targets, looked up once (judged below, after client keys,
    // in the order append_one judges them).
    std::vector<std::int64_t> targets;
    for (const AppendJob* j : run) {
      if (!j->result_ && j->draft_.reply_to != 0) targets.push_back(j->draft_.reply_to);
    }
    std::map<MessageId, ConversationId> found_targets;
    if (!targets.empty()) {
      for (const auto& row :
           tx.exec_params("SELECT id, conversation_id FROM messages WHERE id = ANY($1::bigint[])", int_array(targets))) {
        found_targets[i64(row[0])] = i64(row[1]);
      }
    }
    auto bad_reply = [&](const AppendJob* j) {
      if (j->draft_.reply_to == 0) return false;
      auto it = found_targets.find(j->draft_.reply_to);
      return it == found_targets.end() || it->second != j->draft_.conversation_id;
    };
    // Client keys already stored (after the lock: a retry sent to another
    // host meanwhile is seen), and repeated within this run.
    std::vector<std::int64_t> key_conversations, key_index;
    std::vector<std::string> key_authors, key_values;
    for (std::size_t i = 0; i < run.size(); ++i) {
      const AppendJob* j = run[i];
      if (j->result_ || j->draft_.client_key.empty()) continue;
      key_conversations.push_back(j->draft_.conversation_id);
      key_authors.push_back(j->draft_.author);
      key_values.push_back(j->draft_.client_key);
      key_index.push_back(static_cast<std::int64_t>(i));
    }
    if (!key_index.empty()) {
      auto rows = tx.exec_params(
          std::string("SELECT k.i, ") + kMessageColumns +
              " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[]) AS k(conversation_id, author, client_key, i)"
              " JOIN messages m ON m.conversation_id = k.conversation_id AND m.author = k.author"
              " AND m.client_key = k.client_key",
          int_array(key_conversations), text_array(key_authors), text_array(key_values), int_array(key_index));
      for (const auto& row : rows) {
        run[static_cast<std::size_t>(i64(row[0]))]->result_.emplace(MessageWrite{message_from(row, 1), false, std::nullopt});
      }
    }
    // In run order, as alone: a stored key answers the original (above); a
    // key a job earlier in this run inserts answers that one; then a bad
    // reply_to fails; the rest is new.
    std::map<std::tuple<ConversationId, std::string, std::string>, std::size_t> first_with_key;
    std::vector<std::size_t> repeats;  // of a key new in this run: answered with the first
    std::vector<std::size_t> fresh;
    for (std::size_t i = 0; i < run.size(); ++i) {
      AppendJob* j = run[i];
      if (j->result_) continue;
      std::tuple<ConversationId, std::string, std::string> key{j->draft_.conversation_id, j->draft_.author,
                                                               j->draft_.client_key};
      if (!j->draft_.client_key.empty() && first_with_key.contains(key)) {
        repeats.push_back(i);
        continue;
      }
      if (bad_reply(j)) {
        j->result_.emplace(make_error(Errc::not_found, "reply_to message " + std::to_string(j->draft_.reply_to) +
                                                           " not found in this conversation"));
        continue;
      }
      if (!j->draft_.client_key.empty()) first_with_key.emplace(std::move(key), i);
      fresh.push_back(i);
    }
    // Every new message and its event, and the conversations' last_seq, in
    // one statement.
    std::vector<std::int64_t> conversation, seq, reply_to, created_at;
    std::vector<std::string> author, text, attachments, client_key, type, actor, payload;
    for (std::size_t i : fresh) {
      const AppendJob* j = run[i];
      conversation.push_back(j->draft_.conversation_id);
      seq.push_back(++last[j->draft_.conversation_id]);
      author.push_back(j->draft_.author);
      text.push_back(j->draft_.text);
      reply_to.push_back(j->draft_.reply_to);
      attachments.push_back(j->draft_.attachments);
      client_key.push_back(j->draft_.client_key);
      created_at.push_back(j->now_);
      type.push_back(j->event_.type);
      actor.push_back(j->event_.actor);
      payload.push_back(j->event_.payload);
    }
    std::map<std::pair<ConversationId, Seq>, MessageId> inserted;
    if (!fresh.empty()) {
      auto rows = tx.exec_params(
          "WITH v AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], "
          "$6::text[], $7::text[], $8::bigint[], $9::text[], $10::text[], $11::text[]) AS v(conversation_id, seq, "
          "author, text, reply_to, attachments, client_key, created_at, type, actor, payload)), "
          "m AS (INSERT INTO messages (conversation_id, seq, author, text, reply_to, attachments, client_key, "
          "created_at) SELECT conversation_id, seq, author, text, reply_to, attachments, NULLIF(client_key, ''), "
          "created_at FROM v ORDER BY conversation_id, seq RETURNING id, conversation_id, seq), "
          "e AS (INSERT INTO events (conversation_id, seq, type, actor, message_id, payload, created_at) "
          "SELECT v.conversation_id, v.seq, v.type, v.actor, m.id, v.payload, v.created_at "
          "FROM v JOIN m ON m.conversation_id = v.conversation_id AND m.seq = v.seq), "
          "u AS (UPDATE conversations c SET last_seq = t.last FROM (SELECT conversation_id, max(seq) AS last FROM v "
          "GROUP BY conversation_id) t WHERE c.id = t.conversation_id) "
          "SELECT conversation_id, seq, id FROM m",
          int_array(conversation), int_array(seq), text_array(author), text_array(text), int_array(reply_to),
          text_array(attachments), text_array(client_key), int_array(created_at), text_array(type), text_array(actor),
          text_array(payload));
      for (const auto& row : rows) inserted[{i64(row[0]), i64(row[1])}] = i64(row[2]);
      if (inserted.size() != fresh.size()) throw std::runtime_error("grouped append: rows inserted do not match");
    }
    for (std::size_t k = 0; k < fresh.size(); ++k) {
      AppendJob* j = run[fresh[k]];
      Message m;
      m.id = inserted.at({conversation[k], seq[k]});
      m.conversation_id = j->draft_.conversation_id;
      m.seq = seq[k];
      m.author = j->draft_.author;
      m.text = j->draft_.text;
      m.reply_to = j->draft_.reply_to;
      m.attachments = j->draft_.attachments;
      m.client_key = j->draft_.client_key;
      m.created_at = j->now_;
      Event appended{m.conversation_id, m.seq, j->event_.type, j->event_.actor, m.id, j->event_.payload, j->now_, m};
      j->result_.emplace(MessageWrite{std::move(m), true, std::move(appended)});
    }
    for (std::size_t i : repeats) {
      AppendJob* j = run[i];
      const AppendJob* first = run[first_with_key.at({j->draft_.conversation_id, j->draft_.author, j->draft_.client_key})];
      j->result_.emplace(MessageWrite{first->result_->value().message, false, std::nullopt});
    }
  }

  MessageDraft draft_;
  EventDraft event_;
  TimeMs now_;
  bool as_member_;
};

}  // namespace

PostgresStorage::PostgresStorage(PluginContext& context) : clock_(context.clock()), log_(context.logger()) {
  const PluginConfig& config = context.config();
  url_ = config.require_string("url");
  auto pool_size = config.integer_or("pool_size", 4);
  if (pool_size < 1 || pool_size > 256) config.fail("pool_size", "must be between 1 and 256");
  auto writers = config.integer_or("writers", 2);
  if (writers < 1 || writers > 64) config.fail("writers", "must be between 1 and 64");
  auto batch_max = config.integer_or("batch_max", 256);
  if (batch_max < 1) config.fail("batch_max", "must be at least 1");
  auto queue_max = config.integer_or("queue_max", 10000);
  if (queue_max < 1) config.fail("queue_max", "must be at least 1");
  months_ahead_ = static_cast<int>(config.integer_or("partitions_ahead", 3));
  if (months_ahead_ < 1 || months_ahead_ > 24) config.fail("partitions_ahead", "must be between 1 and 24 months");

  // Start-up is the control plane: a database that cannot be reached or
  // migrated stops the host with the reason.
  try {
    pqxx::connection setup(url_);
    int before = migrate(setup);
    if (before != kSchemaVersion) {
      log_.info("schema migrated", {{"from", std::to_string(before)}, {"to", std::to_string(kSchemaVersion)}});
    }
    if (int created = ensure_partitions(setup, clock_.now_ms(), months_ahead_)) {
      log_.info("event log partitions created", {{"count", std::to_string(created)}});
    }
  } catch (const std::exception& e) {
    throw std::runtime_error("storage-postgres: cannot prepare the database: " + to_error(e).message);
  }
  writer_ = std::make_unique<JobRunner>(
      RunnerOptions{"writer", url_, static_cast<int>(writers), static_cast<std::size_t>(batch_max), false,
                    static_cast<std::size_t>(queue_max)},
      log_, context.metrics());
  reader_ = std::make_unique<JobRunner>(
      RunnerOptions{"reader", url_, static_cast<int>(pool_size), 1, true, static_cast<std::size_t>(queue_max)}, log_,
      context.metrics());
  maintenance_ = std::thread([this] { maintain_partitions(); });
  log_.info("storage open", {{"pool_size", std::to_string(pool_size)}, {"writers", std::to_string(writers)}});
}

PostgresStorage::~PostgresStorage() { stop(); }

void PostgresStorage::stop() noexcept {
  {
    std::lock_guard lock(maintenance_mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  maintenance_wake_.notify_all();
  maintenance_.join();
  // Each runner refuses new jobs, then runs what it accepted to completion.
  // A completion that chains into the other runner is refused once that one
  // is stopping: its caller gets `unavailable`, exactly once.
  writer_->stop();
  reader_->stop();
}

// Keeps the next months' partitions created ahead, so writes never land in
// the default partition (which would block creating that month's partition).
void PostgresStorage::maintain_partitions() {
  std::unique_lock lock(maintenance_mutex_);
  while (!maintenance_wake_.wait_for(lock, std::chrono::hours(6), [this] { return stopping_; })) {
    lock.unlock();
    writer_->submit<int>(
        [this](Tx& tx) -> Result<int> { return ensure_partitions(tx.conn(), clock_.now_ms(), months_ahead_); },
        [this](Result<int> r) {
          if (!r) log_.warn("cannot create event log partitions ahead", {{"error", r.error().message}});
        });
    lock.lock();
  }
}

void PostgresStorage::create_conversation(ConversationDraft draft, Completion<ConversationCreated> done) {
  if (draft.kind == ConversationKind::direct) {
    if (draft.members.size() != 2 || draft.members[0].user_id == draft.members[1].user_id) {
      return done(make_error(Errc::bad_request, "a direct conversation has exactly two distinct members"));
    }
    if (draft.direct_key.empty()) return done(make_error(Errc::bad_request, "a direct conversation needs its direct_key"));
  }
  if (draft.event && !valid_draft(*draft.event)) return done(bad_event());
  TimeMs now = clock_.now_ms();
  write<ConversationCreated>(
      [draft = std::move(draft), now](Tx& tx) -> Result<ConversationCreated> {
        std::string key;
        if (draft.kind == ConversationKind::direct) key = draft.direct_key;
        // One direct conversation per pair, even when two hosts race: the
        // loser's insert does nothing and it reads the winner's row.
        auto ins = tx.exec_params(
            "INSERT INTO conversations (kind, name, creator, epoch, last_seq, direct_key, created_at) "
            "VALUES ($1, $2, $3, $4, 0, NULLIF($5, ''), $6) ON CONFLICT (direct_key) DO NOTHING RETURNING id",
            std::string(to_string(draft.kind)), draft.name, draft.creator, new_epoch(), key, now);
        if (ins.empty()) {
          auto existing = tx.exec_params(std::string("SELECT ") + kConversationColumns +
                                             " FROM conversations c WHERE c.direct_key = $1",
                                         key);
          if (existing.empty()) return make_error(Errc::unavailable, "direct conversation changed meanwhile; retry");
          return ConversationCreated{conversation_from(existing[0]), false, std::nullopt};
        }
        ConversationId id = i64(ins[0][0]);
        for (const auto& m : draft.members) {
          tx.exec_params(
              "INSERT INTO members (conversation_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4) "
              "ON CONFLICT (conversation_id, user_id) DO UPDATE SET role = excluded.role",
              id, m.user_id, std::string(to_string(m.role)), now);
        }
        ConversationCreated out;
        if (draft.event) {
          auto event = append(tx, id, *draft.event, now);
          if (!event) return event.error();
          out.event = std::move(event.value());
        }
        out.conversation = *load_conversation(tx, id);
        return out;
      },
      std::move(done));
}

void PostgresStorage::get_conversation(ConversationId id, Completion<Conversation> done) {
  read<Conversation>(
      [id](Tx& tx) -> Result<Conversation> {
        if (auto c = load_conversation(tx, id)) return *c;
        return conversation_not_found(id);
      },
      std::move(done), kOneStatement);
}

void PostgresStorage::list_conversations(UserId user, ConversationPage page, Completion<std::vector<Conversation>> done) {
  read<std::vector<Conversation>>(
      [user = std::move(user), page](Tx& tx) -> Result<std::vector<Conversation>> {
        auto r = tx.exec_params(std::string("SELECT ") + kConversationColumns +
                                    " FROM members mb JOIN conversations c ON c.id = mb.conversation_id"
                                    " WHERE mb.user_id = $1 AND c.id > $2 ORDER BY c.id LIMIT $3",
                                user, page.after, std::clamp(page.limit, 1, 1000));
        std::vector<Conversation> out;
        for (const auto& row : r) out.push_back(conversation_from(row));
        return out;
      },
      std::move(done), kOneStatement);
}

void PostgresStorage::reset_stream(ConversationId id, Completion<Conversation> done) {
  write<Conversation>(
      [id](Tx& tx) -> Result<Conversation> {
        auto r = tx.exec_params("UPDATE conversations SET epoch = $2 WHERE id = $1", id, new_epoch());
        if (r.affected_rows() == 0) return conversation_not_found(id);
        return *load_conversation(tx, id);
      },
      std::move(done));
}

void PostgresStorage::set_member(Member member, EventDraft event, Completion<MemberChange> done) {
  if (!valid_draft(event)) return done(bad_event());
  if (member.user_id.empty()) return done(make_error(Errc::bad_request, "member user id is empty"));
  TimeMs now = clock_.now_ms();
  write<MemberChange>(
      [member = std::move(member), event = std::move(event), now](Tx& tx) -> Result<MemberChange> {
        // Lock the conversation first: member changes queue behind each other.
        if (!lock_conversation(tx, member.conversation_id)) return conversation_not_found(member.conversation_id);
        auto existing = load_member(tx, member.conversation_id, member.user_id);
        if (existing && existing->role == member.role) return MemberChange{*existing, false, std::nullopt};
        auto seq = next_seq(tx, member.conversation_id);
        if (!seq) return seq.error();
        Member stored = member;
        stored.joined_at = existing ? existing->joined_at : now;
        tx.exec_params(
            "INSERT INTO members (conversation_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (conversation_id, user_id) DO UPDATE SET role = excluded.role",
            stored.conversation_id, stored.user_id, std::string(to_string(stored.role)), stored.joined_at);
        return MemberChange{stored, true, insert_event(tx, stored.conversation_id, *seq, event, now)};
      },
      std::move(done));
}

void PostgresStorage::remove_member(ConversationId id, UserId user, EventDraft event, Completion<MemberChange> done) {
  if (!valid_draft(event)) return done(bad_event());
  TimeMs now = clock_.now_ms();
  write<MemberChange>(
      [id, user = std::move(user), event = std::move(event), now](Tx& tx) -> Result<MemberChange> {
        auto removed = tx.exec_params(
            "DELETE FROM members WHERE conversation_id = $1 AND user_id = $2 RETURNING role, joined_at", id, user);
        if (removed.empty()) {
          return make_error(Errc::not_found, user + " is not a member of conversation " + std::to_string(id));
        }
        Member before{id, user, parse_role(str(removed[0][0])).value_or(Role::member), i64(removed[0][1])};
        auto appended = append(tx, id, event, now);
        if (!appended) return appended.error();
        return MemberChange{before, true, std::move(appended.value())};
      },
      std::move(done));
}

void PostgresStorage::get_member(ConversationId id, UserId user, Completion<Member> done) {
  read<Member>(
      [id, user = std::move(user)](Tx& tx) -> Result<Member> {
        if (auto m = load_member(tx, id, user)) return *m;
        return make_error(Errc::not_found, user + " is not a member of conversation " + std::to_string(id));
      },
      std::move(done), kOneStatement);
}

void PostgresStorage::list_members(ConversationId id, Completion<std::vector<Member>> done) {
  read<std::vector<Member>>(
      [id](Tx& tx) -> Result<std::vector<Member>> {
        // One statement, one round trip: no row if the conversation does
        // not exist, one row of NULLs if it has no members.
        auto r = tx.exec_params(
            "SELECT mb.user_id, mb.role, mb.joined_at FROM conversations c"
            " LEFT JOIN members mb ON mb.conversation_id = c.id WHERE c.id = $1 ORDER BY mb.user_id",
            id);
        if (r.empty()) return conversation_not_found(id);
        std::vector<Member> out;
        for (const auto& row : r) {
          if (row[0].is_null()) continue;
          out.push_back(Member{id, str(row[0]), parse_role(str(row[1])).value_or(Role::member), i64(row[2])});
        }
        return out;
      },
      std::move(done), kOneStatement);
}

void PostgresStorage::append_message(MessageDraft draft, EventDraft event, Completion<MessageWrite> done) {
  if (!valid_draft(event)) return done(bad_event());
  writer_->submit(
      std::make_unique<AppendJob>(std::move(draft), std::move(event), clock_.now_ms(), false, std::move(done)));
}

void PostgresStorage::append_message_as_member(MessageDraft draft, EventDraft event, Completion<MessageWrite> done) {
  if (!valid_draft(event)) return done(bad_event());
  writer_->submit(
      std::make_unique<AppendJob>(std::move(draft), std::move(event), clock_.now_ms(), true, std::move(done)));
}

void PostgresStorage::edit_message(MessageId id, std::string text, EventDraft event, Completion<MessageWrite> done) {
  if (!valid_draft(event)) return done(bad_event());
  TimeMs now = clock_.now_ms();
  write<MessageWrite>(
      [id, text = std::move(text), event = std::move(event), now](Tx& tx) -> Result<MessageWrite> {
        auto message = load_message(tx, id);
        if (!message) return make_error(Errc::not_found, "message " + std::to_string(id) + " not found");
        // The conversation before the message, as every writer locks them.
        if (!lock_conversation(tx, message->conversation_id)) return conversation_not_found(message->conversation_id);
        auto updated = tx.exec_params("UPDATE messages AS m SET text = $2, edited_at = $3 WHERE m.id = $1 AND NOT "
                                      "m.deleted RETURNING " + std::string(kMessageColumns),
                                      id, text, now);
        if (updated.empty()) return make_error(Errc::conflict, "message " + std::to_string(id) + " is deleted");
        return message_changed(tx, updated[0], event, now);
      },
      std::move(done));
}

void PostgresStorage::delete_message(MessageId id, EventDraft event, Completion<MessageWrite> done) {
  if (!valid_draft(event)) return done(bad_event());
  TimeMs now = clock_.now_ms();
  write<MessageWrite>(
      [id, event = std::move(event), now](Tx& tx) -> Result<MessageWrite> {
        auto message = load_message(tx, id);
        if (!message) return make_error(Errc::not_found, "message " + std::to_string(id) + " not found");
        if (!lock_conversation(tx, message->conversation_id)) return conversation_not_found(message->conversation_id);
        // The content goes; the row stays as a tombstone so seq and replies still resolve.
        auto updated = tx.exec_params("UPDATE messages AS m SET text = '', attachments = '[]', deleted = true "
                                      "WHERE m.id = $1 AND NOT m.deleted RETURNING " + std::string(kMessageColumns),
                                      id);
        if (updated.empty()) return MessageWrite{*load_message(tx, id), false, std::nullopt};
        return message_changed(tx, updated[0], event, now);
      },
      std::move(done));
}

void PostgresStorage::get_message(MessageId id, Completion<Message> done) {
  read<Message>(
      [id](Tx& tx) -> Result<Message> {
        if (auto m = load_message(tx, id)) return *m;
        return make_error(Errc::not_found, "message " + std::to_string(id) + " not found");
      },
      std::move(done), kOneStatement);
}

void PostgresStorage::append_event(ConversationId id, EventDraft event, Completion<Event> done) {
  if (!valid_draft(event)) return done(bad_event());
  TimeMs now = clock_.now_ms();
  write<Event>(
      [id, event = std::move(event), now](Tx& tx) -> Result<Event> {
        if (event.message_id != 0) {
          auto message = load_message(tx, event.message_id);
          if (!message || message->conversation_id != id) {
            return make_error(Errc::not_found, "message " + std::to_string(event.message_id) +
                                                   " not found in conversation " + std::to_string(id));
          }
        }
        return append(tx, id, event, now);
      },
      std::move(done));
}

void PostgresStorage::read_events(EventQuery query, Completion<EventPage> done) {
  read<EventPage>(
      [query](Tx& tx) -> Result<EventPage> {
        int limit = std::clamp(query.limit, 1, 1000);
        bool forward = query.direction == Direction::forward;
        Seq from = query.from;
        if (!forward && from <= 0) from = std::numeric_limits<Seq>::max();
        // The conversation's position and the page in one statement — one
        // round trip, one snapshot: no row if the conversation does not
        // exist, one row without an event if the page is empty.
        std::string sql = std::string(
                              "SELECT c.epoch, c.last_seq, x.* FROM conversations c LEFT JOIN LATERAL ("
                              "SELECT e.seq AS event_seq, e.type, e.actor, e.message_id, e.payload, e.created_at, "
                              "m.id IS NOT NULL, ") +
                          kMessageColumns +
                          " FROM events e LEFT JOIN messages m ON e.message_id <> 0 AND m.id = e.message_id"
                          " WHERE e.conversation_id = c.id AND " +
                          (forward ? "e.seq > $2 ORDER BY e.seq ASC" : "e.seq < $2 ORDER BY e.seq DESC") +
                          " LIMIT $3) x ON true WHERE c.id = $1 ORDER BY x.event_seq " + (forward ? "ASC" : "DESC");
        auto r = tx.exec_params(sql, query.conversation_id, from, limit + 1);
        if (r.empty()) return conversation_not_found(query.conversation_id);
        EventPage page;
        page.epoch = str(r[0][0]);
        page.last_seq = i64(r[0][1]);
        for (const auto& row : r) {
          if (row[2].is_null()) break;  // no event
          if (static_cast<int>(page.events.size()) == limit) {
            page.more = true;
            break;
          }
          Event e{query.conversation_id, i64(row[2]), str(row[3]), str(row[4]), i64(row[5]), str(row[6]),
                  i64(row[7]), std::nullopt};
          if (row[8].as<bool>()) e.message = message_from(row, 9);
          page.events.push_back(std::move(e));
        }
        if (!forward) std::reverse(page.events.begin(), page.events.end());
        return page;
      },
      std::move(done), kOneStatement);
}

void PostgresStorage::count_events(EventCount query, Completion<std::int64_t> done) {
  read<std::int64_t>(
      [query](Tx& tx) -> Result<std::int64_t> {
        auto r = tx.exec_params(
            "SELECT count(*) FROM events e LEFT JOIN messages m ON e.message_id <> 0 AND m.id = e.message_id"
            " WHERE e.conversation_id = $1 AND e.seq > $2 AND e.type = $3 AND e.actor <> $4"
            " AND (NOT $5 OR m.deleted IS NULL OR NOT m.deleted) AND ($6::bigint = 0 OR e.seq <= $6::bigint)",
            query.conversation_id, query.after, query.type, query.not_actor, query.skip_deleted_messages, query.upto);
        return i64(r[0][0]);
      },
      std::move(done), kOneStatement);
}

void PostgresStorage::change_record(RecordChange change, Completion<RecordOutcome> done) {
  if (change.record.feature.empty()) return done(make_error(Errc::bad_request, "record feature is empty"));
  if (change.event && !valid_draft(*change.event)) return done(bad_event());
  if (change.event && change.record.conversation_id == 0) {
    return done(make_error(Errc::bad_request, "an event needs the record's conversation_id"));
  }
  TimeMs now = clock_.now_ms();
  write<RecordOutcome>(
      [change = std::move(change), now](Tx& tx) -> Result<RecordOutcome> {
        Record r = change.record;
        if (change.event) {
          // Lock the conversation first, as every event writer does, so
          // writers on several hosts take locks in one order.
          if (!lock_conversation(tx, r.conversation_id)) return conversation_not_found(r.conversation_id);
        }
        // Serializes changes to one record across hosts: read-decide-write.
        tx.exec_params("SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2 || ':' || $3, 0))", r.feature,
                       r.conversation_id, r.key);
        auto existing = load_record(tx, r.feature, r.conversation_id, r.key);
        bool write = record_change_applies(change.op, existing, r);
        RecordOutcome out;
        if (change.op == RecordOp::remove) {
          if (!existing) return out;
          tx.exec_params("DELETE FROM records WHERE feature = $1 AND conversation_id = $2 AND key = $3", r.feature,
                         r.conversation_id, r.key);
          out.changed = true;
        } else if (!write) {
          out.record = existing;
          return out;
        } else {
          r.updated_at = now;
          tx.exec_params(
              "INSERT INTO records (feature, conversation_id, key, message_id, user_id, number, value, updated_at) "
              "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (feature, conversation_id, key) DO UPDATE SET "
              "message_id = excluded.message_id, user_id = excluded.user_id, number = excluded.number, "
              "value = excluded.value, updated_at = excluded.updated_at",
              r.feature, r.conversation_id, r.key, r.message_id, r.user, r.number, r.value, now);
          out.changed = true;
          out.record = r;
        }
        if (change.event) {
          auto appended = append(tx, r.conversation_id, *change.event, now);
          if (!appended) return appended.error();
          out.event = std::move(appended.value());
        }
        return out;
      },
      std::move(done));
}

void PostgresStorage::list_records(RecordQuery query, Completion<std::vector<Record>> done) {
  if (query.feature.empty()) return done(make_error(Errc::bad_request, "record query needs a feature"));
  read<std::vector<Record>>(
      [query](Tx& tx) -> Result<std::vector<Record>> {
        // Optional filters as parameters that switch themselves off, so the
        // statement's text is one and the same for every query.
        std::vector<std::string> ids;
        for (MessageId id : query.message_ids) ids.push_back(std::to_string(id));
        std::string id_list = "{" ;
        for (std::size_t i = 0; i < ids.size(); ++i) id_list += (i ? "," : "") + ids[i];
        id_list += "}";
        auto r = tx.exec_params(std::string("SELECT ") + kRecordColumns +
                                    " FROM records WHERE feature = $1"
                                    " AND ($2::bigint = 0 OR conversation_id = $2::bigint)"
                                    " AND ($3::text = '' OR starts_with(key, $3::text))"
                                    " AND ($4::text = '' OR user_id = $4::text)"
                                    " AND (cardinality($5::bigint[]) = 0 OR message_id = ANY($5::bigint[]))"
                                    " ORDER BY conversation_id, key LIMIT $6",
                                query.feature, query.conversation_id, query.key_prefix, query.user, id_list,
                                std::clamp(query.limit, 1, 100000));
        std::vector<Record> out;
        for (const auto& row : r) out.push_back(record_from(row));
        return out;
      },
      std::move(done), kOneStatement);
}

Status PostgresStorage::flush() { return writer_->flush(); }

Health PostgresStorage::health() const noexcept {
  writer_->probe();
  reader_->probe();
  if (!writer_->healthy()) return {false, writer_->last_error()};
  if (!reader_->healthy()) return {false, reader_->last_error()};
  return {true, {}};
}

}  // namespace postgres_storage

SWITCHBOARD_PLUGIN(storage, "storage-postgres", "0.1.0", postgres_storage::PostgresStorage)

#include "sqlite_storage.hpp"

#include <algorithm>
#include <filesystem>
#include <limits>

#include "schema.hpp"
#include "switchboard/plugin.hpp"
#include "switchboard/storage_support.hpp"

namespace sqlite_storage {

using namespace switchboard;

namespace {

constexpr const char* kMessageColumns =
    "m.id, m.conversation_id, m.seq, m.author, m.text, m.reply_to, m.attachments, m.client_key, m.created_at, "
    "m.edited_at, m.deleted";
constexpr const char* kConversationColumns = "c.id, c.kind, c.name, c.creator, c.epoch, c.last_seq, c.created_at";
constexpr const char* kRecordColumns =
    "feature, conversation_id, key, message_id, user_id, number, value, updated_at";

Message message_from(const Statement& st, int c) {
  Message m;
  m.id = st.integer(c);
  m.conversation_id = st.integer(c + 1);
  m.seq = st.integer(c + 2);
  m.author = st.text(c + 3);
  m.text = st.text(c + 4);
  m.reply_to = st.integer(c + 5);
  m.attachments = st.text(c + 6);
  m.client_key = st.is_null(c + 7) ? std::string() : st.text(c + 7);
  m.created_at = st.integer(c + 8);
  m.edited_at = st.integer(c + 9);
  m.deleted = st.integer(c + 10) != 0;
  return m;
}

Conversation conversation_from(const Statement& st) {
  Conversation c;
  c.id = st.integer(0);
  c.kind = parse_conversation_kind(st.text(1)).value_or(ConversationKind::group);
  c.name = st.text(2);
  c.creator = st.text(3);
  c.epoch = st.text(4);
  c.last_seq = st.integer(5);
  c.created_at = st.integer(6);
  return c;
}

Record record_from(const Statement& st) {
  Record r;
  r.feature = st.text(0);
  r.conversation_id = st.integer(1);
  r.key = st.text(2);
  r.message_id = st.integer(3);
  r.user = st.text(4);
  r.number = st.integer(5);
  r.value = st.text(6);
  r.updated_at = st.integer(7);
  return r;
}

std::optional<Conversation> load_conversation(Database& db, ConversationId id) {
  Statement& st = db.prepare(std::string("SELECT ") + kConversationColumns + " FROM conversations c WHERE c.id = ?1");
  st.bind(1, id);
  if (!st.step()) return std::nullopt;
  auto c = conversation_from(st);
  st.reset();
  return c;
}

std::optional<Message> load_message(Database& db, MessageId id) {
  Statement& st = db.prepare(std::string("SELECT ") + kMessageColumns + " FROM messages m WHERE m.id = ?1");
  st.bind(1, id);
  if (!st.step()) return std::nullopt;
  auto m = message_from(st, 0);
  st.reset();
  return m;
}

std::optional<Member> load_member(Database& db, ConversationId id, const UserId& user) {
  Statement& st =
      db.prepare("SELECT role, joined_at FROM members WHERE conversation_id = ?1 AND user_id = ?2");
  st.bind(1, id).bind(2, user);
  if (!st.step()) return std::nullopt;
  Member m{id, user, parse_role(st.text(0)).value_or(Role::member), st.integer(1)};
  st.reset();
  return m;
}

std::optional<Record> load_record(Database& db, const std::string& feature, ConversationId id, const std::string& key) {
  Statement& st = db.prepare(std::string("SELECT ") + kRecordColumns +
                             " FROM records WHERE feature = ?1 AND conversation_id = ?2 AND key = ?3");
  st.bind(1, feature).bind(2, id).bind(3, key);
  if (!st.step()) return std::nullopt;
  auto r = record_from(st);
  st.reset();
  return r;
}

// Appends an event with the conversation's next seq. Runs on the writer
// thread only, inside the batch transaction: that is what makes seq gap-free.
// The conversation's next seq. Runs on the writer thread only, inside the
// batch transaction: that is what makes seq gap-free.
Result<Seq> next_seq(Database& db, ConversationId id) {
  Statement& next = db.prepare("UPDATE conversations SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq");
  next.bind(1, id);
  if (!next.step()) return make_error(Errc::not_found, "conversation " + std::to_string(id) + " not found");
  Seq seq = next.integer(0);
  next.reset();
  return seq;
}

Event insert_event(Database& db, ConversationId id, Seq seq, EventDraft draft, TimeMs now) {
  if (draft.payload.empty()) draft.payload = "{}";
  Statement& ins = db.prepare(
      "INSERT INTO events (conversation_id, seq, type, actor, message_id, payload, created_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  ins.bind(1, id).bind(2, seq).bind(3, draft.type).bind(4, draft.actor).bind(5, draft.message_id);
  ins.bind(6, draft.payload).bind(7, now).run();
  return Event{id, seq, std::move(draft.type), std::move(draft.actor), draft.message_id, std::move(draft.payload),
               now, std::nullopt};
}

// Appends an event with the conversation's next seq.
Result<Event> append(Database& db, ConversationId id, EventDraft draft, TimeMs now) {
  auto seq = next_seq(db, id);
  if (!seq) return seq.error();
  return insert_event(db, id, *seq, std::move(draft), now);
}

bool valid_draft(const EventDraft& e) { return !e.type.empty(); }

Error bad_event() { return make_error(Errc::bad_request, "event type is empty"); }


}  // namespace

SqliteStorage::SqliteStorage(PluginContext& context)
    : clock_(context.clock()), log_(context.logger()) {
  const PluginConfig& config = context.config();
  path_ = config.string_or("path", "./var/switchboard.db");
  std::string synchronous = config.string_or("synchronous", "full");
  if (synchronous != "full" && synchronous != "normal") {
    config.fail("synchronous", "must be \"full\" (no acknowledged write is lost on power failure) or \"normal\"");
  }
  auto batch_max = config.integer_or("batch_max", 512);
  if (batch_max < 1) config.fail("batch_max", "must be at least 1");
  auto readers = config.integer_or("readers", 4);
  if (readers < 1 || readers > 64) config.fail("readers", "must be between 1 and 64");
  auto busy_timeout_ms = config.integer_or("busy_timeout_ms", 5000);
  auto queue_max = config.integer_or("queue_max", 10000);
  if (queue_max < 1) config.fail("queue_max", "must be at least 1");
  if (busy_timeout_ms < 0) config.fail("busy_timeout_ms", "must not be negative");

  std::filesystem::path file(path_);
  if (file.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    if (ec) throw std::runtime_error("cannot create directory " + file.parent_path().string() + ": " + ec.message());
  }

  auto writer = std::make_unique<Database>(path_, static_cast<int>(busy_timeout_ms), false);
  writer->exec("PRAGMA journal_mode = WAL");
  writer->exec(("PRAGMA synchronous = " + synchronous).c_str());
  writer->exec("PRAGMA foreign_keys = ON");
  int before = migrate(*writer);
  if (before != kSchemaVersion) {
    log_.info("schema migrated", {{"path", path_}, {"from", std::to_string(before)},
                                  {"to", std::to_string(kSchemaVersion)}});
  }
  std::vector<std::unique_ptr<Database>> read_connections;
  for (std::int64_t i = 0; i < readers; ++i) {
    auto reader = std::make_unique<Database>(path_, static_cast<int>(busy_timeout_ms), false);
    reader->exec("PRAGMA query_only = ON");
    read_connections.push_back(std::move(reader));
  }
  readers_ = std::make_unique<ReadPool>(std::move(read_connections), static_cast<std::size_t>(queue_max), log_,
                                        context.metrics());
  writer_ = std::make_unique<BatchWriter>(std::move(writer), static_cast<std::size_t>(batch_max),
                                          static_cast<std::size_t>(queue_max), log_, context.metrics());
  log_.info("storage open", {{"path", path_}, {"synchronous", synchronous}});
}

SqliteStorage::~SqliteStorage() { stop(); }

void SqliteStorage::stop() noexcept {
  // Each refuses new calls, then runs what it accepted to completion. A read
  // completion that chains into a write is refused once the writer stops
  // (its caller gets `unavailable`, exactly once), and the other way round.
  readers_->stop();
  writer_->stop();
}

template <class T, class Body>
void SqliteStorage::read(Body body, Completion<T> done) {
  readers_->submit([body = std::move(body), done = std::move(done)](Database* db) mutable {
    if (!db) {
      done(make_error(Errc::unavailable, "storage-sqlite: too many reads waiting (queue_max), or stopping; retry later"));
      return;
    }
    std::optional<Result<T>> result;
    try {
      db->exec("BEGIN");  // one snapshot for the whole read
      result.emplace(body(*db));
      db->exec("COMMIT");
    } catch (const std::exception& e) {
      if (!sqlite3_get_autocommit(db->handle())) {
        try {
          db->exec("ROLLBACK");
        } catch (const std::exception&) {
        }
      }
      result.emplace(to_error(e));
    }
    done(std::move(*result));
  });
}

void SqliteStorage::create_conversation(ConversationDraft draft, Completion<ConversationCreated> done) {
  if (draft.kind == ConversationKind::direct) {
    if (draft.members.size() != 2 || draft.members[0].user_id == draft.members[1].user_id) {
      done(make_error(Errc::bad_request, "a direct conversation has exactly two distinct members"));
      return;
    }
    if (draft.direct_key.empty()) {
      done(make_error(Errc::bad_request, "a direct conversation needs its direct_key"));
      return;
    }
  }
  if (draft.event && !valid_draft(*draft.event)) {
    done(bad_event());
    return;
  }
  TimeMs now = clock_.now_ms();
  writer_->submit<ConversationCreated>(
      [draft = std::move(draft), now](Database& db) mutable -> Result<ConversationCreated> {
        std::optional<std::string> key;
        if (draft.kind == ConversationKind::direct) {
          key = draft.direct_key;
          Statement& find = db.prepare("SELECT id FROM conversations WHERE direct_key = ?1");
          find.bind(1, *key);
          if (find.step()) {
            ConversationId existing = find.integer(0);
            find.reset();
            return ConversationCreated{*load_conversation(db, existing), false, std::nullopt};
          }
        }
        Statement& ins = db.prepare(
            "INSERT INTO conversations (kind, name, creator, epoch, last_seq, direct_key, created_at) "
            "VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6)");
        ins.bind(1, to_string(draft.kind)).bind(2, draft.name).bind(3, draft.creator).bind(4, new_epoch());
        if (key) {
          ins.bind(5, *key);
        } else {
          ins.bind_null(5);
        }
        ins.bind(6, now).run();
        ConversationId id = db.last_insert_id();
        Statement& member = db.prepare(
            "INSERT INTO members (conversation_id, user_id, role, joined_at) VALUES (?1, ?2, ?3, ?4) "
            "ON CONFLICT (conversation_id, user_id) DO UPDATE SET role = excluded.role");
        for (const auto& m : draft.members) {
          member.reset();
          member.bind(1, id).bind(2, m.user_id).bind(3, to_string(m.role)).bind(4, now).run();
        }
        ConversationCreated out;
        if (draft.event) {
          auto event = append(db, id, std::move(*draft.event), now);
          if (!event) return event.error();
          out.event = std::move(event.value());
        }
        out.conversation = *load_conversation(db, id);
        out.created = true;
        return out;
      },
      std::move(done));
}

void SqliteStorage::get_conversation(ConversationId id, Completion<Conversation> done) {
  read<Conversation>(
      [id](Database& db) -> Result<Conversation> {
        if (auto c = load_conversation(db, id)) return *c;
        return make_error(Errc::not_found, "conversation " + std::to_string(id) + " not found");
      },
      std::move(done));
}

void SqliteStorage::list_conversations(UserId user, ConversationPage page,
                                       Completion<std::vector<Conversation>> done) {
  read<std::vector<Conversation>>(
      [user = std::move(user), page](Database& db) -> Result<std::vector<Conversation>> {
        Statement& st = db.prepare(std::string("SELECT ") + kConversationColumns +
                                   " FROM members mb JOIN conversations c ON c.id = mb.conversation_id"
                                   " WHERE mb.user_id = ?1 AND c.id > ?2 ORDER BY c.id LIMIT ?3");
        st.bind(1, user).bind(2, page.after).bind(3, std::clamp(page.limit, 1, 1000));
        std::vector<Conversation> out;
        while (st.step()) out.push_back(conversation_from(st));
        return out;
      },
      std::move(done));
}

void SqliteStorage::reset_stream(ConversationId id, Completion<Conversation> done) {
  writer_->submit<Conversation>(
      [id](Database& db) -> Result<Conversation> {
        Statement& st = db.prepare("UPDATE conversations SET epoch = ?2 WHERE id = ?1");
        st.bind(1, id).bind(2, new_epoch()).run();
        if (db.changes() == 0) return make_error(Errc::not_found, "conversation " + std::to_string(id) + " not found");
        return *load_conversation(db, id);
      },
      std::move(done));
}

void SqliteStorage::set_member(Member member, EventDraft event, Completion<MemberChange> done) {
  if (!valid_draft(event)) return done(bad_event());
  if (member.user_id.empty()) return done(make_error(Errc::bad_request, "member user id is empty"));
  TimeMs now = clock_.now_ms();
  writer_->submit<MemberChange>(
      [member = std::move(member), event = std::move(event), now](Database& db) mutable -> Result<MemberChange> {
        if (!load_conversation(db, member.conversation_id)) {
          return make_error(Errc::not_found, "conversation " + std::to_string(member.conversation_id) + " not found");
        }
        auto existing = load_member(db, member.conversation_id, member.user_id);
        if (existing && existing->role == member.role) return MemberChange{*existing, false, std::nullopt};
        member.joined_at = existing ? existing->joined_at : now;
        Statement& st = db.prepare(
            "INSERT INTO members (conversation_id, user_id, role, joined_at) VALUES (?1, ?2, ?3, ?4) "
            "ON CONFLICT (conversation_id, user_id) DO UPDATE SET role = excluded.role");
        st.bind(1, member.conversation_id).bind(2, member.user_id).bind(3, to_string(member.role));
        st.bind(4, member.joined_at).run();
        auto appended = append(db, member.conversation_id, std::move(event), now);
        if (!appended) return appended.error();
        return MemberChange{member, true, std::move(appended.value())};
      },
      std::move(done));
}

void SqliteStorage::remove_member(ConversationId id, UserId user, EventDraft event, Completion<MemberChange> done) {
  if (!valid_draft(event)) return done(bad_event());
  TimeMs now = clock_.now_ms();
  writer_->submit<MemberChange>(
      [id, user = std::move(user), event = std::move(event), now](Database& db) mutable -> Result<MemberChange> {
        auto existing = load_member(db, id, user);
        if (!existing) {
          return make_error(Errc::not_found, user + " is not a member of conversation " + std::to_string(id));
        }
        Statement& st = db.prepare("DELETE FROM members WHERE conversation_id = ?1 AND user_id = ?2");
        st.bind(1, id).bind(2, user).run();
        auto appended = append(db, id, std::move(event), now);
        if (!appended) return appended.error();
        return MemberChange{*existing, true, std::move(appended.value())};
      },
      std::move(done));
}

void SqliteStorage::get_member(ConversationId id, UserId user, Completion<Member> done) {
  read<Member>(
      [id, user = std::move(user)](Database& db) -> Result<Member> {
        if (auto m = load_member(db, id, user)) return *m;
        return make_error(Errc::not_found, user + " is not a member of conversation " + std::to_string(id));
      },
      std::move(done));
}

void SqliteStorage::list_members(ConversationId id, Completion<std::vector<Member>> done) {
  read<std::vector<Member>>(
      [id](Database& db) -> Result<std::vector<Member>> {
        if (!load_conversation(db, id)) {
          return make_error(Errc::not_found, "conversation " + std::to_string(id) + " not found");
        }
        Statement& st = db.prepare(
            "SELECT user_id, role, joined_at FROM members WHERE conversation_id = ?1 ORDER BY user_id");
        st.bind(1, id);
        std::vector<Member> out;
        while (st.step()) {
          out.push_back(Member{id, st.text(0), parse_role(st.text(1)).value_or(Role::member), st.integer(2)});
        }
        return out;
      },
      std::move(done));
}

void SqliteStorage::append_message(MessageDraft draft, EventDraft event, Completion<MessageWrite> done) {
  append_as(std::move(draft), std::move(event), false, std::move(done));
}

#if SWITCHBOARD_SDK_VERSION_MINOR >= 1
void SqliteStorage::append_message_as_member(MessageDraft draft, EventDraft event, Completion<MessageWrite> done) {
  append_as(std::move(draft), std::move(event), true, std::move(done));
}
#endif

void SqliteStorage::append_as(MessageDraft draft, EventDraft event, bool as_member, Completion<MessageWrite> done) {
  if (!valid_draft(event)) return done(bad_event());
  TimeMs now = clock_.now_ms();
  writer_->submit<MessageWrite>(
      [draft = std::move(draft), event = std::move(event), now,
       as_member](Database& db) mutable -> Result<MessageWrite> {
        // On the one writer, in the batch's transaction: no removal falls
        // between this check and the append.
        if (as_member && !load_member(db, draft.conversation_id, draft.author)) {
          if (!load_conversation(db, draft.conversation_id)) {
            return make_error(Errc::not_found, "conversation " + std::to_string(draft.conversation_id) + " not found");
          }
          return make_error(Errc::forbidden, "not a member of conversation " + std::to_string(draft.conversation_id));
        }
        if (!draft.client_key.empty()) {
          Statement& find = db.prepare(std::string("SELECT ") + kMessageColumns +
                                       " FROM messages m WHERE m.conversation_id = ?1 AND m.author = ?2"
                                       " AND m.client_key = ?3");
          find.bind(1, draft.conversation_id).bind(2, draft.author).bind(3, draft.client_key);
          if (find.step()) {
            MessageWrite repeat{message_from(find, 0), false, std::nullopt};
            find.reset();
            return repeat;
          }
        }
        if (draft.reply_to != 0) {
          auto target = load_message(db, draft.reply_to);
          if (!target || target->conversation_id != draft.conversation_id) {
            return make_error(Errc::not_found, "reply_to message " + std::to_string(draft.reply_to) +
                                                   " not found in this conversation");
          }
        }
        // The message takes its event's seq, so the seq comes first.
        auto seq = next_seq(db, draft.conversation_id);
        if (!seq) return seq.error();
        Statement& ins = db.prepare(
            "INSERT INTO messages (conversation_id, seq, author, text, reply_to, attachments, client_key, created_at)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
        ins.bind(1, draft.conversation_id).bind(2, *seq).bind(3, draft.author).bind(4, draft.text);
        ins.bind(5, draft.reply_to).bind(6, draft.attachments.empty() ? std::string("[]") : draft.attachments);
        if (draft.client_key.empty()) {
          ins.bind_null(7);
        } else {
          ins.bind(7, draft.client_key);
        }
        ins.bind(8, now).run();
        event.message_id = db.last_insert_id();
        Message message = *load_message(db, event.message_id);
        Event appended = insert_event(db, draft.conversation_id, *seq, std::move(event), now);
        appended.message = message;
        return MessageWrite{std::move(message), true, std::move(appended)};
      },
      std::move(done));
}

void SqliteStorage::edit_message(MessageId id, std::string text, EventDraft event, Completion<MessageWrite> done) {
  if (!valid_draft(event)) return done(bad_event());
  TimeMs now = clock_.now_ms();
  writer_->submit<MessageWrite>(
      [id, text = std::move(text), event = std::move(event), now](Database& db) mutable -> Result<MessageWrite> {
        auto message = load_message(db, id);
        if (!message) return make_error(Errc::not_found, "message " + std::to_string(id) + " not found");
        if (message->deleted) return make_error(Errc::conflict, "message " + std::to_string(id) + " is deleted");
        Statement& st = db.prepare("UPDATE messages SET text = ?2, edited_at = ?3 WHERE id = ?1");
        st.bind(1, id).bind(2, text).bind(3, now).run();
        event.message_id = id;
        auto appended = append(db, message->conversation_id, std::move(event), now);
        if (!appended) return appended.error();
        Message after = *load_message(db, id);
        appended->message = after;
        return MessageWrite{std::move(after), true, std::move(appended.value())};
      },
      std::move(done));
}

void SqliteStorage::delete_message(MessageId id, EventDraft event, Completion<MessageWrite> done) {
  if (!valid_draft(event)) return done(bad_event());
  TimeMs now = clock_.now_ms();
  writer_->submit<MessageWrite>(
      [id, event = std::move(event), now](Database& db) mutable -> Result<MessageWrite> {
        auto message = load_message(db, id);
        if (!message) return make_error(Errc::not_found, "message " + std::to_string(id) + " not found");
        if (message->deleted) return MessageWrite{*message, false, std::nullopt};
        // The content goes; the row stays as a tombstone so seq and replies still resolve.
        Statement& st = db.prepare("UPDATE messages SET text = '', attachments = '[]', deleted = 1 WHERE id = ?1");
        st.bind(1, id).run();
        event.message_id = id;
        auto appended = append(db, message->conversation_id, std::move(event), now);
        if (!appended) return appended.error();
        Message after = *load_message(db, id);
        appended->message = after;
        return MessageWrite{std::move(after), true, std::move(appended.value())};
      },
      std::move(done));
}

void SqliteStorage::get_message(MessageId id, Completion<Message> done) {
  read<Message>(
      [id](Database& db) -> Result<Message> {
        if (auto m = load_message(db, id)) return *m;
        return make_error(Errc::not_found, "message " + std::to_string(id) + " not found");
      },
      std::move(done));
}

void SqliteStorage::append_event(ConversationId id, EventDraft event, Completion<Event> done) {
  if (!valid_draft(event)) return done(bad_event());
  TimeMs now = clock_.now_ms();
  writer_->submit<Event>(
      [id, event = std::move(event), now](Database& db) mutable -> Result<Event> {
        if (event.message_id != 0) {
          auto message = load_message(db, event.message_id);
          if (!message || message->conversation_id != id) {
            return make_error(Errc::not_found, "message " + std::to_string(event.message_id) +
                                                   " not found in conversation " + std::to_string(id));
          }
        }
        return append(db, id, std::move(event), now);
      },
      std::move(done));
}

void SqliteStorage::read_events(EventQuery query, Completion<EventPage> done) {
  read<EventPage>(
      [query](Database& db) -> Result<EventPage> {
        auto conversation = load_conversation(db, query.conversation_id);
        if (!conversation) {
          return make_error(Errc::not_found, "conversation " + std::to_string(query.conversation_id) + " not found");
        }
        int limit = std::clamp(query.limit, 1, 1000);
        bool forward = query.direction == Direction::forward;
        Seq from = query.from;
        if (!forward && from <= 0) from = std::numeric_limits<Seq>::max();
        std::string sql = std::string(
                              "SELECT e.seq, e.type, e.actor, e.message_id, e.payload, e.created_at, "
                              "m.id IS NOT NULL, ") +
                          kMessageColumns +
                          " FROM events e LEFT JOIN messages m ON e.message_id != 0 AND m.id = e.message_id"
                          " WHERE e.conversation_id = ?1 AND " +
                          (forward ? "e.seq > ?2 ORDER BY e.seq ASC" : "e.seq < ?2 ORDER BY e.seq DESC") +
                          " LIMIT ?3";
        Statement& st = db.prepare(sql);
        st.bind(1, query.conversation_id).bind(2, from).bind(3, limit + 1);
        EventPage page;
        page.epoch = conversation->epoch;
        page.last_seq = conversation->last_seq;
        while (st.step()) {
          if (static_cast<int>(page.events.size()) == limit) {
            page.more = true;
            break;
          }
          Event e{query.conversation_id, st.integer(0), st.text(1), st.text(2), st.integer(3), st.text(4),
                  st.integer(5), std::nullopt};
          if (st.integer(6) != 0) e.message = message_from(st, 7);
          page.events.push_back(std::move(e));
        }
        st.reset();
        if (!forward) std::reverse(page.events.begin(), page.events.end());
        return page;
      },
      std::move(done));
}

void SqliteStorage::count_events(EventCount query, Completion<std::int64_t> done) {
  read<std::int64_t>(
      [query = std::move(query)](Database& db) -> Result<std::int64_t> {
        Statement& st = db.prepare(
            "SELECT count(*) FROM events e LEFT JOIN messages m ON e.message_id != 0 AND m.id = e.message_id"
            " WHERE e.conversation_id = ?1 AND e.seq > ?2 AND e.type = ?3 AND e.actor != ?4"
            " AND (?5 = 0 OR m.deleted IS NULL OR m.deleted = 0) AND (?6 = 0 OR e.seq <= ?6)");
        st.bind(1, query.conversation_id).bind(2, query.after).bind(3, query.type).bind(4, query.not_actor);
        st.bind(5, query.skip_deleted_messages ? 1 : 0).bind(6, query.upto);
        st.step();
        std::int64_t n = st.integer(0);
        st.reset();
        return n;
      },
      std::move(done));
}

void SqliteStorage::change_record(RecordChange change, Completion<RecordOutcome> done) {
  if (change.record.feature.empty()) return done(make_error(Errc::bad_request, "record feature is empty"));
  if (change.event && !valid_draft(*change.event)) return done(bad_event());
  if (change.event && change.record.conversation_id == 0) {
    return done(make_error(Errc::bad_request, "an event needs the record's conversation_id"));
  }
  TimeMs now = clock_.now_ms();
  writer_->submit<RecordOutcome>(
      [change = std::move(change), now](Database& db) mutable -> Result<RecordOutcome> {
        Record& r = change.record;
        auto existing = load_record(db, r.feature, r.conversation_id, r.key);
        bool write = record_change_applies(change.op, existing, r);
        RecordOutcome out;
        if (change.op == RecordOp::remove) {
          if (!existing) return out;
          Statement& st = db.prepare("DELETE FROM records WHERE feature = ?1 AND conversation_id = ?2 AND key = ?3");
          st.bind(1, r.feature).bind(2, r.conversation_id).bind(3, r.key).run();
          out.changed = true;
        } else if (!write) {
          out.record = existing;
          return out;
        } else {
          r.updated_at = now;
          Statement& st = db.prepare(
              "INSERT INTO records (feature, conversation_id, key, message_id, user_id, number, value, updated_at) "
              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (feature, conversation_id, key) DO UPDATE SET "
              "message_id = excluded.message_id, user_id = excluded.user_id, number = excluded.number, "
              "value = excluded.value, updated_at = excluded.updated_at");
          st.bind(1, r.feature).bind(2, r.conversation_id).bind(3, r.key).bind(4, r.message_id).bind(5, r.user);
          st.bind(6, r.number).bind(7, r.value).bind(8, now).run();
          out.changed = true;
          out.record = r;
        }
        if (change.event) {
          auto appended = append(db, r.conversation_id, std::move(*change.event), now);
          if (!appended) return appended.error();
          out.event = std::move(appended.value());
        }
        return out;
      },
      std::move(done));
}

void SqliteStorage::list_records(RecordQuery query, Completion<std::vector<Record>> done) {
  if (query.feature.empty()) return done(make_error(Errc::bad_request, "record query needs a feature"));
  read<std::vector<Record>>(
      [query = std::move(query)](Database& db) -> Result<std::vector<Record>> {
        std::string sql = std::string("SELECT ") + kRecordColumns + " FROM records WHERE feature = ?1";
        int next = 2;
        if (query.conversation_id != 0) sql += " AND conversation_id = ?" + std::to_string(next++);
        if (!query.key_prefix.empty()) {
          // Compared as bytes: substr on TEXT would count characters.
          sql += " AND substr(CAST(key AS BLOB), 1, " + std::to_string(query.key_prefix.size()) +
                 ") = CAST(?" + std::to_string(next++) + " AS BLOB)";
        }
        if (!query.user.empty()) sql += " AND user_id = ?" + std::to_string(next++);
        if (!query.message_ids.empty()) {
          sql += " AND message_id IN (";
          for (std::size_t i = 0; i < query.message_ids.size(); ++i) {
            sql += (i ? ",?" : "?") + std::to_string(next++);
          }
          sql += ")";
        }
        sql += " ORDER BY conversation_id, key LIMIT ?" + std::to_string(next);
        // Shapes vary with the query: prepare once, not into the cache.
        sqlite3_stmt* raw = nullptr;
        if (int rc = sqlite3_prepare_v2(db.handle(), sql.c_str(), -1, &raw, nullptr); rc != SQLITE_OK) {
          throw_sqlite(db.handle(), rc, "prepare record query");
        }
        Statement st(db.handle(), raw);
        int i = 1;
        st.bind(i++, query.feature);
        if (query.conversation_id != 0) st.bind(i++, query.conversation_id);
        if (!query.key_prefix.empty()) st.bind(i++, query.key_prefix);
        if (!query.user.empty()) st.bind(i++, query.user);
        for (MessageId id : query.message_ids) st.bind(i++, id);
        st.bind(i, std::clamp(query.limit, 1, 100000));
        std::vector<Record> out;
        while (st.step()) out.push_back(record_from(st));
        return out;
      },
      std::move(done));
}

Status SqliteStorage::flush() { return writer_->flush(); }

Health SqliteStorage::health() const noexcept {
  if (writer_->healthy()) return {true, {}};
  return {false, "storage-sqlite: last commit failed: " + writer_->last_error()};
}

}  // namespace sqlite_storage

SWITCHBOARD_PLUGIN(storage, "storage-sqlite", "0.1.0", sqlite_storage::SqliteStorage)

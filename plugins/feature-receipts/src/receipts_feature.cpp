// feature-receipts: `read` marks a conversation read up to a seq (never
// backwards), tells the other members with receipt.update (off for channels
// over a size), and keeps every member's unread count: events after their
// read position that are messages from others, pushed as unread.update after
// messages arrive — coalesced: one push per member and conversation per
// `unread_push_interval_ms`, however many messages came meanwhile, counted
// from the interval's events rather than one storage count per member.
#include <boost/json.hpp>
#include <chrono>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "switchboard/feature.hpp"
#include "switchboard/gather.hpp"

namespace receipts {

namespace json = boost::json;
using namespace switchboard;

namespace {

constexpr const char* kFeature = "receipts";

EventCount unread_after(ConversationId conversation, Seq position, const UserId& user) {
  return EventCount{conversation, position, "message.new", user, true};
}

Error membership_error(const Result<Member>& m) {
  return m.code() == Errc::not_found ? Error{Errc::forbidden, "not a member of this conversation"} : m.error();
}

}  // namespace

class ReceiptsFeature final : public Feature {
 public:
  explicit ReceiptsFeature(PluginContext& context)
      : announce_max_members_(context.config().integer_or("receipts_max_members", 100)),
        push_max_members_(context.config().integer_or("unread_push_max_members", 200)),
        push_interval_(context.config().integer_or("unread_push_interval_ms", 1000)) {
    if (announce_max_members_ < 0) context.config().fail("receipts_max_members", "must not be negative");
    if (push_max_members_ < 0) context.config().fail("unread_push_max_members", "must not be negative");
    if (push_interval_.count() < 0) context.config().fail("unread_push_interval_ms", "must not be negative");
  }

  std::vector<std::string> command_types() const override { return {"read", "unread"}; }
  std::vector<HttpRoute> http_routes() const override {
    return {{"POST", "/conversations/:id/read"}, {"GET", "/conversations/unread"}};
  }
  void start(FeatureHost& host) override { host_ = &host; }

  void handle_command(const Caller& caller, const Command& command, Reply reply) override {
    if (command.type == "unread") return unread(caller.user, std::move(reply));
    std::error_code ec;
    json::value frame = json::parse(command.frame, ec);
    if (ec || !frame.is_object()) return reply(Error{Errc::bad_request, "malformed command"});
    const auto& o = frame.as_object();
    const auto* id = o.if_contains("conversation_id");
    const auto* seq = o.if_contains("seq");
    if (!id || !id->is_int64()) return reply(Error{Errc::bad_request, "conversation_id: is required (an integer)"});
    if (!seq || !seq->is_int64()) return reply(Error{Errc::bad_request, "seq: is required (an integer)"});
    read(caller.user, id->as_int64(), seq->as_int64(), std::move(reply));
  }

  void handle_http(const Caller& caller, const HttpRequest& request, HttpReply reply) override {
    auto to_http = [reply](Result<std::string> r) {
      if (!r) return reply(HttpResponse{http_status(r.code()), error_json(r.error())});
      reply(HttpResponse{200, std::move(r.value())});
    };
    if (request.method == "GET") return unread(caller.user, to_http);
    ConversationId conversation = 0;
    for (const auto& [k, v] : request.params) {
      if (k == "id") conversation = std::atoll(v.c_str());
    }
    std::error_code ec;
    json::value body = json::parse(request.body, ec);
    const json::value* seq = (!ec && body.is_object()) ? body.as_object().if_contains("seq") : nullptr;
    if (!seq || !seq->is_int64()) return reply(HttpResponse{400, error_json(Error{Errc::bad_request, "seq: is required (an integer)"})});
    read(caller.user, conversation, seq->as_int64(), to_http);
  }

  // A new message: every other member's unread count grew. Counted and
  // pushed once per interval for all the messages of that interval.
  void on_event(const Event& event) override {
    bool arm = false;
    {
      std::lock_guard lock(mutex_);
      remember(event);
      if (event.type != "message.new") return;
      auto& grown = grown_[event.conversation_id];
      grown.last_seq = std::max(grown.last_seq, event.seq);
      grown.actors.insert(event.actor);
      arm = !armed_;
      armed_ = true;
    }
    if (!arm) return;
    if (push_interval_.count() == 0) return push_unread();
    host_->after(push_interval_, [this] { push_unread(); });
  }

 private:
  void read(const UserId& user, ConversationId conversation, Seq seq, Reply reply) {
    if (seq < 0) return reply(Error{Errc::bad_request, "seq: must not be negative"});
    Storage& storage = host_->storage();
    storage.get_member(conversation, user, [this, &storage, user, conversation, seq, reply](Result<Member> m) {
      if (!m) return reply(membership_error(m));
      storage.get_conversation(conversation, [this, &storage, user, seq, reply](Result<Conversation> c) {
        if (!c) return reply(c.error());
        Seq position = std::min(seq, c->last_seq);  // never past the stream
        RecordChange change{RecordOp::raise, Record{kFeature, c->id, user, 0, user, position, "", 0}, std::nullopt};
        storage.change_record(std::move(change), [this, &storage, user, c = c.value(), reply](Result<RecordOutcome> r) {
          if (!r) return reply(r.error());
          Seq stored = r->record ? r->record->number : 0;
          if (r->changed) announce(c, user, stored);
          storage.count_events(unread_after(c.id, stored, user), [this, c, user, stored, changed = r->changed, reply](Result<std::int64_t> n) {
            if (!n) return reply(n.error());
            // The reader's other devices learn the new count too.
            if (changed) {
              host_->send_to_member(c.id, user, "unread.update",
                                    json::serialize(json::object{{"unread", n.value()}, {"last_seq", c.last_seq}}));
            }
            reply(json::serialize(json::object{{"conversation_id", c.id}, {"seq", stored}, {"unread", n.value()}, {"changed", changed}}));
          });
        });
      });
    });
  }

  // Unread counts grew in some conversations since the last push: each
  // member gets the count of each, unless every new message was their own.
  struct Grown {
    Seq last_seq = 0;
    std::set<UserId> actors;
  };
  // Each member's unread count as of `counted_to`, kept between pushes so a
  // push counts only the messages since the last one, not all unread ones.
  struct MemberCount {
    Seq read = 0;  // the read position it was counted from
    std::int64_t unread = 0;
  };
  struct Tally {
    Seq counted_to = 0;  // 0: nothing counted yet
    std::map<UserId, MemberCount> members;
    std::vector<UserId> roster;  // the members then, counted or not
    bool counting = false;
    std::chrono::steady_clock::time_point touched;
  };
  static constexpr std::chrono::minutes kTallyIdle{10};  // tallies unused this long are dropped

  void push_unread() {
    std::map<ConversationId, Grown> grown;
    bool rearm = false;
    {
      std::lock_guard lock(mutex_);
      grown.swap(grown_);
      armed_ = false;
      auto now = std::chrono::steady_clock::now();
      for (auto it = grown.begin(); it != grown.end();) {
        Tally& t = tallies_[it->first];
        if (t.counting) {  // the last count is still running: next interval
          auto& later = grown_[it->first];
          later.last_seq = std::max(later.last_seq, it->second.last_seq);
          later.actors.insert(it->second.actors.begin(), it->second.actors.end());
          it = grown.erase(it);
          continue;
        }
        t.counting = true;
        t.touched = now;
        ++it;
      }
      std::erase_if(tallies_, [&](const auto& entry) {
        bool idle = !entry.second.counting && now - entry.second.touched > kTallyIdle;
        if (idle) forget(entry.first, std::numeric_limits<Seq>::max());
        return idle;
      });
      rearm = !grown_.empty();
      armed_ = rearm;
      // A conversation without messages this interval is not counted: what
      // it kept is not needed (the next count reads storage).
      for (auto it = seen_.begin(); it != seen_.end();) {
        auto id = (it++)->first;
        if (!grown.contains(id) && !grown_.contains(id)) forget(id, std::numeric_limits<Seq>::max());
      }
    }
    if (rearm) host_->after(std::max(push_interval_, std::chrono::milliseconds(10)), [this] { push_unread(); });
    // One conversation at a time: at most one conversation's members are
    // counted at once, so a push never floods the storage's read queue (and
    // the sends waiting in it) with every member of every conversation.
    auto queue = std::make_shared<std::vector<std::pair<ConversationId, Grown>>>(grown.begin(), grown.end());
    count_next(std::move(queue), 0);
  }

  // Paced over half an interval: each conversation's pushes leave as a small
  // burst of their own instead of every member's at once (a burst of
  // thousands of single-frame writes delays the messages queued behind it).
  void count_next(std::shared_ptr<std::vector<std::pair<ConversationId, Grown>>> queue, std::size_t next) {
    if (next == queue->size()) return;
    auto& [conversation, g] = (*queue)[next];
    count_unread(conversation, g, [this, queue, next] {
      // Always through a timer, never directly: a storage refusing at once
      // must not turn thousands of conversations into one deep recursion.
      auto pace = push_interval_ / (2 * static_cast<std::int64_t>(queue->size()));
      host_->after(pace, [this, queue, next] { count_next(queue, next + 1); });
    });
  }

  // What to count for one member: from their read position, or — when the
  // last count is still theirs (same read position) — only since it.
  struct PlannedCount {
    UserId user;
    Seq read = 0;
    Seq counted_to = 0;     // the last count's end, if it is still theirs
    std::int64_t kept = 0;  // the last count's result
    bool has_kept = false;
    Seq from(bool from_scratch) const { return has_kept && !from_scratch ? counted_to : read; }
    std::int64_t base(bool from_scratch) const { return has_kept && !from_scratch ? kept : 0; }
  };

  static std::vector<PlannedCount> plan_counts(const std::vector<UserId>& roster, const std::map<UserId, Seq>& read,
                                               const Tally& before) {
    std::vector<PlannedCount> plan;
    plan.reserve(roster.size());
    for (const auto& user : roster) {
      PlannedCount p{user};
      if (auto it = read.find(user); it != read.end()) p.read = it->second;
      auto known = before.members.find(user);
      if (known != before.members.end() && known->second.read == p.read && p.read <= before.counted_to) {
        p.counted_to = before.counted_to;
        p.kept = known->second.unread;
        p.has_kept = true;
      }
      plan.push_back(std::move(p));
    }
    return plan;
  }

  // Counts each member's unread messages in `conversation` up to g.last_seq
  // — only those after the last count, unless the member's read position
  // moved or a message was deleted since — and pushes them.
  void count_unread(ConversationId conversation, Grown g, std::function<void()> then) {
    std::optional<std::vector<UserId>> roster;
    {
      std::lock_guard lock(mutex_);
      roster = quiet_roster(conversation, g.last_seq);
    }
    if (roster) return count_roster(conversation, g, std::move(*roster), then);
    host_->storage().list_members(conversation, [this, conversation, g, then](Result<std::vector<Member>> members) {
      if (!members || static_cast<std::int64_t>(members->size()) > push_max_members_) {
        return counted(conversation, {}, {}, {}, then);
      }
      std::vector<UserId> users;
      users.reserve(members->size());
      for (auto& m : *members) users.push_back(std::move(m.user_id));
      count_roster(conversation, g, std::move(users), then);
    });
  }

  // The members as last counted, if every event from that count up to
  // `upto` was committed here (so this host saw them all, in order) and none
  // added or removed a member: then the member list needs no storage read.
  // Under mutex_. A member added on another host after `upto` is counted at
  // the next count (its event then fills the gap, which is not quiet).
  std::optional<std::vector<UserId>> quiet_roster(ConversationId conversation, Seq upto) const {
    auto t = tallies_.find(conversation);
    if (t == tallies_.end() || t->second.counted_to == 0 || t->second.roster.empty()) return std::nullopt;
    auto s = seen_.find(conversation);
    if (s == seen_.end()) return std::nullopt;
    Seq expected = t->second.counted_to + 1;
    for (auto it = s->second.upper_bound(t->second.counted_to); it != s->second.end(); ++it, ++expected) {
      if (it->first != expected || it->second.changes_members) return std::nullopt;
    }
    if (expected <= upto) return std::nullopt;  // some were not kept (the bounds): not known to be quiet
    return t->second.roster;
  }

  // Counts `roster`'s unread messages: read positions, then deletes since
  // the last count, then each member's share of what came since.
  void count_roster(ConversationId conversation, Grown g, std::vector<UserId> roster, std::function<void()> then) {
    Storage& storage = host_->storage();
    RecordQuery q{kFeature, conversation};
    storage.list_records(q, [this, &storage, conversation, g, then, roster = std::move(roster)](Result<std::vector<Record>> r) {
      if (!r) return counted(conversation, {}, {}, {}, then);
      std::map<UserId, Seq> read;
      for (const auto& rec : r.value()) read[rec.user] = rec.number;
      Tally before;
      {
        std::lock_guard lock(mutex_);
        before = tallies_[conversation];
      }
      Seq upto = std::max(g.last_seq, before.counted_to);
      auto plan = plan_counts(roster, read, before);
      if (before.counted_to == 0) return count_members(conversation, g, std::move(plan), upto, true, {}, then);
      // A message deleted since the last count may have been counted: then
      // everyone is counted from their read position again (deletes are
      // rare). Every delete since, also after `upto` (a delete can follow
      // the last message).
      EventCount deletes{conversation, before.counted_to, "message.delete", "", false, 0};
      storage.count_events(deletes, [this, conversation, g, then, upto, plan = std::move(plan),
                                     since = before.counted_to](Result<std::int64_t> n) mutable {
        if (!n || n.value() > 0) return count_members(conversation, g, std::move(plan), upto, true, {}, then);
        count_since(conversation, g, std::move(plan), upto, since, then);
      });
    });
  }

  // No message deleted since the last count: the events since are the same
  // for every member whose read position did not move, so each member's
  // share of them is counted here instead of one storage count each — from
  // the events this host committed, when they are all of them (one host, or
  // all of this conversation's traffic here), else read once.
  void count_since(ConversationId conversation, Grown g, std::vector<PlannedCount> plan, Seq upto, Seq since,
                   std::function<void()> then) {
    std::optional<std::map<UserId, std::int64_t>> shares;
    {
      std::lock_guard lock(mutex_);
      shares = shares_seen(conversation, since, upto, plan);
    }
    if (shares) return count_members(conversation, g, std::move(plan), upto, false, std::move(*shares), then);
    EventQuery q{conversation, Direction::forward, since, 1000};
    host_->storage().read_events(q, [this, conversation, g, then, upto, since,
                                     plan = std::move(plan)](Result<EventPage> page) mutable {
      std::map<UserId, std::int64_t> known;
      if (page && (!page->more || (!page->events.empty() && page->events.back().seq >= upto))) {
        known = shares_of(*page, since, upto, plan);
      }
      count_members(conversation, g, std::move(plan), upto, false, std::move(known), then);
    });
  }

  // Each kept member's count after the events of `page` in (since, upto]:
  // messages from others, not deleted, as count_events counts them.
  static std::map<UserId, std::int64_t> shares_of(const EventPage& page, Seq since, Seq upto,
                                                  const std::vector<PlannedCount>& plan) {
    std::int64_t messages = 0;
    std::map<UserId, std::int64_t> own;
    for (const auto& e : page.events) {
      if (e.seq <= since || e.seq > upto || e.type != "message.new") continue;
      if (e.message && e.message->deleted) continue;
      ++messages;
      ++own[e.actor];
    }
    return shares(messages, own, since, plan);
  }

  // The same from the events this host committed, if every seq of (since,
  // upto] is among them; nothing if one is missing (committed elsewhere,
  // or forgotten past the bound). Under mutex_. A message deleted since is
  // seen by the caller's count of deletes first.
  std::optional<std::map<UserId, std::int64_t>> shares_seen(ConversationId conversation, Seq since, Seq upto,
                                                            const std::vector<PlannedCount>& plan) {
    forget(conversation, since);
    auto it = seen_.find(conversation);
    if (it == seen_.end()) return std::nullopt;
    auto& events = it->second;
    std::int64_t messages = 0;
    std::map<UserId, std::int64_t> own;
    Seq expected = since + 1;
    for (const auto& [seq, seen] : events) {
      if (seq > upto) break;
      if (seq != expected) return std::nullopt;
      ++expected;
      if (seen.author.empty()) continue;
      ++messages;
      ++own[seen.author];
    }
    if (expected != upto + 1) return std::nullopt;
    return shares(messages, own, since, plan);
  }

  static std::map<UserId, std::int64_t> shares(std::int64_t messages, const std::map<UserId, std::int64_t>& own,
                                               Seq since, const std::vector<PlannedCount>& plan) {
    std::map<UserId, std::int64_t> out;
    for (const auto& p : plan) {
      if (!p.has_kept || p.counted_to != since) continue;
      auto mine = own.find(p.user);
      out[p.user] = p.kept + messages - (mine == own.end() ? 0 : mine->second);
    }
    return out;
  }

  // Counts in storage every member of `plan` not in `known`, then pushes
  // everyone's count.
  void count_members(ConversationId conversation, Grown g, std::vector<PlannedCount> plan, Seq upto,
                     bool from_scratch, std::map<UserId, std::int64_t> known, std::function<void()> then) {
    Storage& storage = host_->storage();
    std::vector<std::size_t> ask;
    for (std::size_t i = 0; i < plan.size(); ++i) {
      if (!known.contains(plan[i].user)) ask.push_back(i);  // from scratch, `known` is empty
    }
    gather<std::int64_t>(
        ask.size(),
        [&](std::size_t k, Completion<std::int64_t> done) {
          const PlannedCount& p = plan[ask[k]];
          EventCount count = unread_after(conversation, p.from(from_scratch), p.user);
          count.upto = upto;
          storage.count_events(count, std::move(done));
        },
        [this, conversation, g, then, upto, plan, ask, from_scratch,
         known = std::move(known)](std::vector<Result<std::int64_t>> counts) {
          std::map<UserId, MemberCount> now;
          for (const auto& p : plan) {
            if (auto it = known.find(p.user); it != known.end()) now[p.user] = MemberCount{p.read, it->second};
          }
          for (std::size_t k = 0; k < ask.size(); ++k) {
            if (!counts[k]) continue;  // counted from scratch next time
            const PlannedCount& p = plan[ask[k]];
            now[p.user] = MemberCount{p.read, p.base(from_scratch) + counts[k].value()};
          }
          for (const auto& [user, c] : now) {
            if (g.actors.size() == 1 && g.actors.contains(user)) continue;  // only their own messages
            host_->send_to_member(conversation, user, "unread.update",
                                  json::serialize(json::object{{"unread", c.unread}, {"last_seq", upto}}));
          }
          std::vector<UserId> roster;
          roster.reserve(plan.size());
          for (const auto& p : plan) roster.push_back(p.user);
          counted(conversation, std::move(now), upto, std::move(roster), then);
        });
  }

  // A count of `conversation` ended: what it found (nothing if it failed).
  // Then the next conversation is counted.
  void counted(ConversationId conversation, std::map<UserId, MemberCount> members, Seq upto,
               std::vector<UserId> roster, const std::function<void()>& then) {
    {
      std::lock_guard lock(mutex_);
      Tally& t = tallies_[conversation];
      t.counting = false;
      t.members = std::move(members);
      t.roster = std::move(roster);
      t.counted_to = t.members.empty() ? 0 : upto;
      forget(conversation, t.counted_to == 0 ? std::numeric_limits<Seq>::max() : upto);
    }
    then();
  }

  void announce(const Conversation& c, const UserId& user, Seq seq) {
    auto publish = [this, c, user, seq] {
      host_->publish_ephemeral(c.id, "receipt.update", json::serialize(json::object{{"user_id", user}, {"seq", seq}}), user);
    };
    if (c.kind != ConversationKind::channel) return publish();
    host_->storage().list_members(c.id, [this, publish](Result<std::vector<Member>> members) {
      if (members && static_cast<std::int64_t>(members->size()) <= announce_max_members_) publish();
    });
  }

  void unread(const UserId& user, Reply reply) {
    Storage& storage = host_->storage();
    storage.list_conversations(user, ConversationPage{0, 1000}, [this, &storage, user, reply](Result<std::vector<Conversation>> cs) {
      if (!cs) return reply(cs.error());
      RecordQuery q{kFeature, 0, "", {}, user};
      storage.list_records(q, [&storage, user, cs = cs.value(), reply](Result<std::vector<Record>> r) {
        if (!r) return reply(r.error());
        std::map<ConversationId, Seq> read;
        for (const auto& rec : r.value()) read[rec.conversation_id] = rec.number;
        gather<std::int64_t>(
            cs.size(),
            [&storage, &cs, &read, &user](std::size_t i, Completion<std::int64_t> done) {
              storage.count_events(unread_after(cs[i].id, read[cs[i].id], user), done);
            },
            [cs, read, reply](std::vector<Result<std::int64_t>> counts) mutable {
              json::array items;
              for (std::size_t i = 0; i < cs.size(); ++i) {
                items.push_back(json::object{{"conversation_id", cs[i].id},
                                             {"read_seq", read[cs[i].id]},
                                             {"unread", counts[i] ? counts[i].value() : 0}});
              }
              reply(json::serialize(json::object{{"conversations", std::move(items)}}));
            });
      });
    });
  }

  FeatureHost* host_ = nullptr;
  std::int64_t announce_max_members_;
  std::int64_t push_max_members_;
  std::chrono::milliseconds push_interval_;
  // The events this host committed since each conversation's last count:
  // by seq, what a count needs of each (Seen). At most kSeenMax
  // per conversation (past it the count reads storage); dropped with the tally.
  static constexpr std::size_t kSeenMax = 4096;         // per conversation
  static constexpr std::size_t kSeenTotalMax = 200000;  // for all of them
  // Only for a conversation counted before (else the next count starts from
  // scratch anyway). Past either bound an event is not kept: the gap sends
  // that count to storage. Under mutex_.
  void remember(const Event& event) {
    auto tally = tallies_.find(event.conversation_id);
    if (tally == tallies_.end() || tally->second.counted_to == 0 || seen_total_ >= kSeenTotalMax) return;
    auto& events = seen_[event.conversation_id];
    if (events.size() >= kSeenMax) return;
    Seen seen{event.type == "message.new" ? event.actor : UserId(),
              event.type == "member.join" || event.type == "member.leave" || event.type == "conversation.create"};
    if (events.emplace(event.seq, std::move(seen)).second) ++seen_total_;
  }
  // Drops what is kept of `conversation` up to `upto`. Under mutex_.
  void forget(ConversationId conversation, Seq upto) {
    auto it = seen_.find(conversation);
    if (it == seen_.end()) return;
    auto& events = it->second;
    auto end = events.upper_bound(upto);
    seen_total_ -= static_cast<std::size_t>(std::distance(events.begin(), end));
    events.erase(events.begin(), end);
    if (events.empty()) seen_.erase(it);
  }

  std::mutex mutex_;
  struct Seen {
    UserId author;         // a message's; empty for other events
    bool changes_members;  // adds or removes a member
  };
  std::map<ConversationId, std::map<Seq, Seen>> seen_;
  std::size_t seen_total_ = 0;  // entries in seen_
  std::map<ConversationId, Grown> grown_;    // since the last push
  std::map<ConversationId, Tally> tallies_;  // counts kept between pushes
  bool armed_ = false;                       // a push is due
};

}  // namespace receipts

SWITCHBOARD_PLUGIN(feature, "feature-receipts", "0.1.0", receipts::ReceiptsFeature)

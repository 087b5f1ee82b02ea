// The storage contract: what every storage plugin must do so that nothing
// acknowledged is lost and resume is exact. Tests never assume an empty
// database: each makes its own conversations.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "switchboard/contract/plugin_under_test.hpp"
#include "switchboard/wait.hpp"

namespace switchboard::contract {
namespace {

std::string unique(const std::string& base) {
  static std::mt19937_64 rng{std::random_device{}()};
  return base + "-" + std::to_string(rng() % 1000000000);
}

EventDraft ev(std::string type, UserId actor, std::string payload = "{}") {
  return EventDraft{std::move(type), std::move(actor), 0, std::move(payload)};
}

// Synchronous helpers over the asynchronous interface.
class StorageContract : public ::testing::Test {
 protected:
  void SetUp() override { storage = plugin_under_test().make_storage(); }
  void TearDown() override { storage.reset(); }

  void reopen() {
    storage.reset();
    storage = plugin_under_test().make_storage();
  }

  Conversation group(const std::vector<std::pair<UserId, Role>>& members) {
    ConversationDraft d;
    d.kind = ConversationKind::group;
    d.name = unique("group");
    d.creator = members.front().first;
    for (const auto& [u, r] : members) d.members.push_back(Member{0, u, r, 0});
    auto r = wait<ConversationCreated>([&](auto done) { storage->create_conversation(d, done); });
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.value().conversation;
  }

  Result<MessageWrite> send(ConversationId c, const UserId& author, const std::string& text,
                            const std::string& key = "") {
    MessageDraft d{c, author, text, 0, "[]", key};
    return wait<MessageWrite>([&](auto done) { storage->append_message(d, ev("message.new", author), done); });
  }

  Result<EventPage> events(ConversationId c, Direction dir, Seq from, int limit) {
    return wait<EventPage>([&](auto done) { storage->read_events(EventQuery{c, dir, from, limit}, done); });
  }

  Result<Conversation> get(ConversationId c) {
    return wait<Conversation>([&](auto done) { storage->get_conversation(c, done); });
  }

  Result<RecordOutcome> change(RecordOp op, Record r, std::optional<EventDraft> e = std::nullopt) {
    return wait<RecordOutcome>([&](auto done) { storage->change_record(RecordChange{op, r, e}, done); });
  }

  std::shared_ptr<Storage> storage;
};

std::vector<Seq> seqs(const EventPage& page) {
  std::vector<Seq> out;
  for (const auto& e : page.events) out.push_back(e.seq);
  return out;
}

std::vector<Seq> range(Seq first, Seq last) {
  std::vector<Seq> out;
  for (Seq s = first; s <= last; ++s) out.push_back(s);
  return out;
}

TEST_F(StorageContract, CreatesAndFindsConversations) {
  UserId alice = unique("alice"), bob = unique("bob"), carol = unique("carol");
  ConversationDraft d{ConversationKind::group, "team", alice, {{0, alice, Role::owner, 0}, {0, bob, Role::member, 0}},
                      ev("conversation.create", alice)};
  auto created = wait<ConversationCreated>([&](auto done) { storage->create_conversation(d, done); });
  ASSERT_TRUE(created.ok()) << created.error().message;
  const Conversation& c = created->conversation;
  EXPECT_TRUE(created->created);
  EXPECT_GT(c.id, 0);
  EXPECT_EQ(c.kind, ConversationKind::group);
  EXPECT_EQ(c.name, "team");
  EXPECT_EQ(c.creator, alice);
  EXPECT_FALSE(c.epoch.empty());
  ASSERT_TRUE(created->event.has_value());
  EXPECT_EQ(created->event->seq, 1);
  EXPECT_EQ(c.last_seq, 1);

  auto got = get(c.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->epoch, c.epoch);
  EXPECT_EQ(got->name, "team");

  auto mine = wait<std::vector<Conversation>>([&](auto done) { storage->list_conversations(bob, {}, done); });
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_EQ(mine->front().id, c.id);
  auto none = wait<std::vector<Conversation>>([&](auto done) { storage->list_conversations(carol, {}, done); });
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  EXPECT_EQ(get(c.id + 1000000000).code(), Errc::not_found);
}

TEST_F(StorageContract, ListsAUsersConversationsInPages) {
  UserId alice = unique("alice");
  std::vector<ConversationId> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(group({{alice, Role::owner}}).id);
  auto first = wait<std::vector<Conversation>>(
      [&](auto done) { storage->list_conversations(alice, ConversationPage{0, 3}, done); });
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 3u);
  auto rest = wait<std::vector<Conversation>>(
      [&](auto done) { storage->list_conversations(alice, ConversationPage{first->back().id, 3}, done); });
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 2u);
  std::vector<ConversationId> all;
  for (const auto& c : *first) all.push_back(c.id);
  for (const auto& c : *rest) all.push_back(c.id);
  EXPECT_EQ(all, ids);
}

// SDK 1.1.
TEST_F(StorageContract, AppendMessageAsMemberAppendsOnlyForMembers) {
  if (plugin_under_test().sdk_minor() < 1) GTEST_SKIP() << "the plugin was built against SDK 1.0";
  UserId alice = unique("alice"), bob = unique("bob"), carol = unique("carol");
  Conversation c = group({{alice, Role::owner}, {bob, Role::member}});
  auto as_member = [&](ConversationId id, const UserId& author, const std::string& text) {
    MessageDraft d{id, author, text, 0, "[]", ""};
    return wait<MessageWrite>(
        [&](auto done) { storage->append_message_as_member(d, ev("message.new", author), done); });
  };
  auto sent = as_member(c.id, bob, "from a member");
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  EXPECT_TRUE(sent->changed);
  ASSERT_TRUE(sent->event.has_value());
  EXPECT_EQ(sent->message.text, "from a member");

  auto outsider = as_member(c.id, carol, "from outside");
  EXPECT_EQ(outsider.code(), Errc::forbidden);
  auto nowhere = as_member(c.id + 1000000000, bob, "nowhere");
  EXPECT_EQ(nowhere.code(), Errc::not_found);
  auto page = events(c.id, Direction::forward, 0, 100);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->last_seq, sent->event->seq) << "a refused append appends nothing";
}

// A storage that writes queued appends together (a batch) still judges
// each one's membership as if it came alone.
TEST_F(StorageContract, AppendsAsMemberSubmittedTogetherAreJudgedEachAlone) {
  if (plugin_under_test().sdk_minor() < 1) GTEST_SKIP() << "the plugin was built against SDK 1.0";
  UserId alice = unique("alice"), bob = unique("bob"), carol = unique("carol");
  Conversation c = group({{alice, Role::owner}, {bob, Role::member}});
  const Seq before = get(c.id)->last_seq;
  struct Want {
    MessageDraft draft;
    bool as_member;
    std::promise<Result<MessageWrite>> answer;
  };
  // Shared with the completions: an early ASSERT leaves none dangling.
  std::vector<std::shared_ptr<Want>> burst;
  for (int i = 0; i < 30; ++i) {
    const UserId& author = i % 3 == 0 ? carol : (i % 3 == 1 ? alice : bob);
    // Every fifth of carol's goes through plain append_message, which does
    // not check: mixed in the same burst.
    bool as_member = !(i % 3 == 0 && i % 5 == 0);
    burst.push_back(std::make_shared<Want>(
        Want{{c.id, author, "m" + std::to_string(i), 0, "[]", i % 2 ? "key-" + std::to_string(i) : ""}, as_member, {}}));
  }
  burst.push_back(std::make_shared<Want>(Want{{c.id + 1000000000, alice, "nowhere", 0, "[]", ""}, true, {}}));
  std::vector<std::future<Result<MessageWrite>>> answers;
  for (auto& w : burst) {
    answers.push_back(w->answer.get_future());
    auto done = [want = w](Result<MessageWrite> r) { want->answer.set_value(std::move(r)); };
    if (w->as_member) {
      storage->append_message_as_member(w->draft, ev("message.new", w->draft.author), done);
    } else {
      storage->append_message(w->draft, ev("message.new", w->draft.author), done);
    }
  }
  std::vector<Seq> written;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    ASSERT_EQ(answers[i].wait_for(std::chrono::seconds(30)), std::future_status::ready) << "an append never answered";
    auto got = answers[i].get();
    const Want& w = *burst[i];
    if (w.draft.conversation_id != c.id) {
      EXPECT_EQ(got.code(), Errc::not_found) << i;
    } else if (w.draft.author == carol && w.as_member) {
      EXPECT_EQ(got.code(), Errc::forbidden) << i << ": an outsider's append was written";
    } else {
      ASSERT_TRUE(got.ok()) << i << ": " << got.error().message;
      EXPECT_TRUE(got->changed) << i;
      EXPECT_EQ(got->message.author, w.draft.author);
      written.push_back(got->message.seq);
    }
  }
  std::sort(written.begin(), written.end());
  EXPECT_EQ(written, range(before + 1, before + static_cast<Seq>(written.size()))) << "refused appends consumed seqs";
  auto page = events(c.id, Direction::forward, before, 100);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(seqs(*page), written);
}

TEST_F(StorageContract, DirectConversationIsCreatedOncePerPairEvenUnderRaces) {
  UserId a = unique("a"), b = unique("b");
  // The host makes the pair's key (any format will do here): the same for
  // either order.
  const std::string key = "pair:" + std::min(a, b) + "|" + std::max(a, b);
  auto make = [&](const UserId& x, const UserId& y) {
    ConversationDraft d{ConversationKind::direct, "", x, {{0, x, Role::member, 0}, {0, y, Role::member, 0}},
                        std::nullopt, key};
    return wait<ConversationCreated>([&](auto done) { storage->create_conversation(d, done); });
  };
  std::vector<std::future<Result<ConversationCreated>>> racing;
  for (int i = 0; i < 8; ++i) {
    racing.push_back(std::async(std::launch::async, [&, i] { return i % 2 ? make(a, b) : make(b, a); }));
  }
  std::set<ConversationId> ids;
  int created = 0;
  for (auto& f : racing) {
    auto r = f.get();
    ASSERT_TRUE(r.ok()) << r.error().message;
    ids.insert(r->conversation.id);
    created += r->created;
  }
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(created, 1);

  ConversationDraft self{ConversationKind::direct, "", a, {{0, a, Role::member, 0}, {0, a, Role::member, 0}},
                         std::nullopt, "pair:" + a + "|" + a};
  auto bad = wait<ConversationCreated>([&](auto done) { storage->create_conversation(self, done); });
  EXPECT_EQ(bad.code(), Errc::bad_request);
  ConversationDraft keyless{ConversationKind::direct, "", a, {{0, a, Role::member, 0}, {0, b, Role::member, 0}},
                            std::nullopt, ""};
  bad = wait<ConversationCreated>([&](auto done) { storage->create_conversation(keyless, done); });
  EXPECT_EQ(bad.code(), Errc::bad_request) << "a direct conversation without its key";
}

// One thread per entry of `writers`, each keeping `each` appends in flight
// on its storage instance, as a busy host does; the acknowledged seqs, sorted.
std::vector<Seq> append_concurrently(const std::vector<std::shared_ptr<Storage>>& writers, ConversationId c,
                                     const UserId& author, int each, std::atomic<int>& failures) {
  std::mutex mutex;
  std::vector<Seq> acked;
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < writers.size(); ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::future<Result<MessageWrite>>> inflight;
      for (int i = 0; i < each; ++i) {
        auto promise = std::make_shared<std::promise<Result<MessageWrite>>>();
        inflight.push_back(promise->get_future());
        writers[t]->append_message(MessageDraft{c, author, std::to_string(t) + "/" + std::to_string(i)},
                                   ev("message.new", author),
                                   [promise](Result<MessageWrite> r) { promise->set_value(std::move(r)); });
      }
      for (auto& f : inflight) {
        auto r = f.get();
        if (!r.ok()) {
          ++failures;
          continue;
        }
        std::lock_guard lock(mutex);
        acked.push_back(r->event->seq);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::sort(acked.begin(), acked.end());
  return acked;
}

TEST_F(StorageContract, SeqIsGapFreeUnderConcurrentAppends) {
  constexpr int kThreads = 8;
  constexpr int kEach = 50;
  UserId alice = unique("alice");
  Conversation c = group({{alice, Role::owner}});
  std::atomic<int> failures{0};
  auto acked = append_concurrently(std::vector<std::shared_ptr<Storage>>(kThreads, storage), c.id, alice, kEach, failures);
  ASSERT_EQ(failures.load(), 0);
  EXPECT_EQ(acked, range(1, kThreads * kEach)) << "acknowledged seqs have gaps or duplicates";
  auto page = events(c.id, Direction::forward, 0, 1000);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(seqs(*page), range(1, kThreads * kEach));
  EXPECT_EQ(page->last_seq, kThreads * kEach);
  for (const auto& e : page->events) {
    ASSERT_TRUE(e.message.has_value()) << "message event " << e.seq << " has no message";
    EXPECT_EQ(e.message->seq, e.seq);
  }
}

// Several hosts share one database: each opens its own instance. A storage
// whose instances share nothing (e.g. in memory) is single-host and skips this.
TEST_F(StorageContract, SeqIsGapFreeAcrossInstancesSharingTheDatabase) {
  constexpr int kInstances = 3;
  constexpr int kEach = 60;
  UserId alice = unique("alice");
  Conversation c = group({{alice, Role::owner}});
  std::vector<std::shared_ptr<Storage>> hosts{storage};
  for (int i = 1; i < kInstances; ++i) hosts.push_back(plugin_under_test().make_storage());
  auto seen = wait<Conversation>([&](auto done) { hosts.back()->get_conversation(c.id, done); });
  if (!seen.ok() && seen.error().code == Errc::not_found) GTEST_SKIP() << "instances do not share a database";
  ASSERT_TRUE(seen.ok()) << seen.error().message;
  std::atomic<int> failures{0};
  auto acked = append_concurrently(hosts, c.id, alice, kEach, failures);
  ASSERT_EQ(failures.load(), 0);
  EXPECT_EQ(acked, range(1, kInstances * kEach)) << "acknowledged seqs have gaps or duplicates across instances";
  auto page = events(c.id, Direction::forward, 0, 1000);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(seqs(*page), range(1, kInstances * kEach));
}

TEST_F(StorageContract, SameClientKeyReturnsTheOriginalAndAppendsNothing) {
  UserId alice = unique("alice"), bob = unique("bob");
  Conversation c = group({{alice, Role::owner}, {bob, Role::member}});
  auto first = send(c.id, alice, "hello", "key-1");
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(first->changed);
  auto again = send(c.id, alice, "hello (retried)", "key-1");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->changed);
  EXPECT_FALSE(again->event.has_value());
  EXPECT_EQ(again->message.id, first->message.id);
  EXPECT_EQ(again->message.text, "hello");
  EXPECT_EQ(again->message.seq, first->message.seq);
  EXPECT_EQ(get(c.id)->last_seq, first->message.seq);

  // Keys are per author: another user's "key-1" is another message.
  auto other = send(c.id, bob, "mine", "key-1");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->changed);
  EXPECT_NE(other->message.id, first->message.id);

  // Racing retries of one key make one message.
  std::vector<std::future<Result<MessageWrite>>> racing;
  for (int i = 0; i < 8; ++i) {
    racing.push_back(std::async(std::launch::async, [&] { return send(c.id, alice, "race", "key-race"); }));
  }
  std::set<MessageId> ids;
  int changed = 0;
  for (auto& f : racing) {
    auto r = f.get();
    ASSERT_TRUE(r.ok());
    ids.insert(r->message.id);
    changed += r->changed;
  }
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(changed, 1);
}

TEST_F(StorageContract, PagesEventsBothWays) {
  UserId alice = unique("alice");
  Conversation c = group({{alice, Role::owner}});
  for (int i = 1; i <= 25; ++i) ASSERT_TRUE(send(c.id, alice, "m" + std::to_string(i)).ok());

  auto p = events(c.id, Direction::forward, 0, 10);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(seqs(*p), range(1, 10));
  EXPECT_TRUE(p->more);
  EXPECT_EQ(p->last_seq, 25);
  EXPECT_EQ(p->epoch, c.epoch);
  EXPECT_EQ(p->events.front().message->text, "m1");

  p = events(c.id, Direction::forward, 20, 10);
  EXPECT_EQ(seqs(*p), range(21, 25));
  EXPECT_FALSE(p->more);

  p = events(c.id, Direction::forward, 25, 10);
  EXPECT_TRUE(p->events.empty());
  EXPECT_FALSE(p->more);

  p = events(c.id, Direction::backward, 0, 10);  // the newest
  EXPECT_EQ(seqs(*p), range(16, 25));
  EXPECT_TRUE(p->more);

  p = events(c.id, Direction::backward, 16, 10);
  EXPECT_EQ(seqs(*p), range(6, 15));
  EXPECT_TRUE(p->more);

  p = events(c.id, Direction::backward, 6, 10);
  EXPECT_EQ(seqs(*p), range(1, 5));
  EXPECT_FALSE(p->more);

  EXPECT_EQ(events(c.id + 1000000000, Direction::forward, 0, 10).code(), Errc::not_found);
}

TEST_F(StorageContract, EditsAndSoftDeletesShowInHistory) {
  UserId alice = unique("alice");
  Conversation c = group({{alice, Role::owner}});
  auto sent = send(c.id, alice, "first draft");
  ASSERT_TRUE(sent.ok());
  MessageId id = sent->message.id;

  auto edited = wait<MessageWrite>([&](auto done) { storage->edit_message(id, "final", ev("message.edit", alice), done); });
  ASSERT_TRUE(edited.ok()) << edited.error().message;
  EXPECT_EQ(edited->message.text, "final");
  EXPECT_GT(edited->message.edited_at, 0);
  ASSERT_TRUE(edited->event.has_value());
  EXPECT_EQ(edited->event->seq, sent->message.seq + 1);
  EXPECT_EQ(edited->event->message_id, id);

  auto history = events(c.id, Direction::forward, 0, 100);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->events.size(), 2u);
  EXPECT_EQ(history->events[0].type, "message.new");
  EXPECT_EQ(history->events[0].message->text, "final") << "history shows the message as it is now";
  EXPECT_EQ(history->events[1].type, "message.edit");

  auto deleted = wait<MessageWrite>([&](auto done) { storage->delete_message(id, ev("message.delete", alice), done); });
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(deleted->changed);
  EXPECT_TRUE(deleted->message.deleted);
  EXPECT_TRUE(deleted->message.text.empty());
  EXPECT_EQ(deleted->event->seq, sent->message.seq + 2);

  history = events(c.id, Direction::forward, 0, 100);
  ASSERT_EQ(history->events.size(), 3u);
  for (const auto& e : history->events) {
    ASSERT_TRUE(e.message.has_value());
    EXPECT_TRUE(e.message->deleted);
    EXPECT_TRUE(e.message->text.empty()) << "deleted content is still in history at seq " << e.seq;
  }
  auto fetched = wait<Message>([&](auto done) { storage->get_message(id, done); });
  ASSERT_TRUE(fetched.ok());
  EXPECT_TRUE(fetched->deleted);
  EXPECT_TRUE(fetched->text.empty());

  auto again = wait<MessageWrite>([&](auto done) { storage->delete_message(id, ev("message.delete", alice), done); });
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->changed);
  EXPECT_EQ(get(c.id)->last_seq, sent->message.seq + 2);

  auto late_edit = wait<MessageWrite>([&](auto done) { storage->edit_message(id, "zombie", ev("message.edit", alice), done); });
  EXPECT_EQ(late_edit.code(), Errc::conflict);
  auto missing = wait<MessageWrite>([&](auto done) { storage->edit_message(id + 1000000000, "x", ev("message.edit", alice), done); });
  EXPECT_EQ(missing.code(), Errc::not_found);
}

TEST_F(StorageContract, RepliesMustPointIntoTheSameConversation) {
  UserId alice = unique("alice");
  Conversation c1 = group({{alice, Role::owner}});
  Conversation c2 = group({{alice, Role::owner}});
  auto original = send(c1.id, alice, "question");
  ASSERT_TRUE(original.ok());
  MessageDraft reply{c1.id, alice, "answer", original->message.id, "[{\"file_name\":\"a.png\"}]", ""};
  auto ok = wait<MessageWrite>([&](auto done) { storage->append_message(reply, ev("message.new", alice), done); });
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->message.reply_to, original->message.id);
  EXPECT_EQ(ok->message.attachments, "[{\"file_name\":\"a.png\"}]");
  reply.conversation_id = c2.id;
  auto bad = wait<MessageWrite>([&](auto done) { storage->append_message(reply, ev("message.new", alice), done); });
  EXPECT_EQ(bad.code(), Errc::not_found);
  EXPECT_EQ(get(c2.id)->last_seq, 0) << "a refused write must not consume a seq";
  MessageDraft nowhere{c2.id + 1000000000, alice, "x"};
  auto lost = wait<MessageWrite>([&](auto done) { storage->append_message(nowhere, ev("message.new", alice), done); });
  EXPECT_EQ(lost.code(), Errc::not_found);
}

// Appends submitted at once (a storage may write them together, in one
// transaction or one statement, or on several connections) each keep their
// own answer: the new ones of a conversation take exactly its next seqs, a
// repeated client
// key — stored before, or twice in the burst — answers the original, and a
// bad reply_to or an unknown conversation fails alone, consuming no seq.
TEST_F(StorageContract, AppendsSubmittedTogetherKeepTheirOwnAnswers) {
  UserId alice = unique("alice"), bob = unique("bob");
  Conversation c1 = group({{alice, Role::owner}, {bob, Role::member}});
  Conversation c2 = group({{alice, Role::owner}});
  auto stored = send(c1.id, alice, "stored before", "old-key");
  ASSERT_TRUE(stored.ok());
  auto elsewhere = send(c2.id, alice, "in c2");
  ASSERT_TRUE(elsewhere.ok());
  const Seq c1_before = get(c1.id)->last_seq, c2_before = get(c2.id)->last_seq;

  struct Want {
    MessageDraft draft;
    std::promise<Result<MessageWrite>> answer;
  };
  std::vector<std::unique_ptr<Want>> burst;
  auto add = [&](MessageDraft d) {
    burst.push_back(std::make_unique<Want>(Want{std::move(d), {}}));
  };
  for (int i = 0; i < 20; ++i) add({i % 2 ? c1.id : c2.id, i % 3 ? alice : bob, "m" + std::to_string(i), 0, "[]", ""});
  add({c1.id, alice, "retry of the stored one", 0, "[]", "old-key"});             // 20
  add({c1.id, alice, "new with a key", 0, "[]", "new-key"});                      // 21
  add({c1.id, alice, "the same key again", 0, "[]", "new-key"});                  // 22
  add({c1.id, bob, "bob's own new-key", 0, "[]", "new-key"});                     // 23
  add({c1.id, alice, "a reply", stored->message.id, "[]", ""});                   // 24
  add({c1.id, alice, "a reply into another conversation", elsewhere->message.id, "[]", ""});  // 25
  add({c2.id + 1000000000, alice, "nowhere", 0, "[]", ""});                       // 26
  add({c2.id, alice, "quote \" and backslash \\ and {braces}, commas", 0, R"([{"file_name":"a,b.png"}])", "k\"ey"});  // 27
  // A key answers before reply_to is judged, as for one append alone.
  add({c1.id, alice, "stored key, bad reply_to", elsewhere->message.id, "[]", "old-key"});  // 28
  add({c1.id, alice, "burst key, bad reply_to", elsewhere->message.id, "[]", "new-key"});   // 29
  std::vector<std::future<Result<MessageWrite>>> answers;
  for (auto& w : burst) {
    answers.push_back(w->answer.get_future());
    storage->append_message(w->draft, ev("message.new", w->draft.author),
                            [want = w.get()](Result<MessageWrite> r) { want->answer.set_value(std::move(r)); });
  }
  std::vector<Result<MessageWrite>> got;
  for (auto& f : answers) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready) << "an append never answered";
    got.push_back(f.get());
  }
  std::map<ConversationId, std::vector<Seq>> new_seqs;
  // #21 and #22 share a key: whichever is written first is new, the other
  // its duplicate (a storage with several writers may take either first).
  ASSERT_TRUE(got[21].ok() && got[22].ok());
  EXPECT_EQ(got[21]->changed + got[22]->changed, 1) << "a key repeated in one burst made two messages";
  EXPECT_EQ(got[22]->message.id, got[21]->message.id);
  const std::size_t repeated = got[21]->changed ? 22 : 21;
  EXPECT_FALSE(got[repeated]->event.has_value());
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (i == 20 || i == repeated || i == 25 || i == 26 || i >= 28) continue;
    ASSERT_TRUE(got[i].ok()) << i << ": " << got[i].error().message;
    EXPECT_TRUE(got[i]->changed) << i;
    ASSERT_TRUE(got[i]->event.has_value()) << i;
    EXPECT_EQ(got[i]->event->seq, got[i]->message.seq);
    EXPECT_EQ(got[i]->message.text, burst[i]->draft.text);
    EXPECT_EQ(got[i]->message.author, burst[i]->draft.author);
    new_seqs[burst[i]->draft.conversation_id].push_back(got[i]->message.seq);
  }
  // Exactly the next seqs of each conversation (in whichever order).
  for (auto& [id, list] : new_seqs) std::sort(list.begin(), list.end());
  EXPECT_EQ(new_seqs[c1.id], range(c1_before + 1, c1_before + static_cast<Seq>(new_seqs[c1.id].size())));
  EXPECT_EQ(new_seqs[c2.id], range(c2_before + 1, c2_before + static_cast<Seq>(new_seqs[c2.id].size())));
  EXPECT_EQ(get(c1.id)->last_seq, c1_before + static_cast<Seq>(new_seqs[c1.id].size())) << "a seq was consumed by a refused or repeated append";
  EXPECT_EQ(get(c2.id)->last_seq, c2_before + static_cast<Seq>(new_seqs[c2.id].size()));
  ASSERT_TRUE(got[20].ok());
  EXPECT_FALSE(got[20]->changed);
  EXPECT_EQ(got[20]->message.id, stored->message.id);
  EXPECT_NE(got[23]->message.id, got[21]->message.id) << "keys are per author";
  EXPECT_EQ(got[24]->message.reply_to, stored->message.id);
  EXPECT_EQ(got[25].code(), Errc::not_found);
  ASSERT_TRUE(got[28].ok()) << got[28].error().message;
  EXPECT_EQ(got[28]->message.id, stored->message.id);
  // Written after #21/#22 it is their duplicate; on another writer before
  // them, its reply_to fails it. Never a second message with that key.
  if (got[29].ok()) {
    EXPECT_EQ(got[29]->message.id, got[21]->message.id);
    EXPECT_FALSE(got[29]->changed);
  } else {
    EXPECT_EQ(got[29].code(), Errc::not_found);
  }
  EXPECT_EQ(got[26].code(), Errc::not_found);
  EXPECT_EQ(got[27]->message.text, burst[27]->draft.text) << "text survives whatever it contains";
  EXPECT_EQ(got[27]->message.attachments, burst[27]->draft.attachments);
  EXPECT_EQ(got[27]->message.client_key, "k\"ey");
  // And storage agrees with the answers.
  auto page = events(c1.id, Direction::forward, c1_before, 100);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(seqs(*page), new_seqs[c1.id]);
  for (const auto& e : page->events) {
    ASSERT_TRUE(e.message.has_value());
    EXPECT_EQ(e.message->seq, e.seq);
  }
  auto retried = send(c2.id, alice, "retry", "k\"ey");
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ(retried->message.id, got[27]->message.id) << "a key with a quote was not stored as given";
}

TEST_F(StorageContract, MembershipAndRolesAreEvents) {
  UserId alice = unique("alice"), bob = unique("bob");
  Conversation c = group({{alice, Role::owner}});
  auto set = [&](const UserId& u, Role r) {
    return wait<MemberChange>([&](auto done) { storage->set_member(Member{c.id, u, r, 0}, ev("member.join", alice), done); });
  };
  auto added = set(bob, Role::member);
  ASSERT_TRUE(added.ok()) << added.error().message;
  EXPECT_TRUE(added->changed);
  ASSERT_TRUE(added->event.has_value());
  EXPECT_EQ(added->event->seq, 1);
  EXPECT_EQ(added->event->type, "member.join");

  auto same = set(bob, Role::member);
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->changed);
  EXPECT_FALSE(same->event.has_value());

  auto promoted = set(bob, Role::admin);
  ASSERT_TRUE(promoted.ok());
  EXPECT_TRUE(promoted->changed);
  EXPECT_EQ(promoted->event->seq, 2);
  EXPECT_EQ(promoted->member.joined_at, added->member.joined_at);

  auto member = wait<Member>([&](auto done) { storage->get_member(c.id, bob, done); });
  ASSERT_TRUE(member.ok());
  EXPECT_EQ(member->role, Role::admin);

  auto members = wait<std::vector<Member>>([&](auto done) { storage->list_members(c.id, done); });
  ASSERT_TRUE(members.ok());
  ASSERT_EQ(members->size(), 2u);
  std::set<std::pair<UserId, Role>> got;
  for (const auto& m : *members) got.emplace(m.user_id, m.role);
  EXPECT_EQ(got, (std::set<std::pair<UserId, Role>>{{alice, Role::owner}, {bob, Role::admin}}));

  auto removed = wait<MemberChange>([&](auto done) { storage->remove_member(c.id, bob, ev("member.leave", bob), done); });
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->event->seq, 3);
  EXPECT_EQ(wait<Member>([&](auto done) { storage->get_member(c.id, bob, done); }).code(), Errc::not_found);
  EXPECT_EQ(wait<MemberChange>([&](auto done) { storage->remove_member(c.id, bob, ev("member.leave", bob), done); }).code(),
            Errc::not_found);
  auto mine = wait<std::vector<Conversation>>([&](auto done) { storage->list_conversations(bob, {}, done); });
  EXPECT_TRUE(mine->empty());
  EXPECT_EQ(set(bob, Role::member).ok(), true);
  auto nowhere = wait<MemberChange>([&](auto done) {
    storage->set_member(Member{c.id + 1000000000, bob, Role::member, 0}, ev("member.join", bob), done);
  });
  EXPECT_EQ(nowhere.code(), Errc::not_found);

  // A conversation nobody is in lists no members; one that does not exist is not found.
  for (const UserId& u : {alice, bob}) {
    ASSERT_TRUE(wait<MemberChange>([&](auto done) { storage->remove_member(c.id, u, ev("member.leave", u), done); }).ok());
  }
  auto none = wait<std::vector<Member>>([&](auto done) { storage->list_members(c.id, done); });
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(wait<std::vector<Member>>([&](auto done) { storage->list_members(c.id + 1000000000, done); }).code(),
            Errc::not_found);
}

TEST_F(StorageContract, FeatureRecordsAreKeptPerFeature) {
  UserId alice = unique("alice"), bob = unique("bob");
  Conversation c = group({{alice, Role::owner}, {bob, Role::member}});
  auto m1 = send(c.id, alice, "one");
  auto m2 = send(c.id, alice, "two");
  ASSERT_TRUE(m1.ok() && m2.ok());
  Seq base = m2->message.seq;
  auto reaction = [&](MessageId m, const UserId& u, const std::string& emoji) {
    return Record{"reactions", c.id, std::to_string(m) + ":" + u + ":" + emoji, m, u, 0, emoji, 0};
  };

  auto added = change(RecordOp::insert, reaction(m1->message.id, bob, "👍"), ev("reaction.add", bob));
  ASSERT_TRUE(added.ok()) << added.error().message;
  EXPECT_TRUE(added->changed);
  ASSERT_TRUE(added->event.has_value());
  EXPECT_EQ(added->event->seq, base + 1);
  EXPECT_GT(added->record->updated_at, 0);

  auto twice = change(RecordOp::insert, reaction(m1->message.id, bob, "👍"), ev("reaction.add", bob));
  ASSERT_TRUE(twice.ok());
  EXPECT_FALSE(twice->changed);
  EXPECT_FALSE(twice->event.has_value()) << "an unchanged record must not append an event";
  EXPECT_EQ(get(c.id)->last_seq, base + 1);

  ASSERT_TRUE(change(RecordOp::insert, reaction(m1->message.id, alice, "🎉")).ok());
  ASSERT_TRUE(change(RecordOp::insert, reaction(m2->message.id, alice, "👍")).ok());

  auto list = [&](RecordQuery q) {
    auto r = wait<std::vector<Record>>([&](auto done) { storage->list_records(q, done); });
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r.value() : std::vector<Record>{};
  };
  EXPECT_EQ(list({"reactions", c.id, "", {m1->message.id}}).size(), 2u);
  EXPECT_EQ(list({"reactions", c.id, "", {m1->message.id, m2->message.id}}).size(), 3u);
  EXPECT_EQ(list({"reactions", c.id, std::to_string(m2->message.id) + ":"}).size(), 1u);
  EXPECT_EQ(list({"reactions", 0, "", {}, alice}).size(), 2u);
  EXPECT_TRUE(list({"pins", c.id}).empty()) << "records of one feature leak into another";
  auto one = list({"reactions", c.id, "", {m1->message.id}, bob});
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].value, "👍");
  EXPECT_EQ(one[0].user, bob);
  EXPECT_EQ(one[0].message_id, m1->message.id);

  // raise: a read position never moves backwards.
  Record pos{"receipts", c.id, bob, 0, bob, 5, "", 0};
  EXPECT_TRUE(change(RecordOp::raise, pos)->changed);
  pos.number = 3;
  auto lower = change(RecordOp::raise, pos, ev("receipt.update", bob));
  ASSERT_TRUE(lower.ok());
  EXPECT_FALSE(lower->changed);
  EXPECT_EQ(lower->record->number, 5);
  pos.number = 9;
  EXPECT_EQ(change(RecordOp::raise, pos)->record->number, 9);

  // put replaces; remove deletes and appends its event only if there was something.
  Record pin{"pins", c.id, "pin:" + std::to_string(m1->message.id), m1->message.id, alice, 0, "{}", 0};
  EXPECT_TRUE(change(RecordOp::put, pin)->changed);
  EXPECT_FALSE(change(RecordOp::put, pin)->changed);
  pin.value = R"({"note":"x"})";
  EXPECT_TRUE(change(RecordOp::put, pin)->changed);
  Seq before = get(c.id)->last_seq;
  auto unpinned = change(RecordOp::remove, pin, ev("pin.remove", alice));
  ASSERT_TRUE(unpinned.ok());
  EXPECT_TRUE(unpinned->changed);
  EXPECT_FALSE(unpinned->record.has_value());
  EXPECT_EQ(unpinned->event->seq, before + 1);
  auto gone = change(RecordOp::remove, pin, ev("pin.remove", alice));
  EXPECT_FALSE(gone->changed);
  EXPECT_EQ(get(c.id)->last_seq, before + 1);
  EXPECT_TRUE(list({"pins", c.id}).empty());
}

TEST_F(StorageContract, EverythingSurvivesCloseAndReopen) {
  UserId alice = unique("alice"), bob = unique("bob");
  Conversation c = group({{alice, Role::owner}, {bob, Role::member}});
  auto m = send(c.id, alice, "durable", "k-durable");
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(change(RecordOp::put, Record{"receipts", c.id, bob, 0, bob, m->message.seq, "", 0}).ok());
  Seq last = get(c.id)->last_seq;

  reopen();

  auto after = get(c.id);
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_EQ(after->epoch, c.epoch) << "the epoch must persist";
  EXPECT_EQ(after->last_seq, last);
  auto history = events(c.id, Direction::forward, 0, 100);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->events.size(), 1u);
  EXPECT_EQ(history->events[0].message->text, "durable");
  auto retried = send(c.id, alice, "durable", "k-durable");
  ASSERT_TRUE(retried.ok());
  EXPECT_FALSE(retried->changed) << "idempotency keys must survive a restart";
  auto next = send(c.id, bob, "after restart");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->message.seq, last + 1) << "seq continues after a restart";
  auto records = wait<std::vector<Record>>([&](auto done) { storage->list_records({"receipts", c.id}, done); });
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ(records->front().number, m->message.seq);
}

TEST_F(StorageContract, ResetStreamGivesANewEpochThatPersists) {
  UserId alice = unique("alice");
  Conversation c = group({{alice, Role::owner}});
  auto reset = wait<Conversation>([&](auto done) { storage->reset_stream(c.id, done); });
  ASSERT_TRUE(reset.ok());
  EXPECT_NE(reset->epoch, c.epoch);
  reopen();
  EXPECT_EQ(get(c.id)->epoch, reset->epoch);
  EXPECT_EQ(wait<Conversation>([&](auto done) { storage->reset_stream(c.id + 1000000000, done); }).code(),
            Errc::not_found);
}

TEST_F(StorageContract, AppendedEventsCarryTheirPayload) {
  UserId alice = unique("alice");
  Conversation c = group({{alice, Role::owner}});
  auto e = wait<Event>([&](auto done) {
    storage->append_event(c.id, ev("custom.thing", alice, R"({"k":"v"})"), done);
  });
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->seq, 1);
  auto page = events(c.id, Direction::forward, 0, 10);
  ASSERT_EQ(page->events.size(), 1u);
  EXPECT_EQ(page->events[0].type, "custom.thing");
  EXPECT_EQ(page->events[0].actor, alice);
  EXPECT_EQ(page->events[0].payload, R"({"k":"v"})");
  EXPECT_FALSE(page->events[0].message.has_value());
  EXPECT_EQ(wait<Event>([&](auto done) { storage->append_event(c.id, ev("", alice), done); }).code(), Errc::bad_request);
}

TEST_F(StorageContract, CountsEventsAfterAPosition) {
  UserId alice = unique("alice"), bob = unique("bob");
  Conversation c = group({{alice, Role::owner}, {bob, Role::member}});
  auto count = [&](Seq after, const UserId& not_actor, bool skip_deleted = true) {
    auto r = wait<std::int64_t>([&](auto done) {
      storage->count_events(EventCount{c.id, after, "message.new", not_actor, skip_deleted}, done);
    });
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r.value() : -1;
  };
  auto a1 = send(c.id, alice, "a1");
  send(c.id, bob, "b1");
  auto a2 = send(c.id, alice, "a2");
  send(c.id, alice, "a3");
  EXPECT_EQ(count(0, bob), 3) << "bob's unread: alice's three";
  EXPECT_EQ(count(0, alice), 1);
  EXPECT_EQ(count(a2->message.seq, bob), 1);
  EXPECT_EQ(count(0, ""), 4);
  ASSERT_TRUE(wait<MessageWrite>([&](auto done) { storage->delete_message(a1->message.id, ev("message.delete", alice), done); }).ok());
  EXPECT_EQ(count(0, bob), 2) << "a deleted message is no longer unread";
  EXPECT_EQ(count(0, bob, false), 3);
  auto upto = [&](Seq after, Seq last) {
    auto r = wait<std::int64_t>([&](auto done) {
      storage->count_events(EventCount{c.id, after, "message.new", bob, true, last}, done);
    });
    return r.ok() ? r.value() : -1;
  };
  EXPECT_EQ(upto(0, a2->message.seq), 1) << "up to a2: a1 is deleted, b1 is bob's own";
  EXPECT_EQ(upto(a2->message.seq - 1, a2->message.seq), 1) << "exactly a2";
  EXPECT_EQ(upto(a2->message.seq, a2->message.seq), 0) << "an empty range";
}

TEST_F(StorageContract, FlushSucceedsAndStorageIsHealthy) {
  EXPECT_TRUE(storage->flush().ok());
  auto h = storage->health();
  EXPECT_TRUE(h.ok) << h.detail;
}

// Writes from several threads while flush() is called: when flush returns,
// the completion of every write submitted before it has returned — also when
// another writer connection was still committing them.
TEST_F(StorageContract, FlushWaitsForWritesStillCommitting) {
  UserId alice = unique("alice");
  std::vector<Conversation> conversations;
  for (int i = 0; i < 8; ++i) conversations.push_back(group({{alice, Role::owner}}));
  for (int round = 0; round < 5; ++round) {
    constexpr int kWrites = 400;
    std::atomic<int> completed{0};
    for (int i = 0; i < kWrites; ++i) {
      MessageDraft d{conversations[static_cast<std::size_t>(i) % conversations.size()].id, alice,
                     "in flight " + std::to_string(i), 0, "[]", ""};
      storage->append_message(d, ev("message.new", alice), [&completed](Result<MessageWrite>) {
        completed.fetch_add(1);
      });
    }
    auto flushed = storage->flush();
    EXPECT_TRUE(flushed.ok()) << flushed.error().message;
    ASSERT_EQ(completed.load(), kWrites) << "round " << round << ": flush returned before every write it follows";
  }
}

// stop(): every call accepted before it completes exactly once, every call
// after it is refused with unavailable at once, and nothing runs afterwards.
TEST_F(StorageContract, StopFinishesAcceptedCallsOnceAndRefusesLaterOnes) {
  UserId alice = unique("alice");
  Conversation c = group({{alice, Role::owner}});
  constexpr int kCalls = 600;
  std::vector<std::atomic<int>> calls(kCalls);
  std::vector<std::atomic<bool>> acknowledged(kCalls);
  std::atomic<int> completions{0};
  std::atomic<bool> stop_returned{false};
  std::atomic<int> after_stop{0};
  auto note = [&](int i, bool ok) {
    calls[static_cast<std::size_t>(i)].fetch_add(1);
    if (ok) acknowledged[static_cast<std::size_t>(i)] = true;
    if (stop_returned && ok) after_stop.fetch_add(1);
    completions.fetch_add(1);
  };
  std::thread caller([&] {
    for (int i = 0; i < kCalls; ++i) {
      if (i % 3 == 2) {
        storage->read_events(EventQuery{c.id, Direction::backward, 0, 50},
                             [&note, i](Result<EventPage> r) { note(i, r.ok()); });
      } else {
        MessageDraft d{c.id, alice, "before stop " + std::to_string(i), 0, "[]", "stop-" + std::to_string(i)};
        storage->append_message(d, ev("message.new", alice), [&note, i](Result<MessageWrite> r) { note(i, r.ok()); });
      }
    }
  });
  // Stop while the caller is still submitting: some calls are accepted, the rest refused.
  while (completions.load() < kCalls / 10) std::this_thread::yield();
  storage->stop();
  stop_returned = true;
  caller.join();
  storage->stop();  // idempotent
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_EQ(calls[static_cast<std::size_t>(i)].load(), 1) << "call " << i << " completed "
                                                             << calls[static_cast<std::size_t>(i)].load() << " times";
  }
  EXPECT_EQ(after_stop.load(), 0) << "a call accepted before stop() completed after it returned";
  int refused_later = 0;
  std::atomic<int> late{0};
  storage->get_conversation(c.id, [&](Result<Conversation> r) {
    EXPECT_EQ(r.code(), Errc::unavailable) << "a call after stop() must be refused";
    ++refused_later;
    late.fetch_add(1);
  });
  EXPECT_EQ(refused_later, 1) << "a call after stop() completes at once, on the caller's thread";
  int before_destroy = completions.load();
  storage.reset();
  EXPECT_EQ(completions.load(), before_destroy) << "a completion ran after stop() returned";
  EXPECT_EQ(late.load(), 1);

  storage = plugin_under_test().make_storage();
  auto page = events(c.id, Direction::forward, 0, 1000);
  ASSERT_TRUE(page.ok()) << page.error().message;
  std::set<std::string> stored;
  for (const auto& e : page->events) stored.insert(e.message->client_key);
  for (int i = 0; i < kCalls; ++i) {
    if (i % 3 == 2 || !acknowledged[static_cast<std::size_t>(i)]) continue;
    EXPECT_TRUE(stored.count("stop-" + std::to_string(i))) << "acknowledged write " << i << " lost by stop()";
  }
}

}  // namespace
}  // namespace switchboard::contract

#include "core/guarded_storage.hpp"

#include <atomic>
#include <memory>

namespace switchboard::host {

FirewallMetrics FirewallMetrics::make(Metrics& metrics) {
  return FirewallMetrics{
      metrics.counter("plugin_exceptions_total", "Exceptions a plugin let escape on the data path (caught by the host)"),
      metrics.counter("plugin_duplicate_answers_total", "Completions or replies a plugin called more than once (dropped)"),
      metrics.counter("plugin_late_answers_total", "Completions or replies that arrived after the host stopped (dropped)"),
      metrics.counter("plugin_missing_answers_total", "Commands answered internal because no reply came in time"),
  };
}

GuardedStorage::GuardedStorage(Storage& inner, std::uint32_t revision, const Lifeline& lifeline,
                               FirewallMetrics metrics, Logger& log)
    : inner_(inner), revision_(revision), lifeline_(lifeline), metrics_(metrics), log_(log) {}

namespace {

template <class T>
struct Pending {
  explicit Pending(Completion<T> d) : done(std::move(d)) {}
  std::atomic<bool> answered{false};
  Completion<T> done;
};

}  // namespace

template <class T, class Start>
void GuardedStorage::call(const char* op, Completion<T> done, Start&& start) {
  auto pending = std::make_shared<Pending<T>>(std::move(done));
  // Captures nothing of this object: the storage may call it after we are gone.
  Completion<T> wrapped = [pending,
                           line = lifeline_.guard([](Pending<T>& p, Result<T>& r) { p.done(std::move(r)); },
                                                  &metrics_.late_answers),
                           metrics = metrics_, &log = log_](Result<T> r) mutable {
    if (pending->answered.exchange(true)) {
      metrics.duplicate_answers.add();
      return;
    }
    firewall(metrics, log, "a storage completion threw", "completion", [&] { line(*pending, r); });
    pending->done = nullptr;  // its captures go now, on the storage's thread
  };
  auto why = firewall(metrics_, log_, "the storage threw instead of answering", op,
                      [&] { std::forward<Start>(start)(std::move(wrapped)); });
  if (why && !pending->answered.exchange(true)) {
    Lifeline::Entry entry(lifeline_);
    if (entry) pending->done(Error{Errc::internal, std::string("storage failed in ") + op + ": " + *why});
  }
}

void GuardedStorage::create_conversation(ConversationDraft draft, Completion<ConversationCreated> done) {
  call<ConversationCreated>("create_conversation", std::move(done),
                            [&](auto d) { inner_.create_conversation(std::move(draft), std::move(d)); });
}
void GuardedStorage::get_conversation(ConversationId id, Completion<Conversation> done) {
  call<Conversation>("get_conversation", std::move(done), [&](auto d) { inner_.get_conversation(id, std::move(d)); });
}
void GuardedStorage::list_conversations(UserId user, ConversationPage page, Completion<std::vector<Conversation>> done) {
  call<std::vector<Conversation>>("list_conversations", std::move(done),
                                  [&](auto d) { inner_.list_conversations(std::move(user), page, std::move(d)); });
}
void GuardedStorage::reset_stream(ConversationId id, Completion<Conversation> done) {
  call<Conversation>("reset_stream", std::move(done), [&](auto d) { inner_.reset_stream(id, std::move(d)); });
}
void GuardedStorage::set_member(Member member, EventDraft event, Completion<MemberChange> done) {
  call<MemberChange>("set_member", std::move(done),
                     [&](auto d) { inner_.set_member(std::move(member), std::move(event), std::move(d)); });
}
void GuardedStorage::remove_member(ConversationId id, UserId user, EventDraft event, Completion<MemberChange> done) {
  call<MemberChange>("remove_member", std::move(done),
                     [&](auto d) { inner_.remove_member(id, std::move(user), std::move(event), std::move(d)); });
}
void GuardedStorage::get_member(ConversationId id, UserId user, Completion<Member> done) {
  call<Member>("get_member", std::move(done), [&](auto d) { inner_.get_member(id, std::move(user), std::move(d)); });
}
void GuardedStorage::list_members(ConversationId id, Completion<std::vector<Member>> done) {
  call<std::vector<Member>>("list_members", std::move(done), [&](auto d) { inner_.list_members(id, std::move(d)); });
}
void GuardedStorage::append_message(MessageDraft draft, EventDraft event, Completion<MessageWrite> done) {
  call<MessageWrite>("append_message", std::move(done),
                     [&](auto d) { inner_.append_message(std::move(draft), std::move(event), std::move(d)); });
}
void GuardedStorage::append_message_as_member(MessageDraft draft, EventDraft event, Completion<MessageWrite> done) {
  if (revision_ < 1) {
    // A plugin of SDK 1.0: the SDK's own default, through this object's
    // guarded calls.
    return Storage::append_message_as_member(std::move(draft), std::move(event), std::move(done));
  }
  call<MessageWrite>("append_message_as_member", std::move(done), [&](auto d) {
    inner_.append_message_as_member(std::move(draft), std::move(event), std::move(d));
  });
}
void GuardedStorage::edit_message(MessageId id, std::string text, EventDraft event, Completion<MessageWrite> done) {
  call<MessageWrite>("edit_message", std::move(done),
                     [&](auto d) { inner_.edit_message(id, std::move(text), std::move(event), std::move(d)); });
}
void GuardedStorage::delete_message(MessageId id, EventDraft event, Completion<MessageWrite> done) {
  call<MessageWrite>("delete_message", std::move(done),
                     [&](auto d) { inner_.delete_message(id, std::move(event), std::move(d)); });
}
void GuardedStorage::get_message(MessageId id, Completion<Message> done) {
  call<Message>("get_message", std::move(done), [&](auto d) { inner_.get_message(id, std::move(d)); });
}
void GuardedStorage::append_event(ConversationId id, EventDraft event, Completion<Event> done) {
  call<Event>("append_event", std::move(done), [&](auto d) { inner_.append_event(id, std::move(event), std::move(d)); });
}
void GuardedStorage::read_events(EventQuery query, Completion<EventPage> done) {
  call<EventPage>("read_events", std::move(done), [&](auto d) { inner_.read_events(query, std::move(d)); });
}
void GuardedStorage::count_events(EventCount query, Completion<std::int64_t> done) {
  call<std::int64_t>("count_events", std::move(done), [&](auto d) { inner_.count_events(std::move(query), std::move(d)); });
}
void GuardedStorage::change_record(RecordChange change, Completion<RecordOutcome> done) {
  call<RecordOutcome>("change_record", std::move(done),
                      [&](auto d) { inner_.change_record(std::move(change), std::move(d)); });
}
void GuardedStorage::list_records(RecordQuery query, Completion<std::vector<Record>> done) {
  call<std::vector<Record>>("list_records", std::move(done),
                            [&](auto d) { inner_.list_records(std::move(query), std::move(d)); });
}

Status GuardedStorage::flush() {
  Status status;
  if (auto why = firewall(metrics_, log_, "the storage threw", "flush", [&] { status = inner_.flush(); })) {
    return Error{Errc::internal, "storage flush threw: " + *why};
  }
  return status;
}

void GuardedStorage::stop() noexcept {
  firewall(metrics_, log_, "the storage threw", "stop", [&] { inner_.stop(); });
}

Health GuardedStorage::health() const noexcept {
  Health health;
  if (auto why = firewall(metrics_, log_, "the storage threw", "health", [&] { health = inner_.health(); })) {
    return Health{false, "health check threw: " + *why};
  }
  return health;
}

}  // namespace switchboard::host

// The storage as the host (and every feature, through FeatureHost) calls it:
// the plugin's storage behind an exception firewall and the host's lifeline.
// - a call that throws answers `internal` (once) instead of unwinding into
//   the host; counted in switchboard_plugin_exceptions_total;
// - each completion runs at most once: a second call is dropped and counted
//   in switchboard_plugin_duplicate_completions_total;
// - a completion arriving after the host stopped (lifeline closed) is
//   dropped, never run against destroyed host objects;
// - a completion that throws is caught and counted, so a storage thread
//   never dies of host code.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/lifeline.hpp"
#include "switchboard/services.hpp"
#include "switchboard/storage.hpp"

namespace switchboard::host {

struct FirewallMetrics {
  Counter& plugin_exceptions;     // a plugin threw on the data path
  Counter& duplicate_answers;     // a completion or reply called twice
  Counter& late_answers;          // after the host stopped
  Counter& missing_answers;       // a command no one answered within its deadline
  static FirewallMetrics make(Metrics& metrics);
};

// Runs `call`; whatever it throws stops here: counted in plugin_exceptions,
// logged as `message` with `in` naming the call (`describe()`, only computed
// when something was thrown). Returns what it threw, or nothing.
template <class Describe, class Call>
std::optional<std::string> firewall_described(const FirewallMetrics& metrics, Logger& log, std::string_view message,
                                              Describe&& describe, Call&& call) noexcept {
  std::string why;
  try {
    std::forward<Call>(call)();
    return std::nullopt;
  } catch (const std::exception& e) {
    why = e.what();
  } catch (...) {
    why = "an exception not derived from std::exception";
  }
  metrics.plugin_exceptions.add();
  try {
    log.error(message, {{"in", describe()}, {"error", why}});
  } catch (...) {
  }
  return why;
}

template <class Call>
std::optional<std::string> firewall(const FirewallMetrics& metrics, Logger& log, std::string_view message,
                                    std::string_view in, Call&& call) noexcept {
  return firewall_described(metrics, log, message, [in] { return in; }, std::forward<Call>(call));
}

class GuardedStorage final : public Storage {
 public:
  // `revision`: the SDK minor `inner` was built against; nothing added to
  // Storage after it is called on `inner`.
  GuardedStorage(Storage& inner, std::uint32_t revision, const Lifeline& lifeline, FirewallMetrics metrics,
                 Logger& log);

  void create_conversation(ConversationDraft draft, Completion<ConversationCreated> done) override;
  void get_conversation(ConversationId id, Completion<Conversation> done) override;
  void list_conversations(UserId user, ConversationPage page, Completion<std::vector<Conversation>> done) override;
  void reset_stream(ConversationId id, Completion<Conversation> done) override;
  void set_member(Member member, EventDraft event, Completion<MemberChange> done) override;
  void remove_member(ConversationId id, UserId user, EventDraft event, Completion<MemberChange> done) override;
  void get_member(ConversationId id, UserId user, Completion<Member> done) override;
  void list_members(ConversationId id, Completion<std::vector<Member>> done) override;
  void append_message(MessageDraft draft, EventDraft event, Completion<MessageWrite> done) override;
  void append_message_as_member(MessageDraft draft, EventDraft event, Completion<MessageWrite> done) override;
  void edit_message(MessageId id, std::string text, EventDraft event, Completion<MessageWrite> done) override;
  void delete_message(MessageId id, EventDraft event, Completion<MessageWrite> done) override;
  void get_message(MessageId id, Completion<Message> done) override;
  void append_event(ConversationId id, EventDraft event, Completion<Event> done) override;
  void read_events(EventQuery query, Completion<EventPage> done) override;
  void count_events(EventCount query, Completion<std::int64_t> done) override;
  void change_record(RecordChange change, Completion<RecordOutcome> done) override;
  void list_records(RecordQuery query, Completion<std::vector<Record>> done) override;
  Status flush() override;
  void stop() noexcept override;
  Health health() const noexcept override;

 private:
  // Calls `start(wrapped)` with `done` made once-only, guarded and firewalled.
  template <class T, class Start>
  void call(const char* op, Completion<T> done, Start&& start);

  Storage& inner_;
  std::uint32_t revision_;
  const Lifeline& lifeline_;
  FirewallMetrics metrics_;
  Logger& log_;
};

}  // namespace switchboard::host

// feature-typing: typing.start / typing.stop become ephemeral events to the
// other members (never stored, never replayed). A start not renewed within
// the timeout ends by itself; a disconnect ends it; repeated starts are
// coalesced to one event per user and conversation per interval.
#include <boost/json.hpp>
#include <map>
#include <mutex>

#include "switchboard/feature.hpp"

namespace typing {

namespace json = boost::json;
using namespace switchboard;

class TypingFeature final : public Feature {
 public:
  explicit TypingFeature(PluginContext& context)
      : clock_(context.clock()),
        timeout_ms_(context.config().integer_or("timeout_ms", 6000)),
        coalesce_ms_(context.config().integer_or("coalesce_ms", 1000)) {
    if (timeout_ms_ < 100) context.config().fail("timeout_ms", "must be at least 100");
    if (coalesce_ms_ < 0) context.config().fail("coalesce_ms", "must not be negative");
  }

  std::vector<std::string> command_types() const override { return {"typing.start", "typing.stop"}; }
  void start(FeatureHost& host) override { host_ = &host; }

  void handle_command(const Caller& caller, const Command& command, Reply reply) override {
    std::error_code ec;
    json::value frame = json::parse(command.frame, ec);
    const json::value* id = (!ec && frame.is_object()) ? frame.as_object().if_contains("conversation_id") : nullptr;
    if (!id || !id->is_int64()) return reply(Error{Errc::bad_request, "conversation_id: is required (an integer)"});
    ConversationId conversation = id->as_int64();
    bool starting = command.type == "typing.start";
    host_->storage().get_member(conversation, caller.user, [this, caller, conversation, starting, reply](Result<Member> m) {
      if (!m) {
        return reply(m.code() == Errc::not_found ? Error{Errc::forbidden, "not a member of this conversation"} : m.error());
      }
      if (starting) {
        begin(caller, conversation);
      } else {
        end(conversation, caller.user);
      }
      reply(std::string("{}"));
    });
  }

  void on_session_closed(const Caller& caller) override {
    std::vector<Key> ended;
    {
      std::lock_guard lock(mutex_);
      for (auto it = typing_.begin(); it != typing_.end();) {
        if (it->second.session == caller.session_id) {
          ended.push_back(it->first);
          it = typing_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (const auto& [conversation, user] : ended) announce(conversation, user, false);
  }

 private:
  using Key = std::pair<ConversationId, UserId>;
  struct Typing {
    std::uint64_t session = 0;
    TimeMs expires = 0;
    TimeMs announced = 0;
    std::uint64_t generation = 0;
  };

  void begin(const Caller& caller, ConversationId conversation) {
    TimeMs now = clock_.now_ms();
    bool announce_now = false;
    std::uint64_t generation;
    {
      std::lock_guard lock(mutex_);
      Typing& t = typing_[{conversation, caller.user}];
      announce_now = t.announced == 0 || now - t.announced >= coalesce_ms_;
      if (announce_now) t.announced = now;
      t.session = caller.session_id;
      t.expires = now + timeout_ms_;
      // Plugin-wide, never per entry: a timer armed for a typing that was
      // stopped must not match the entry of a later typing by the same user.
      generation = t.generation = ++generations_;
    }
    if (announce_now) announce(conversation, caller.user, true);
    host_->after(std::chrono::milliseconds(timeout_ms_), [this, conversation, user = caller.user, generation] {
      {
        std::lock_guard lock(mutex_);
        auto it = typing_.find({conversation, user});
        // Renewed since, or already stopped: nothing to do.
        if (it == typing_.end() || it->second.generation != generation) return;
        typing_.erase(it);
      }
      announce(conversation, user, false);
    });
  }

  void end(ConversationId conversation, const UserId& user) {
    {
      std::lock_guard lock(mutex_);
      if (typing_.erase({conversation, user}) == 0) return;
    }
    announce(conversation, user, false);
  }

  void announce(ConversationId conversation, const UserId& user, bool started) {
    host_->publish_ephemeral(conversation, started ? "typing.start" : "typing.stop",
                             json::serialize(json::object{{"user_id", user}}), user);
  }

  FeatureHost* host_ = nullptr;
  Clock& clock_;
  std::int64_t timeout_ms_;
  std::int64_t coalesce_ms_;
  std::mutex mutex_;
  std::map<Key, Typing> typing_;
  std::uint64_t generations_ = 0;  // under mutex_
};

}  // namespace typing

SWITCHBOARD_PLUGIN(feature, "feature-typing", "0.1.0", typing::TypingFeature)

// A feature that breaks every rule, for the host's exception firewall:
//   fault.throw       throws from handle_command
//   fault.silent      never replies
//   fault.twice       replies twice
//   fault.completion  calls storage with a completion that throws
//   fault.late        replies from a timer that throws after replying
// and throws from on_event for every event and from on_session_opened.
#include <stdexcept>

#include "switchboard/feature.hpp"

namespace {

class FaultyFeature final : public switchboard::Feature {
 public:
  explicit FaultyFeature(switchboard::PluginContext&) {}
  std::vector<std::string> command_types() const override {
    return {"fault.throw", "fault.silent", "fault.twice", "fault.completion", "fault.late"};
  }
  void start(switchboard::FeatureHost& host) override { host_ = &host; }
  void handle_command(const switchboard::Caller&, const switchboard::Command& command,
                      switchboard::Reply reply) override {
    if (command.type == "fault.throw") throw std::runtime_error("fault.throw always throws");
    if (command.type == "fault.silent") return;
    if (command.type == "fault.twice") {
      reply(std::string(R"({"answer":1})"));
      reply(std::string(R"({"answer":2})"));
      return;
    }
    if (command.type == "fault.completion") {
      host_->storage().get_conversation(1, [reply](switchboard::Result<switchboard::Conversation>) {
        reply(std::string(R"({"answered":"before throwing"})"));
        throw std::runtime_error("a completion that throws");
      });
      return;
    }
    host_->after(std::chrono::milliseconds(10), [reply] {
      reply(std::string(R"({"late":true})"));
      throw std::runtime_error("a timer that throws");
    });
  }
  void on_event(const switchboard::Event&) override { throw std::runtime_error("on_event always throws"); }
  void on_session_opened(const switchboard::Caller&) override { throw std::logic_error("not a std::runtime_error"); }

 private:
  switchboard::FeatureHost* host_ = nullptr;
};

}  // namespace

SWITCHBOARD_PLUGIN(feature, "test-faulty-feature", "1.0.0", FaultyFeature)

// A minimal feature: answers "echo" with the frame it was given. With
// `fail_start = true`, its start() throws (a feature that cannot start).
#include <stdexcept>

#include "switchboard/feature.hpp"

namespace {

class EchoFeature final : public switchboard::Feature {
 public:
  explicit EchoFeature(switchboard::PluginContext& context)
      : prefix_(context.config().string_or("prefix", "")), fail_start_(context.config().boolean_or("fail_start", false)) {}
  std::vector<std::string> command_types() const override { return {prefix_ + "echo"}; }
  void start(switchboard::FeatureHost&) override {
    if (fail_start_) throw std::runtime_error("fail_start is set");
  }
  void handle_command(const switchboard::Caller&, const switchboard::Command& command,
                      switchboard::Reply reply) override {
    reply(std::string(command.frame));
  }

 private:
  std::string prefix_;
  bool fail_start_;
};

}  // namespace

SWITCHBOARD_PLUGIN(feature, "test-echo-feature", "1.0.0", EchoFeature)

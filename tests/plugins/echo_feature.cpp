// A minimal feature: answers "echo" with the frame it was given.
#include "switchboard/feature.hpp"

namespace {

class EchoFeature final : public switchboard::Feature {
 public:
  explicit EchoFeature(switchboard::PluginContext& context)
      : prefix_(context.config().string_or("prefix", "")) {}
  std::vector<std::string> command_types() const override { return {prefix_ + "echo"}; }
  void start(switchboard::FeatureHost&) override {}
  void handle_command(const switchboard::Caller&, const switchboard::Command& command,
                      switchboard::Reply reply) override {
    reply(std::string(command.frame));
  }

 private:
  std::string prefix_;
};

}  // namespace

SWITCHBOARD_PLUGIN(feature, "test-echo-feature", "1.0.0", EchoFeature)

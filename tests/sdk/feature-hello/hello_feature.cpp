// The smallest useful feature: answers {"type":"hello"} with a greeting.
#include <switchboard/feature.hpp>

namespace {

class HelloFeature final : public switchboard::Feature {
 public:
  explicit HelloFeature(switchboard::PluginContext& context)
      : greeting_(context.config().string_or("greeting", "hello")), log_(context.logger()) {}

  std::vector<std::string> command_types() const override { return {"hello"}; }

  void start(switchboard::FeatureHost&) override { log_.info("ready", {{"greeting", greeting_}}); }

  void handle_command(const switchboard::Caller& caller, const switchboard::Command&,
                      switchboard::Reply reply) override {
    reply("{\"greeting\":\"" + greeting_ + ", " + caller.user + "\"}");
  }

 private:
  std::string greeting_;
  switchboard::Logger& log_;
};

}  // namespace

SWITCHBOARD_PLUGIN(feature, "feature-hello", "1.0.0", HelloFeature)

#include "config/interpolation.hpp"

#include <gtest/gtest.h>

#include <map>

namespace switchboard::host {
namespace {

EnvLookup env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(Interpolation, ExpandsSetVariables) {
  EXPECT_EQ(interpolate("nats://${HOST}:4222", env({{"HOST", "n1"}})), "nats://n1:4222");
  EXPECT_EQ(interpolate("${A}${B}", env({{"A", "x"}, {"B", "y"}})), "xy");
  EXPECT_EQ(interpolate("no variables", env({})), "no variables");
}

TEST(Interpolation, UsesDefaultsWhenUnsetOrEmpty) {
  EXPECT_EQ(interpolate("bus-${BUS_TYPE:-gochannel}", env({})), "bus-gochannel");
  EXPECT_EQ(interpolate("bus-${BUS_TYPE:-gochannel}", env({{"BUS_TYPE", "nats"}})), "bus-nats");
  EXPECT_EQ(interpolate("bus-${BUS_TYPE:-gochannel}", env({{"BUS_TYPE", ""}})), "bus-gochannel");
  EXPECT_EQ(interpolate("${DATABASE_URL:-postgres://u@h/db?x=1}", env({})), "postgres://u@h/db?x=1");
  EXPECT_EQ(interpolate("[${EMPTY:-}]", env({})), "[]");
}

TEST(Interpolation, AnUnsetVariableWithoutDefaultIsAnErrorNamingIt) {
  try {
    interpolate("${NATS_URL}", env({}));
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("NATS_URL is not set"), std::string::npos) << e.what();
  }
}

TEST(Interpolation, ASetButEmptyVariableWithoutDefaultIsEmpty) {
  EXPECT_EQ(interpolate("[${X}]", env({{"X", ""}})), "[]");
}

TEST(Interpolation, DollarDollarBraceIsALiteral) {
  EXPECT_EQ(interpolate("$${NOT_A_VAR}", env({})), "${NOT_A_VAR}");
  EXPECT_EQ(interpolate("cost: $5", env({})), "cost: $5");
}

TEST(Interpolation, BrokenSyntaxIsAnError) {
  EXPECT_THROW(interpolate("${UNTERMINATED", env({})), std::invalid_argument);
  EXPECT_THROW(interpolate("${}", env({})), std::invalid_argument);
  EXPECT_THROW(interpolate("${BAD-NAME}", env({})), std::invalid_argument);
  EXPECT_THROW(interpolate("${9LIVES}", env({})), std::invalid_argument);
}

}  // namespace
}  // namespace switchboard::host

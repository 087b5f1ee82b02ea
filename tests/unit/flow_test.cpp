// Flows (core/flow.hpp): a command's path as one coroutine. What the host
// relies on: exactly one answer whatever the completions do, resumption on
// the completing thread, and a dropped completion ending the flow cleanly.
#include "core/flow.hpp"

#include <gtest/gtest.h>

#include <future>
#include <thread>
#include <vector>

namespace switchboard::host {
namespace {

// A storage-like call: keeps the completion for the test to call or drop.
struct Deferred {
  std::vector<Completion<int>> held;
  auto value() {
    return completion<int>([this](Completion<int> done) { held.push_back(std::move(done)); });
  }
};

// Counts its destructions: shows a flow's frame was destroyed.
struct Witness {
  explicit Witness(int* gone) : gone_(gone) {}
  Witness(Witness&& o) noexcept : gone_(std::exchange(o.gone_, nullptr)) {}
  ~Witness() {
    if (gone_) ++*gone_;
  }
  int* gone_;
};

struct Answers {
  std::vector<Result<int>> got;
  auto sink() {
    return [this](Result<int> r) { got.push_back(std::move(r)); };
  }
};

Flow<int> add(Deferred& a, Deferred& b, int* gone = nullptr) {
  Witness w(gone);
  auto x = co_await a.value();
  if (!x) co_return x.error();
  auto y = co_await b.value();
  if (!y) co_return y.error();
  co_return *x + *y;
}

TEST(Flow, RunsTopToBottomAndAnswersOnceWithTheReturnedValue) {
  Deferred a, b;
  Answers answers;
  add(a, b).answer(answers.sink());
  ASSERT_EQ(a.held.size(), 1u);
  EXPECT_TRUE(b.held.empty()) << "the second call waits for the first";
  a.held[0](Result<int>(2));
  ASSERT_EQ(b.held.size(), 1u);
  EXPECT_TRUE(answers.got.empty());
  b.held[0](Result<int>(40));
  ASSERT_EQ(answers.got.size(), 1u);
  EXPECT_EQ(*answers.got[0], 42);
}

TEST(Flow, AnErrorEndsTheFlowWithThatError) {
  Deferred a, b;
  Answers answers;
  add(a, b).answer(answers.sink());
  a.held[0](Error{Errc::not_found, "no such thing"});
  EXPECT_TRUE(b.held.empty());
  ASSERT_EQ(answers.got.size(), 1u);
  EXPECT_EQ(answers.got[0].code(), Errc::not_found);
  EXPECT_EQ(answers.got[0].error().message, "no such thing");
}

Flow<int> immediate() {
  auto x = co_await completion<int>([](Completion<int> done) { done(Result<int>(7)); });
  co_return *x * 6;
}

TEST(Flow, ACompletionCalledBeforeTheCallReturnsGoesOnWithoutSuspending) {
  Answers answers;
  immediate().answer(answers.sink());
  ASSERT_EQ(answers.got.size(), 1u);
  EXPECT_EQ(*answers.got[0], 42);
}

TEST(Flow, ResumesOnTheThreadThatCompletes) {
  Deferred a, b;
  std::promise<std::thread::id> answered_on;
  add(a, b).answer([&](Result<int> r) {
    EXPECT_EQ(*r, 3);
    answered_on.set_value(std::this_thread::get_id());
  });
  std::thread::id storage_thread;
  std::thread([&] {
    storage_thread = std::this_thread::get_id();
    a.held[0](Result<int>(1));
    b.held[0](Result<int>(2));
  }).join();
  EXPECT_EQ(answered_on.get_future().get(), storage_thread);
}

TEST(Flow, ASecondCallOfACompletionIsIgnored) {
  Deferred a, b;
  Answers answers;
  add(a, b).answer(answers.sink());
  auto copy = a.held[0];
  a.held[0](Result<int>(1));
  copy(Result<int>(100));
  EXPECT_EQ(b.held.size(), 1u) << "the flow resumed once";
  b.held[0](Result<int>(1));
  ASSERT_EQ(answers.got.size(), 1u);
  EXPECT_EQ(*answers.got[0], 2);
}

Flow<int> holding(Deferred& d, int* gone) {
  Witness w(gone);
  auto x = co_await d.value();
  co_return *x;
}

TEST(Flow, ADroppedCompletionDestroysTheFlowWithoutAnAnswer) {
  Deferred d;
  Answers answers;
  int gone = 0;
  holding(d, &gone).answer(answers.sink());
  ASSERT_EQ(d.held.size(), 1u);
  EXPECT_EQ(gone, 0);
  auto copy = d.held[0];
  d.held.clear();
  EXPECT_EQ(gone, 0) << "a copy of the completion is still alive";
  copy = nullptr;
  EXPECT_EQ(gone, 1) << "the frame and its locals are gone";
  EXPECT_TRUE(answers.got.empty());
}

Flow<int> dropped_at_once() {
  auto x = co_await completion<int>([](Completion<int> done) { done = nullptr; });
  co_return x;
}

TEST(Flow, ACompletionDroppedBeforeTheFlowSuspendedEndsItToo) {
  Answers answers;
  dropped_at_once().answer(answers.sink());
  EXPECT_TRUE(answers.got.empty()) << "a dropped completion ends the flow, however early";
}

Flow<int> dropped_at_once_holding(int* gone) {
  Witness w(gone);
  auto x = co_await completion<int>([](Completion<int> done) { done = nullptr; });
  co_return x;
}

TEST(Flow, ACompletionDroppedBeforeTheFlowSuspendedReleasesItsFrame) {
  int gone = 0;
  dropped_at_once_holding(&gone).start();
  EXPECT_EQ(gone, 1);
}

// A storage thread that answers before the flow finished suspending still
// resumes the flow itself: what follows a co_await never lands on the
// caller's thread (a worker) by a race.
TEST(Flow, GoesOnOnTheCompletingThreadEvenWhenItAnswersAtOnce) {
  for (int round = 0; round < 200; ++round) {
    std::thread::id caller = std::this_thread::get_id();
    std::promise<std::thread::id> went_on;
    std::thread storage;
    auto flow = [&]() -> Flow<int> {
      auto x = co_await completion<int>([&](Completion<int> done) {
        storage = std::thread([done = std::move(done)] { done(Result<int>(1)); });
      });
      went_on.set_value(std::this_thread::get_id());
      co_return x;
    };
    flow().start();
    auto on = went_on.get_future().get();
    EXPECT_NE(on, caller) << "round " << round;
    storage.join();
  }
}

struct CountingFaults final : FlowFaults {
  std::vector<std::string> seen;
  void threw(std::string_view what) noexcept override { seen.emplace_back(what); }
};

Flow<int> throws_in_start() {
  auto x = co_await completion<int>([](Completion<int>) { throw std::runtime_error("storage exploded"); });
  co_return x;
}

Flow<int> throws_in_body(Deferred& d) {
  auto x = co_await d.value();
  if (*x > 0) throw std::runtime_error("host bug");
  co_return *x;
}

TEST(Flow, AnExceptionBecomesOneInternalAnswerAndIsReported) {
  Answers answers;
  CountingFaults faults;
  throws_in_start().answer(answers.sink(), &faults);
  ASSERT_EQ(answers.got.size(), 1u);
  EXPECT_EQ(answers.got[0].code(), Errc::internal);
  EXPECT_NE(answers.got[0].error().message.find("storage exploded"), std::string::npos);

  Deferred d;
  Answers more;
  throws_in_body(d).answer(more.sink(), &faults);
  d.held[0](Result<int>(1));
  ASSERT_EQ(more.got.size(), 1u);
  EXPECT_EQ(more.got[0].code(), Errc::internal);
  EXPECT_NE(more.got[0].error().message.find("host bug"), std::string::npos);

  immediate().answer([](Result<int>) { throw std::runtime_error("cannot send"); }, &faults);
  EXPECT_EQ(faults.seen, (std::vector<std::string>{"storage exploded", "host bug", "cannot send"}));
}

Flow<int> outer(Deferred& a, Deferred& b, int* gone) {
  Witness w(gone);
  auto inner = co_await add(a, b, gone);
  if (!inner) co_return inner.error();
  co_return *inner * 10;
}

TEST(Flow, ANestedFlowHandsItsResultToTheOneAwaitingIt) {
  Deferred a, b;
  Answers answers;
  int gone = 0;
  outer(a, b, &gone).answer(answers.sink());
  a.held[0](Result<int>(1));
  b.held[0](Result<int>(2));
  ASSERT_EQ(answers.got.size(), 1u);
  EXPECT_EQ(*answers.got[0], 30);
  EXPECT_EQ(gone, 2) << "both frames are gone";
}

TEST(Flow, ACompletionDroppedInANestedFlowDestroysTheWholeChain) {
  Deferred a, b;
  Answers answers;
  int gone = 0;
  outer(a, b, &gone).answer(answers.sink());
  a.held[0](Result<int>(1));
  ASSERT_EQ(b.held.size(), 1u);
  b.held.clear();
  EXPECT_EQ(gone, 2) << "the inner flow's frame and the outer one's are gone";
  EXPECT_TRUE(answers.got.empty());
}

TEST(Flow, AFlowNeverStartedRunsNothing) {
  Deferred a, b;
  int gone = 0;
  { auto never = add(a, b, &gone); }
  EXPECT_EQ(gone, 0) << "not even its locals were made";
  EXPECT_TRUE(a.held.empty());
}

}  // namespace
}  // namespace switchboard::host

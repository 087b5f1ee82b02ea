// EventSequencer with a fake storage: what members receive when events of a
// conversation arrive out of order, late, twice or never.
#include "core/event_sequencer.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <map>
#include <set>

#include "metrics/metrics_registry.hpp"

namespace switchboard::host {
namespace {

using namespace std::chrono_literals;

SequencedEvent event(Seq seq, std::vector<UserId> join = {}) {
  auto meta = std::make_shared<DeliveryMeta>();
  meta->seq = seq;
  meta->join = std::move(join);
  return SequencedEvent{std::make_shared<const std::string>("e" + std::to_string(seq)), std::move(meta)};
}

class Sequencing : public ::testing::Test {
 protected:
  Sequencing()
      : sequencer(io, 50ms, [this](ConversationId, SequencedEvent e) { delivered.push_back(e.meta->seq); },
                  [this](ConversationId, Seq after, Seq before, std::function<void(std::vector<SequencedEvent>)> done) {
                    reads.emplace_back(after, before);
                    pending.push_back([this, after, before, done] {
                      std::vector<SequencedEvent> out;
                      for (Seq s : stored) {
                        if (s > after && s < before) out.push_back(event(s));
                      }
                      done(std::move(out));
                    });
                  },
                  metrics) {
    sequencer.set_local_user_check([](const UserId& u) { return u == "here"; });
  }

  // Runs the timers until `until` holds or a second passes; storage answers at once.
  template <class Until>
  void run(Until until) {
    auto deadline = std::chrono::steady_clock::now() + 1s;
    while (!until() && std::chrono::steady_clock::now() < deadline) {
      io.run_for(5ms);
      if (!answer_reads) continue;
      auto batch = std::move(pending);
      pending.clear();
      for (auto& answer : batch) answer();
    }
  }

  boost::asio::io_context io;
  MetricsRegistry metrics;
  std::vector<Seq> delivered;
  std::vector<std::pair<Seq, Seq>> reads;
  std::vector<std::function<void()>> pending;
  std::set<Seq> stored;
  bool answer_reads = true;
  EventSequencer sequencer;
};

TEST_F(Sequencing, EventsOfAnUntrackedConversationPassAtOnce) {
  sequencer.offer(1, event(5));
  sequencer.offer(1, event(3));
  EXPECT_EQ(delivered, (std::vector<Seq>{5, 3}));
}

TEST_F(Sequencing, OutOfOrderEventsAreDeliveredInOrderOnce) {
  sequencer.track(1);
  for (Seq s : {1, 3, 2, 2, 5, 4, 1}) sequencer.offer(1, event(s));
  EXPECT_EQ(delivered, (std::vector<Seq>{1, 2, 3, 4, 5}));
  EXPECT_TRUE(reads.empty()) << "no gap was left open: storage has nothing to do";
}

TEST_F(Sequencing, AGapThatStaysOpenIsFilledFromStorage) {
  sequencer.track(1);
  stored = {1, 2, 3, 4};
  sequencer.offer(1, event(1));
  sequencer.offer(1, event(4));  // 2 and 3 were lost on the bus
  run([&] { return delivered.size() == 4; });
  EXPECT_EQ(delivered, (std::vector<Seq>{1, 2, 3, 4}));
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0], (std::pair<Seq, Seq>{1, 4}));
  sequencer.offer(1, event(3));  // arriving after all: not twice
  EXPECT_EQ(delivered.size(), 4u);
}

TEST_F(Sequencing, WhatStorageCannotSupplyIsSkippedNotWaitedForever) {
  sequencer.track(1);
  stored = {1, 3};
  sequencer.offer(1, event(1));
  sequencer.offer(1, event(4));
  run([&] { return delivered.size() == 3; });
  EXPECT_EQ(delivered, (std::vector<Seq>{1, 3, 4}));
}

TEST_F(Sequencing, AJoinHereStartsSequencingAndReadsWhatTheSubscriptionMissed) {
  stored = {7, 8, 9};
  sequencer.offer(1, event(7, {"here"}));  // the join; 8 was published before this host subscribed
  sequencer.track(1);
  sequencer.offer(1, event(9));
  run([&] { return delivered.size() == 3; });
  EXPECT_EQ(delivered, (std::vector<Seq>{7, 8, 9}));
}

TEST_F(Sequencing, ASessionsLoadedPositionStartsSequencingThere) {
  // A session loaded the conversation at seq 10; 11 is late on the bus when
  // 12 arrives first: 11 is still delivered, before 12, and 10 never.
  stored = {10, 11, 12};
  sequencer.track(1, 10);
  sequencer.offer(1, event(12));
  sequencer.offer(1, event(10));
  EXPECT_TRUE(delivered.empty());
  sequencer.offer(1, event(11));
  EXPECT_EQ(delivered, (std::vector<Seq>{11, 12}));
}

TEST_F(Sequencing, AnOlderReadNeverSkipsANewerGap) {
  // The join's read is in flight when a new gap opens (9 is late on the
  // bus); its answer predates 9 and must not count as "storage lacks 9".
  stored = {7, 8};
  answer_reads = false;
  sequencer.offer(1, event(7, {"here"}));
  sequencer.track(1);
  run([&] { return !reads.empty(); });
  ASSERT_EQ(reads.size(), 1u);
  sequencer.offer(1, event(8));
  sequencer.offer(1, event(10));
  auto answer = std::move(pending);
  pending.clear();
  for (auto& a : answer) a();
  EXPECT_EQ(delivered, (std::vector<Seq>{7, 8}));
  stored = {7, 8, 9, 10};
  answer_reads = true;
  run([&] { return delivered.size() == 4; });
  EXPECT_EQ(delivered, (std::vector<Seq>{7, 8, 9, 10}));
}

}  // namespace
}  // namespace switchboard::host

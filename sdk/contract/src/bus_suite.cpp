// The bus contract: what every bus plugin must do for the host to be correct.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "switchboard/contract/plugin_under_test.hpp"

namespace switchboard::contract {
namespace {

using namespace std::chrono_literals;
constexpr auto kDeadline = 20s;

// What one simulated host received, with waits bounded by a deadline.
class Inbox {
 public:
  BusHandler handler() {
    return [this](std::string_view subject, std::string_view payload) {
      std::lock_guard lock(mutex_);
      received_.emplace_back(std::string(subject), std::string(payload));
      changed_.notify_all();
    };
  }

  // Waits until `pred(received)` holds or the deadline passes.
  template <class Pred>
  bool wait(Pred pred, std::chrono::milliseconds deadline = kDeadline) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, deadline, [&] { return pred(received_); });
  }

  bool wait_count(const std::string& subject, std::size_t n) {
    return wait([&](const auto& r) { return count_locked(r, subject) >= n; });
  }

  std::size_t count(const std::string& subject) {
    std::lock_guard lock(mutex_);
    return count_locked(received_, subject);
  }

  // For use inside a wait() predicate (the lock is held there).
  bool has_locked(const std::string& subject) const { return count_locked(received_, subject) > 0; }

  std::vector<std::string> payloads(const std::string& subject) {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [s, p] : received_) {
      if (s == subject) out.push_back(p);
    }
    return out;
  }

 private:
  static std::size_t count_locked(const std::vector<std::pair<std::string, std::string>>& r, const std::string& s) {
    std::size_t n = 0;
    for (const auto& item : r) n += item.first == s;
    return n;
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::pair<std::string, std::string>> received_;
};

// Subjects unique to this run: a networked bus may be shared with others.
std::string subject(const std::string& name) {
  static const std::string run = [] {
    std::random_device rd;
    return std::to_string(rd()) + std::to_string(rd());
  }();
  return "contract." + run + "." + name;
}

struct Host {
  Inbox inbox;
  std::shared_ptr<Bus> bus;

  Host() : bus(plugin_under_test().make_bus()) {
    auto started = bus->start(inbox.handler());
    EXPECT_TRUE(started.ok()) << (started.ok() ? "" : started.error().message);
  }
  ~Host() {
    if (bus) bus->stop();
  }
  void subscribe(const std::string& s) {
    auto r = bus->subscribe(s);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  bool inbox_has(const std::string& s) const { return inbox.has_locked(s); }
  void publish(const std::string& s, std::string_view payload) {
    auto r = bus->publish(s, payload);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
};

// A subscription is in place when a probe published on it comes back: for a
// networked bus, subscribe() may return before the server has registered it,
// so the probe is published again every 50 ms until every subscriber has one.
void await_subscription(Host& publisher, std::initializer_list<Host*> subscribers, const std::string& s) {
  std::string probe = s + ".probe";
  for (Host* h : subscribers) h->subscribe(probe);
  auto deadline = std::chrono::steady_clock::now() + kDeadline;
  for (;;) {
    publisher.publish(probe, "probe");
    bool all = true;
    for (Host* h : subscribers) {
      all = all && h->inbox.wait([&](const auto&) { return h->inbox_has(probe); }, std::chrono::milliseconds(50));
    }
    if (all) return;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "probe on " << probe << " never arrived";
  }
}

TEST(BusContract, StartsHealthy) {
  Host host;
  auto health = host.bus->health();
  EXPECT_TRUE(health.ok) << health.detail;
}

TEST(BusContract, DeliversToEverySubscriberOnOtherHosts) {
  Host a, b, c, bystander;
  std::string s = subject("fanout");
  b.subscribe(s);
  c.subscribe(s);
  await_subscription(a, {&b, &c}, s);
  a.publish(s, "hello");
  ASSERT_TRUE(b.inbox.wait_count(s, 1));
  ASSERT_TRUE(c.inbox.wait_count(s, 1));
  EXPECT_EQ(b.inbox.payloads(s), std::vector<std::string>{"hello"});
  EXPECT_EQ(c.inbox.payloads(s), std::vector<std::string>{"hello"});
  // A host not subscribed receives nothing; the publisher is not subscribed either.
  std::string marker = subject("fanout.marker");
  bystander.subscribe(marker);
  a.subscribe(marker);
  await_subscription(a, {&bystander, &a}, marker);
  a.publish(marker, "m");
  ASSERT_TRUE(bystander.inbox.wait_count(marker, 1));
  ASSERT_TRUE(a.inbox.wait_count(marker, 1));
  EXPECT_EQ(bystander.inbox.count(s), 0u);
  EXPECT_EQ(a.inbox.count(s), 0u);
}

TEST(BusContract, PublisherReceivesItsOwnMessageWhenSubscribed) {
  Host a;
  std::string s = subject("echo");
  a.subscribe(s);
  await_subscription(a, {&a}, s);
  a.publish(s, "to myself");
  ASSERT_TRUE(a.inbox.wait_count(s, 1));
  EXPECT_EQ(a.inbox.payloads(s), std::vector<std::string>{"to myself"});
}

TEST(BusContract, SubscribeTwiceDeliversOnce) {
  Host a, b;
  std::string s = subject("twice");
  b.subscribe(s);
  b.subscribe(s);
  await_subscription(a, {&b}, s);
  a.publish(s, "once");
  std::string marker = subject("twice.marker");
  b.subscribe(marker);
  await_subscription(a, {&b}, marker);
  a.publish(marker, "m");
  ASSERT_TRUE(b.inbox.wait_count(marker, 1));
  ASSERT_TRUE(b.inbox.wait_count(s, 1));
  EXPECT_EQ(b.inbox.count(s), 1u);
}

TEST(BusContract, NoDeliveryAfterUnsubscribe) {
  Host a, b;
  std::string s = subject("unsub");
  std::string marker = subject("unsub.marker");
  b.subscribe(s);
  b.subscribe(marker);
  await_subscription(a, {&b}, s);
  await_subscription(a, {&b}, marker);
  a.publish(s, "before");
  ASSERT_TRUE(b.inbox.wait_count(s, 1));
  ASSERT_TRUE(b.bus->unsubscribe(s).ok());
  a.publish(s, "after");
  // Same publisher, later message: once it arrives, "after" had its chance.
  a.publish(marker, "m");
  ASSERT_TRUE(b.inbox.wait_count(marker, 1));
  EXPECT_EQ(b.inbox.payloads(s), std::vector<std::string>{"before"});
}

TEST(BusContract, KeepsEachPublishersOrderOnASubject) {
  Host a, b;
  std::string s = subject("order");
  b.subscribe(s);
  await_subscription(a, {&b}, s);
  constexpr int kMessages = 2000;
  for (int i = 0; i < kMessages; ++i) a.publish(s, std::to_string(i));
  ASSERT_TRUE(b.inbox.wait_count(s, kMessages)) << "got " << b.inbox.count(s) << " of " << kMessages;
  auto got = b.inbox.payloads(s);
  for (int i = 0; i < kMessages; ++i) ASSERT_EQ(got[static_cast<std::size_t>(i)], std::to_string(i)) << "at " << i;
}

TEST(BusContract, PayloadsFromZeroBytesToOneMebibyteAreByteExact) {
  Host a, b;
  std::string s = subject("bytes");
  b.subscribe(s);
  await_subscription(a, {&b}, s);
  std::mt19937 rng(42);
  std::vector<std::string> sent;
  for (std::size_t size : {0u, 1u, 2u, 255u, 4096u, 65536u, 1u << 20}) {
    std::string payload(size, '\0');
    for (auto& ch : payload) ch = static_cast<char>(rng() & 0xff);  // NULs and invalid UTF-8 included
    sent.push_back(payload);
    a.publish(s, payload);
  }
  ASSERT_TRUE(b.inbox.wait_count(s, sent.size())) << "got " << b.inbox.count(s) << " of " << sent.size();
  auto got = b.inbox.payloads(s);
  ASSERT_EQ(got.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(got[i].size(), sent[i].size()) << "payload " << i;
    EXPECT_TRUE(got[i] == sent[i]) << "payload " << i << " of " << sent[i].size() << " bytes differs";
  }
}

TEST(BusContract, ConcurrentPublishersAllArriveInEachPublishersOrder) {
  constexpr int kPublishers = 4;
  constexpr int kEach = 500;
  std::vector<std::unique_ptr<Host>> publishers;
  for (int p = 0; p < kPublishers; ++p) publishers.push_back(std::make_unique<Host>());
  Host receiver;
  std::string s = subject("concurrent");
  receiver.subscribe(s);
  for (auto& p : publishers) await_subscription(*p, {&receiver}, s);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int p = 0; p < kPublishers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kEach; ++i) {
        if (!publishers[static_cast<std::size_t>(p)]->bus->publish(s, std::to_string(p) + ":" + std::to_string(i)).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_TRUE(receiver.inbox.wait_count(s, kPublishers * kEach))
      << "got " << receiver.inbox.count(s) << " of " << kPublishers * kEach;
  std::vector<int> next(kPublishers, 0);
  for (const auto& payload : receiver.inbox.payloads(s)) {
    auto colon = payload.find(':');
    int p = std::stoi(payload.substr(0, colon));
    int i = std::stoi(payload.substr(colon + 1));
    ASSERT_EQ(i, next[static_cast<std::size_t>(p)]) << "publisher " << p << " out of order";
    ++next[static_cast<std::size_t>(p)];
  }
}

TEST(BusContract, NoCallbackAfterStop) {
  Host a, b, witness;
  std::string s = subject("stop");
  b.subscribe(s);
  witness.subscribe(s);
  await_subscription(a, {&b, &witness}, s);
  std::atomic<bool> stopped{false};
  std::atomic<int> late{0};
  // Replace b with a bus whose handler counts calls made after stop() returned.
  b.bus->stop();
  b.bus = plugin_under_test().make_bus();
  auto record = b.inbox.handler();
  ASSERT_TRUE(b.bus->start([&](std::string_view subject, std::string_view payload) {
                    if (stopped.load()) {
                      ++late;
                    } else {
                      record(subject, payload);
                    }
                  }).ok());
  ASSERT_TRUE(b.bus->subscribe(s).ok());
  await_subscription(a, {&b, &witness}, s);
  std::atomic<bool> publishing{true};
  // A bus may refuse a publish while its queue is full (publish never
  // blocks): the flood goes on. Joined however this test ends, so a failed
  // assertion reports instead of aborting the runner.
  std::thread flood([&] {
    while (publishing) {
      (void)a.bus->publish(s, "x");
      std::this_thread::yield();
    }
  });
  struct JoinFlood {
    std::atomic<bool>& publishing;
    std::thread& flood;
    ~JoinFlood() {
      publishing = false;
      if (flood.joinable()) flood.join();
    }
  } join_flood{publishing, flood};
  // Stop while messages are flowing (to b too: otherwise this proves nothing).
  ASSERT_TRUE(witness.inbox.wait_count(s, 200));
  ASSERT_TRUE(b.inbox.wait_count(s, 100)) << "the bus under test never delivered to b";
  b.bus->stop();
  stopped = true;
  std::size_t seen = witness.inbox.count(s);
  // Let the flood go on until the witness has seen a good many more.
  ASSERT_TRUE(witness.inbox.wait_count(s, seen + 500));
  publishing = false;
  flood.join();
  EXPECT_EQ(late.load(), 0) << "the handler ran after stop() returned";
  b.bus.reset();
}

TEST(BusContract, RejectsInvalidSubjects) {
  Host a;
  for (const std::string& bad :
       std::vector<std::string>{"", "has space", "star.*", ".leading", "trailing.", std::string(256, 'x')}) {
    auto r = a.bus->publish(bad, "x");
    EXPECT_FALSE(r.ok()) << "publish accepted \"" << bad << "\"";
    EXPECT_EQ(r.code(), Errc::bad_request);
    EXPECT_FALSE(a.bus->subscribe(bad).ok()) << "subscribe accepted \"" << bad << "\"";
  }
}

}  // namespace
}  // namespace switchboard::contract

// The bus links the hosts of a cluster: a host publishes a conversation's
// events on a subject and every host subscribed to that subject receives them.
#pragma once

#include <functional>
#include <string_view>

#include "switchboard/plugin.hpp"
#include "switchboard/result.hpp"
#include "switchboard/types.hpp"

namespace switchboard {

// Called for every message on a subscribed subject. `subject` and `payload`
// are valid only during the call. Called from the bus's own threads, one
// message at a time per bus instance, in publish order for any one publisher
// and subject. Must not block for long and must not call Bus::stop().
// `subject` and `payload` are valid during the call only: the host copies
// what it keeps.
using BusHandler = std::function<void(std::string_view subject, std::string_view payload)>;

// Contract (checked by switchboard-contract):
// - a message published on a subject reaches every instance subscribed to it
//   when it was published, on any host, the publishing instance included;
// - subscribe/unsubscribe are idempotent; after unsubscribe returns, no new
//   message on that subject is delivered;
// - payloads are bytes: any content, 0 bytes to at least 1 MiB, byte-exact;
// - publish never blocks on a slow subscriber;
// - after stop() returns, the handler is not running and is never called again.
// A bus may drop messages (e.g. while disconnected, or for a subscriber that
// cannot keep up): the events are in storage and clients recover by resume.
// A bus must report it through health() and metrics, never hide it.
class SWITCHBOARD_API Bus : public Plugin {
 public:
  virtual Status start(BusHandler on_message) = 0;
  virtual void stop() noexcept = 0;

  // Subjects are 1 to 255 characters of [A-Za-z0-9._-]; '.' separates tokens.
  virtual Status publish(std::string_view subject, std::string_view payload) = 0;
  virtual Status subscribe(std::string_view subject) = 0;
  virtual Status unsubscribe(std::string_view subject) = 0;

  virtual Health health() const noexcept = 0;
};

constexpr PluginKind plugin_kind_of(const Bus*) noexcept { return PluginKind::bus; }

// The structs a bus exchanges with the host by value.
constexpr SharedSizes shared_sizes_of(const Bus*) noexcept {
  SharedSizes s{};
  detail::record_size<Error>(s, SharedStruct::error);
  detail::record_size<Health>(s, SharedStruct::health);
  return s;
}

// True when `subject` is a valid bus subject.
constexpr bool valid_subject(std::string_view subject) noexcept {
  if (subject.empty() || subject.size() > 255) return false;
  for (char c : subject) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return subject.front() != '.' && subject.back() != '.';
}

}  // namespace switchboard

// One WebSocket client after the handshake. Runs on its worker's thread only.
// Outbound: one write in flight, everything queued meanwhile sent in one
// gather write. Two kinds of traffic, bounded differently:
// - pushes (events of the session's conversations) are bounded by
//   `queue_bytes`: ephemeral ones are shed first when the queue is full, then
//   the session is closed with 1008 — the client reads too slowly;
// - what the client asked for (answers, replayed events) is never refused
//   for its size: it is produced as the socket drains instead. While more
//   than `queue_bytes` of it waits, no further command is read; a large
//   command (history, resume) runs one at a time, later commands waiting
//   behind it; a replay reads its next page only once the previous one
//   has mostly left (when_drained).
// Inbound: frames parsed from a worker-wide scratch buffer, so an idle
// session holds none.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/connection.hpp"
#include "net/worker.hpp"
#include "net/ws_frame.hpp"
#include "switchboard/services.hpp"
#include "switchboard/types.hpp"

namespace switchboard::host {

struct SessionMetrics {
  Counter* frames_in;
  Counter* frames_out;
  Counter* shed;         // ephemeral frames dropped for a slow reader
  Counter* slow_closes;  // sessions closed with 1008 for a full queue
  Gauge* connections;
  Counter* missing_answers = nullptr;  // commands answered internal after their deadline
};

// A command waiting for its one answer: whoever flips `answered` first
// sends it — the handler, or the session with `timeout_frame` once the
// deadline has passed without progress.
struct PendingAnswer {
  std::atomic<bool> answered{false};
  std::atomic<std::chrono::steady_clock::rep> deadline{0};  // steady_clock ticks
  std::chrono::steady_clock::duration timeout{};
  std::string timeout_frame;
  // A long command (a resume of many conversations) moves its deadline on
  // each step. Any thread.
  void progressed() { deadline = (std::chrono::steady_clock::now() + timeout).time_since_epoch().count(); }
};

struct SessionSettings {
  SessionMetrics metrics{};
  std::size_t max_message = 64 * 1024;
  std::chrono::seconds ping_interval{30};
  std::chrono::seconds idle_timeout{90};
  std::size_t queue_bytes = 1 << 20;
  double commands_per_second = 50;
  double command_burst = 100;
  std::chrono::seconds command_timeout{30};  // a command unanswered this long gets `internal`
};

class WsSession;

// What a session needs from the rest of the host.
class SessionHandler {
 public:
  virtual ~SessionHandler() = default;
  // The session is attached; load its conversations, then call ready().
  virtual void on_open(const std::shared_ptr<WsSession>& session) = 0;
  // One text message; `rate_limited` if it exceeded the command rate.
  virtual void on_message(const std::shared_ptr<WsSession>& session, std::string_view text, bool rate_limited) = 0;
  virtual void on_closed(WsSession& session) = 0;
};

class WsSession final : public std::enable_shared_from_this<WsSession>, private FrameParser::Handler {
 public:
  WsSession(Worker& worker, Connection connection, UserId user, std::uint64_t id,
            const SessionSettings& settings, SessionHandler& handler);
  ~WsSession() override;

  // Worker thread.
  void start();
  void ready();  // conversations loaded: start reading commands
  // `can_wait`: the frame may wait up to the worker's batch window for
  // others to leave with (presence).
  void send(const std::shared_ptr<const std::string>& frame, bool ephemeral, bool can_wait = false);
  // An answer or another frame the client asked for (see the header note).
  void send_text(std::string_view json);
  void deliver(ConversationId id, const std::shared_ptr<const std::string>& frame, const DeliveryMeta& meta);
  // Sends a close frame (after what is queued, unless `drop_queued`), then
  // shuts down; the socket closes when the peer answers or after 5 s.
  void close(std::uint16_t code, std::string_view reason, bool drop_queued = false);
  void tick(std::chrono::steady_clock::time_point now);
  // The worker stopped for good: drops what keeps the session alive (its
  // hold on itself, flows waiting for it to drain).
  void abandon();
  // Starts writing what is queued (the worker calls it after a burst).
  void flush();
  // The worker's batch window ended: writes the frames that waited for it.
  void flush_waiting();

  // Any thread: runs `json` through send_text on the worker.
  void post_text(std::string json);
  template <class F>
  void post(F&& f) {
    worker_.post([self = shared_from_this(), f = std::forward<F>(f)]() mutable { f(*self); });
  }

  const UserId& user() const { return user_; }
  std::uint64_t id() const { return id_; }
  Worker& worker() { return worker_; }
  bool open() const { return state_ == State::open; }
  bool finished() const { return state_ == State::closed; }  // detached from its worker

  // The conversations this session receives (its user's memberships).
  bool in(ConversationId id) const;
  void add_conversation(ConversationId id);
  void remove_conversation(ConversationId id);
  const std::vector<ConversationId>& conversations() const { return conversations_; }

  // A command costing more than one token (a subscribe of many positions):
  // the extra is taken from the rate bucket, which may go into debt.
  void charge(double extra_tokens) { tokens_ -= extra_tokens; }

  // Registers a command waiting for its answer (see PendingAnswer).
  std::shared_ptr<PendingAnswer> expect_answer(std::string timeout_frame);

  // Resume: while a conversation replays, its live events are held back and
  // sent after the replay, without duplicates. Held events over the queue
  // bound are dropped and read again from storage (they are all stored):
  // end_replay of a `recovered` replay answers false while a dropped one
  // lies beyond `replayed_up_to`, and the replay reads on.
  // False if `id` is replaying already (for another subscribe).
  bool begin_replay(ConversationId id);
  bool end_replay(ConversationId id, Seq replayed_up_to, bool recovered = true);

  // Runs `f` (on the worker) once at most half of `queue_bytes` of asked-for
  // frames wait — at once if so already. Dropped unrun if the session ends.
  void when_drained(std::function<void()> f);

  // A large command runs alone: while `pending` is unanswered, commands
  // that arrive wait in order (their socket is not read) and run after it.
  // So do commands beyond kMaxInFlight unanswered ones.
  void run_alone(std::shared_ptr<PendingAnswer> pending);
  // The command behind `pending` has its answer: sends `json`, then runs
  // the commands that waited for it.
  void answer(const std::shared_ptr<PendingAnswer>& pending, std::string_view json);
  static constexpr std::size_t kMaxInFlight = 16;

  std::size_t worker_slot = 0;  // position in the worker's session list
  // Keeps `keep` alive as long as the session (its connection count).
  void hold(std::shared_ptr<void> keep) { held_ = std::move(keep); }

 private:
  enum class State : std::uint8_t { starting, open, closing, closed };
  enum class Traffic : std::uint8_t { ephemeral, push, asked };

  void read();
  void on_readable();
  void write();
  void wait_writable();
  // Index of the first frame not yet partly sent (sheddable or droppable).
  std::size_t untouched() const { return head_ + (head_offset_ > 0 ? 1 : 0); }
  void drop_from(std::size_t first, bool only_ephemeral);
  void enqueue(const std::shared_ptr<const std::string>& frame, Traffic traffic, bool can_wait = false);
  void drained();      // asked-for bytes fell below the low mark
  void answered(const std::shared_ptr<PendingAnswer>& pending);
  void run_waiting();  // runs the commands that waited, as far as allowed
  bool commands_wait() const;  // a command arriving now waits (alone_->waiting)
  void release_alone_if_idle();
  bool reading_paused() const;
  void drop_held();  // frees what replays hold (storage has it all)
  void finish();  // closes the socket and detaches, once

  void on_text(std::string_view message) override;
  void on_ping(std::string_view payload) override;
  void on_pong() override;
  void on_close(std::uint16_t code, std::string_view reason) override;

  struct Outbound {
    std::shared_ptr<const std::string> frame;
    Traffic traffic;
  };
  // State only a session running a large command needs.
  struct Alone {
    std::shared_ptr<PendingAnswer> running;  // the command running alone
    std::deque<std::pair<std::string, bool>> waiting;  // commands behind it (text, rate limited)
    std::vector<std::function<void()>> on_drained;
  };
  struct Replay {
    std::vector<std::pair<Seq, std::shared_ptr<const std::string>>> held;
    Seq dropped_up_to = 0;  // the newest held event dropped for the bound
  };

  Worker& worker_;
  Connection connection_;
  UserId user_;
  std::uint64_t id_;
  const SessionSettings& settings_;
  SessionHandler& handler_;
  FrameParser parser_;
  State state_ = State::starting;
  bool reading_ = false;
  bool writing_ = false;
  bool shutdown_after_write_ = false;
  bool dirty_ = false;  // queued frames, flush scheduled on the worker
  bool waiting_ = false;  // queued frames that can wait, on the worker's batch timer
  // Frames to write: queue_[head_..], of which head_offset_ bytes of the
  // first are already sent. Bytes are counted until fully sent.
  std::vector<Outbound> queue_;
  std::size_t head_ = 0;
  std::size_t head_offset_ = 0;
  std::size_t queued_bytes_ = 0;
  std::size_t asked_bytes_ = 0;  // of queued_bytes_, what the client asked for
  std::size_t held_bytes_ = 0;  // frames held back during a replay
  std::size_t in_flight_ = 0;  // commands registered by expect_answer, not yet answered
  bool read_paused_ = false;    // not reading: asked-for bytes over the bound, or commands waiting
  std::shared_ptr<WsSession> paused_self_;  // while read_paused_: no pending read holds the session
  std::vector<ConversationId> conversations_;  // sorted
  std::chrono::steady_clock::time_point last_received_;  // the last complete frame
  std::chrono::steady_clock::time_point message_started_;  // when the incomplete frame or message began
  std::chrono::steady_clock::time_point last_ping_;
  std::chrono::steady_clock::time_point last_written_;  // the last frame fully written
  std::chrono::steady_clock::time_point close_deadline_;
  double tokens_;
  std::chrono::steady_clock::time_point tokens_at_;
  std::unique_ptr<std::unordered_map<ConversationId, Replay>> replaying_;
  std::unique_ptr<Alone> alone_;
  std::shared_ptr<void> held_;
  std::vector<std::shared_ptr<PendingAnswer>> pending_;  // unanswered commands, oldest first
};

}  // namespace switchboard::host

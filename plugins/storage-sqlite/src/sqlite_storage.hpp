// storage-sqlite: the embedded default. WAL mode; one batching writer thread
// (seq allocation is serialized there, so it is gap-free without locks);
// reads run on the caller's thread over a small pool of read connections.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "batch_writer.hpp"
#include "read_pool.hpp"
#include "database.hpp"
#include "switchboard/abi.hpp"  // SWITCHBOARD_SDK_VERSION_MINOR: this source builds against SDK 1.0 and 1.1
#include "switchboard/storage.hpp"

#ifndef SWITCHBOARD_SDK_VERSION_MINOR
#error "the SDK headers name no version"
#endif

namespace sqlite_storage {

class SqliteStorage final : public switchboard::Storage {
 public:
  explicit SqliteStorage(switchboard::PluginContext& context);
  ~SqliteStorage() override;

  void create_conversation(switchboard::ConversationDraft draft,
                           switchboard::Completion<switchboard::ConversationCreated> done) override;
  void get_conversation(switchboard::ConversationId id, switchboard::Completion<switchboard::Conversation> done) override;
  void list_conversations(switchboard::UserId user, switchboard::ConversationPage page,
                          switchboard::Completion<std::vector<switchboard::Conversation>> done) override;
  void reset_stream(switchboard::ConversationId id, switchboard::Completion<switchboard::Conversation> done) override;

  void set_member(switchboard::Member member, switchboard::EventDraft event,
                  switchboard::Completion<switchboard::MemberChange> done) override;
  void remove_member(switchboard::ConversationId id, switchboard::UserId user, switchboard::EventDraft event,
                     switchboard::Completion<switchboard::MemberChange> done) override;
  void get_member(switchboard::ConversationId id, switchboard::UserId user,
                  switchboard::Completion<switchboard::Member> done) override;
  void list_members(switchboard::ConversationId id,
                    switchboard::Completion<std::vector<switchboard::Member>> done) override;

  void append_message(switchboard::MessageDraft draft, switchboard::EventDraft event,
                      switchboard::Completion<switchboard::MessageWrite> done) override;
#if SWITCHBOARD_SDK_VERSION_MINOR >= 1
  // Membership checked in the append's own write, on the one writer: no
  // read before it. (Built against SDK 1.0, the host does the check.)
  void append_message_as_member(switchboard::MessageDraft draft, switchboard::EventDraft event,
                                switchboard::Completion<switchboard::MessageWrite> done) override;
#endif
  void edit_message(switchboard::MessageId id, std::string text, switchboard::EventDraft event,
                    switchboard::Completion<switchboard::MessageWrite> done) override;
  void delete_message(switchboard::MessageId id, switchboard::EventDraft event,
                      switchboard::Completion<switchboard::MessageWrite> done) override;
  void get_message(switchboard::MessageId id, switchboard::Completion<switchboard::Message> done) override;

  void append_event(switchboard::ConversationId id, switchboard::EventDraft event,
                    switchboard::Completion<switchboard::Event> done) override;
  void read_events(switchboard::EventQuery query, switchboard::Completion<switchboard::EventPage> done) override;
  void count_events(switchboard::EventCount query, switchboard::Completion<std::int64_t> done) override;

  void change_record(switchboard::RecordChange change, switchboard::Completion<switchboard::RecordOutcome> done) override;
  void list_records(switchboard::RecordQuery query,
                    switchboard::Completion<std::vector<switchboard::Record>> done) override;

  switchboard::Status flush() override;
  void stop() noexcept override;
  switchboard::Health health() const noexcept override;

 private:
  // Runs `body` on a read connection's thread, turning exceptions into an Error.
  template <class T, class Body>
  void read(Body body, switchboard::Completion<T> done);
  void append_as(switchboard::MessageDraft draft, switchboard::EventDraft event, bool as_member,
                 switchboard::Completion<switchboard::MessageWrite> done);

  switchboard::Clock& clock_;
  switchboard::Logger& log_;
  std::string path_;
  std::unique_ptr<ReadPool> readers_;
  std::unique_ptr<BatchWriter> writer_;
};

}  // namespace sqlite_storage

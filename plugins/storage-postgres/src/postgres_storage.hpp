// storage-postgres: the storage contract on PostgreSQL (libpqxx), shared by
// every host of a cluster. seq stays gap-free per conversation across hosts
// because each event takes it from its conversation's row, locked until the
// transaction commits (rolled back with it on failure). Writes are batched
// per writer connection; reads run on a pool of reader connections. Works
// directly or through PgBouncer in transaction pooling mode.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "job_runner.hpp"
#include "switchboard/storage.hpp"

namespace postgres_storage {

class PostgresStorage final : public switchboard::Storage {
 public:
  explicit PostgresStorage(switchboard::PluginContext& context);
  ~PostgresStorage() override;

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
  // Membership checked in the append's own transaction, under the
  // conversation's lock: no read before the write.
  void append_message_as_member(switchboard::MessageDraft draft, switchboard::EventDraft event,
                                switchboard::Completion<switchboard::MessageWrite> done) override;
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
  template <class T>
  void write(typename TypedJob<T>::Body body, switchboard::Completion<T> done) {
    writer_->submit<T>(std::move(body), std::move(done));
  }
  // `snapshot` false: the body runs one statement (no transaction needed).
  template <class T>
  void read(typename TypedJob<T>::Body body, switchboard::Completion<T> done, bool snapshot = true) {
    reader_->submit<T>(std::move(body), std::move(done), snapshot);
  }
  void maintain_partitions();

  switchboard::Clock& clock_;
  switchboard::Logger& log_;
  std::string url_;
  int months_ahead_ = 3;
  std::unique_ptr<JobRunner> writer_;
  std::unique_ptr<JobRunner> reader_;

  std::mutex maintenance_mutex_;
  std::condition_variable maintenance_wake_;
  bool stopping_ = false;
  std::thread maintenance_;
};

}  // namespace postgres_storage

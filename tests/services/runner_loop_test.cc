// The runner's loop on fake inputs and a fake output log (runner_io.h) over
// its real local store: what it commits, what it appends, how it restarts,
// what it dead-letters. No broker; the clock is a fake one the test moves.
#include "services/lifecycle/runner.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "domain/clock.h"
#include "eventstore/codec.h"
#include "eventstore/dead_letter.h"
#include "eventstore/topics.h"
#include "services/lifecycle/batch_context.h"
#include "services/lifecycle/host_reactor.h"
#include "services/lifecycle/runner_io.h"
#include "services/lifecycle/service_keys.h"
#include "tests/util/events.h"
#include "tests/util/fake_clock.h"
#include "tests/util/temp_dir.h"

namespace orderflow::services {
namespace {

using namespace std::chrono_literals;
using eventstore::TopicPartition;

// The log the fakes share with the test: the input records per partition,
// and what the output log acknowledged.
struct FakeLog {
  std::mutex mu;
  std::map<TopicPartition, std::vector<domain::Event>> inputs;
  std::map<TopicPartition, std::vector<std::string>> raw;  // records that are not events, by offset
  std::map<TopicPartition, std::vector<std::string>> type_header;  // an event-type header, by offset ("": none)
  int notifications_handled = 0;  // NotificationSent events the reactor was given
  std::map<TopicPartition, int64_t> group_offsets;  // what the consumers committed to their group
  std::vector<std::pair<std::string, std::string>> acknowledged;  // (topic, key) of each output and dead letter
  std::vector<domain::Event> acknowledged_events;
  std::vector<std::string> dead_letters;  // the dlq-error header of each acknowledged dead letter
  std::vector<std::string> dead_letter_services;  // and its dlq-service header
  int opens = 0;          // consumers opened
  int polls = 0;          // polls since the last open
  int fail_flushes = 0;   // the next flushes (or waits for delivery reports) that fail
  size_t unacknowledged = 0;  // records appended and not acknowledged yet
  int revoke_at_poll = 0;     // the poll (since the last open) at which partitions are about to be taken away
  std::optional<TopicPartition> take_away;  // the partition that poll revokes (none: all stay)
  std::function<int64_t()> committed_now;  // what the runner has stored, asked right after before_revoke
  int64_t committed_at_revoke = -1;
  int revokes = 0;  // revokes the inputs ran
};

class FakeInput final : public InputConsumer {
 public:
  FakeInput(std::shared_ptr<FakeLog> log, const eventstore::GroupReader::OffsetLookup& start,
            std::function<void()> before_revoke)
      : log_(std::move(log)), before_revoke_(std::move(before_revoke)) {
    std::lock_guard lock(log_->mu);
    for (const auto& [tp, events] : log_->inputs) position_[tp] = start(tp);
  }
  // Records first, then (at revoke_at_poll) the revoke: as librdkafka, whose
  // rebalance callback can run inside the poll that already took records.
  Result<std::vector<eventstore::Record>> Poll(size_t max, std::chrono::milliseconds) override {
    std::vector<eventstore::Record> out = Take(max);
    bool revoke = false;
    std::optional<TopicPartition> take_away;
    {
      std::lock_guard lock(log_->mu);
      revoke = ++log_->polls == log_->revoke_at_poll;
      take_away = log_->take_away;
    }
    if (revoke) {
      before_revoke_();
      const int64_t committed = log_->committed_now ? log_->committed_now() : -1;
      std::lock_guard lock(log_->mu);
      log_->committed_at_revoke = committed;
      ++log_->revokes;
      if (take_away) position_.erase(*take_away);
    }
    return out;
  }
  std::vector<TopicPartition> Assignment() const override {
    std::vector<TopicPartition> held;
    for (const auto& [tp, next] : position_) held.push_back(tp);
    return held;
  }
  std::map<TopicPartition, int64_t> Positions() const override { return position_; }
  void CommitForOperators(const std::vector<std::pair<TopicPartition, int64_t>>& next) override {
    std::lock_guard lock(log_->mu);
    for (const auto& [tp, offset] : next) log_->group_offsets[tp] = offset;
  }

 private:
  std::vector<eventstore::Record> Take(size_t max) {
    std::lock_guard lock(log_->mu);
    std::vector<eventstore::Record> out;
    for (auto& [tp, next] : position_) {
      const auto& events = log_->inputs[tp];
      for (; next < static_cast<int64_t>(events.size()) && out.size() < max; ++next) {
        auto raw = log_->raw[tp];
        const auto& types = log_->type_header[tp];
        std::vector<eventstore::Header> headers;
        if (next < static_cast<int64_t>(types.size()) && !types[next].empty()) {
          headers.push_back({std::string(eventstore::kHeaderEventType), types[next]});
        }
        if (next < static_cast<int64_t>(raw.size()) && !raw[next].empty()) {
          out.push_back(eventstore::Record::Make(tp.topic, tp.partition, next, "garbage", raw[next], headers));
        } else {
          out.push_back(eventstore::Record::Make(tp.topic, tp.partition, next, events[next].order_id,
                                                 eventstore::EncodeEvent(events[next]), headers));
        }
      }
    }
    return out;
  }

  std::shared_ptr<FakeLog> log_;
  std::function<void()> before_revoke_;
  std::map<TopicPartition, int64_t> position_;
};

class FakeOutput final : public OutputLog {
 public:
  explicit FakeOutput(std::shared_ptr<FakeLog> log) : log_(std::move(log)) {}
  Status AppendEvent(std::string_view topic, const domain::Event& event,
                     eventstore::DeliveryCallback on_delivery) override {
    pending_.push_back({std::string(topic), event.order_id});
    pending_events_.push_back(event);
    Appended(std::move(on_delivery));
    return Status::Ok();
  }
  Status Append(std::string_view topic, std::string_view key, std::string_view,
                const std::vector<eventstore::Header>& headers, eventstore::DeliveryCallback on_delivery) override {
    pending_.push_back({std::string(topic), std::string(key)});
    Appended(std::move(on_delivery));
    for (const auto& h : headers) {
      if (h.name == eventstore::kDlqError) pending_dead_letters_.push_back(h.value);
      if (h.name == eventstore::kDlqService) pending_dead_letter_services_.push_back(h.value);
    }
    return Status::Ok();
  }
  // Acknowledges everything appended (or, told to fail, loses it), running
  // the delivery callbacks.
  Status Flush(std::chrono::milliseconds) override {
    std::vector<std::pair<eventstore::DeliveryCallback, eventstore::Position>> reports;
    Status status = Acknowledge(reports);
    for (auto& [callback, position] : reports) {
      if (callback) callback(status, position);
    }
    return status;
  }
  Status WaitForDeliveries(const std::function<bool()>& done, std::chrono::milliseconds timeout) override {
    Status status = Flush(timeout);
    if (status.ok() && !done()) return Status::Unavailable("a delivery report the runner waits for never came");
    return status;
  }
  Status BeginTransaction() override { return Status::Ok(); }
  Status CommitTransaction(std::chrono::milliseconds timeout) override { return Flush(timeout); }
  Status AbortTransaction(std::chrono::milliseconds) override { return Status::Ok(); }

 private:
  void Appended(eventstore::DeliveryCallback on_delivery) {
    callbacks_.push_back(std::move(on_delivery));
    std::lock_guard lock(log_->mu);
    ++log_->unacknowledged;
  }

  Status Acknowledge(std::vector<std::pair<eventstore::DeliveryCallback, eventstore::Position>>& reports) {
    std::lock_guard lock(log_->mu);
    log_->unacknowledged = 0;
    const bool fail = log_->fail_flushes > 0;
    for (size_t i = 0; i < callbacks_.size(); ++i) {
      reports.push_back({std::move(callbacks_[i]), {0, static_cast<int64_t>(log_->acknowledged.size() + i)}});
    }
    callbacks_.clear();
    if (fail) {
      --log_->fail_flushes;
      pending_.clear();
      pending_events_.clear();
      pending_dead_letters_.clear();
      pending_dead_letter_services_.clear();
      return Status::Unavailable("flush timed out (the test said so)");
    }
    log_->acknowledged.insert(log_->acknowledged.end(), pending_.begin(), pending_.end());
    log_->acknowledged_events.insert(log_->acknowledged_events.end(), pending_events_.begin(), pending_events_.end());
    log_->dead_letters.insert(log_->dead_letters.end(), pending_dead_letters_.begin(), pending_dead_letters_.end());
    log_->dead_letter_services.insert(log_->dead_letter_services.end(), pending_dead_letter_services_.begin(),
                                      pending_dead_letter_services_.end());
    pending_.clear();
    pending_events_.clear();
    pending_dead_letters_.clear();
    pending_dead_letter_services_.clear();
    return Status::Ok();
  }

  std::shared_ptr<FakeLog> log_;
  std::vector<eventstore::DeliveryCallback> callbacks_;
  std::vector<std::pair<std::string, std::string>> pending_;
  std::vector<domain::Event> pending_events_;
  std::vector<std::string> pending_dead_letters_;
  std::vector<std::string> pending_dead_letter_services_;
};

// Authorizes every placed order; for the order "boom" a library call throws
// (std::out_of_range from vector::at), as a bug in a reactor would. Skips
// NotificationSent records (counting those it is given anyway).
class PayingReactor final : public Reactor {
 public:
  explicit PayingReactor(std::shared_ptr<FakeLog> log) : log_(std::move(log)) {}
  bool Skips(std::string_view type) const override { return type == "NotificationSent"; }
  Status OnOrderEvent(const domain::Event& event, domain::OrderStatus, const domain::OrderState&,
                      BatchContext& ctx) override {
    if (std::holds_alternative<domain::NotificationSent>(event.payload)) {
      std::lock_guard lock(log_->mu);
      ++log_->notifications_handled;
    }
    if (!std::holds_alternative<domain::OrderPlaced>(event.payload)) return Status::Ok();
    if (event.order_id == "boom") return Status::Internal("gateways: " + std::to_string(std::vector<int>{}.at(1)));
    ctx.Emit(eventstore::kOrdersTopic, event, event.order_id, "pay",
             domain::PaymentAuthorized{"pay-" + event.order_id, 2900, "card"});
    return Status::Ok();
  }

 private:
  std::shared_ptr<FakeLog> log_;
};

// Ships every placed order, "boom" too.
class ShippingReactor final : public Reactor {
 public:
  Status OnOrderEvent(const domain::Event& event, domain::OrderStatus, const domain::OrderState&,
                      BatchContext& ctx) override {
    if (!std::holds_alternative<domain::OrderPlaced>(event.payload)) return Status::Ok();
    ctx.Emit(eventstore::kOrdersTopic, event, event.order_id, "ship", domain::OrderShipped{"dhl", "t-" + event.order_id});
    return Status::Ok();
  }
};

class RunnerLoopTest : public ::testing::Test {
 protected:
  // A runner on the fakes over the store in dir_: the payment service, or
  // (`hosted`) a host of payment and shipping, or `reactor` under the
  // payment's name; `batch_size` records per batch at most (0: the default).
  std::unique_ptr<ServiceRunner> NewRunner(bool hosted = false, std::unique_ptr<Reactor> reactor = nullptr,
                                           size_t batch_size = 0) {
    ServiceOptions options;
    if (batch_size > 0) options.batch_size = batch_size;
    options.name = hosted ? "fulfillment" : "payment";
    options.data_dir = dir_.Sub("payment");
    options.inputs = {{eventstore::kOrdersTopic}};
    options.clock = &clock_;
    RunnerIo io;
    io.open_input = [log = log_](size_t, const std::string&, eventstore::GroupReader::OffsetLookup start,
                                 std::function<void()> before_revoke) -> Result<std::unique_ptr<InputConsumer>> {
      {
        std::lock_guard lock(log->mu);
        ++log->opens;
        log->polls = 0;
      }
      return std::unique_ptr<InputConsumer>(std::make_unique<FakeInput>(log, start, std::move(before_revoke)));
    };
    io.output = std::make_unique<FakeOutput>(log_);
    io.log_end = [log = log_](const TopicPartition& tp) -> Result<int64_t> {
      std::lock_guard lock(log->mu);
      return static_cast<int64_t>(log->inputs[tp].size());
    };
    if (reactor) {
    } else if (hosted) {
      std::vector<HostedReactor> members;
      members.push_back({"payment", std::make_unique<PayingReactor>(log_), {}});
      members.push_back({"shipping", std::make_unique<ShippingReactor>(), {}});
      reactor = MakeHostReactor(std::move(members));
    } else {
      reactor = std::make_unique<PayingReactor>(log_);
    }
    auto runner = ServiceRunner::Create(std::move(options), std::move(reactor), std::move(io));
    EXPECT_TRUE(runner.ok()) << runner.status().ToString();
    return runner.ok() ? std::move(runner).value() : nullptr;
  }

  void Place(int32_t partition, const std::string& order_id) {
    std::lock_guard lock(log_->mu);
    log_->inputs[{eventstore::kOrdersTopic, partition}].push_back(testing::PlacedEvent(order_id));
  }

  // Runs `runner` until `done()` (the fake clock moving 50 ms per real
  // millisecond, so its pauses before resuming pass), then stops it; Run's status.
  Status RunUntil(ServiceRunner& runner, const std::function<bool()>& done) {
    std::stop_source stop;
    Status status;
    std::thread thread([&] { status = runner.Run(stop.get_token()); });
    for (int i = 0; i < 20'000 && !done(); ++i) {
      SystemClock().SleepFor(1ms);
      clock_.Advance(50ms);
    }
    EXPECT_TRUE(done()) << "not done within 20 s";
    stop.request_stop();
    thread.join();
    return status;
  }

  int64_t CommittedTotal(const ServiceRunner& runner) const {
    int64_t total = 0;
    for (const auto& [tp, next] : runner.committed_offsets()) total += next;
    return total;
  }

  template <typename T>
  T Locked(const std::function<T(FakeLog&)>& read) {
    std::lock_guard lock(log_->mu);
    return read(*log_);
  }

  testing::TempDir dir_;
  testing::FakeClock clock_;
  std::shared_ptr<FakeLog> log_ = std::make_shared<FakeLog>();
};

TEST_F(RunnerLoopTest, ABatchCommitsItsOutputsWithItsOffsetsAndARestartRedoesNothing) {
  for (int i = 0; i < 6; ++i) Place(i % 2, "o-" + std::to_string(i));
  {
    auto runner = NewRunner();
    ASSERT_TRUE(runner);
    EXPECT_TRUE(RunUntil(*runner, [&] { return CommittedTotal(*runner) == 6; }).ok());
    EXPECT_EQ(runner->stats().events.load(), 6u);
  }
  // The consumer group (what `orderflow lag` reads) is told at most once a
  // second while busy, and everything by the time the runner stops.
  EXPECT_EQ(Locked<decltype(log_->group_offsets)>([](FakeLog& l) { return l.group_offsets; }),
            (std::map<TopicPartition, int64_t>{{{eventstore::kOrdersTopic, 0}, 3}, {{eventstore::kOrdersTopic, 1}, 3}}));
  auto acknowledged = Locked<std::vector<domain::Event>>([](FakeLog& l) { return l.acknowledged_events; });
  ASSERT_EQ(acknowledged.size(), 6u);
  for (const auto& e : acknowledged) {
    EXPECT_TRUE(std::holds_alternative<domain::PaymentAuthorized>(e.payload));
    EXPECT_EQ(e.producer, "payment");
  }
  // A new run on the same store resumes at the stored offsets: it reads
  // nothing again and appends nothing.
  auto again = NewRunner();
  ASSERT_TRUE(again);
  EXPECT_EQ(CommittedTotal(*again), 6);
  EXPECT_TRUE(RunUntil(*again, [&] { return Locked<int>([](FakeLog& l) { return l.polls; }) >= 5; }).ok());
  EXPECT_EQ(again->stats().events.load(), 0u);
  EXPECT_EQ(Locked<size_t>([](FakeLog& l) { return l.acknowledged.size(); }), 6u);
}

// A store an earlier version wrote keeps its outputs index entries under the
// event id alone: an input handled again (here: for the first time, its
// output put in the index by hand) finds its output there and emits nothing.
TEST_F(RunnerLoopTest, AnOutputAnEarlierVersionIndexedIsStillFoundInTheLog) {
  Place(0, "o-1");
  Place(0, "o-2");
  ASSERT_TRUE(NewRunner());  // creates the store
  const domain::Event placed = Locked<domain::Event>([](FakeLog& l) { return l.inputs[{eventstore::kOrdersTopic, 0}][0]; });
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_.Sub("payment"), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    const domain::EventId paid = domain::DeriveEventId(placed.id, "payment/pay");
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), store_keys::LegacyOutputKey(paid), "").ok());
  }
  auto runner = NewRunner();
  ASSERT_TRUE(runner);
  ASSERT_TRUE(RunUntil(*runner, [&] { return CommittedTotal(*runner) == 2; }).ok());
  EXPECT_EQ(runner->stats().suppressed.load(), 1u);
  auto acknowledged = Locked<std::vector<domain::Event>>([](FakeLog& l) { return l.acknowledged_events; });
  ASSERT_EQ(acknowledged.size(), 1u) << "o-1's payment is in the log already";
  EXPECT_EQ(acknowledged[0].order_id, "o-2");
}

// Counts the events of each order in its state and emits one output per
// event, tagged with the count; notes the most records it ever saw appended
// and not yet acknowledged while it handled an event.
class CountingReactor final : public Reactor {
 public:
  explicit CountingReactor(std::shared_ptr<FakeLog> log) : log_(std::move(log)) {}
  Status OnOrderEvent(const domain::Event& event, domain::OrderStatus, const domain::OrderState& after,
                      BatchContext& ctx) override {
    {
      std::lock_guard lock(log_->mu);
      most_unacknowledged = std::max(most_unacknowledged, log_->unacknowledged);
    }
    auto count = ctx.Get("count/" + event.order_id);
    const int n = (count ? std::stoi(*count) : 0) + 1;
    ctx.Put("count/" + event.order_id, std::to_string(n));
    applied_seen.push_back(after.version);
    ctx.Emit(eventstore::kOrdersTopic, event, event.order_id, "count-" + std::to_string(n),
             domain::PaymentAuthorized{"pay-" + std::to_string(n), 100, "card"});
    return Status::Ok();
  }
  size_t most_unacknowledged = 0;
  std::vector<uint32_t> applied_seen;  // how many events the order had applied, after each

 private:
  std::shared_ptr<FakeLog> log_;
};

// Batch N+1 is handled and appended while N's outputs are unacknowledged:
// it must see N's orders, state and outputs, though none of them is stored.
TEST_F(RunnerLoopTest, TheNextBatchIsHandledBeforeThePreviousIsAcknowledgedAndSeesWhatItDid) {
  for (int i = 0; i < 5; ++i) {
    domain::Event e = testing::PlacedEvent("a");
    e.id = testing::TestEventId("a", i);
    std::lock_guard lock(log_->mu);
    log_->inputs[{eventstore::kOrdersTopic, 0}].push_back(e);
  }
  auto owned = std::make_unique<CountingReactor>(log_);
  CountingReactor* reactor = owned.get();
  auto runner = NewRunner(false, std::move(owned), /*batch_size=*/1);
  ASSERT_TRUE(RunUntil(*runner, [&] { return CommittedTotal(*runner) == 5; }).ok());
  EXPECT_GT(reactor->most_unacknowledged, 0u) << "every batch waited for the one before: nothing was pipelined";
  EXPECT_EQ(reactor->applied_seen, (std::vector<uint32_t>{1, 2, 3, 4, 5})) << "a batch did not see the order before it";
  auto acknowledged = Locked<std::vector<domain::Event>>([](FakeLog& l) { return l.acknowledged_events; });
  ASSERT_EQ(acknowledged.size(), 5u) << "an output was appended twice, or lost";
  std::set<domain::EventId> ids;
  for (const auto& e : acknowledged) ids.insert(e.id);
  EXPECT_EQ(ids.size(), 5u) << "two batches counted the same: one did not see the other's state";
  auto count = runner->ReadState("count/a");
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(count->value_or(""), "5");
}

// Another instance resumes a partition from its own store and finds the
// outputs already made in the log: before partitions go, the batch still
// waiting for its acknowledgements is stored.
TEST_F(RunnerLoopTest, BeforePartitionsAreTakenAwayTheBatchInFlightIsStored) {
  for (const char* id : {"a", "b", "c"}) Place(0, id);
  auto runner = NewRunner(false, nullptr, /*batch_size=*/1);
  {
    std::lock_guard lock(log_->mu);
    log_->revoke_at_poll = 3;  // batch 1 stored, batch 2 appended and waiting
    log_->committed_now = [&runner] {
      int64_t total = 0;
      for (const auto& [tp, next] : runner->committed_offsets()) total += next;
      return total;
    };
  }
  ASSERT_TRUE(RunUntil(*runner, [&] { return CommittedTotal(*runner) == 3; }).ok());
  EXPECT_EQ(Locked<int64_t>([](FakeLog& l) { return l.committed_at_revoke; }), 2)
      << "partitions left while a handled batch was not stored";
  EXPECT_EQ(Locked<size_t>([](FakeLog& l) { return l.acknowledged.size(); }), 3u);
}

// A record that came in the poll which revoked its partition is the new
// owner's: this instance neither handles nor stores it.
TEST_F(RunnerLoopTest, ARecordOfAPartitionRevokedInItsOwnPollIsLeftToTheNewOwner) {
  Place(0, "kept");
  Place(1, "revoked");
  {
    std::lock_guard lock(log_->mu);
    log_->revoke_at_poll = 1;
    log_->take_away = TopicPartition{eventstore::kOrdersTopic, 1};
  }
  auto runner = NewRunner();
  ASSERT_TRUE(RunUntil(*runner, [&] { return CommittedTotal(*runner) >= 1; }).ok());
  EXPECT_EQ(Locked<int>([](FakeLog& l) { return l.revokes; }), 1) << "the revoke never came";
  EXPECT_EQ(CommittedTotal(*runner), 1);
  EXPECT_FALSE(runner->committed_offsets().count(TopicPartition{eventstore::kOrdersTopic, 1}));
  using Acknowledged = std::vector<std::pair<std::string, std::string>>;
  auto acknowledged = Locked<Acknowledged>([](FakeLog& l) { return l.acknowledged; });
  ASSERT_EQ(acknowledged.size(), 1u) << "the revoked partition's record was handled";
  EXPECT_EQ(acknowledged[0].second, "kept");
}

TEST_F(RunnerLoopTest, AFailedFlushCommitsNothingAndTheBatchIsHandledAgainWithTheSameIds) {
  for (int i = 0; i < 4; ++i) Place(0, "o-" + std::to_string(i));
  log_->fail_flushes = 1;
  auto runner = NewRunner();
  ASSERT_TRUE(runner);
  EXPECT_TRUE(RunUntil(*runner, [&] { return CommittedTotal(*runner) == 4; }).ok());
  EXPECT_EQ(Locked<int>([](FakeLog& l) { return l.opens; }), 2) << "the consumer was not reopened after the failure";
  EXPECT_EQ(Locked<int>([](FakeLog& l) { return l.fail_flushes; }), 0) << "the flush never failed";
  EXPECT_EQ(runner->stats().events.load(), 8u) << "each record handled twice: before and after the failed flush";
  auto acknowledged = Locked<std::vector<domain::Event>>([](FakeLog& l) { return l.acknowledged_events; });
  ASSERT_EQ(acknowledged.size(), 4u);
  // The ids derive from the input event and the handler: a retry appends the
  // same ones, which every consumer drops.
  EXPECT_EQ(domain::DeriveEventId(testing::PlacedEvent("o-0").id, "payment/pay"), acknowledged.front().id);
}

// Batch 1's acknowledgements fail while batch 2 is already appended: neither
// is stored, both are handled again, and each output is acknowledged once.
TEST_F(RunnerLoopTest, WhenTheBatchInFlightFailsTheOneAppendedAfterItIsHandledAgainToo) {
  for (int i = 0; i < 4; ++i) Place(0, "o-" + std::to_string(i));
  log_->fail_flushes = 1;
  auto runner = NewRunner(false, nullptr, /*batch_size=*/1);
  ASSERT_TRUE(runner);
  EXPECT_TRUE(RunUntil(*runner, [&] { return CommittedTotal(*runner) == 4; }).ok());
  EXPECT_EQ(Locked<int>([](FakeLog& l) { return l.fail_flushes; }), 0) << "the acknowledgements never failed";
  EXPECT_EQ(Locked<int>([](FakeLog& l) { return l.opens; }), 2) << "the consumer was not reopened after the failure";
  EXPECT_EQ(runner->stats().events.load(), 6u) << "records 0 and 1 handled twice, 2 and 3 once";
  auto acknowledged = Locked<std::vector<domain::Event>>([](FakeLog& l) { return l.acknowledged_events; });
  ASSERT_EQ(acknowledged.size(), 4u);
  std::set<domain::EventId> ids;
  for (const auto& e : acknowledged) ids.insert(e.id);
  EXPECT_EQ(ids.size(), 4u);
}

TEST_F(RunnerLoopTest, AReactorThatThrowsIsRetriedThreeTimesThenItsRecordIsParkedAndTheRestGoesOn) {
  Place(0, "o-1");
  Place(0, "boom");
  Place(0, "o-2");
  auto runner = NewRunner();
  ASSERT_TRUE(runner);
  EXPECT_TRUE(RunUntil(*runner, [&] { return CommittedTotal(*runner) == 3; }).ok());
  auto acknowledged = Locked<std::vector<std::pair<std::string, std::string>>>([](FakeLog& l) { return l.acknowledged; });
  std::vector<std::pair<std::string, std::string>> want = {
      {eventstore::kOrdersTopic, "o-1"}, {eventstore::kDeadLetterTopic, "boom"}, {eventstore::kOrdersTopic, "o-2"}};
  std::sort(acknowledged.begin(), acknowledged.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(acknowledged, want);
  EXPECT_EQ(runner->stats().dead_letters.load(), 1u);
  EXPECT_EQ(Locked<int>([](FakeLog& l) { return l.opens; }), 4) << "three failed attempts, each resumed from the store";
  // The parked record carries the exception's message: the runner caught it.
  const auto parked = Locked<std::vector<std::string>>([](FakeLog& l) { return l.dead_letters; });
  ASSERT_EQ(parked.size(), 1u);
  EXPECT_NE(parked[0].find("_M_range_check"), std::string::npos) << parked[0];
}

TEST_F(RunnerLoopTest, ARecordOneHostedReactorKeepsFailingIsParkedInItsNameAndTheOthersStillHandleIt) {
  Place(0, "o-1");
  Place(0, "boom");
  Place(0, "o-2");
  auto runner = NewRunner(/*hosted=*/true);
  ASSERT_TRUE(runner);
  EXPECT_TRUE(RunUntil(*runner, [&] { return CommittedTotal(*runner) == 3; }).ok());
  EXPECT_EQ(Locked<int>([](FakeLog& l) { return l.opens; }), 4) << "three failed attempts, each resumed from the store";
  // Payment parked "boom" (in its own name, with the exception's message);
  // shipping, which never failed, shipped it as it would have running alone.
  EXPECT_EQ(Locked<std::vector<std::string>>([](FakeLog& l) { return l.dead_letter_services; }),
            std::vector<std::string>{"payment"});
  const auto parked = Locked<std::vector<std::string>>([](FakeLog& l) { return l.dead_letters; });
  ASSERT_EQ(parked.size(), 1u);
  EXPECT_NE(parked[0].find("_M_range_check"), std::string::npos) << parked[0];
  std::map<std::string, std::vector<std::string>> by_order;  // order -> what was appended for it, by producer
  for (const auto& e : Locked<std::vector<domain::Event>>([](FakeLog& l) { return l.acknowledged_events; })) {
    by_order[e.order_id].push_back(e.producer + ":" + std::string(domain::EventTypeName(e.payload)));
    std::sort(by_order[e.order_id].begin(), by_order[e.order_id].end());
  }
  EXPECT_EQ(by_order["boom"], std::vector<std::string>{"shipping:OrderShipped"});
  EXPECT_EQ(by_order["o-1"], (std::vector<std::string>{"payment:PaymentAuthorized", "shipping:OrderShipped"}));
  EXPECT_EQ(by_order["o-2"], (std::vector<std::string>{"payment:PaymentAuthorized", "shipping:OrderShipped"}));
  // Once: the batch that parked it committed, and nothing is handled again.
  EXPECT_EQ(runner->stats().dead_letters.load(), 1u);
}

TEST_F(RunnerLoopTest, AnUndecodableRecordIsParkedAndTheServiceMovesOn) {
  Place(0, "o-1");
  Place(0, "placeholder");
  Place(0, "o-2");
  log_->raw[{eventstore::kOrdersTopic, 0}] = {"", "\x01\x02 not cap'n proto", ""};
  auto runner = NewRunner();
  ASSERT_TRUE(runner);
  EXPECT_TRUE(RunUntil(*runner, [&] { return CommittedTotal(*runner) == 3; }).ok());
  EXPECT_EQ(runner->stats().dead_letters.load(), 1u);
  EXPECT_EQ(runner->stats().rejected.load(), 1u);
  EXPECT_EQ(Locked<size_t>([](FakeLog& l) { return l.acknowledged_events.size(); }), 2u);
  EXPECT_EQ(Locked<int>([](FakeLog& l) { return l.opens; }), 1) << "an undecodable record needs no restart";
}

// A record of orders.events whose event-type header names an event the
// reactor skips is neither decoded (its value here is not even an event) nor
// handed to the reactor, and its offset commits with the rest; the same event
// without the header is decoded and handled.
TEST_F(RunnerLoopTest, ARecordWhoseTypeTheReactorSkipsIsSteppedOverUndecoded) {
  const TopicPartition tp{eventstore::kOrdersTopic, 0};
  Place(0, "o-1");
  {
    std::lock_guard lock(log_->mu);
    for (int n = 1; n <= 2; ++n) {
      log_->inputs[tp].push_back(
          testing::LifecycleEvent("o-1", n, domain::NotificationSent{"n-" + std::to_string(n), "order.placed", "alice",
                                                                     domain::NotificationPriority::kLow}));
    }
    log_->raw[tp] = {"", "\x01\x02 not cap'n proto", "", ""};
    log_->type_header[tp] = {"OrderPlaced", "NotificationSent", "", "OrderPlaced"};
  }
  Place(0, "o-2");
  auto runner = NewRunner();
  ASSERT_TRUE(runner);
  EXPECT_TRUE(RunUntil(*runner, [&] { return CommittedTotal(*runner) == 4; }).ok());
  EXPECT_EQ(runner->stats().skipped.load(), 1u);
  EXPECT_EQ(runner->stats().events.load(), 4u);
  EXPECT_EQ(runner->stats().dead_letters.load(), 0u) << "the skipped record was decoded";
  EXPECT_EQ(Locked<int>([](FakeLog& l) { return l.notifications_handled; }), 1) << "only the one without the header";
  EXPECT_EQ(Locked<size_t>([](FakeLog& l) { return l.acknowledged_events.size(); }), 2u);
}

// The committed orders a batch takes instead of reading its store: taken
// once (a failed batch leaves nothing behind), the oldest evicted first.
TEST(OrderCacheTest, TakesEachStateOnceAndEvictsTheOldest) {
  OrderCache cache(2);
  auto state = [](const std::string& id, uint32_t version) {
    domain::OrderState s;
    s.order_id = id;
    s.version = version;
    return s;
  };
  cache.Put("a", state("a", 1));
  cache.Put("b", state("b", 1));
  auto a = cache.Take("a");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->version, 1u);
  EXPECT_FALSE(cache.Take("a").has_value()) << "taken twice";
  cache.Put("a", state("a", 2));  // committed again: now the newest
  cache.Put("c", state("c", 1));  // over capacity: "b" goes
  EXPECT_FALSE(cache.Take("b").has_value());
  EXPECT_EQ(cache.Take("a")->version, 2u);
  EXPECT_TRUE(cache.Take("c").has_value());
  for (int i = 0; i < 1000; ++i) cache.Put("o-" + std::to_string(i % 3), state("x", i));  // stale entries are dropped
  int held = 0;
  for (int i = 0; i < 3; ++i) held += cache.Take("o-" + std::to_string(i)).has_value();
  EXPECT_EQ(held, 2);
}

}  // namespace
}  // namespace orderflow::services

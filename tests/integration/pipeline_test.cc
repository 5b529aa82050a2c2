// End to end on the embedded broker, in one process: place orders, project
// them, replay from offset zero into another directory, compare digests.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "domain/clock.h"
#include "eventstore/embedded_broker.h"
#include "eventstore/topics.h"
#include "projections/projector.h"
#include "projections/sink.h"
#include "projections/snapshot.h"
#include "projections/store.h"
#include "replay/replay.h"
#include "services/orders/order_service.h"
#include "cli/app/simulator.h"
#include "cli/app/up.h"
#include "tests/util/broker.h"
#include "tests/util/events.h"
#include "tests/util/fake_clock.h"
#include "tests/util/process.h"

using orderflow::testing::LifecycleEvent;
#include "tests/util/temp_dir.h"

namespace orderflow {
namespace {

using namespace std::chrono_literals;
using orderflow::testing::TempDir;

// Runs a projector until the store has reached the current end of the log.
Status CatchUp(projections::ProjectionStore& store, const eventstore::KafkaConfig& config) {
  auto reader = eventstore::Reader::Create(config, "test-projector");
  if (!reader.ok()) return reader.status();
  projections::Projector projector(store, **reader, {.topics = {eventstore::kOrdersTopic}, .batch_size = 300});
  ORDERFLOW_RETURN_IF_ERROR(projector.Start());
  auto end = projector.LogEnd();
  if (!end.ok()) return end.status();
  for (int i = 0; i < 2000; ++i) {
    auto reached = projector.Reached(*end);
    if (!reached.ok()) return reached.status();
    if (*reached) return Status::Ok();
    auto n = projector.Step();
    if (!n.ok()) return n.status();
  }
  return Status::Unavailable("projector did not catch up");
}

// An embedded broker with the order service placing simulated orders.
class OrderLog {
 public:
  OrderLog(int partitions, uint64_t seed)
      : broker_(orderflow::testing::StartBroker(partitions)),
        config_(orderflow::testing::ConfigFor(*broker_)),
        producer_(MakeProducer(config_)),
        orders_(*producer_, catalog_),
        simulator_(catalog_, seed) {}

  const eventstore::KafkaConfig& config() const { return config_; }
  const orderflow::testing::TestBroker& broker() const { return *broker_; }
  services::OrderService& orders() { return orders_; }
  eventstore::Producer& producer() { return *producer_; }

  // Places `n` orders and waits until the broker has them all.
  void Place(int n) {
    for (int i = 0; i < n; ++i) ASSERT_TRUE(orders_.Place(simulator_.Next(), services::NewOrderId(), i).ok());
    ASSERT_TRUE(producer_->Flush(10s).ok());
  }

 private:
  static std::unique_ptr<eventstore::Producer> MakeProducer(const eventstore::KafkaConfig& config) {
    auto producer = eventstore::Producer::Create(config, "test-order");
    EXPECT_TRUE(producer.ok()) << producer.status().ToString();
    return producer.ok() ? std::move(producer).value() : nullptr;
  }

  const domain::Catalog catalog_ = domain::Catalog::Demo();
  std::unique_ptr<testing::TestBroker> broker_;
  eventstore::KafkaConfig config_;
  std::unique_ptr<eventstore::Producer> producer_;
  services::OrderService orders_;
  services::OrderSimulator simulator_;
};

TEST(PipelineTest, ThousandOrdersProjectedThenReplayedGiveTheSameDigest) {
  auto broker = orderflow::testing::StartBroker(4);
  ASSERT_NE(broker, nullptr);
  auto config = orderflow::testing::ConfigFor(*broker);
  TempDir dir;
  const auto catalog = domain::Catalog::Demo();

  auto producer = eventstore::Producer::Create(config, "test-order");
  ASSERT_TRUE(producer.ok());
  services::OrderService orders(**producer, catalog);
  services::OrderSimulator simulator(catalog, 99);
  std::vector<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    ids.push_back(services::NewOrderId());
    auto placed = orders.Place(simulator.Next(), ids.back(), 1'700'000'000'000 + i);
    ASSERT_TRUE(placed.ok()) << placed.status().ToString();
  }
  // A few cancellations, so state is more than one event per order.
  auto live = projections::ProjectionStore::Open(dir.Sub("live"), {});
  ASSERT_TRUE(live.ok());
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  ASSERT_TRUE(CatchUp(**live, config).ok());
  for (int i = 0; i < 1000; i += 10) {
    auto state = (*live)->GetOrder(ids[i]);
    ASSERT_TRUE(state.ok() && state->has_value());
    ASSERT_TRUE(orders.Execute(**state, domain::CancelOrder{"test", domain::CancelSource::kCustomer}, 1).ok());
  }
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  ASSERT_TRUE(CatchUp(**live, config).ok());

  for (const auto& id : ids) {
    auto state = (*live)->GetOrder(id);
    ASSERT_TRUE(state.ok() && state->has_value()) << id;
  }
  auto counts = (*live)->CountByStatus();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)["cancelled"], 100u);
  EXPECT_EQ((*counts)["placed"], 900u);

  replay::ReplayOptions options;
  options.kafka = config;
  options.data_dir = dir.Sub("replayed");
  options.batch_size = 128;
  auto replayed = replay::Replay(options);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  EXPECT_EQ(replayed->records, 1100u);
  EXPECT_EQ(replayed->events, 1100u);
  auto live_digest = (*live)->Digest();
  ASSERT_TRUE(live_digest.ok());
  EXPECT_EQ(replayed->digest, *live_digest);

  // Replay refuses a directory that already holds data.
  auto again = replay::Replay(options);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
}

// The records of the store's batches committed so far (the sum of its offsets).
int64_t Committed(const projections::ProjectionStore& store) {
  auto offsets = store.GetOffsets();
  if (!offsets.ok()) return -1;
  int64_t sum = 0;
  for (const auto& [tp, next] : *offsets) sum += next;
  return sum;
}

// Run() with a minimum interval starts no step after one that read records
// (but not a full batch) before the interval has passed: on a clock that
// stands still, records that arrive wait; one step of the clock lets them
// through, and so does Hurry (a reader waits for a position) without the
// clock moving; the state at the end is the one a projector without the
// interval reaches.
TEST(PipelineTest, ProjectorRunWaitsTheMinimumIntervalAfterABusyStep) {
  OrderLog log(2, 17);
  log.Place(100);
  TempDir dir;
  auto paced = projections::ProjectionStore::Open(dir.Sub("paced"), {});
  ASSERT_TRUE(paced.ok());
  auto reader = eventstore::Reader::Create(log.config(), "test-paced");
  ASSERT_TRUE(reader.ok());
  testing::FakeClock clock;
  projections::Projector projector(**paced, **reader,
                                   {.topics = {eventstore::kOrdersTopic}, .batch_size = 100'000,
                                    .min_batch_interval = 100ms, .clock = &clock});
  ASSERT_TRUE(projector.Start().ok());
  std::jthread run([&](std::stop_token stop) {
    Status s = projector.Run(stop);
    EXPECT_TRUE(s.ok()) << s.ToString();
  });
  auto wait_for = [&](auto done) {
    for (int i = 0; i < 3000 && !done(); ++i) std::this_thread::sleep_for(10ms);
    return done();
  };
  // Steps the clock, one interval at a time, until `total` records are in.
  auto step_until = [&](int64_t total) {
    for (int steps = 0; Committed(**paced) < total && steps < 100; ++steps) {
      const int64_t before = Committed(**paced);
      clock.Advance(100ms);
      if (!wait_for([&] { return Committed(**paced) > before; })) return false;
    }
    return Committed(**paced) == total;
  };
  ASSERT_TRUE(wait_for([&] { return Committed(**paced) > 0; }));
  ASSERT_TRUE(step_until(100));
  // The last step read records: the projector waits for the clock, however
  // long, though more records are there.
  log.Place(100);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(Committed(**paced), 100);
  clock.Advance(100ms);
  ASSERT_TRUE(wait_for([&] { return Committed(**paced) > 100; })) << "no batch after the interval";
  ASSERT_TRUE(step_until(200));
  log.Place(100);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(Committed(**paced), 200);
  projector.Hurry();
  ASSERT_TRUE(wait_for([&] { return Committed(**paced) > 200; })) << "Hurry did not start a step";
  ASSERT_TRUE(step_until(300));
  run.request_stop();
  run.join();

  auto unpaced = projections::ProjectionStore::Open(dir.Sub("unpaced"), {});
  ASSERT_TRUE(unpaced.ok());
  ASSERT_TRUE(CatchUp(**unpaced, log.config()).ok());
  auto a = (*paced)->Digest();
  auto b = (*unpaced)->Digest();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST(PipelineTest, RunUpPlacesAndProjectsEverySimulatedOrder) {
  TempDir dir;
  services::UpOptions options;
  options.data_dir = dir.Sub("up");
  options.simulate = 300;
  options.exit_when_done = true;
  options.partitions = 3;
  options.lifecycle = false;
  std::unique_ptr<orderflow::testing::TestBroker> broker;  // real Kafka only; else up starts the embedded one
  if (!orderflow::testing::RealKafka().empty()) {
    broker = orderflow::testing::StartBroker(3);
    ASSERT_NE(broker, nullptr);
    options.kafka = broker->config();
  }
  std::stop_source stop;
  std::string brokers;
  // on_done: once, with the log still up (the embedded broker too) and every order in it.
  int done_calls = 0;
  int64_t records_at_done = -1;
  options.on_done = [&] {
    ++done_calls;
    eventstore::KafkaConfig config = options.kafka;
    config.brokers = brokers;
    auto reader = eventstore::Reader::Create(config, "on-done-check");
    if (!reader.ok()) return;
    auto partitions = (*reader)->Partitions({eventstore::kOrdersTopic}, 10s);
    if (!partitions.ok()) return;
    auto marks = (*reader)->QueryWatermarks(*partitions, 10s);
    if (!marks.ok()) return;
    records_at_done = 0;
    for (const eventstore::Watermarks& w : *marks) records_at_done += w.high;
  };
  auto summary = services::RunUp(options, domain::Catalog::Demo(), stop.get_token(),
                                 [&brokers](const services::UpEndpoints& e) { brokers = e.brokers; });
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_FALSE(brokers.empty());
  EXPECT_EQ(done_calls, 1);
  EXPECT_EQ(records_at_done, 300);
  EXPECT_EQ(summary->orders_placed, 300u);
  EXPECT_EQ(summary->events_applied, 300u);
  EXPECT_EQ(summary->orders_by_status["placed"], 300u);
  auto store = projections::ProjectionStore::Open(options.data_dir, {.read_only = true});
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(*(*store)->Digest(), summary->digest);
}

// Without --partitions: 3 for a new cluster's orders.events, 6 on the
// embedded broker (shorter partitions for its capped, walked logs).
TEST(PipelineTest, UpPartitionsDefaultByBroker) {
  services::UpOptions options;
  EXPECT_EQ(options.orders_partitions(), eventstore::kEmbeddedPartitions);
  EXPECT_EQ(eventstore::kEmbeddedPartitions, 6);
  options.kafka.brokers = "127.0.0.1:9092";
  EXPECT_EQ(options.orders_partitions(), eventstore::kDefaultPartitions);
  EXPECT_EQ(eventstore::kDefaultPartitions, 3);
  options.partitions = 12;
  EXPECT_EQ(options.orders_partitions(), 12);
}

// The embedded broker drops the oldest batches past ~5 MB per partition; the
// log then no longer starts at offset 0, and replay must say so, never skip.
TEST(PipelineTest, ReplayFailsNamingPartitionAndOffsetsWhenTheLogStartMoved) {
  auto broker = eventstore::EmbeddedBroker::Start(1);
  ASSERT_TRUE(broker.ok());
  ASSERT_TRUE((*broker)->CreateTopic({eventstore::kOrdersTopic, 1, 1}).ok());
  eventstore::KafkaConfig config{(*broker)->bootstraps(), {{"compression.type", "none"}}};
  auto producer = eventstore::Producer::Create(config, "filler");
  ASSERT_TRUE(producer.ok());
  const std::string big(64 * 1024, 'x');
  for (int i = 0; i < 120; ++i) {  // ~7.7 MB into one partition
    ASSERT_TRUE((*producer)->Append(eventstore::kOrdersTopic, "k", big, {}).ok());
    if (i % 10 == 9) {
      ASSERT_TRUE((*producer)->Flush(10s).ok());
    }
  }
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  TempDir dir;
  replay::ReplayOptions options;
  options.kafka = config;
  options.data_dir = dir.Sub("r");
  auto result = replay::Replay(options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kOutOfRange);
  const std::string& msg = result.status().message();
  EXPECT_NE(msg.find("orders.events[0]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("needs offset 0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("log now starts at offset"), std::string::npos) << msg;
}

TEST(PipelineTest, StoreAheadOfTheLogIsRefused) {
  TempDir dir;
  {
    auto store = projections::ProjectionStore::Open(dir.path(), {});
    ASSERT_TRUE(store.ok());
    std::vector<eventstore::Record> batch;
    batch.push_back(orderflow::testing::ToRecord(orderflow::testing::PlacedEvent("o-1"), 0, 500));
    ASSERT_TRUE((*store)->ApplyBatch(batch).ok());
  }
  auto broker = orderflow::testing::StartBroker(2);  // a fresh, empty log: "recreated"
  auto config = orderflow::testing::ConfigFor(*broker);
  auto store = projections::ProjectionStore::Open(dir.path(), {});
  ASSERT_TRUE(store.ok());
  auto reader = eventstore::Reader::Create(config, "t");
  ASSERT_TRUE(reader.ok());
  projections::Projector projector(**store, **reader, {.topics = {eventstore::kOrdersTopic}});
  Status s = projector.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_NE(s.message().find("orders.events[0]: the log ends at offset 0"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("501"), std::string::npos) << s.message();
}


// A sink whose first Prepare asks the loop to stop and whose every Commit
// fails as a full disk does: the stop arrives with a batch in flight that
// cannot commit.
class StopThenFullDiskSink : public projections::Sink {
 public:
  StopThenFullDiskSink(projections::Sink& inner, std::stop_source& stop) : inner_(inner), stop_(stop) {}
  std::string where() const override { return inner_.where(); }
  std::string rebuild_hint() const override { return inner_.rebuild_hint(); }
  bool pipelined() const override { return inner_.pipelined(); }
  Result<projections::Offsets> LoadOffsets() override { return inner_.LoadOffsets(); }
  Result<projections::Offsets> CommittedOffsets() override { return inner_.CommittedOffsets(); }
  Result<std::unique_ptr<projections::SinkBatch>> Prepare(const std::vector<eventstore::Record>& records,
                                                          const projections::SinkBatch* in_flight) override {
    stop_.request_stop();
    return inner_.Prepare(records, in_flight);
  }
  Status Commit(const projections::SinkBatch&) override {
    ++commits;
    return Status::Unavailable("no space left for the store: 3 MiB free on its filesystem");
  }
  Status AdvanceOffsets(const projections::Offsets& positions) override { return inner_.AdvanceOffsets(positions); }
  std::atomic<int> commits{0};

 private:
  projections::Sink& inner_;
  std::stop_source& stop_;
};

// SIGTERM while the disk is full (what `up` does on it): the projector's Run
// ends cleanly though its last batch could not commit, nothing of that batch
// is stored, and the next run applies it.
TEST(PipelineTest, AStopWhileTheLastBatchCannotCommitIsCleanAndTheNextRunAppliesIt) {
  auto broker = orderflow::testing::StartBroker(2);
  ASSERT_NE(broker, nullptr);
  auto config = orderflow::testing::ConfigFor(*broker);
  auto producer = eventstore::Producer::Create(config, "test-order");
  ASSERT_TRUE(producer.ok());
  for (int i = 0; i < 50; ++i) {
    auto placed = orderflow::testing::PlacedEvent("o-" + std::to_string(i));
    ASSERT_TRUE((*producer)->AppendEvent(eventstore::kOrdersTopic, placed).ok());
  }
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  TempDir dir;
  auto store = projections::ProjectionStore::Open(dir.path(), {});
  ASSERT_TRUE(store.ok());
  {
    auto reader = eventstore::Reader::Create(config, "t");
    ASSERT_TRUE(reader.ok());
    auto inner = projections::StoreSink(**store);
    std::stop_source stop;
    StopThenFullDiskSink sink(*inner, stop);
    projections::Projector projector(sink, **reader, {.topics = {eventstore::kOrdersTopic}, .batch_size = 100});
    ASSERT_TRUE(projector.Start().ok());
    Status run = projector.Run(stop.get_token());
    ASSERT_EQ(sink.commits.load(), 1) << "the stop did not meet a batch in flight";
    EXPECT_TRUE(run.ok()) << run.ToString();
  }
  auto counts = (*store)->CountByStatus();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)["placed"], 0u) << "a batch that did not commit left state behind";
  ASSERT_TRUE(CatchUp(**store, config).ok());
  counts = (*store)->CountByStatus();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)["placed"], 50u);
}


// Time travel: --until-time T rebuilds the state the live store had at T (a
// digest recorded at T), and --verify names the first differing key.
TEST(PipelineTest, ReplayUntilTimeGivesTheStateAtThatTime) {
  OrderLog log(3, 3);
  const auto& config = log.config();
  TempDir dir;
  auto live = projections::ProjectionStore::Open(dir.Sub("live"), {});
  ASSERT_TRUE(live.ok());
  log.Place(300);
  ASSERT_TRUE(CatchUp(**live, config).ok());
  SystemClock().SleepFor(20ms);
  const int64_t t = services::NowMs();
  const std::string digest_at_t = *(*live)->Digest();
  SystemClock().SleepFor(20ms);
  log.Place(300);
  ASSERT_TRUE(CatchUp(**live, config).ok());

  replay::ReplayOptions at_t;
  at_t.kafka = config;
  at_t.data_dir = dir.Sub("at-t");
  at_t.until_time_ms = t;
  auto replayed = replay::Replay(at_t);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  EXPECT_EQ(replayed->events, 300u);
  EXPECT_EQ(replayed->digest, digest_at_t);
  EXPECT_NE(replayed->digest, *(*live)->Digest());

  auto rebuilt = projections::ProjectionStore::Open(at_t.data_dir, {.read_only = true});
  ASSERT_TRUE(rebuilt.ok());
  auto diff = (*rebuilt)->FirstDifference(**live);
  ASSERT_TRUE(diff.ok());
  ASSERT_TRUE(diff->has_value());
  EXPECT_NE((*diff)->find("only in " + dir.Sub("live")), std::string::npos) << **diff;

  // Up to offset 9 of every partition: at most 10 events each.
  replay::ReplayOptions by_offset = at_t;
  by_offset.data_dir = dir.Sub("by-offset");
  by_offset.until_time_ms = -1;
  by_offset.until_offset = 9;
  auto first_ten = replay::Replay(by_offset);
  ASSERT_TRUE(first_ten.ok()) << first_ten.status().ToString();
  EXPECT_EQ(first_ten->events, 30u);

  // --force replaces a store; the full replay equals the live store.
  replay::ReplayOptions full = at_t;
  full.until_time_ms = -1;
  full.force = true;
  rebuilt->reset();
  auto everything = replay::Replay(full);
  ASSERT_TRUE(everything.ok()) << everything.status().ToString();
  EXPECT_EQ(everything->digest, *(*live)->Digest());
}


// Snapshot + tail replay gives the live store's digest, and the manifests
// guard against a store written by other code.
TEST(PipelineTest, SnapshotPlusTailReplayEqualsLiveAndFullReplay) {
  OrderLog log(3, 4);
  const auto& config = log.config();
  TempDir dir;
  const std::string snapshots = dir.Sub("snapshots");
  {
    auto live = projections::ProjectionStore::Open(dir.Sub("live"), {});
    ASSERT_TRUE(live.ok());
    log.Place(400);
    ASSERT_TRUE(CatchUp(**live, config).ok());
    // Taken while this process holds the store: a consistent copy.
    auto copy = projections::CreateSnapshot(dir.Sub("live"), snapshots, "while-running", 1);
    ASSERT_TRUE(copy.ok()) << copy.status().ToString();
    EXPECT_EQ(copy->method, "copy");
    EXPECT_EQ(copy->digest, *(*live)->Digest());
    EXPECT_EQ(copy->orders, 400u);
  }
  auto checkpoint = projections::CreateSnapshot(dir.Sub("live"), snapshots, "s1", 2);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().ToString();
  EXPECT_EQ(checkpoint->method, "checkpoint");
  EXPECT_EQ(projections::CreateSnapshot(dir.Sub("live"), snapshots, "s1", 3).status().code(),
            StatusCode::kAlreadyExists);

  auto live = projections::ProjectionStore::Open(dir.Sub("live"), {});
  ASSERT_TRUE(live.ok());
  log.Place(400);
  ASSERT_TRUE(CatchUp(**live, config).ok());
  const std::string live_digest = *(*live)->Digest();

  replay::ReplayOptions from_snapshot;
  from_snapshot.kafka = config;
  from_snapshot.data_dir = dir.Sub("from-snapshot");
  from_snapshot.snapshots_dir = snapshots;
  from_snapshot.from_snapshot = "s1";
  auto tail = replay::Replay(from_snapshot);
  ASSERT_TRUE(tail.ok()) << tail.status().ToString();
  EXPECT_EQ(tail->events, 400u) << "only the tail is replayed";
  EXPECT_EQ(tail->digest, live_digest);

  replay::ReplayOptions full;
  full.kafka = config;
  full.data_dir = dir.Sub("full");
  auto everything = replay::Replay(full);
  ASSERT_TRUE(everything.ok());
  EXPECT_EQ(everything->events, 800u);
  EXPECT_EQ(everything->digest, live_digest);

  auto listed = projections::ListSnapshots(snapshots);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 2u);

  // A manifest from other code is refused, saying why.
  std::filesystem::copy(snapshots + "/s1", snapshots + "/foreign", std::filesystem::copy_options::recursive);
  {
    std::ifstream in(snapshots + "/foreign/manifest.json");
    std::stringstream text;
    text << in.rdbuf();
    std::string manifest = text.str();
    manifest.replace(manifest.find(projections::SchemaFingerprint()), 8, "deadbeef");
    std::ofstream(snapshots + "/foreign/manifest.json") << manifest;
  }
  auto refused = projections::RestoreSnapshot(snapshots, "foreign", dir.Sub("restored"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("another schema"), std::string::npos) << refused.status().message();
  EXPECT_TRUE(projections::DeleteSnapshot(snapshots, "foreign").ok());
  EXPECT_EQ(projections::ListSnapshots(snapshots)->size(), 2u);
}

// A projector that lost its store gets it back from the newest snapshot this
// build reads plus the log after it (or, with no snapshot, from offset zero),
// built beside and moved in; with its store in place, or an empty log,
// nothing happens.
TEST(PipelineTest, ALostStoreIsRestoredFromTheNewestSnapshotAndTheTail) {
  OrderLog log(3, 4);
  const auto& config = log.config();
  TempDir dir;
  const std::string snapshots = dir.Sub("snapshots");
  replay::ReplayOptions options;
  options.kafka = config;
  {
    auto live = projections::ProjectionStore::Open(dir.Sub("live"), {});
    ASSERT_TRUE(live.ok());
    log.Place(200);
    ASSERT_TRUE(CatchUp(**live, config).ok());
  }
  ASSERT_TRUE(projections::CreateSnapshot(dir.Sub("live"), snapshots, "older", 1).ok());
  {
    auto live = projections::ProjectionStore::Open(dir.Sub("live"), {});
    ASSERT_TRUE(live.ok());
    log.Place(300);
    ASSERT_TRUE(CatchUp(**live, config).ok());
  }
  ASSERT_TRUE(projections::CreateSnapshot(dir.Sub("live"), snapshots, "newest", 2).ok());
  log.Place(100);
  auto live = projections::ProjectionStore::Open(dir.Sub("live"), {});
  ASSERT_TRUE(live.ok());
  ASSERT_TRUE(CatchUp(**live, config).ok());
  const std::string live_digest = *(*live)->Digest();

  // No snapshot: rebuilt from offset zero by the bulk loader.
  auto zero = replay::RestoreIfLost(options, dir.Sub("lost-without-snapshots"), dir.Sub("no-snapshots"));
  ASSERT_TRUE(zero.ok()) << zero.status().ToString();
  ASSERT_TRUE(zero->has_value());
  EXPECT_EQ((*zero)->snapshot, "");
  EXPECT_EQ((*zero)->tail.events, 600u);
  EXPECT_EQ((*zero)->tail.digest, live_digest);
  // A log with no record yet (a new cluster, its topics not created): nothing done.
  replay::ReplayOptions fresh = options;
  fresh.kafka.topic_prefix += "never-written.";
  auto none = replay::RestoreIfLost(fresh, dir.Sub("lost-on-a-new-cluster"), dir.Sub("no-snapshots"));
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->has_value());
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("lost-on-a-new-cluster") + "/CURRENT"));

  // `up` keeps its services' stores in a subdirectory: they stay; a file an
  // interrupted restore left goes.
  const std::string lost = dir.Sub("lost");
  std::filesystem::create_directories(lost + "/services/payment");
  std::ofstream(lost + "/services/payment/keep") << "x";
  std::ofstream(lost + "/000007.sst") << "left by a crash";
  auto restored = replay::RestoreIfLost(options, lost, snapshots);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  ASSERT_TRUE(restored->has_value());
  EXPECT_EQ((*restored)->snapshot, "newest");
  EXPECT_EQ((*restored)->tail.events, 100u) << "only what came after the snapshot is replayed";
  EXPECT_EQ((*restored)->tail.digest, live_digest);
  EXPECT_TRUE(std::filesystem::exists(lost + "/services/payment/keep"));
  EXPECT_FALSE(std::filesystem::exists(lost + ".restore"));
  {
    auto store = projections::ProjectionStore::Open(lost, {});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_EQ(*(*store)->Digest(), live_digest);
  }
  // With its store in place it does nothing.
  auto again = replay::RestoreIfLost(options, lost, snapshots);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());
}

// `orderflow service projector` restores a lost store before it starts, and
// says so. (It drives the orderflow process: scripts/tsan.sh leaves it out,
// as every such test.)
TEST(PipelineTest, ServiceProjectorRestoresALostStoreBeforeItStarts) {
  OrderLog log(3, 5);
  TempDir dir;
  const std::string snapshots = dir.Sub("snapshots");
  log.Place(200);
  std::string live_digest;
  {
    auto live = projections::ProjectionStore::Open(dir.Sub("live"), {});
    ASSERT_TRUE(live.ok());
    ASSERT_TRUE(CatchUp(**live, log.config()).ok());
  }
  ASSERT_TRUE(projections::CreateSnapshot(dir.Sub("live"), snapshots, "newest", 1).ok());
  log.Place(100);
  {
    auto live = projections::ProjectionStore::Open(dir.Sub("live"), {});
    ASSERT_TRUE(live.ok());
    ASSERT_TRUE(CatchUp(**live, log.config()).ok());
    live_digest = *(*live)->Digest();
  }
  const std::string lost = dir.Sub("lost");
  auto projector = testing::Orderflow(testing::Cat(
      {"service", "projector", "--data-dir", lost, "--snapshots", snapshots, "--exit-when-caught-up"},
      log.broker().CliArgs()));
  ASSERT_EQ(projector.status, 0) << projector.err;
  EXPECT_NE(projector.err.find("restoring snapshot newest"), std::string::npos) << projector.err;
  EXPECT_NE(projector.err.find("and 100 events"), std::string::npos) << projector.err;
  auto store = projections::ProjectionStore::Open(lost, {.read_only = true});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(*(*store)->Digest(), live_digest);
}


// A log written half by v1 code and half by v2 code (>= 20,000 events): the
// live store, a full replay and snapshot + tail all give the same digest, and
// v1 events read with their v2 meaning.
TEST(PipelineTest, MixedV1AndV2LogReplaysToTheSameState) {
  auto broker = orderflow::testing::StartBroker(4);
  auto config = orderflow::testing::ConfigFor(*broker);
  TempDir dir;
  auto producer = eventstore::Producer::Create(config, "test-mixed");
  ASSERT_TRUE(producer.ok());
  // As v1 code wrote events: version 1, no v2 fields, v1 template names.
  auto append = [&](domain::Event e, bool v1) {
    if (v1) {
      e.schema_version = 1;
      if (auto* placed = std::get_if<domain::OrderPlaced>(&e.payload)) placed->shipping_address.clear();
      if (auto* paid = std::get_if<domain::PaymentAuthorized>(&e.payload)) paid->method.clear();
    }
    std::vector<eventstore::Header> headers = {
        {std::string(eventstore::kHeaderEventType), std::string(domain::EventTypeName(e.payload))},
        {std::string(eventstore::kHeaderSchemaVersion), std::to_string(e.schema_version)},
        {std::string(eventstore::kHeaderContentType), std::string(eventstore::kContentType)}};
    ASSERT_TRUE((*producer)->Append(eventstore::kOrdersTopic, e.order_id, eventstore::EncodeEvent(e), headers).ok());
  };
  auto write_orders = [&](int from, int to, bool v1) {
    for (int i = from; i < to; ++i) {
      const std::string id = "order-" + std::to_string(i);
      domain::Event placed = orderflow::testing::PlacedEvent(id, "cust-" + std::to_string(i % 50));
      std::get<domain::OrderPlaced>(placed.payload).shipping_address = std::to_string(i) + " Damrak";
      append(placed, v1);
      append(LifecycleEvent(id, 1, domain::PaymentAuthorized{"pay-" + id, 2900, "paypal"}), v1);
      append(LifecycleEvent(id, 2,
                            domain::NotificationSent{"n-" + id, v1 ? "order_placed" : "order.placed", "c",
                                                     domain::NotificationPriority::kLow}),
             v1);
      append(LifecycleEvent(id, 3, domain::OrderCancelled{"test", domain::CancelSource::kSystem}), v1);
    }
    ASSERT_TRUE((*producer)->Flush(30s).ok());
  };
  const std::string snapshots = dir.Sub("snapshots");
  write_orders(0, 2500, /*v1=*/true);
  {
    auto live = projections::ProjectionStore::Open(dir.Sub("live"), {});
    ASSERT_TRUE(live.ok());
    ASSERT_TRUE(CatchUp(**live, config).ok());
  }
  ASSERT_TRUE(projections::CreateSnapshot(dir.Sub("live"), snapshots, "after-v1", 1).ok());
  write_orders(2500, 5000, /*v1=*/false);
  auto live = projections::ProjectionStore::Open(dir.Sub("live"), {});
  ASSERT_TRUE(live.ok());
  ASSERT_TRUE(CatchUp(**live, config).ok());
  const std::string live_digest = *(*live)->Digest();

  replay::ReplayOptions full;
  full.kafka = config;
  full.data_dir = dir.Sub("full");
  auto everything = replay::Replay(full);
  ASSERT_TRUE(everything.ok()) << everything.status().ToString();
  EXPECT_EQ(everything->events, 20000u);
  EXPECT_EQ(everything->digest, live_digest);

  replay::ReplayOptions tail = full;
  tail.data_dir = dir.Sub("tail");
  tail.snapshots_dir = snapshots;
  tail.from_snapshot = "after-v1";
  auto from_snapshot = replay::Replay(tail);
  ASSERT_TRUE(from_snapshot.ok()) << from_snapshot.status().ToString();
  EXPECT_EQ(from_snapshot->events, 10000u);
  EXPECT_EQ(from_snapshot->digest, live_digest);

  // v1 events carry their v2 meaning; the history keeps the written version.
  auto old_order = (*live)->GetOrder("order-7");
  ASSERT_TRUE(old_order.ok() && old_order->has_value());
  EXPECT_EQ((*old_order)->payment_method, "card");
  EXPECT_EQ((*old_order)->shipping_address, "");
  auto new_order = (*live)->GetOrder("order-4007");
  ASSERT_TRUE(new_order.ok() && new_order->has_value());
  EXPECT_EQ((*new_order)->payment_method, "paypal");
  EXPECT_EQ((*new_order)->shipping_address, "4007 Damrak");
  auto history = (*live)->GetHistory("order-7");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 4u);
  EXPECT_EQ((*history)[2].schema_version, 1);
  EXPECT_EQ(std::get<domain::NotificationSent>((*history)[2].event->payload).template_name, "order.placed");
}


// A store built by older projection code is rebuilt from the log in a side
// directory and swapped in; the old one stays readable until then.
TEST(PipelineTest, OutdatedProjectionIsRebuiltAndSwappedIn) {
  OrderLog log(2, 8);
  const auto& config = log.config();
  TempDir dir;
  log.Place(200);
  const std::string data = dir.Sub("data");
  std::string digest;
  {
    auto store = projections::ProjectionStore::Open(data, {});
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(CatchUp(**store, config).ok());
    digest = *(*store)->Digest();
  }
  ASSERT_TRUE(projections::SetStoredProjectionVersionForTesting(data, projections::kProjectionVersion - 1).ok());
  std::filesystem::create_directories(data + "/services/payment");  // as `orderflow up` keeps them
  std::ofstream(data + "/services/payment/marker") << "kept";
  auto refused = projections::ProjectionStore::Open(data, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  // The old state is still there to read while nothing rebuilt it.
  {
    auto reader = projections::ProjectionStore::Open(data, {.read_only = true});
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    EXPECT_EQ(*(*reader)->Digest(), digest);
  }

  replay::ReplayOptions options;
  options.kafka = config;
  auto rebuilt = replay::RebuildIfOutdated(options, data);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().ToString();
  EXPECT_TRUE(*rebuilt);
  EXPECT_EQ(**projections::StoredProjectionVersion(data), projections::kProjectionVersion);
  EXPECT_FALSE(std::filesystem::exists(data + ".rebuild"));
  EXPECT_TRUE(std::filesystem::exists(data + "/services/payment/marker")) << "the services' stores must survive";
  auto store = projections::ProjectionStore::Open(data, {});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(*(*store)->Digest(), digest);
  store->reset();
  auto again = replay::RebuildIfOutdated(options, data);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again) << "an up-to-date store is left alone";
}

}  // namespace
}  // namespace orderflow

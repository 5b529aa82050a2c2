// Multi-process crash test: `orderflow broker` in one process, orders appended
// from this one, and `orderflow service projector` SIGKILLed at random moments
// and restarted. The final state must equal a clean replay's, byte for byte.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <thread>

#include "domain/clock.h"
#include "eventstore/topics.h"
#include "projections/store.h"
#include "replay/replay.h"
#include "services/orders/order_service.h"
#include "cli/app/simulator.h"
#include "tests/util/broker.h"
#include "tests/util/process.h"
#include "tests/util/temp_dir.h"

namespace orderflow {
namespace {

using namespace std::chrono_literals;
using orderflow::testing::ChildProcess;
using orderflow::testing::OrderflowBinary;
using orderflow::testing::TempDir;

int64_t StoredTotal(const std::string& dir) {
  auto store = projections::ProjectionStore::Open(dir, {.read_only = true});
  if (!store.ok()) return 0;
  auto offsets = (*store)->GetOffsets();
  int64_t total = 0;
  for (const auto& [tp, offset] : *offsets) total += offset;
  return total;
}

TEST(CrashTest, SigkilledProjectorResumesAndMatchesCleanReplay) {
  TempDir dir;
  const std::string log = dir.Sub("stderr.log");
  auto broker = testing::StartBroker(4);
  ASSERT_NE(broker, nullptr);
  const eventstore::KafkaConfig config = broker->config();

  // Orders flow while the projector is killed: ~6,000 events over ~3 s.
  const auto catalog = domain::Catalog::Demo();
  std::atomic<int64_t> appended{0};
  std::atomic<bool> producer_failed{false};
  // The producer places orders in eight chunks, one per projector life, so
  // that every kill lands while events are flowing however slow the machine.
  constexpr int kOrders = 3000;
  constexpr int kRounds = 8;
  std::atomic<int> released{0};
  std::thread producer_thread([&] {
    auto producer = eventstore::Producer::Create(config, "crash-test");
    if (!producer.ok()) {
      producer_failed = true;
      return;
    }
    services::OrderService orders(**producer, catalog);
    services::OrderSimulator simulator(catalog, 5);
    for (int i = 0; i < kOrders; ++i) {
      while (i >= released.load()) SystemClock().SleepFor(5ms);
      std::string id = services::NewOrderId();
      auto placed = orders.Place(simulator.Next(), id, 1'700'000'000'000 + i);
      if (!placed.ok()) {
        producer_failed = true;
        return;
      }
      // A second event for the same order, as the payment service would append.
      domain::Event paid;
      paid.id = domain::DeriveEventId(placed->id, "payment");
      paid.order_id = id;
      paid.occurred_at_ms = placed->occurred_at_ms + 1;
      paid.causation_id = placed->id;
      paid.producer = "payment";
      paid.payload = domain::PaymentAuthorized{"pay-" + std::to_string(i), 100};
      if (!(*producer)->AppendEvent(eventstore::kOrdersTopic, paid).ok()) {
        producer_failed = true;
        return;
      }
      appended += 2;
      if (i % 100 == 99) SystemClock().SleepFor(100ms);
    }
    if (!(*producer)->Flush(30s).ok()) producer_failed = true;
  });

  const std::string live = dir.Sub("live");
  const std::vector<std::string> projector_argv =
      testing::Cat({OrderflowBinary(), "service", "projector", "--data-dir", live, "--batch-size", "100"}, broker->CliArgs());
  std::mt19937 rng(12345);
  int kills = 0;
  int mid_stream_kills = 0;
  for (int round = 0; round < kRounds; ++round) {
    const int64_t before = StoredTotal(live);
    ChildProcess projector(projector_argv, log);
    // Half the round's orders, then (once the projector has stored some of
    // them) the other half, and the kill while that half flows.
    released = kOrders * round / kRounds + kOrders / kRounds / 2;
    for (int i = 0; i < 500 && StoredTotal(live) == before; ++i) SystemClock().SleepFor(10ms);
    released = kOrders * (round + 1) / kRounds;
    SystemClock().SleepFor(std::chrono::milliseconds(rng() % 100));
    projector.Kill(SIGKILL);
    EXPECT_EQ(projector.Wait(5s), 128 + SIGKILL);
    ++kills;
    int64_t stored = StoredTotal(live);
    if (stored > 0 && stored < appended.load()) ++mid_stream_kills;
  }
  producer_thread.join();
  ASSERT_FALSE(producer_failed.load());
  ASSERT_EQ(appended.load(), 6000);
  EXPECT_EQ(kills, 8);
  EXPECT_GE(mid_stream_kills, 2) << "the kills did not land while events were flowing";

  std::vector<std::string> finish = projector_argv;
  finish.push_back("--exit-when-caught-up");
  ChildProcess last(finish, log);
  ASSERT_EQ(last.Wait(60s), 0) << "projector did not catch up; see " << log;
  EXPECT_EQ(StoredTotal(live), 6000);

  replay::ReplayOptions options;
  options.kafka = config;
  options.data_dir = dir.Sub("replayed");
  auto replayed = replay::Replay(options);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  EXPECT_EQ(replayed->events, 6000u);
  auto store = projections::ProjectionStore::Open(live, {.read_only = true});
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(*(*store)->Digest(), replayed->digest);
  auto counts = (*store)->CountByStatus();
  EXPECT_EQ((*counts)["payment_authorized"], 3000u);
}

}  // namespace
}  // namespace orderflow

namespace orderflow {
namespace {

// `orderflow replay` SIGKILLed at moments spread over a whole replay's
// duration: a store it leaves mid-rebuild is refused as unfinished (never one
// that looks finished), and the next replay into the same directory, without
// --force, succeeds with the digest of an uninterrupted one.
TEST(CrashTest, SigkilledReplayLeavesAStoreRefusedAsUnfinishedAndTheNextReplaySucceeds) {
  TempDir dir;
  auto broker = testing::StartBroker(4);
  ASSERT_NE(broker, nullptr);
  {
    auto producer = eventstore::Producer::Create(broker->config(), "crash-test");
    ASSERT_TRUE(producer.ok());
    const auto catalog = domain::Catalog::Demo();
    services::OrderService orders(**producer, catalog);
    services::OrderSimulator simulator(catalog, 9);
    for (int i = 0; i < 40000; ++i) {
      ASSERT_TRUE(orders.Place(simulator.Next(), services::NewOrderId(), 1'700'000'000'000 + i).ok());
    }
    ASSERT_TRUE((*producer)->Flush(60s).ok());
  }
  auto replay_argv = [&](const std::string& data_dir) {
    return testing::Cat({OrderflowBinary(), "replay", "--data-dir", data_dir, "--json"}, broker->CliArgs());
  };
  const std::string log = dir.Sub("stderr.log");
  const auto t0 = SystemClock().Now();
  {
    ChildProcess full(replay_argv(dir.Sub("full")), log);
    ASSERT_EQ(full.Wait(120s), 0) << "see " << log;
  }
  const auto whole = SystemClock().Now() - t0;
  auto clean = projections::ProjectionStore::Open(dir.Sub("full"), {.read_only = true});
  ASSERT_TRUE(clean.ok());
  const std::string expected = *(*clean)->Digest();

  const std::string target = dir.Sub("killed");
  int unfinished = 0;
  for (int k = 1; k <= 9; ++k) {
    {
      ChildProcess replay(replay_argv(target), log);
      if (k % 2 == 0) {
        // Half the kills land at a point of the rebuild itself (a loaded
        // machine may spend most of `whole` starting the process).
        const auto deadline = SystemClock().Now() + 30s;
        while (!*projections::IsUnfinishedRebuild(target) && SystemClock().Now() < deadline) {
          SystemClock().SleepFor(1ms);
        }
        SystemClock().SleepFor(whole * k / 40);
      } else {
        SystemClock().SleepFor(whole * k / 10);
      }
      replay.Kill(SIGKILL);
      replay.Wait(10s);
    }
    auto refused = projections::IsUnfinishedRebuild(target);
    ASSERT_TRUE(refused.ok()) << refused.status().ToString();
    {
      auto store = projections::ProjectionStore::Open(target, {.read_only = true});
      if (*refused) {
        ++unfinished;
        ASSERT_FALSE(store.ok()) << "an unfinished store opened";
        EXPECT_NE(store.status().message().find("unfinished rebuild"), std::string::npos) << store.status().ToString();
      } else if (store.ok()) {
        EXPECT_EQ(*(*store)->Digest(), expected) << "a store that looks finished must be complete";
      }
    }
    // The next replay (no --force) takes over whatever the killed one left,
    // unless that one finished: then the directory holds a finished store.
    if (*refused) {
      ChildProcess again(replay_argv(target), log);
      ASSERT_EQ(again.Wait(120s), 0) << "see " << log;
      auto rebuilt = projections::ProjectionStore::Open(target, {.read_only = true});
      ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().ToString();
      EXPECT_EQ(*(*rebuilt)->Digest(), expected);
    }
    std::filesystem::remove_all(target);
  }
  EXPECT_GE(unfinished, 3) << "the kills did not land while the store was being rebuilt";
}

}  // namespace
}  // namespace orderflow

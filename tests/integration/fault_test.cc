// Broker faults injected with the embedded broker's fault injection while
// 2,000 orders flow through every service: each order must reach a terminal
// state, the projection must equal a clean replay of the log, and no
// notification may be sent twice.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <map>
#include <thread>

#include "eventstore/acknowledged.h"
#include "eventstore/embedded_broker.h"
#include "eventstore/topics.h"
#include "projections/store.h"
#include "replay/replay.h"
#include "services/lifecycle/runner.h"
#include "tests/util/noop_reactor.h"
#include "cli/app/up.h"
#include "tests/util/broker.h"
#include "tests/util/fake_clock.h"
#include "tests/util/events.h"
#include "tests/util/temp_dir.h"
#include "tests/util/up_invariants.h"

namespace orderflow {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

// Kafka protocol API keys (rdkafka_protocol.h is not installed).
constexpr int16_t kProduce = 0, kFetch = 1, kOffsetCommit = 8, kHeartbeat = 12;

struct Fault {
  const char* name;
  // Runs on its own thread while orders flow; returns when the fault is over.
  std::function<void(rd_kafka_mock_cluster_t*, const std::atomic<bool>& done)> inject;
};

void SleepFor(std::chrono::milliseconds d, const std::atomic<bool>& done) {
  for (auto t = 0ms; t < d && !done.load(); t += 10ms) SystemClock().SleepFor(10ms);
}

// Only the faults the embedded broker injects faithfully and only it can
// inject (request errors, latency). Leaders moving and brokers going down are
// tested on a real 3-node cluster (tests/cluster/cluster_fault_test.cc):
// librdkafka 2.0.2's mock cluster can acknowledge a record and then lack it
// after its leader moved, which no real broker with acks=all may do.
const Fault kFaults[] = {
    {"ProduceErrors",
     [](rd_kafka_mock_cluster_t* m, const std::atomic<bool>& done) {
       for (int round = 0; round < 20 && !done.load(); ++round) {
         rd_kafka_mock_push_request_errors(m, kProduce, 6, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                           RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                                           RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
                                           RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                                           RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
         SleepFor(150ms, done);
       }
     }},
    {"FetchErrors",
     [](rd_kafka_mock_cluster_t* m, const std::atomic<bool>& done) {
       for (int round = 0; round < 20 && !done.load(); ++round) {
         rd_kafka_mock_push_request_errors(m, kFetch, 4, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                           RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
                                           RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
         SleepFor(150ms, done);
       }
     }},
    {"HighRoundTripTime",
     [](rd_kafka_mock_cluster_t* m, const std::atomic<bool>& done) {
       for (int32_t b = 1; b <= 3; ++b) rd_kafka_mock_broker_set_rtt(m, b, 300);
       SystemClock().SleepFor(3s);
       for (int32_t b = 1; b <= 3; ++b) rd_kafka_mock_broker_set_rtt(m, b, 0);
     }},
    // orderflow keeps consumed offsets in RocksDB, not in Kafka; what a group
    // member commits to the coordinator is its membership: heartbeats fail
    // and force rebalances, offset commits (if any client sends one) fail.
    {"CommitAndCoordinatorErrors",
     [](rd_kafka_mock_cluster_t* m, const std::atomic<bool>& done) {
       for (int round = 0; round < 6 && !done.load(); ++round) {
         rd_kafka_mock_push_request_errors(m, kHeartbeat, 2, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
                                           RD_KAFKA_RESP_ERR_NOT_COORDINATOR);
         rd_kafka_mock_push_request_errors(m, kOffsetCommit, 2, RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                                           RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
         SleepFor(500ms, done);
       }
     }},
};

void PrintTo(const Fault& fault, std::ostream* os) { *os << fault.name; }

class BrokerFaultTest : public ::testing::TestWithParam<Fault> {};

TEST_P(BrokerFaultTest, EveryOrderFinishesDigestEqualsReplayNoNotificationTwice) {
  const Fault& fault = GetParam();
  auto broker = testing::StartEmbeddedBroker(3);
  ASSERT_TRUE(broker);
  const auto kafka = testing::ConfigFor(*broker);
  TempDir dir;
  services::UpOptions options;
  options.kafka = kafka;
  options.data_dir = dir.Sub("up");
  options.partitions = 3;
  options.simulate = 2000;
  options.rate = 1000;  // the fault hits orders in flight, not an idle system
  options.exit_when_done = true;
  options.transit_delay = 0ms;
  std::stop_source stop;
  std::atomic<bool> done{false};
  std::thread injector;
  // An order that cannot finish because the broker lost a record it had
  // acknowledged stops the run within seconds, naming the record.
  auto watch = std::make_unique<testing::LostRecordWatch>(kafka, stop);
  auto summary = services::RunUp(options, domain::Catalog::Demo(), stop.get_token(), [&](const services::UpEndpoints&) {
    injector = std::thread([&] { fault.inject(broker->mock_cluster(), done); });
  });
  done.store(true);
  if (injector.joinable()) injector.join();
  const std::string lost = watch->Lost();
  watch.reset();
  ASSERT_EQ(lost, "") << fault.name << ": the embedded broker lost records it had acknowledged";
  ASSERT_TRUE(summary.ok()) << fault.name << ": " << summary.status().ToString();
  EXPECT_EQ(summary->orders_placed, 2000u);
  testing::CheckUpInvariants(fault.name, options, *summary, 2000, dir.Sub("replayed"));
}

// The check above is real: records one broker acknowledged, looked for in a
// log that lacks them (another broker's), are named by partition and offsets,
// and the watch stops the run. The log that holds them is not reported.
TEST(LostRecordWatchTest, NamesRecordsTheBrokerAcknowledgedAndTheLogLacksAndStopsTheRun) {
  auto holder = testing::StartEmbeddedBroker(2);
  auto other = testing::StartEmbeddedBroker(2);
  ASSERT_TRUE(holder && other);
  auto producer = eventstore::Producer::Create(holder->config(), "t");
  ASSERT_TRUE(producer.ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE((*producer)->AppendEvent(eventstore::kOrdersTopic, testing::PlacedEvent("o-" + std::to_string(i))).ok());
  }
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  const auto acknowledged = eventstore::AcknowledgedEnds(holder->config());
  int64_t total = 0;
  for (const auto& [tp, end] : acknowledged) total += end;
  ASSERT_EQ(total, 20) << "every acknowledged record is counted";
  EXPECT_TRUE(testing::LostAcknowledged(holder->config()).empty());

  const auto lost = testing::LostAcknowledged(acknowledged, other->config());
  ASSERT_EQ(lost.size(), acknowledged.size());
  const auto& [first_tp, first_end] = *acknowledged.begin();
  EXPECT_EQ(lost[0], "orders.events[" + std::to_string(first_tp.partition) + "]: offsets 0.." +
                         std::to_string(first_end - 1) + " were acknowledged, the log ends at 0");

  std::stop_source stop;
  testing::LostRecordWatch watch([&] { return testing::LostAcknowledged(acknowledged, other->config()); }, stop);
  for (int i = 0; i < 100 && !stop.stop_requested(); ++i) SystemClock().SleepFor(100ms);
  EXPECT_TRUE(stop.stop_requested()) << "the watch did not stop the run within 10 s";
  EXPECT_NE(watch.Lost().find("orders.events["), std::string::npos) << watch.Lost();
}

// A consumer whose fetches stop coming back (every broker holds its next
// Fetch response for 45 s, so the consumer's connection to the partition's
// leader is stuck) is recreated by the runner's stall watchdog, and the
// records behind it are consumed by the new consumer.
TEST(StallWatchdogTest, APartitionWhoseFetchesHangGetsItsConsumersRecreated) {
  auto broker = testing::StartEmbeddedBroker(1);
  ASSERT_TRUE(broker);
  const auto kafka = testing::ConfigFor(*broker);
  TempDir dir;
  testing::FakeClock clock;  // the watchdog's 10 s pass when the test says so
  auto runner = testing::NoopRunner(kafka, dir.Sub("svc"), &clock);
  ASSERT_TRUE(runner.ok()) << runner.status().ToString();
  auto producer = eventstore::Producer::Create(kafka, "t");
  ASSERT_TRUE(producer.ok());
  auto append = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      ASSERT_TRUE((*producer)->AppendEvent(eventstore::kOrdersTopic, testing::PlacedEvent("o-" + std::to_string(i))).ok());
    }
    ASSERT_TRUE((*producer)->Flush(10s).ok());
  };
  // The fake clock moves along with real time while the test waits, so the
  // runner's own waits (the pause before it resumes) pass.
  auto wait_for_events = [&](uint64_t n, std::chrono::seconds limit) {
    for (auto waited = 0ms; waited < limit && (*runner)->stats().events.load() < n; waited += 10ms) {
      SystemClock().SleepFor(10ms);
      clock.Advance(10ms);
    }
    return (*runner)->stats().events.load();
  };
  std::stop_source stop;
  std::thread t([&] { EXPECT_TRUE((*runner)->Run(stop.get_token()).ok()); });
  append(0, 10);
  EXPECT_EQ(wait_for_events(10, 30s), 10u);
  // An idle service is not stalled, however long nothing arrives.
  // After each step, two more polls: the watchdog has looked at that time
  // (a look still due would otherwise see the records appended below).
  auto two_more_polls = [&] {
    const uint64_t polls = (*runner)->stats().polls.load();
    for (int i = 0; i < 3000 && (*runner)->stats().polls.load() < polls + 2; ++i) SystemClock().SleepFor(10ms);
    return (*runner)->stats().polls.load() >= polls + 2;
  };
  for (int i = 0; i < 4; ++i) {
    clock.Advance(6s);
    ASSERT_TRUE(two_more_polls()) << "the runner stopped polling";
  }
  ASSERT_EQ((*runner)->stats().stalls.load(), 0u);

  for (int32_t b = 1; b <= 3; ++b) {
    rd_kafka_mock_broker_push_request_error_rtts(broker->mock_cluster(), b, kFetch, 1, RD_KAFKA_RESP_ERR_NO_ERROR,
                                                 45000);
  }
  SystemClock().SleepFor(200ms);  // the consumer's next fetch takes the held response
  append(10, 30);
  SystemClock().SleepFor(300ms);
  EXPECT_EQ((*runner)->stats().events.load(), 10u) << "the held fetch did not hold";
  // Well within the 45 s the held response would take: once the clock passes
  // the watchdog's 10 s without progress, it recreates the consumers.
  clock.Advance(11s);
  EXPECT_EQ(wait_for_events(30, 40s), 30u);
  EXPECT_EQ((*runner)->stats().stalls.load(), 1u);
  stop.request_stop();
  t.join();
}

INSTANTIATE_TEST_SUITE_P(Faults, BrokerFaultTest, ::testing::ValuesIn(kFaults),
                         [](const ::testing::TestParamInfo<Fault>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace orderflow

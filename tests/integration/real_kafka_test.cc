// What only a real Apache Kafka can show (registered for the `kafka.` pass
// only; see tests/CMakeLists.txt): topic configs through the admin API, a log
// start moved by retention, and the consumer-group view operators get.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <nlohmann/json.hpp>

#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <set>
#include <future>
#include <thread>

#include "domain/clock.h"
#include "eventstore/topics.h"
#include "services/lifecycle/runner.h"
#include "tests/util/noop_reactor.h"
#include "tests/util/broker.h"
#include "tests/util/events.h"
#include "tests/util/process.h"
#include "tests/util/temp_dir.h"

namespace orderflow {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::Cat;
using testing::OrderflowBinary;
using testing::Orderflow;
using testing::RunCommand;
using testing::TempDir;

// Runs an admin request on a fresh client and returns the first error, if any.
template <typename Request>
std::string Admin(const std::string& brokers, Request request) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[256];
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  request(rk, queue);
  std::string error;
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, 20000);
  if (ev == nullptr) {
    error = "timed out";
  } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    error = rd_kafka_event_error_string(ev);
  }
  if (ev != nullptr) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(queue);
  rd_kafka_destroy(rk);
  return error;
}

// Sets topic configs (AlterConfigs replaces the topic's whole set).
std::string SetTopicConfigs(const std::string& brokers, const std::string& topic,
                            const std::vector<std::pair<std::string, std::string>>& configs) {
  return Admin(brokers, [&](rd_kafka_t* rk, rd_kafka_queue_t* queue) {
    rd_kafka_ConfigResource_t* res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
    for (const auto& [k, v] : configs) rd_kafka_ConfigResource_set_config(res, k.c_str(), v.c_str());
    rd_kafka_AlterConfigs(rk, &res, 1, nullptr, queue);
    rd_kafka_ConfigResource_destroy(res);
  });
}

TEST(RealKafkaTest, TopicsKeepEverythingAndAFiniteRetentionIsRefusedAtStart) {
  auto broker = testing::StartBroker(3);
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(broker->real());
  // Read back with DescribeConfigs what ProvisionTopics asked for.
  std::vector<std::string> names;
  for (const auto& spec : eventstore::DefaultTopics()) names.push_back(spec.name);
  auto topics = eventstore::DescribeTopics(broker->config(), names, 10s);
  ASSERT_TRUE(topics.ok()) << topics.status().ToString();
  for (const auto& t : *topics) {
    ASSERT_FALSE(t.configs.empty()) << t.name;
    if (eventstore::IsEventTopic(t.name)) {
      EXPECT_EQ(t.Config("retention.ms"), "-1") << t.name;
      EXPECT_EQ(t.Config("retention.bytes"), "-1") << t.name;
      EXPECT_EQ(t.Config("cleanup.policy"), "delete") << t.name;
    } else {
      EXPECT_NE(t.Config("retention.ms"), "-1") << t.name << ": work queues keep the broker's default";
    }
    for (const auto& p : t.partitions) {
      EXPECT_EQ(p.replicas.size(), 1u) << "replication factor min(3, brokers) on one broker";
      EXPECT_EQ(p.isr, p.replicas);
    }
  }
  // The same through the CLI, as JSON.
  auto shown = Orderflow(Cat({"topics", "--json"}, broker->CliArgs()));
  ASSERT_EQ(shown.status, 0) << shown.err;
  for (const auto& t : json::parse(shown.out)) {
    if (t["topic"] == "orders.events") {
      EXPECT_EQ(t["configs"]["retention.ms"], "-1");
    }
    EXPECT_EQ(t["name_on_cluster"], broker->config().topic_prefix + t["topic"].get<std::string>());
  }

  // An operator shortened the retention of orders.events: refused at start,
  // naming the topic and the config, and nothing runs.
  const std::string orders = broker->config().topic_prefix + eventstore::kOrdersTopic;
  ASSERT_EQ(SetTopicConfigs(broker->bootstraps(), orders, {{"retention.ms", "86400000"}}), "");
  Status refused = eventstore::ProvisionTopics(broker->config(), eventstore::DefaultTopics(3), 10s);
  ASSERT_EQ(refused.code(), StatusCode::kFailedPrecondition) << refused.ToString();
  EXPECT_NE(refused.message().find("topic " + orders + " has retention.ms=86400000"), std::string::npos)
      << refused.message();
  TempDir dir;
  auto up = Orderflow(Cat({"up", "--http", "off", "--data-dir", dir.Sub("up"), "--simulate", "10", "--exit-when-done"},
                          broker->CliArgs()));
  EXPECT_EQ(up.status, 1) << up.out;
  EXPECT_NE(up.err.find("retention.ms=86400000"), std::string::npos) << up.err;
  EXPECT_NE(up.err.find("set retention.ms=-1"), std::string::npos) << up.err;

  // Compaction would drop history too.
  ASSERT_EQ(SetTopicConfigs(broker->bootstraps(), orders, {{"cleanup.policy", "compact"}}), "");
  refused = eventstore::ProvisionTopics(broker->config(), eventstore::DefaultTopics(3), 10s);
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition) << refused.ToString();
  EXPECT_NE(refused.message().find("cleanup.policy=compact"), std::string::npos) << refused.message();
}

// The producer's batches are stored compressed (snappy, the default; lz4 when
// the user asks: librdkafka 2.0.2 picks lz4 only when the broker still lists
// the old request versions, which is why Kafka 3.9 and not 4.x). The broker's
// own DumpLogSegments tool shows the codec of the batches it stored.
TEST(RealKafkaTest, StoredBatchesAreSnappyCompressedOrLz4WhenAsked) {
  const char* kafka_dir = std::getenv("ORDERFLOW_TEST_KAFKA_DIR");
  ASSERT_NE(kafka_dir, nullptr) << "ORDERFLOW_TEST_KAFKA_DIR (the --dir of scripts/kafka.sh) is not set; "
                                   "scripts/test.sh sets it";
  auto broker = testing::StartBroker(1);
  ASSERT_NE(broker, nullptr);
  // Appends 200 records to `topic` (one partition) with `config` and returns
  // what DumpLogSegments says of its first segment.
  auto stored = [&](const eventstore::KafkaConfig& config, const std::string& topic) -> std::string {
    auto producer = eventstore::Producer::Create(config, "t");
    EXPECT_TRUE(producer.ok()) << producer.status().ToString();
    if (!producer.ok()) return "";
    for (int i = 0; i < 200; ++i) {
      EXPECT_TRUE((*producer)->Append(topic, "k", std::string(200, 'a' + i % 26), {}).ok());
    }
    EXPECT_TRUE((*producer)->Flush(10s).ok());
    const std::string segment = std::string(kafka_dir) + "/node-1/data/" + config.topic_prefix + topic +
                                "-0/00000000000000000000.log";
    auto dumped = RunCommand({"/bin/bash", std::string(ORDERFLOW_SOURCE_DIR) + "/scripts/kafka.sh", "tool",
                              "kafka.tools.DumpLogSegments", "--files", segment},
                             60s);
    EXPECT_EQ(dumped.status, 0) << dumped.err;
    return dumped.out;
  };
  const std::string by_default = stored(broker->config(), eventstore::kOrdersTopic);
  EXPECT_NE(by_default.find("compresscodec: snappy"), std::string::npos) << by_default;
  EXPECT_EQ(by_default.find("compresscodec: none"), std::string::npos) << by_default;
  eventstore::KafkaConfig lz4 = broker->config();
  lz4.overrides.emplace_back("compression.type", "lz4");
  const std::string asked = stored(lz4, eventstore::kInventoryTopic);
  EXPECT_NE(asked.find("compresscodec: lz4"), std::string::npos) << asked;
  EXPECT_EQ(asked.find("compresscodec: none"), std::string::npos) << asked;
}

TEST(RealKafkaTest, RetentionPastTheStoredOffsetStopsTheServiceNamingTheLostOffsets) {
  auto broker = testing::StartBroker(1);
  ASSERT_NE(broker, nullptr);
  const std::string orders = broker->config().topic_prefix + eventstore::kOrdersTopic;
  // A test topic with a short retention and short segments: the broker
  // deletes closed segments within seconds (single.properties checks every 2 s).
  ASSERT_EQ(SetTopicConfigs(broker->bootstraps(), orders,
                            {{"retention.ms", "500"}, {"segment.ms", "200"}, {"file.delete.delay.ms", "0"}}),
            "");
  auto producer = eventstore::Producer::Create(broker->config(), "t");
  ASSERT_TRUE(producer.ok());
  auto reader = eventstore::Reader::Create(broker->config(), "t-watch");
  ASSERT_TRUE(reader.ok());
  int64_t low = 0;
  for (int i = 0; i < 300 && low == 0; ++i) {  // a record every 100 ms rolls segments
    ASSERT_TRUE((*producer)->Append(eventstore::kOrdersTopic, "k", "not an event", {}).ok());
    ASSERT_TRUE((*producer)->Flush(10s).ok());
    SystemClock().SleepFor(100ms);
    auto w = (*reader)->QueryWatermarks({eventstore::kOrdersTopic, 0}, 5s);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    low = w->low;
  }
  ASSERT_GT(low, 0) << "retention never moved the log start";

  TempDir dir;
  auto runner = testing::NoopRunner(broker->config(), dir.Sub("svc"));
  ASSERT_TRUE(runner.ok()) << runner.status().ToString();
  std::stop_source stop;
  auto result = std::async(std::launch::async, [&] { return (*runner)->Run(stop.get_token()); });
  if (result.wait_for(90s) != std::future_status::ready) {
    stop.request_stop();
    FAIL() << "the service kept running";
  }
  Status s = result.get();
  ASSERT_EQ(s.code(), StatusCode::kOutOfRange) << s.ToString();
  EXPECT_NE(s.message().find("shipping: orders.events[0]: the log now starts at offset "), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("needs offset 0"), std::string::npos) << s.message();
}

// A service started before `up` created orderflow's topics (every process of
// a deployment started at once) waits for its input topic, then consumes it;
// only a topic it consumed from and that is gone stops it. Real Kafka only:
// the embedded broker creates a topic when a consumer asks for it.
TEST(RealKafkaTest, AServiceStartedBeforeItsInputTopicExistsWaitsForIt) {
  auto broker = testing::StartBroker(2);
  ASSERT_NE(broker, nullptr);
  eventstore::KafkaConfig late = broker->config();
  late.topic_prefix += "late.";  // no topic exists under it yet
  TempDir dir;
  auto runner = testing::NoopRunner(late, dir.Sub("svc"));
  ASSERT_TRUE(runner.ok()) << runner.status().ToString();
  std::stop_source stop;
  auto result = std::async(std::launch::async, [&] { return (*runner)->Run(stop.get_token()); });
  struct StopFirst {  // a failed assertion returns: stop the run before `result` waits for it
    std::stop_source& stop;
    ~StopFirst() { stop.request_stop(); }
  } stop_first{stop};
  struct DropTopics {
    const eventstore::KafkaConfig& config;
    ~DropTopics() { testing::DeleteTopics(config); }
  } drop_topics{late};
  auto running = [&] { return result.wait_for(0s) != std::future_status::ready; };
  for (int i = 0; i < 600 && (*runner)->stats().topic_waits.load() == 0 && running(); ++i) {
    SystemClock().SleepFor(50ms);
  }
  ASSERT_TRUE(running()) << result.get().ToString();
  ASSERT_GE((*runner)->stats().topic_waits.load(), 1u) << "the service never found its input topic missing";

  ASSERT_TRUE(eventstore::ProvisionTopics(late, eventstore::DefaultTopics(2), 30s).ok());
  auto producer = eventstore::Producer::Create(late, "t");
  ASSERT_TRUE(producer.ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE((*producer)->AppendEvent(eventstore::kOrdersTopic, testing::PlacedEvent("o-" + std::to_string(i))).ok());
  }
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  for (int i = 0; i < 1200 && (*runner)->stats().events.load() < 20 && running(); ++i) {
    SystemClock().SleepFor(50ms);
  }
  ASSERT_TRUE(running()) << result.get().ToString();
  EXPECT_EQ((*runner)->stats().events.load(), 20u);
  stop.request_stop();
  EXPECT_TRUE(result.get().ok());
}

// After `up --exit-when-done`, the consumer groups as operators' tools see
// them: every group at the log end (services commit their offsets to Kafka
// after each local commit, transaction markers included).
TEST(RealKafkaTest, LagShowsEveryGroupAtTheLogEndAfterUpFinishes) {
  for (const bool exactly_once : {false, true}) {
    auto broker = testing::StartBroker(3);
    ASSERT_NE(broker, nullptr);
    TempDir dir;
    std::vector<std::string> args = {"up", "--http", "off", "--data-dir", dir.Sub("up"), "--simulate", "300",
                                     "--transit-ms", "0", "--exit-when-done", "--json", "--log-level", "warn"};
    if (exactly_once) args.push_back("--exactly-once");
    auto up = Orderflow(Cat(args, broker->CliArgs()));
    ASSERT_EQ(up.status, 0) << up.err;
    auto replay = Orderflow(Cat({"replay", "--data-dir", dir.Sub("replayed"), "--json"}, broker->CliArgs()));
    ASSERT_EQ(replay.status, 0) << replay.err;
    EXPECT_EQ(json::parse(replay.out)["digest"], json::parse(up.out)["digest"]);
    // Commits are asynchronous: give the last ones a moment.
    json rows;
    for (int i = 0; i < 50; ++i) {
      auto lag = Orderflow(Cat({"lag", "--json"}, broker->CliArgs()));
      ASSERT_EQ(lag.status, 0) << lag.err;
      rows = json::parse(lag.out);
      int64_t total = 0;
      for (const auto& r : rows) total += r["lag"].get<int64_t>();
      if (total == 0) break;
      SystemClock().SleepFor(200ms);
    }
    std::set<std::string> groups;
    for (const auto& r : rows) {
      groups.insert(r["group"].get<std::string>());
      EXPECT_EQ(r["lag"], 0) << (exactly_once ? "exactly-once: " : "") << r.dump();
      EXPECT_FALSE(r["committed"].is_null()) << r.dump();
    }
    EXPECT_EQ(groups.size(), 4u);  // fulfillment, notification x2 (high, low: it sends only), projector
  }
}

// Incremental rebalancing: with cooperative-sticky, a second fulfillment
// instance joining and leaving moves only some partitions, and every order
// finishes.
TEST(RealKafkaTest, CooperativeStickyAssignmentRebalancesIncrementally) {
  auto broker = testing::StartBroker(4);
  ASSERT_NE(broker, nullptr);
  TempDir dir;
  const std::vector<std::string> cooperative = {"--kafka", "partition.assignment.strategy=cooperative-sticky"};
  testing::ChildProcess shipping(
      Cat(Cat({OrderflowBinary(), "service", "fulfillment", "--instance", "2", "--data-dir", dir.Sub("fulfillment-2"),
               "--transit-ms", "0", "--log-level", "info"},
              cooperative),
          broker->CliArgs()),
      dir.Sub("shipping.log"));
  std::thread leave([&] {
    // Once it has partitions (its "assigned" line is what the test reads),
    // with orders in flight:
    testing::WaitForFileToContain(dir.Sub("shipping.log"), "consumer group: assigned", 60s);
    SystemClock().SleepFor(3s);
    shipping.Kill(SIGTERM);  // leaves the group mid-run: its partitions move back
    shipping.Wait(30s);
  });
  auto up = Orderflow(Cat(Cat({"up", "--http", "off", "--data-dir", dir.Sub("up"), "--simulate", "2000", "--rate", "400",
                               "--transit-ms", "0", "--exit-when-done", "--json", "--log-level", "warn"},
                              cooperative),
                          broker->CliArgs()),
                      180s);
  leave.join();
  ASSERT_EQ(up.status, 0) << up.err;
  auto summary = json::parse(up.out);
  EXPECT_EQ(summary["delivered"].get<uint64_t>() + summary["cancelled"].get<uint64_t>(), 2000u) << up.out;
  std::ifstream log(dir.Sub("shipping.log"));
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("consumer group: assigned"), std::string::npos) << text;
  EXPECT_EQ(text.find("incremental assign:"), std::string::npos) << text;
  EXPECT_EQ(text.find("incremental unassign:"), std::string::npos) << text;
}

}  // namespace
}  // namespace orderflow

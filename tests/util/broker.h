// The broker an integration test runs against: the embedded broker, or, when
// $ORDERFLOW_TEST_BROKER is "kafka" (the `kafka.` tests in ctest), the real
// Apache Kafka whose bootstrap list scripts/test.sh puts in $ORDERFLOW_TEST_KAFKA (one broker per test run, shared by every test;
// each TestBroker gets topics of its own under a unique topic prefix).
#pragma once

#include <stop_token>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "eventstore/kafka.h"

struct rd_kafka_mock_cluster_s;

namespace orderflow::eventstore {
class EmbeddedBroker;
}

namespace orderflow::testing {

class TestBroker {
 public:
  ~TestBroker();
  TestBroker(const TestBroker&) = delete;
  TestBroker& operator=(const TestBroker&) = delete;

  // "127.0.0.1:port,..." for --brokers.
  const std::string& bootstraps() const { return config_.brokers; }
  // Kafka settings for in-process clients (bootstrap list and topic prefix).
  const eventstore::KafkaConfig& config() const { return config_; }
  // The same for the orderflow binary: {"--brokers", B} plus {"--topic-prefix", P} on real Kafka.
  std::vector<std::string> CliArgs() const;
  // True on real Kafka.
  bool real() const { return embedded_ == nullptr; }
  // The embedded broker's mock cluster, for fault injection; nullptr on real Kafka.
  rd_kafka_mock_cluster_s* mock_cluster() const;

 private:
  friend std::unique_ptr<TestBroker> StartBroker(int partitions);
  friend std::unique_ptr<TestBroker> StartEmbeddedBroker(int partitions);
  TestBroker() = default;
  std::unique_ptr<eventstore::EmbeddedBroker> embedded_;
  eventstore::KafkaConfig config_;
};

// The bootstrap list of the real Kafka the suite runs against, or "" for the embedded broker.
std::string RealKafka();

// orderflow's topics with `partitions` partitions each, on the embedded broker,
// or on the real Kafka (under a prefix unique to this call, deleted again when
// the TestBroker goes). Fails the test and returns nullptr if it cannot start.
std::unique_ptr<TestBroker> StartBroker(int partitions = 4);

// Deletes orderflow's topics under `config.topic_prefix`, best effort (keeps the shared broker small).
void DeleteTopics(const eventstore::KafkaConfig& config);

// Always the embedded broker: for tests built on its fault injection or its limits.
std::unique_ptr<TestBroker> StartEmbeddedBroker(int partitions = 4);

// Records the cluster of `config` acknowledged to this process's producers
// (since eventstore::TrackAcknowledged(config); StartBroker calls it) and no
// longer holds: one line per partition whose log ends before the highest
// acknowledged offset ("orders.events[2]: offsets 800..811 were acknowledged,
// the log ends at 800"). Empty when the log holds everything acknowledged (a
// partition whose end cannot be asked now is skipped).
std::vector<std::string> LostAcknowledged(const eventstore::KafkaConfig& config);
// The same for `acknowledged` (eventstore::AcknowledgedEnds) against the log of `log`.
std::vector<std::string> LostAcknowledged(const std::map<eventstore::TopicPartition, int64_t>& acknowledged,
                                          const eventstore::KafkaConfig& log);

// While alive, asks the cluster of `config` every second whether it lost an
// acknowledged record (LostAcknowledged). When two checks in a row say so, it
// requests `stop`, so that a run waiting for orders that can never finish ends
// within seconds and the test can name what the broker lost (Lost()) instead
// of timing out.
class LostRecordWatch {
 public:
  LostRecordWatch(const eventstore::KafkaConfig& config, std::stop_source& stop);
  // With the check given (the watch's own test).
  LostRecordWatch(std::function<std::vector<std::string>()> check, std::stop_source& stop);
  ~LostRecordWatch();
  LostRecordWatch(const LostRecordWatch&) = delete;
  LostRecordWatch& operator=(const LostRecordWatch&) = delete;
  // What the broker lost, one line per partition; empty if nothing.
  std::string Lost() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

inline eventstore::KafkaConfig ConfigFor(const TestBroker& broker) { return broker.config(); }

// {"--brokers", B, "--topic-prefix", P} when the suite runs on real Kafka, else
// {} (the orderflow command starts its own embedded broker). Each call on
// real Kafka names a new prefix: one per command sequence that shares a log.
std::vector<std::string> UpBrokerArgs();

}  // namespace orderflow::testing

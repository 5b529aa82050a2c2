// The embedded broker: librdkafka's mock cluster (real Kafka protocol over TCP on
// loopback) inside this process, so one command runs everything and tests need
// no external server.
//
// Limits (also in README.md): data lives in memory only and is gone when the
// process exits; each partition keeps about 5 MB, older record batches are
// dropped (the log start moves); transactions are accepted but not atomic; no
// CreateTopics admin API, so topics are created here with CreateTopic.
// Thread-safe: the mock cluster runs on its own threads.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "domain/status.h"
#include "eventstore/kafka.h"
#include "eventstore/topics.h"

struct rd_kafka_mock_cluster_s;

namespace orderflow::eventstore {

class EmbeddedBroker {
 public:
  // Starts `brokers` mock brokers (ids 1..brokers) on ephemeral loopback ports.
  static Result<std::unique_ptr<EmbeddedBroker>> Start(int brokers = 3);
  ~EmbeddedBroker();

  // "127.0.0.1:port,..." for bootstrap.servers.
  const std::string& bootstraps() const { return bootstraps_; }

  // Creates a topic; kAlreadyExists is not an error for callers that provision
  // twice. Leaders go round the brokers by partition, as Kafka places them
  // (the mock's own choice is random).
  Status CreateTopic(const TopicSpec& spec);
  Status CreateTopics(const std::vector<TopicSpec>& specs);

  // For fault injection in tests (rd_kafka_mock_* functions).
  rd_kafka_mock_cluster_s* mock_cluster() const { return cluster_; }

 private:
  EmbeddedBroker(KafkaHandle rk, rd_kafka_mock_cluster_s* cluster, int brokers);
  KafkaHandle rk_;
  rd_kafka_mock_cluster_s* cluster_;
  int brokers_;
  std::string bootstraps_;
};

}  // namespace orderflow::eventstore

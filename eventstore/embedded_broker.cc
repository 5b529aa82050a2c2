#include "eventstore/embedded_broker.h"

#include <algorithm>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

namespace orderflow::eventstore {

EmbeddedBroker::EmbeddedBroker(KafkaHandle rk, rd_kafka_mock_cluster_s* cluster, int brokers)
    : rk_(std::move(rk)),
      cluster_(cluster),
      brokers_(brokers),
      bootstraps_(rd_kafka_mock_cluster_bootstraps(cluster)) {}

EmbeddedBroker::~EmbeddedBroker() {
  if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
}

Result<std::unique_ptr<EmbeddedBroker>> EmbeddedBroker::Start(int brokers) {
  if (brokers < 1) return Status::InvalidArgument("the embedded broker needs at least one broker");
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  // The handle only hosts the cluster's threads; it never connects anywhere.
  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return Status::Internal(std::string("embedded broker: ") + errstr);
  }
  KafkaHandle handle(rk);
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(rk, brokers);
  if (cluster == nullptr) return Status::Internal("embedded broker: could not start the mock cluster");
  return std::unique_ptr<EmbeddedBroker>(new EmbeddedBroker(std::move(handle), cluster, brokers));
}

Status EmbeddedBroker::CreateTopic(const TopicSpec& asked) {
  const TopicSpec spec = OnCluster(asked, brokers_);
  const int replicas = std::min({spec.replication_factor, 3, brokers_});  // brokers 1..replicas
  rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster_, spec.name.c_str(), spec.partitions, replicas);
  if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) return Status::Ok();
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(err, "create topic " + spec.name);
  for (int32_t p = 0; p < spec.partitions; ++p) {
    err = rd_kafka_mock_partition_set_leader(cluster_, spec.name.c_str(), p, p % replicas + 1);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(err, "place the leader of " + spec.name);
  }
  return Status::Ok();
}

Status EmbeddedBroker::CreateTopics(const std::vector<TopicSpec>& specs) {
  for (const TopicSpec& spec : specs) ORDERFLOW_RETURN_IF_ERROR(CreateTopic(spec));
  return Status::Ok();
}

}  // namespace orderflow::eventstore

#include "eventstore/topics.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <memory>

#include "eventstore/kafka_internal.h"

namespace orderflow::eventstore {

std::vector<TopicSpec> DefaultTopics(int partitions) {
  return {{kOrdersTopic, partitions},
          {kInventoryTopic, partitions},
          {kNotificationsHighTopic, partitions},
          {kNotificationsLowTopic, partitions},
          {kDeadLetterTopic, 1}};
}

namespace {

// Returns the specs whose topic the cluster does not have yet.
Result<std::vector<TopicSpec>> MissingTopics(rd_kafka_t* rk, const std::vector<TopicSpec>& topics,
                                             std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &md, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(err, "cluster metadata");
  std::vector<TopicSpec> missing;
  for (const TopicSpec& spec : topics) {
    bool found = false;
    for (int i = 0; i < md->topic_cnt; ++i) {
      if (spec.name == md->topics[i].topic && md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) found = true;
    }
    if (!found) missing.push_back(spec);
  }
  rd_kafka_metadata_destroy(md);
  return missing;
}

}  // namespace

Status ProvisionTopics(const KafkaConfig& config, const std::vector<TopicSpec>& topics,
                       std::chrono::milliseconds timeout) {
  Status status;
  rd_kafka_conf_t* conf = internal::MakeConf(config, "orderflow-admin", {}, &status);
  if (conf == nullptr) return status;
  char errstr[512];
  rd_kafka_t* raw = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (raw == nullptr) {
    rd_kafka_conf_destroy(conf);
    return Status::InvalidArgument(std::string("cannot create Kafka admin client: ") + errstr);
  }
  KafkaHandle rk(raw);
  auto missing = MissingTopics(rk.get(), topics, timeout);
  if (!missing.ok()) return missing.status();
  if (missing->empty()) return Status::Ok();

  std::vector<rd_kafka_NewTopic_t*> new_topics;
  for (const TopicSpec& spec : *missing) {
    rd_kafka_NewTopic_t* t =
        rd_kafka_NewTopic_new(spec.name.c_str(), spec.partitions, spec.replication_factor, errstr, sizeof errstr);
    if (t == nullptr) return Status::InvalidArgument("topic " + spec.name + ": " + errstr);
    if (spec.name != kNotificationsHighTopic && spec.name != kNotificationsLowTopic) {
      rd_kafka_NewTopic_set_config(t, "retention.ms", "-1");  // the log is the system of record
    }
    new_topics.push_back(t);
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk.get());
  rd_kafka_CreateTopics(rk.get(), new_topics.data(), new_topics.size(), nullptr, queue);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, static_cast<int>(timeout.count()));
  Status result = Status::Ok();
  if (ev == nullptr) {
    result = Status::Unavailable("creating topics timed out");
  } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    result = KafkaError(rd_kafka_event_error(ev), "create topics");
  } else if (const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev)) {
    size_t cnt = 0;
    const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(res, &cnt);
    for (size_t i = 0; i < cnt && result.ok(); ++i) {
      rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        result = KafkaError(err, std::string("create topic ") + rd_kafka_topic_result_name(results[i]));
      }
    }
  }
  if (ev != nullptr) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(queue);
  rd_kafka_NewTopic_destroy_array(new_topics.data(), new_topics.size());
  if (!result.ok()) {
    // Brokers without the admin API: the topics may still have been made another way.
    auto still_missing = MissingTopics(rk.get(), topics, timeout);
    if (still_missing.ok() && still_missing->empty()) return Status::Ok();
    return Status(result.code(), result.message() + " (create the topics on the cluster, or start `orderflow broker`)");
  }
  for (const TopicSpec& spec : *missing) spdlog::info("created topic {} ({} partitions)", spec.name, spec.partitions);
  return Status::Ok();
}

}  // namespace orderflow::eventstore

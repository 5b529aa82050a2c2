// The bare librdkafka consumer the replay benchmark measures against
// (consume_baseline) and builds on (replay_floor): one handle assigned every
// partition of a topic from its low watermark, deep prefetch, no group
// offsets. One definition, so both programs read the log the same way.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

struct BareConsumer {
  rd_kafka_t* rk = nullptr;
  rd_kafka_queue_t* queue = nullptr;
  int64_t total = 0;  // records between the watermarks when it started

  // Prints why to stderr and returns false on an error.
  bool Open(const char* brokers, const std::string& topic, const char* group_id) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    const std::vector<std::pair<const char*, const char*>> props = {
        {"bootstrap.servers", brokers},        {"group.id", group_id},
        {"enable.auto.commit", "false"},       {"enable.partition.eof", "false"},
        {"fetch.wait.max.ms", "50"},           {"queued.min.messages", "200000"},
        {"queued.max.messages.kbytes", "131072"}, {"fetch.message.max.bytes", "4194304"}};
    for (auto [k, v] : props) {
      if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        std::fprintf(stderr, "%s\n", err);
        rd_kafka_conf_destroy(conf);
        return false;
      }
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
      std::fprintf(stderr, "%s\n", err);
      return false;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1) {
      std::fprintf(stderr, "no metadata for %s\n", topic.c_str());
      return false;
    }
    const int partitions = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; ++p) {
      int64_t lo = 0, hi = 0;
      rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &lo, &hi, 10000);
      total += hi - lo;
      rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = lo;
    }
    rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    queue = rd_kafka_queue_get_consumer(rk);
    return true;
  }

  ~BareConsumer() {
    if (queue != nullptr) rd_kafka_queue_destroy(queue);
    if (rk != nullptr) {
      rd_kafka_consumer_close(rk);
      rd_kafka_destroy(rk);
    }
  }
};

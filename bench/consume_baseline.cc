// Baseline for the replay benchmark: a bare librdkafka consumer that reads every
// partition of a topic from offset 0 to its end and does nothing with the records.
// Prints one JSON line: {"records":N,"seconds":S,"records_per_second":R}.
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: consume_baseline BROKERS [TOPIC]\n");
    return 2;
  }
  const std::string topic = argc > 2 ? argv[2] : "orders.events";
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const std::vector<std::pair<const char*, const char*>> props = {
      {"bootstrap.servers", argv[1]},        {"group.id", "orderflow-bench-baseline"},
      {"enable.auto.commit", "false"},       {"enable.partition.eof", "false"},
      {"fetch.wait.max.ms", "50"},           {"queued.min.messages", "200000"},
      {"queued.max.messages.kbytes", "131072"}, {"fetch.message.max.bytes", "4194304"}};
  for (auto [k, v] : props) {
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
      std::fprintf(stderr, "%s\n", err);
      return 1;
    }
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) {
    std::fprintf(stderr, "%s\n", err);
    return 1;
  }
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1) {
    std::fprintf(stderr, "no metadata for %s\n", topic.c_str());
    return 1;
  }
  int partitions = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  std::vector<int64_t> end(partitions);
  int64_t total = 0;
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    int64_t lo = 0, hi = 0;
    rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &lo, &hi, 10000);
    end[p] = hi;
    total += hi - lo;
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = lo;
  }
  rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  rd_kafka_queue_t* q = rd_kafka_queue_get_consumer(rk);
  std::vector<rd_kafka_message_t*> buf(10000);
  int64_t seen = 0;
  uint64_t bytes = 0;
  auto start = std::chrono::steady_clock::now();
  while (seen < total) {
    ssize_t n = rd_kafka_consume_batch_queue(q, 100, buf.data(), buf.size());
    for (ssize_t i = 0; i < n; ++i) {
      if (!buf[i]->err) {
        ++seen;
        bytes += buf[i]->len;
      }
      rd_kafka_message_destroy(buf[i]);
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"records\":%lld,\"bytes\":%llu,\"seconds\":%.3f,\"records_per_second\":%.0f}\n",
              static_cast<long long>(seen), static_cast<unsigned long long>(bytes), secs, seen / secs);
  rd_kafka_queue_destroy(q);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return 0;
}

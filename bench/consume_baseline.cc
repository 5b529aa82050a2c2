// Baseline for the replay benchmark: a bare librdkafka consumer that reads every
// partition of a topic from offset 0 to its end and does nothing with the records.
// Prints one JSON line: {"records":N,"seconds":S,"records_per_second":R}.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/bare_consumer.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: consume_baseline BROKERS [TOPIC]\n");
    return 2;
  }
  const std::string topic = argc > 2 ? argv[2] : "orders.events";
  BareConsumer consumer;
  if (!consumer.Open(argv[1], topic, "orderflow-bench-baseline")) return 1;
  std::vector<rd_kafka_message_t*> buf(10000);
  int64_t seen = 0;
  uint64_t bytes = 0;
  auto start = std::chrono::steady_clock::now();
  while (seen < consumer.total) {
    ssize_t n = rd_kafka_consume_batch_queue(consumer.queue, 100, buf.data(), buf.size());
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
  return 0;
}

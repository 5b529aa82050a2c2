// End-to-end benchmark: every service in one process (`orderflow up`'s
// pipeline, embedded broker), orders placed at a fixed rate, transit delay 0.
// An observer consumer measures, per order, the time from OrderPlaced to the
// moment the order's terminal event (OrderDelivered / OrderCancelled) can be
// read from the log. Prints one JSON line; never a pass/fail test.
//
//   lifecycle_bench [ORDERS=5000] [RATE=500]
//
// BENCH_HOPS=1 also prints, per event type, the median time after OrderPlaced
// at which it became readable; BENCH_SERIES=1 the latency per half second of
// placement time; BENCH_LOG=1 shows the services' debug log.
// BENCH_BROKERS=LIST runs on that cluster (real Kafka from scripts/kafka.sh),
// under a fresh topic prefix; BENCH_INFLIGHT=N sets every producer's
// max.in.flight.requests.per.connection (orderflow's default is 1);
// BENCH_PROPS=k=v,k=v passes librdkafka properties to every client.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "domain/catalog.h"
#include "eventstore/codec.h"
#include "eventstore/embedded_broker.h"
#include "eventstore/kafka.h"
#include "eventstore/topics.h"
#include "services/up.h"

using namespace orderflow;

int main(int argc, char** argv) {
  const uint64_t orders = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 5000;
  const double rate = argc > 2 ? std::strtod(argv[2], nullptr) : 500;
  const std::string dir = std::filesystem::temp_directory_path() / ("orderflow-bench-" + std::to_string(getpid()));

  services::UpOptions options;
  options.data_dir = dir;
  options.simulate = orders;
  options.rate = rate;
  options.exit_when_done = true;
  options.transit_delay = std::chrono::milliseconds(0);
  options.max_payment_minor = 1'000'000;  // measure the full path: few declines

  // BENCH_KAFKA=1: the services talk to a broker started here, as to any
  // cluster (`up --brokers`): no local archive, no wait for it.
  std::unique_ptr<eventstore::EmbeddedBroker> cluster;
  if (const char* real = getenv("BENCH_BROKERS")) {
    options.kafka.brokers = real;
    options.kafka.topic_prefix = "bench-" + std::to_string(getpid()) + ".";
  } else if (getenv("BENCH_KAFKA")) {
    auto started = eventstore::EmbeddedBroker::Start(3);
    if (!started.ok() || !(*started)->CreateTopics(eventstore::DefaultTopics(options.partitions)).ok()) return 1;
    cluster = std::move(started).value();
    options.kafka.brokers = cluster->bootstraps();
  }
  if (const char* props = getenv("BENCH_PROPS")) {  // "k=v,k=v": librdkafka properties for every client
    std::string all = props;
    for (size_t at = 0; at < all.size();) {
      size_t end = all.find(',', at);
      if (end == std::string::npos) end = all.size();
      const std::string kv = all.substr(at, end - at);
      if (auto eq = kv.find('='); eq != std::string::npos) options.kafka.overrides.push_back({kv.substr(0, eq), kv.substr(eq + 1)});
      at = end + 1;
    }
  }
  if (const char* inflight = getenv("BENCH_INFLIGHT")) {
    options.kafka.overrides.push_back({"max.in.flight.requests.per.connection", inflight});
  }
  spdlog::set_level(getenv("BENCH_LOG") ? spdlog::level::debug : spdlog::level::off);  // the result is the JSON line
  std::atomic<bool> stop{false}, observer_stop{false};
  std::mutex mu;
  std::string brokers;
  std::unordered_map<std::string, int64_t> placed_at;
  std::vector<double> latencies;
  std::vector<std::pair<int64_t, int64_t>> series;  // (placed at, latency ms), for BENCH_SERIES=1
  std::map<std::string, std::vector<int64_t>> hops;  // BENCH_HOPS=1: per event type, ms after OrderPlaced
  int64_t first_placed = 0, last_terminal = 0;
  std::thread observer;

  auto summary = services::RunUp(options, domain::Catalog::Demo(), stop, [&](const services::UpEndpoints& e) {
    brokers = e.brokers;
    // The observer connects and fetches before the first order is placed, so
    // its own start-up is not counted as the pipeline's latency.
    eventstore::KafkaConfig observed = options.kafka;
    observed.brokers = brokers;
    auto reader = eventstore::Reader::Create(observed, "bench-observer");
    if (!reader.ok()) return;
    auto partitions = (*reader)->PartitionCount(eventstore::kOrdersTopic, std::chrono::seconds(10));
    std::vector<std::pair<eventstore::TopicPartition, int64_t>> assignment;
    for (int32_t p = 0; p < *partitions; ++p) {
      const eventstore::TopicPartition tp{eventstore::kOrdersTopic, p};
      auto w = (*reader)->QueryWatermarks(tp, std::chrono::seconds(10));
      assignment.push_back({tp, w.ok() ? w->high : 0});
    }
    if (!(*reader)->Assign(assignment).ok()) return;
    for (int i = 0; i < 20; ++i) (void)(*reader)->Poll(1000, std::chrono::milliseconds(10));
    observer = std::thread([&, reader = std::move(reader).value()] {
      while (!observer_stop.load()) {
        auto records = reader->Poll(1000, std::chrono::milliseconds(5));
        if (!records.ok()) continue;
        const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        for (const auto& r : *records) {
          auto e = eventstore::DecodeEvent(r.value());
          if (!e.ok()) continue;
          std::lock_guard lock(mu);
          if (std::holds_alternative<domain::OrderPlaced>(e->payload)) {
            placed_at.emplace(e->order_id, e->occurred_at_ms);
            if (first_placed == 0) first_placed = e->occurred_at_ms;
          } else if (getenv("BENCH_HOPS")) {
            auto it = placed_at.find(e->order_id);
            if (it != placed_at.end() && it->second > 0) hops[std::string(domain::EventTypeName(e->payload))].push_back(now - it->second);
          }
          if (std::holds_alternative<domain::OrderPlaced>(e->payload)) {
          } else if (std::holds_alternative<domain::OrderDelivered>(e->payload) ||
                     std::holds_alternative<domain::OrderCancelled>(e->payload)) {
            auto it = placed_at.find(e->order_id);
            if (it == placed_at.end() || it->second < 0) continue;  // duplicate terminal event
            latencies.push_back(static_cast<double>(now - it->second));
            series.emplace_back(it->second, now - it->second);
            it->second = -1;
            last_terminal = now;
          }
        }
      }
    });
  });
  observer_stop = true;
  if (observer.joinable()) observer.join();
  std::filesystem::remove_all(dir);
  if (!summary.ok()) {
    std::fprintf(stderr, "lifecycle_bench: %s\n", summary.status().ToString().c_str());
    return 1;
  }
  std::sort(latencies.begin(), latencies.end());
  for (auto& [type, v] : hops) {
    std::sort(v.begin(), v.end());
    std::fprintf(stderr, "%-24s p50 %lld ms\n", type.c_str(), static_cast<long long>(v[v.size() / 2]));
  }
  if (getenv("BENCH_SERIES")) {
    // Per half second of placement time: orders, median and worst latency.
    std::map<int64_t, std::vector<int64_t>> windows;
    for (const auto& [at, ms] : series) windows[(at - first_placed) / 500].push_back(ms);
    for (auto& [w, v] : windows) {
      std::sort(v.begin(), v.end());
      std::fprintf(stderr, "t=%5.1fs orders %4zu p50 %4lld ms max %4lld ms\n", w * 0.5, v.size(),
                   static_cast<long long>(v[v.size() / 2]), static_cast<long long>(v.back()));
    }
  }
  auto pct = [&](double q) { return latencies.empty() ? 0.0 : latencies[static_cast<size_t>(q * (latencies.size() - 1))]; };
  double seconds = (last_terminal - first_placed) / 1000.0;
  std::printf(
      "{\"orders\":%llu,\"rate\":%.0f,\"terminal_orders\":%zu,\"delivered\":%llu,\"cancelled\":%llu,"
      "\"throughput_orders_per_second\":%.1f,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f}\n",
      static_cast<unsigned long long>(orders), rate, latencies.size(),
      static_cast<unsigned long long>(summary->delivered), static_cast<unsigned long long>(summary->cancelled),
      seconds > 0 ? latencies.size() / seconds : 0.0, pct(0.5), pct(0.99), latencies.empty() ? 0.0 : latencies.back());
  return 0;
}

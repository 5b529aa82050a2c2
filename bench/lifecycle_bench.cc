// End-to-end benchmark: every service in one process (`orderflow up`'s
// pipeline, embedded broker), orders placed at a fixed rate, transit delay 0.
// An observer consumer measures, per order, the time from OrderPlaced to the
// moment the order's terminal event (OrderDelivered / OrderCancelled) was
// produced (its record's timestamp, which the producer sets; a few ms before
// the broker acknowledges it; BENCH_OBSERVER=receipt: when the observer read
// it). Prints one JSON line; never a pass/fail test.
//
//   lifecycle_bench [ORDERS=5000] [RATE=500]
//
// Keeping up: loaded_throughput_orders_per_second, the completions per second
// while orders were still being placed (after the warm-up), against
// loaded_placed_orders_per_second, the placements in the same span: equal when
// the pipeline keeps up with the offered rate, lower (and the latency growing,
// BENCH_SERIES=1) when it does not.
//
// Latency: placed -> terminal of every order (p50_ms, p99_ms) and of the orders
// placed after the first BENCH_WARMUP_MS (default 1000: steady_p50_ms,
// steady_p99_ms); each run's topics are new, and their first records are slow.
// BENCH_HOPS=1 also prints, per event type, the median time after OrderPlaced
// at which it was produced; BENCH_SERIES=1 the latency per half second of
// placement time; BENCH_LOG=1 shows the services' debug log.
// BENCH_BROKERS=LIST runs on that cluster (real Kafka from scripts/kafka.sh),
// under a fresh topic prefix; BENCH_INFLIGHT=N sets every producer's
// max.in.flight.requests.per.connection (orderflow's default is 1);
// BENCH_PROPS=k=v,k=v passes librdkafka properties to every client;
// BENCH_PARTITIONS=N sizes orders.events (default as `up`'s);
// BENCH_KAFKA_CONFIG=FILE a properties file (a secured cluster's user, e.g.
// DIR/clients/up.properties of `kafka.sh start --secure`), with
// BENCH_TOPIC_PREFIX=P the prefix its ACLs were granted for (kafka.sh acls
// --topic-prefix P); the topics must not exist yet.
//
// CPU per order: `orderflow_cpu_ms_per_order` is this process's user + sys
// (getrusage); the observer runs in a child process (its consumer's threads
// are not orderflow's). With the embedded broker (the default) it includes the
// broker, which runs in this process. With
// BENCH_BROKERS, BENCH_BROKER_PIDS=PID,PID (e.g. from `scripts/kafka.sh
// status --json`) adds `broker_cpu_ms_per_order` from /proc/PID/stat.
// `log_offsets_per_order` is how far the run moved the end of every
// orderflow topic (records and transaction markers) per order placed.
#include <algorithm>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <unordered_map>

#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "domain/catalog.h"
#include "domain/clock.h"
#include "eventstore/codec.h"
#include "eventstore/embedded_broker.h"
#include "eventstore/kafka.h"
#include "eventstore/topics.h"
#include "cli/app/up.h"

using namespace orderflow;

namespace {

double CpuSeconds(int who) {
  rusage u{};
  getrusage(who, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// utime + stime of the processes in "PID,PID" (fields 14 and 15 of /proc/PID/stat).
double ProcessesCpuSeconds(const std::string& pids) {
  double total = 0;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  for (size_t at = 0; at < pids.size();) {
    size_t end = pids.find(',', at);
    if (end == std::string::npos) end = pids.size();
    const std::string pid = pids.substr(at, end - at);
    at = end + 1;
    FILE* f = std::fopen(("/proc/" + pid + "/stat").c_str(), "r");
    if (f == nullptr) continue;
    char buf[4096];
    const size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    const char* p = std::strrchr(buf, ')');  // the command name may hold spaces
    if (p == nullptr) continue;
    unsigned long long utime = 0, stime = 0;
    // After ") ": state (field 3) ... utime is field 14, stime 15.
    if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) == 2) {
      total += (utime + stime) / tick;
    }
  }
  return total;
}

// What the observer measured.
struct Observed {
  int64_t first_placed = 0, last_terminal = 0;
  std::vector<double> latencies;
  std::vector<std::pair<int64_t, int64_t>> series;  // (placed at, latency ms), for BENCH_SERIES=1
  std::map<std::string, std::vector<int64_t>> hops;  // BENCH_HOPS=1: per event type, ms after OrderPlaced
};

int64_t WallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The observer, in the child process: reads the brokers' list from `in`,
// reads orders.events from its end, answers "ready" on `out`, then times each
// order from OrderPlaced to its terminal event. On "drain" from `in` (the run
// settled, the log still up) it reads on to the log's end as it is then and
// answers "drained"; once `in` is closed it writes what it measured to `out`
// (ParseObserved reads it).
int RunObserver(eventstore::KafkaConfig config, int in, int out) {
  FILE* from = fdopen(in, "r");
  FILE* to = fdopen(out, "w");
  char line[4096];
  if (from == nullptr || to == nullptr || std::fgets(line, sizeof line, from) == nullptr) return 1;
  config.brokers = std::string(line, std::strcspn(line, "\n"));
  // An order's latency is its terminal record's timestamp (set by the
  // producer when fulfillment produced it) less its placement: what the
  // system did, not when the instrument happened to fetch it. So the
  // observer fetches lazily (100 ms or 1 MiB), and the broker's CPU per order
  // is not the instrument's: fetched every 2 ms, it took ~500 fetches a
  // second, as many as orderflow's own consumers and producers at 500/s ask
  // for. BENCH_OBSERVER=receipt times each order when its terminal record
  // reaches the observer instead, fetched within 2 ms or at 16 KiB.
  const bool by_receipt = getenv("BENCH_OBSERVER") != nullptr && std::string(getenv("BENCH_OBSERVER")) == "receipt";
  config.overrides.insert(config.overrides.begin(),
                          {{"fetch.min.bytes", by_receipt ? "16384" : "1048576"},
                           {"fetch.wait.max.ms", by_receipt ? "2" : "100"}});
  auto reader = eventstore::Reader::Create(config, "bench-observer");
  if (!reader.ok()) return 1;
  auto partitions = (*reader)->PartitionCount(eventstore::kOrdersTopic, std::chrono::seconds(10));
  if (!partitions.ok()) return 1;
  std::vector<eventstore::TopicPartition> tps;
  for (int32_t p = 0; p < *partitions; ++p) tps.push_back({eventstore::kOrdersTopic, p});
  auto starts = (*reader)->QueryWatermarks(tps, std::chrono::seconds(10));
  if (!starts.ok()) return 1;
  std::vector<std::pair<eventstore::TopicPartition, int64_t>> assignment;
  for (size_t p = 0; p < tps.size(); ++p) assignment.push_back({tps[p], (*starts)[p].high});
  if (!(*reader)->Assign(assignment).ok()) return 1;
  // Connected and fetching before the first order is placed: its start-up is not the pipeline's latency.
  for (int i = 0; i < 20; ++i) (void)(*reader)->Poll(1000, std::chrono::milliseconds(10));
  std::fputs("ready\n", to);
  std::fflush(to);
  Observed o;
  std::unordered_map<std::string, int64_t> placed_at;
  const bool want_hops = getenv("BENCH_HOPS") != nullptr;
  auto observe = [&] {
    auto records = (*reader)->Poll(1000, std::chrono::milliseconds(5));
    if (!records.ok()) return;
    const int64_t received = WallNowMs();
    for (const auto& r : *records) {
      const int64_t now = by_receipt || r.timestamp_ms() <= 0 ? received : r.timestamp_ms();
      auto e = eventstore::DecodeEvent(r.value());
      if (!e.ok()) continue;
      if (std::holds_alternative<domain::OrderPlaced>(e->payload)) {
        placed_at.emplace(e->order_id, e->occurred_at_ms);
        // Partitions come in one after another: the earliest, not the first seen.
        o.first_placed = o.first_placed == 0 ? e->occurred_at_ms : std::min(o.first_placed, e->occurred_at_ms);
        continue;
      }
      auto it = placed_at.find(e->order_id);
      if (want_hops && it != placed_at.end() && it->second > 0) {
        o.hops[std::string(domain::EventTypeName(e->payload))].push_back(now - it->second);
      }
      if (std::holds_alternative<domain::OrderDelivered>(e->payload) ||
          std::holds_alternative<domain::OrderCancelled>(e->payload)) {
        if (it == placed_at.end() || it->second < 0) continue;  // duplicate terminal event
        o.series.emplace_back(it->second, now - it->second);
        it->second = -1;
        o.last_terminal = std::max(o.last_terminal, now);
      }
    }
  };
  // Reads to the ends as they are now (a partition whose end cannot be had:
  // until the deadline), for up to 10 s. Positions step over transaction
  // markers, which are never handed out.
  auto drain = [&] {
    auto ends = (*reader)->QueryWatermarks(tps, std::chrono::seconds(10));
    const int64_t deadline = WallNowMs() + 10'000;
    for (;;) {
      const auto positions = (*reader)->Positions(tps);
      bool caught_up = ends.ok();
      for (size_t p = 0; caught_up && p < tps.size(); ++p) {
        const auto at = positions.find(tps[p]);
        const int64_t position = at == positions.end() || at->second < 0 ? assignment[p].second : at->second;
        caught_up = position >= (*ends)[p].high;
      }
      if (caught_up || WallNowMs() > deadline) return;
      observe();
    }
  };
  for (;;) {
    pollfd command{in, POLLIN, 0};
    if (::poll(&command, 1, 0) > 0) {
      if (std::fgets(line, sizeof line, from) == nullptr) break;  // closed: report
      drain();
      std::fputs("drained\n", to);
      std::fflush(to);
    }
    observe();
  }
  std::fprintf(to, "F %lld %lld\n", static_cast<long long>(o.first_placed), static_cast<long long>(o.last_terminal));
  for (const auto& [at, ms] : o.series) std::fprintf(to, "L %lld %lld\n", static_cast<long long>(at), static_cast<long long>(ms));
  for (const auto& [type, v] : o.hops) {
    for (int64_t ms : v) std::fprintf(to, "H %s %lld\n", type.c_str(), static_cast<long long>(ms));
  }
  std::fclose(to);
  return 0;
}

// The child's measurements, as RunObserver writes them.
Observed ParseObserved(FILE* from) {
  Observed o;
  char line[4096];
  while (std::fgets(line, sizeof line, from) != nullptr) {
    long long a = 0, b = 0;
    char type[256];
    if (std::sscanf(line, "F %lld %lld", &a, &b) == 2) {
      o.first_placed = a, o.last_terminal = b;
    } else if (std::sscanf(line, "L %lld %lld", &a, &b) == 2) {
      o.series.emplace_back(a, b);
      o.latencies.push_back(static_cast<double>(b));
    } else if (std::sscanf(line, "H %255s %lld", type, &a) == 2) {
      o.hops[type].push_back(a);
    }
  }
  return o;
}

}  // namespace

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
  // BENCH_SEPARATE=1: payment, inventory, shipping and delivery as four services (`up --separate-services`).
  options.separate_services = getenv("BENCH_SEPARATE") != nullptr;

  if (const char* file = getenv("BENCH_KAFKA_CONFIG")) {
    if (!eventstore::LoadClientProperties(file, &options.kafka).ok()) return 2;
    if (!getenv("BENCH_BROKERS")) setenv("BENCH_BROKERS", options.kafka.brokers.c_str(), 1);
  }
  if (const char* real = getenv("BENCH_BROKERS")) {
    options.kafka.brokers = real;
    const char* prefix = getenv("BENCH_TOPIC_PREFIX");
    // pid and start time: pids are reused (pid_max 32768), and a warm broker keeps the topics of earlier runs.
    options.kafka.topic_prefix = prefix ? prefix
                                        : "bench-" + std::to_string(getpid()) + "-" +
                                              std::to_string(SystemClock().WallMs()) + ".";
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
  // BENCH_PARTITIONS=N: orders.events with N partitions, the side topics as `up` sizes them. Default as
  // `up`'s: 3 on BENCH_BROKERS, 6 on the embedded broker (BENCH_KAFKA's too: its list is not known yet).
  if (const char* partitions = getenv("BENCH_PARTITIONS")) {
    options.partitions = std::atoi(partitions);
    if (options.partitions < 1 || options.partitions > 1000) {
      std::fprintf(stderr, "lifecycle_bench: BENCH_PARTITIONS must be from 1 to 1000\n");
      return 2;
    }
  }
  options.partitions = options.orders_partitions();
  if (const char* inflight = getenv("BENCH_INFLIGHT")) {
    options.kafka.overrides.push_back({"max.in.flight.requests.per.connection", inflight});
  }
  spdlog::set_level(getenv("BENCH_LOG") ? spdlog::level::debug : spdlog::level::off);  // the result is the JSON line

  // The observer's process, forked while this one has no other thread yet.
  int to_observer[2], from_observer[2];
  if (::pipe(to_observer) != 0 || ::pipe(from_observer) != 0) return 1;
  const pid_t observer = ::fork();
  if (observer < 0) return 1;
  if (observer == 0) {
    ::close(to_observer[1]);
    ::close(from_observer[0]);
    std::_Exit(RunObserver(options.kafka, to_observer[0], from_observer[1]));
  }
  ::close(to_observer[0]);
  ::close(from_observer[1]);
  std::signal(SIGPIPE, SIG_IGN);  // an observer that died makes the write fail, not this process
  FILE* from = fdopen(from_observer[0], "r");

  // BENCH_KAFKA=1: the services talk to a broker started here, as to any
  // cluster (`up --brokers`): no local archive, no wait for it.
  std::unique_ptr<eventstore::EmbeddedBroker> cluster;
  if (!getenv("BENCH_BROKERS") && getenv("BENCH_KAFKA")) {
    auto started = eventstore::EmbeddedBroker::Start(3);
    if (!started.ok() || !(*started)->CreateTopics(eventstore::DefaultTopics(options.partitions)).ok()) return 1;
    cluster = std::move(started).value();
    options.kafka.brokers = cluster->bootstraps();
  }
  std::stop_source stop;
  std::string brokers;
  const char* broker_pids = getenv("BENCH_BROKER_PIDS");
  const double broker_cpu_before = broker_pids ? ProcessesCpuSeconds(broker_pids) : 0;

  // The demo catalog with a thousand times its stock: no run sells out, so
  // every order takes the full path however many are placed (with the demo's
  // stock, the grinder sold out within ~10,000 orders and the rest of a run
  // was cheaper cancellations).
  const domain::Catalog demo = domain::Catalog::Demo();
  std::vector<domain::CatalogItem> items = demo.items();
  for (auto& item : items) item.initial_stock *= 1000;
  const domain::Catalog catalog(demo.currency(), std::move(items));
  // Settled, before `up` stops the log (the embedded broker with it): the
  // observer reads to its end.
  options.on_done = [&] {
    char drained[64];
    if (::write(to_observer[1], "drain\n", 6) != 6 || std::fgets(drained, sizeof drained, from) == nullptr) {
      std::fprintf(stderr, "lifecycle_bench: the observer did not drain\n");
    }
  };
  auto summary = services::RunUp(options, catalog, stop.get_token(), [&](const services::UpEndpoints& e) {
    brokers = e.brokers;
    // Before the first order is placed, the observer reads from the log's end.
    const std::string line = brokers + "\n";
    char ready[64];
    if (::write(to_observer[1], line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
        std::fgets(ready, sizeof ready, from) == nullptr) {
      std::fprintf(stderr, "lifecycle_bench: the observer did not start\n");
    }
  });
  const double orderflow_cpu = CpuSeconds(RUSAGE_SELF);  // the observer's process is not in it
  ::close(to_observer[1]);  // the observer stops and reports
  Observed observed = ParseObserved(from);
  std::fclose(from);
  ::waitpid(observer, nullptr, 0);
  std::vector<double>& latencies = observed.latencies;
  const auto& series = observed.series;
  auto& hops = observed.hops;
  const int64_t first_placed = observed.first_placed, last_terminal = observed.last_terminal;
  const double broker_cpu = broker_pids ? ProcessesCpuSeconds(broker_pids) - broker_cpu_before : -1;
  // How far the run moved the end of every orderflow topic (its topics are
  // fresh: under a new prefix, or in a new embedded broker).
  int64_t log_offsets = -1;
  if (getenv("BENCH_BROKERS") && summary.ok()) {
    eventstore::KafkaConfig config = options.kafka;
    config.brokers = brokers;
    if (auto reader = eventstore::Reader::Create(config, "bench-log-end"); reader.ok()) {
      log_offsets = 0;
      for (const auto& topic : eventstore::DefaultTopics(options.partitions)) {
        auto count = (*reader)->PartitionCount(topic.name, std::chrono::seconds(5));
        if (!count.ok()) {  // the embedded broker stopped with `up`
          log_offsets = -1;
          break;
        }
        for (int32_t p = 0; p < *count; ++p) {
          auto w = (*reader)->QueryWatermarks({topic.name, p}, std::chrono::seconds(10));
          if (w.ok()) log_offsets += w->high;
        }
      }
    }
  }
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
    // Per half second (BENCH_SERIES_MS) of placement time: orders, median and worst latency.
    const int64_t step = getenv("BENCH_SERIES_MS") ? std::max(1LL, std::atoll(getenv("BENCH_SERIES_MS"))) : 500;
    std::map<int64_t, std::vector<int64_t>> windows;
    for (const auto& [at, ms] : series) windows[(at - first_placed) / step].push_back(ms);
    for (auto& [w, v] : windows) {
      std::sort(v.begin(), v.end());
      std::fprintf(stderr, "t=%5.1fs orders %4zu p50 %4lld ms max %4lld ms\n", w * step / 1000.0, v.size(),
                   static_cast<long long>(v[v.size() / 2]), static_cast<long long>(v.back()));
    }
  }
  auto pct_of = [](const std::vector<double>& v, double q) {
    return v.empty() ? 0.0 : v[static_cast<size_t>(q * (v.size() - 1))];
  };
  auto pct = [&](double q) { return pct_of(latencies, q); };
  // Steady state: the orders placed after the first BENCH_WARMUP_MS (1,000) of
  // the run. Every run's topics are new, and a topic's first records take up to
  // a second longer (runs on topics that took records before show no such start).
  const int64_t warmup_ms = getenv("BENCH_WARMUP_MS") ? std::atoll(getenv("BENCH_WARMUP_MS")) : 1000;
  std::vector<double> steady;
  for (const auto& [at, ms] : series) {
    if (at - first_placed >= warmup_ms) steady.push_back(static_cast<double>(ms));
  }
  std::sort(steady.begin(), steady.end());
  double seconds = (last_terminal - first_placed) / 1000.0;
  // Completions per second while orders were still being placed, after the
  // warm-up: the rate offered if the pipeline kept up, its capacity if not.
  // (throughput_orders_per_second also spans the start and the drain, so it
  // stays below an offered rate the pipeline keeps up with.)
  int64_t last_placed = 0;
  for (const auto& [at, ms] : series) last_placed = std::max(last_placed, at);
  const int64_t loaded_from = first_placed + warmup_ms;
  size_t loaded_done = 0, loaded_placed = 0;
  for (const auto& [at, ms] : series) {
    loaded_done += at + ms >= loaded_from && at + ms < last_placed;
    loaded_placed += at >= loaded_from && at < last_placed;
  }
  const double loaded_seconds = (last_placed - loaded_from) / 1000.0;
  const double loaded_throughput = loaded_seconds >= 1 ? loaded_done / loaded_seconds : -1.0;
  const double loaded_placing = loaded_seconds >= 1 ? loaded_placed / loaded_seconds : -1.0;
  std::printf(
      "{\"orders\":%llu,\"rate\":%.0f,\"terminal_orders\":%zu,\"delivered\":%llu,\"cancelled\":%llu,"
      "\"throughput_orders_per_second\":%.1f,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f,"
      "\"orderflow_cpu_s\":%.2f,\"orderflow_cpu_ms_per_order\":%.3f,\"broker_in_process\":%s,"
      "\"broker_cpu_ms_per_order\":%.3f,\"log_offsets_per_order\":%.2f,\"warmup_ms\":%lld,\"steady_orders\":%zu,"
      "\"steady_p50_ms\":%.1f,\"steady_p99_ms\":%.1f,\"loaded_throughput_orders_per_second\":%.1f,"
      "\"loaded_placed_orders_per_second\":%.1f}\n",
      static_cast<unsigned long long>(orders), rate, latencies.size(),
      static_cast<unsigned long long>(summary->delivered), static_cast<unsigned long long>(summary->cancelled),
      seconds > 0 ? latencies.size() / seconds : 0.0, pct(0.5), pct(0.99), latencies.empty() ? 0.0 : latencies.back(),
      orderflow_cpu, orderflow_cpu * 1000 / orders, getenv("BENCH_BROKERS") ? "false" : "true",
      broker_cpu >= 0 ? broker_cpu * 1000 / orders : -1.0,
      log_offsets >= 0 ? static_cast<double>(log_offsets) / orders : -1.0, static_cast<long long>(warmup_ms),
      steady.size(), pct_of(steady, 0.5), pct_of(steady, 0.99), loaded_throughput, loaded_placing);
  return 0;
}

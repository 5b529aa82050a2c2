#include "services/up.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>

#include "eventstore/embedded_broker.h"
#include "eventstore/topics.h"
#include "projections/projector.h"
#include "projections/store.h"
#include "services/order_service.h"
#include "services/simulator.h"
#include "services/lifecycle.h"

namespace orderflow::services {
namespace {

using Clock = std::chrono::steady_clock;

// Sleeps until `deadline` or until `stop` is set, in small steps.
void SleepUntil(Clock::time_point deadline, const std::atomic<bool>& stop) {
  while (!stop.load() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::min<Clock::duration>(deadline - Clock::now(), std::chrono::milliseconds(20)));
  }
}

}  // namespace

Result<UpSummary> RunUp(const UpOptions& options, const domain::Catalog& catalog, const std::atomic<bool>& stop,
                        const std::function<void(const UpEndpoints&)>& on_ready) {
  const auto started = Clock::now();
  UpSummary summary;
  eventstore::KafkaConfig kafka = options.kafka;

  std::unique_ptr<eventstore::EmbeddedBroker> broker;
  if (kafka.brokers.empty()) {
    auto started_broker = eventstore::EmbeddedBroker::Start(3);
    if (!started_broker.ok()) return started_broker.status();
    broker = std::move(started_broker).value();
    ORDERFLOW_RETURN_IF_ERROR(broker->CreateTopics(eventstore::DefaultTopics(options.partitions)));
    kafka.brokers = broker->bootstraps();
  } else {
    ORDERFLOW_RETURN_IF_ERROR(
        eventstore::ProvisionTopics(kafka, eventstore::DefaultTopics(options.partitions), std::chrono::seconds(15)));
  }
  summary.brokers = kafka.brokers;

  auto store = projections::ProjectionStore::Open(options.data_dir, {});
  if (!store.ok()) return store.status();
  if (broker) {
    auto offsets = (*store)->GetOffsets();
    if (!offsets.ok()) return offsets.status();
    if (!offsets->empty()) {
      return Status::FailedPrecondition(
          options.data_dir + " holds state from an earlier run, but the embedded broker keeps no data across "
                             "restarts, so that log is gone; use a new --data-dir (or remove this one), or run "
                             "`orderflow broker` once and pass --brokers");
    }
  }
  auto reader = eventstore::Reader::Create(kafka, "orderflow-projector");
  if (!reader.ok()) return reader.status();
  auto meta_reader = eventstore::Reader::Create(kafka, "orderflow-up-meta");
  if (!meta_reader.ok()) return meta_reader.status();
  // The projector parks undecodable records on orders.dlq (its own producer:
  // Flush reports the errors of everything appended through a producer).
  auto dlq_producer = eventstore::Producer::Create(kafka, "orderflow-projector-dlq");
  if (!dlq_producer.ok()) return dlq_producer.status();
  projections::ProjectorOptions popts;
  popts.topics = {eventstore::kOrdersTopic};
  popts.batch_size = options.batch_size;
  popts.dead_letters = dlq_producer->get();
  projections::Projector projector(**store, **reader, popts);
  ORDERFLOW_RETURN_IF_ERROR(projector.Start());

  auto producer = eventstore::Producer::Create(kafka, "orderflow-order");
  if (!producer.ok()) return producer.status();
  OrderService orders(**producer, catalog);

  // Ready once the projection caught up with the log as it was at start, and
  // every lifecycle service has its partitions.
  auto start_end = projector.LogEnd();
  if (!start_end.ok()) return start_end.status();
  std::vector<std::unique_ptr<ServiceRunner>> runners;
  std::atomic<bool> services_started{false};
  std::atomic<bool> caught_up{false};
  auto not_ready_reason = [&]() -> std::string {
    if (!caught_up.load()) {
      auto reached = projector.Reached(*start_end);
      if (!reached.ok() || !*reached) return "the projection is catching up with the log";
      caught_up.store(true);
    }
    if (!services_started.load()) return "the services are starting";
    for (const auto& r : runners) {
      if (!r->ready()) return r->options().name + " has no partitions yet";
    }
    return "";
  };
  std::unique_ptr<HttpServer> http;
  if (options.http) {
    HttpBackend backend;
    backend.store = store->get();
    backend.orders = &orders;
    backend.producer = producer->get();
    backend.catalog = &catalog;
    backend.orders_topic = eventstore::kOrdersTopic;
    backend.not_ready_reason = not_ready_reason;
    backend.projector_counters = &projector.counters();
    backend.lag = [&]() {
      std::vector<PartitionLag> out;
      auto stored = (*store)->GetOffsets();
      for (const auto& tp : projector.partitions()) {
        const int64_t high = (*reader)->CachedHighWatermark(tp);
        const int64_t have = stored.ok() && stored->count(tp) ? stored->at(tp) : 0;
        out.push_back({"projector", tp, high < 0 ? 0 : std::max<int64_t>(0, high - have)});
      }
      return out;
    };
    backend.dead_letters = [&]() {
      std::map<std::string, uint64_t> out = {{"projector", projector.counters().dead_letters.load()}};
      if (services_started.load()) {
        for (const auto& r : runners) out[r->options().name] += r->stats().dead_letters.load();
      }
      return out;
    };
    auto started_http = HttpServer::Start(*options.http, std::move(backend));
    if (!started_http.ok()) return started_http.status();
    http = std::move(started_http).value();
  }
  UpEndpoints endpoints{kafka.brokers, http ? http->address() : ""};

  // The projector runs on its own thread; `halt` stops it (and everything else).
  std::atomic<bool> halt{false};
  std::mutex error_mu;
  Status first_error;
  auto fail = [&](const Status& s) {
    std::lock_guard lock(error_mu);
    if (first_error.ok()) first_error = s;
    halt.store(true);
  };
  std::thread projector_thread([&] {
    Status s = projector.Run(halt);
    if (!s.ok()) fail(s);
  });

  // The lifecycle services, each with its own store under <data-dir>/services/.
  std::vector<std::thread> service_threads;
  if (options.lifecycle) {
    LifecycleConfig config;
    config.transit_delay = options.transit_delay;
    config.payment.max_amount_minor = options.max_payment_minor;
    config.payment.blocked_customers = options.blocked_customers;
    for (const std::string& name : LifecycleServiceNames()) {
      ServiceOptions so;
      so.name = name;
      so.kafka = kafka;
      so.data_dir = options.data_dir + "/services/" + name;
      so.exactly_once = options.exactly_once;
      auto runner = MakeLifecycleService(so, catalog, config);
      if (!runner.ok()) {
        fail(runner.status());
        break;
      }
      runners.push_back(std::move(runner).value());
    }
    for (auto& runner : runners) {
      service_threads.emplace_back([&, r = runner.get()] {
        Status s = r->Run(halt);
        if (!s.ok()) fail(Status(s.code(), r->options().name + ": " + s.message()));
      });
    }
  }
  services_started.store(true);
  auto should_stop = [&] { return stop.load() || halt.load(); };
  // Let the consumer groups settle before orders flow, so the first orders do
  // not wait for the initial rebalance.
  for (int i = 0; i < 300 && !should_stop(); ++i) {
    bool all = std::all_of(runners.begin(), runners.end(), [](const auto& r) { return r->ready(); });
    if (all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (on_ready) on_ready(endpoints);
  auto join_all = [&] {
    if (http) http->Stop();
    halt.store(true);
    projector_thread.join();
    for (auto& t : service_threads) t.join();
  };

  // Place the simulated orders, paced by --rate.
  const auto simulation_start = Clock::now();
  OrderSimulator simulator(catalog, options.seed);
  std::vector<std::string> placed_ids;
  placed_ids.reserve(options.simulate);
  std::atomic<uint64_t> delivery_failures{0};
  auto last_report = Clock::now();
  for (uint64_t i = 0; i < options.simulate && !should_stop(); ++i) {
    if (options.rate > 0) {
      SleepUntil(simulation_start + std::chrono::microseconds(static_cast<int64_t>(1e6 * i / options.rate)), stop);
    }
    std::string id = NewOrderId();
    auto placed = orders.Place(simulator.Next(), id, NowMs(), [&delivery_failures](const Status& s, auto) {
      if (!s.ok()) delivery_failures.fetch_add(1);
    });
    if (!placed.ok()) {
      fail(placed.status());
      break;
    }
    placed_ids.push_back(std::move(id));
    if (Clock::now() - last_report > std::chrono::seconds(2)) {
      last_report = Clock::now();
      uint64_t consumed = 0;
      if (auto offsets = (*store)->GetOffsets(); offsets.ok()) {
        for (const auto& [tp, offset] : *offsets) consumed += static_cast<uint64_t>(offset);
      }
      spdlog::info("placed {}/{} orders, projected {} events", i + 1, options.simulate, consumed);
    }
  }
  Status flushed = (*producer)->Flush(std::chrono::seconds(60));
  if (!flushed.ok() && !should_stop()) fail(flushed);
  summary.orders_placed = placed_ids.size() - delivery_failures.load();
  summary.orders_rejected = delivery_failures.load();
  if (options.simulate > 0) spdlog::info("placed {} orders", summary.orders_placed);

  if (options.exit_when_done) {
    auto log_end = [&]() -> Result<projections::Offsets> {
      projections::Offsets out;
      for (const auto& tp : projector.partitions()) {
        auto w = (*meta_reader)->QueryWatermarks(tp, std::chrono::seconds(10));
        if (!w.ok()) return w.status();
        out[tp] = w->high;
      }
      return out;
    };
    // Done when every order is terminal (or just projected, without the
    // lifecycle services), every simulated order is in the store, and the log
    // stopped growing with the projector at its end.
    auto settled = [&]() -> Result<bool> {
      auto counts = (*store)->CountByStatus();
      if (!counts.ok()) return counts.status();
      uint64_t total = 0, done = 0;
      for (const auto& [status, n] : *counts) {
        total += n;
        if (!options.lifecycle || status == "delivered" || status == "cancelled") done += n;
      }
      if (total < placed_ids.size() || done != total) return false;
      auto end = log_end();
      if (!end.ok()) return end.status();
      auto reached = projector.Reached(*end);
      if (!reached.ok() || !*reached) return reached;
      std::this_thread::sleep_for(std::chrono::milliseconds(options.lifecycle ? 300 : 0));
      auto again = log_end();
      if (!again.ok()) return again.status();
      return *again == *end;
    };
    auto last_log = Clock::now();
    while (!should_stop()) {
      auto done = settled();
      if (!done.ok() && !done.status().IsRetryable()) {
        fail(done.status());
        break;
      }
      if (done.ok() && *done) break;
      if (Clock::now() - last_log > std::chrono::seconds(3)) {
        last_log = Clock::now();
        auto counts = (*store)->CountByStatus();
        if (counts.ok()) {
          std::string line;
          for (const auto& [status, n] : *counts) line += " " + status + "=" + std::to_string(n);
          spdlog::info("waiting for every order to finish:{}", line);
        }
      }
      // Each check scans the status index: not more often than this.
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    for (const std::string& id : placed_ids) {
      if (should_stop()) break;
      auto order = (*store)->GetOrder(id);
      if (!order.ok() || !order->has_value()) {
        fail(order.ok() ? Status::Internal("order " + id + " was placed but is not in the store")
                        : order.status());
      }
    }
  } else {
    while (!should_stop()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  join_all();
  ORDERFLOW_RETURN_IF_ERROR(first_error);

  summary.events_applied = projector.totals().applied;
  summary.duplicates = projector.totals().duplicates;
  summary.records_rejected = projector.totals().rejected;
  auto counts = (*store)->CountByStatus();
  if (!counts.ok()) return counts.status();
  summary.orders_by_status = std::move(counts).value();
  summary.delivered = summary.orders_by_status["delivered"];
  summary.cancelled = summary.orders_by_status["cancelled"];
  auto digest = (*store)->Digest();
  if (!digest.ok()) return digest.status();
  summary.digest = std::move(digest).value();
  summary.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return summary;
}

}  // namespace orderflow::services

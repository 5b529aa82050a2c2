#include "services/up.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "eventstore/embedded_broker.h"
#include "eventstore/topics.h"
#include "eventstore/log_archive.h"
#include "projections/projector.h"
#include "projections/store.h"
#include "services/order_service.h"
#include "services/simulator.h"
#include "services/lifecycle.h"
#include "services/views.h"

namespace orderflow::services {
namespace {

using Clock = std::chrono::steady_clock;

// Sleeps until `deadline` or until `stop` is set, in small steps.
void SleepUntil(Clock::time_point deadline, const std::atomic<bool>& stop) {
  while (!stop.load() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::min<Clock::duration>(deadline - Clock::now(), std::chrono::milliseconds(20)));
  }
}

// Copies every record of `topics` into `archive`, from where it ends, until `halt`.
Status RunArchiver(const eventstore::KafkaConfig& kafka, const std::vector<eventstore::TopicSpec>& topics,
                   eventstore::LogArchive& archive, const std::atomic<bool>& halt) {
  auto reader = eventstore::Reader::Create(kafka, "orderflow-archiver");
  if (!reader.ok()) return reader.status();
  const auto ends = archive.Ends();
  std::vector<std::pair<eventstore::TopicPartition, int64_t>> positions;
  for (const auto& t : topics) {
    for (int32_t p = 0; p < t.partitions; ++p) {
      eventstore::TopicPartition tp{t.name, p};
      positions.emplace_back(tp, ends.count(tp) ? ends.at(tp) : 0);
    }
  }
  ORDERFLOW_RETURN_IF_ERROR((*reader)->Assign(positions));
  while (!halt.load()) {
    auto records = (*reader)->Poll(5000, std::chrono::milliseconds(50));
    if (!records.ok()) {
      if (!records.status().IsRetryable()) return records.status();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (records->empty()) continue;
    // A full disk pauses the archive (and with it the acknowledgements that
    // wait for it) until space is freed; the same records are appended then.
    for (Status appended = archive.Append(*records); !appended.ok(); appended = archive.Append(*records)) {
      if (!appended.IsRetryable()) return appended;
      spdlog::warn("archive: {}", appended.ToString());
      for (int i = 0; i < 20 && !halt.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (halt.load()) return Status::Ok();
    }
  }
  return Status::Ok();
}

}  // namespace

Result<UpSummary> RunUp(const UpOptions& options, const domain::Catalog& catalog, const std::atomic<bool>& stop,
                        const std::function<void(const UpEndpoints&)>& on_ready) {
  const auto started = Clock::now();
  UpSummary summary;
  eventstore::KafkaConfig kafka = options.kafka;

  std::unique_ptr<eventstore::EmbeddedBroker> broker;
  // With the embedded broker, a local archive keeps the log across restarts.
  std::unique_ptr<eventstore::LogArchive> archive;
  std::vector<eventstore::TopicSpec> topics = eventstore::DefaultTopics(options.partitions);
  if (kafka.brokers.empty()) {
    auto opened = eventstore::LogArchive::Open(options.data_dir + "/archive");
    if (!opened.ok()) return opened.status();
    archive = std::move(opened).value();
    auto recorded = archive->TopicPartitions();
    if (!recorded.ok()) return recorded.status();
    if (recorded->empty()) {
      std::map<std::string, int32_t> counts;
      for (const auto& t : topics) counts[t.name] = t.partitions;
      ORDERFLOW_RETURN_IF_ERROR(archive->SetTopicPartitions(counts));
    } else {
      for (auto& t : topics) {
        if (recorded->count(t.name)) t.partitions = recorded->at(t.name);  // as the archived log had them
      }
    }
    auto started_broker = eventstore::EmbeddedBroker::Start(3);
    if (!started_broker.ok()) return started_broker.status();
    broker = std::move(started_broker).value();
    std::vector<eventstore::TopicSpec> on_cluster = topics;
    for (auto& t : on_cluster) t.name = eventstore::ClusterName(kafka, t.name);
    ORDERFLOW_RETURN_IF_ERROR(broker->CreateTopics(on_cluster));
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
    if (!offsets->empty() && archive->size() == 0) {
      return Status::FailedPrecondition(
          options.data_dir + " holds state from an earlier run but no archive of its log (" + options.data_dir +
          "/archive), and the embedded broker keeps no data across restarts; use a new --data-dir (or remove "
          "this one), or import a `orderflow log export` file into a broker and pass --brokers");
    }
    if (archive->size() > 0) {
      // The embedded broker starts empty: put the archived log back, each
      // record at its partition and offset, before anything consumes.
      spdlog::info("republishing {} archived records into the embedded broker", archive->size());
      auto republished = eventstore::Republish(
          kafka, [&](const std::function<Status(eventstore::ArchivedRecord&&)>& sink) { return archive->ForEach(sink); });
      if (!republished.ok()) {
        return Status(republished.status().code(), "republishing the archive in " + options.data_dir +
                                                       "/archive: " + republished.status().message());
      }
      spdlog::info("republished {} records", *republished);
    }
  }
  auto reader = eventstore::Reader::Create(kafka, "orderflow-projector");
  if (!reader.ok()) return reader.status();
  auto meta_reader = eventstore::Reader::Create(kafka, "orderflow-up-meta");
  if (!meta_reader.ok()) return meta_reader.status();
  if (!broker) {
    // An existing cluster's topics keep the partition counts they were created with.
    for (auto& t : topics) {
      auto n = (*meta_reader)->PartitionCount(t.name, std::chrono::seconds(10));
      if (!n.ok()) return n.status();
      t.partitions = *n;
    }
  }
  // The projector parks undecodable records on orders.dlq (its own producer:
  // Flush reports the errors of everything appended through a producer).
  auto dlq_producer = eventstore::Producer::Create(kafka, "orderflow-projector-dlq");
  if (!dlq_producer.ok()) return dlq_producer.status();
  projections::ProjectorOptions popts;
  popts.topics = {eventstore::kOrdersTopic};
  popts.batch_size = options.batch_size;
  popts.dead_letters = dlq_producer->get();
  popts.commit_for_operators = true;
  // With the embedded broker the archive is the log's durable copy: nothing
  // commits or is acknowledged before the archive holds it, so a killed
  // process restarts from an archive that covers every store.
  std::function<Status(const projections::Offsets&)> wait_durable;
  if (archive) {
    wait_durable = [&archive](const projections::Offsets& targets) {
      return archive->WaitFor(targets, std::chrono::seconds(10));
    };
  }
  popts.wait_durable = wait_durable;
  projections::Projector projector(**store, **reader, popts);
  ORDERFLOW_RETURN_IF_ERROR(projector.Start());

  auto producer = eventstore::Producer::Create(kafka, "orderflow-order");
  if (!producer.ok()) return producer.status();
  // Metadata and connections before the first order, not during it.
  if (Status warm = (*producer)->WarmUp({eventstore::kOrdersTopic}, std::chrono::seconds(10)); !warm.ok()) {
    spdlog::warn("order producer: {}", warm.ToString());
  }
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
    // Lag per consumer and partition: the projector's from its reader's
    // cached watermarks, the services' from the broker (on a worker thread).
    auto lag_reader = std::make_shared<std::unique_ptr<eventstore::Reader>>();
    auto lag_mu = std::make_shared<std::mutex>();
    backend.lag = [&, lag_reader, lag_mu]() {
      std::vector<PartitionLag> out;
      auto stored = (*store)->GetOffsets();
      for (const auto& tp : projector.partitions()) {
        const int64_t high = (*reader)->CachedHighWatermark(tp);
        const int64_t have = stored.ok() && stored->count(tp) ? stored->at(tp) : 0;
        out.push_back({"projector", tp, high < 0 ? 0 : std::max<int64_t>(0, high - have), have, high});
      }
      if (!services_started.load()) return out;
      std::lock_guard lock(*lag_mu);
      if (!*lag_reader) {
        auto created = eventstore::Reader::Create(kafka, "orderflow-api-lag");
        if (!created.ok()) return out;
        *lag_reader = std::move(created).value();
      }
      for (const auto& r : runners) {
        for (const auto& [tp, next] : r->committed_offsets()) {
          auto w = (*lag_reader)->QueryWatermarks(tp, std::chrono::seconds(2));
          const int64_t high = w.ok() ? w->high : -1;
          out.push_back({r->options().name, tp, high < 0 ? 0 : std::max<int64_t>(0, high - next), next, high});
        }
      }
      return out;
    };
    backend.health = [&]() {
      std::vector<ServiceHealth> out;
      not_ready_reason();  // updates caught_up
      const bool caught = caught_up.load();
      out.push_back({"projector", caught, caught ? "" : "catching up with the log"});
      if (!services_started.load()) {
        out.push_back({"services", false, "starting"});
        return out;
      }
      for (const auto& r : runners) {
        out.push_back({r->options().name, r->ready(), r->ready() ? "" : "waiting for partitions"});
      }
      return out;
    };
    backend.stock = [&]() -> Result<std::vector<StockLevel>> {
      const ServiceRunner* inventory = nullptr;
      if (services_started.load()) {
        for (const auto& r : runners) {
          if (r->options().name == "inventory") inventory = r.get();
        }
      }
      if (inventory == nullptr) return Status::Unavailable("the inventory service is starting");
      std::vector<StockLevel> out;
      for (const auto& item : catalog.items()) {
        auto stored = inventory->ReadState("stock/" + item.sku);
        if (!stored.ok()) return stored.status();
        int64_t available = item.initial_stock;
        if (*stored) available = std::strtoll((*stored)->c_str(), nullptr, 10);
        out.push_back({item.sku, item.name, available});
      }
      return out;
    };
    backend.list_dead_letters = [&]() { return eventstore::ReadDeadLetters(kafka, std::chrono::seconds(5)); };
    backend.redrive = [&](int64_t id) {
      return eventstore::Redrive(kafka, {id}, /*force=*/false, std::chrono::seconds(10));
    };
    backend.wait_durable = wait_durable;
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
  // The archiver copies every record of every topic into the archive as it
  // is appended (embedded broker only).
  std::thread archiver_thread;
  std::atomic<bool> archiver_halt{false};  // set last: the others wait for the archive
  if (archive) {
    archiver_thread = std::thread([&] {
      Status s = RunArchiver(kafka, topics, *archive, archiver_halt);
      if (!s.ok()) fail(Status(s.code(), "archiver: " + s.message()));
    });
  }

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
      so.wait_durable = wait_durable;
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
    archiver_halt.store(true);
    if (archiver_thread.joinable()) archiver_thread.join();
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

  // Whether every consumer in this process has reached the end of the log it
  // reads (the archive: every topic; the projector: orders.events; each
  // lifecycle service: its inputs). Returns the ends when so, nullopt while
  // one is behind.
  using Ends = std::map<eventstore::TopicPartition, int64_t>;
  using MaybeEnds = std::optional<Ends>;
  // `lagging`, if given, gets one entry per consumer behind ("payment
  // orders.events[2] 410/523"), for the progress log.
  auto all_at_end = [&](std::vector<std::string>* lagging = nullptr) -> Result<MaybeEnds> {
    Ends ends;
    for (const auto& t : topics) {
      for (int32_t p = 0; p < t.partitions; ++p) {
        auto w = (*meta_reader)->QueryWatermarks({t.name, p}, std::chrono::seconds(5));
        if (!w.ok()) return w.status();
        ends[{t.name, p}] = w->high;
      }
    }
    const auto archived = archive ? archive->Ends() : Ends{};
    auto projected = (*store)->GetOffsets();
    if (!projected.ok()) return projected.status();
    // One snapshot per service per check (each is a copy under the runner's lock).
    struct Held {
      const ServiceRunner* runner;
      std::vector<eventstore::TopicPartition> assigned;
      std::map<eventstore::TopicPartition, int64_t> committed;
    };
    std::vector<Held> held;
    for (const auto& r : runners) held.push_back({r.get(), r->assigned_partitions(), r->committed_offsets()});
    bool behind = false;
    auto note = [&](const std::string& who, const eventstore::TopicPartition& tp, int64_t at, int64_t end) {
      behind = true;
      if (lagging) {
        lagging->push_back(who + " " + tp.topic + "[" + std::to_string(tp.partition) + "] " + std::to_string(at) + "/" +
                           std::to_string(end));
      }
    };
    for (const auto& [tp, end] : ends) {
      if (end == 0) continue;
      if (archive && (!archived.count(tp) || archived.at(tp) < end)) {
        note("archive", tp, archived.count(tp) ? archived.at(tp) : 0, end);
      }
      if (tp.topic == eventstore::kOrdersTopic && (!projected->count(tp) || projected->at(tp) < end)) {
        note("projector", tp, projected->count(tp) ? projected->at(tp) : 0, end);
      }
      for (const Held& h : held) {
        const std::string& name = h.runner->options().name;
        bool consumes = false;
        for (const auto& cls : h.runner->options().inputs) consumes = consumes || std::count(cls.begin(), cls.end(), tp.topic);
        if (!consumes) continue;
        // Between a revocation and the next assignment nothing is settled; a
        // partition held by another instance of the service (another
        // process in the same group) is that instance's to finish.
        if (std::none_of(h.assigned.begin(), h.assigned.end(), [&](const auto& a) { return a.topic == tp.topic; })) {
          behind = true;
          const std::string what = name + " holds no " + tp.topic + " partition";
          if (lagging && std::find(lagging->begin(), lagging->end(), what) == lagging->end()) lagging->push_back(what);
          continue;
        }
        if (std::find(h.assigned.begin(), h.assigned.end(), tp) == h.assigned.end()) continue;
        const auto at = h.committed.find(tp);
        if (at == h.committed.end() || at->second < end) note(name, tp, at == h.committed.end() ? 0 : at->second, end);
      }
    }
    if (behind) return MaybeEnds();
    return MaybeEnds(std::move(ends));
  };
  // Quiet when two checks in a row find every consumer at the same ends: a
  // service flushes its outputs before it commits, so whatever it produced
  // from the records before the first check is in the log by the second.
  MaybeEnds quiet_at;
  auto quiet = [&]() -> Result<bool> {
    auto at = all_at_end();
    if (!at.ok()) return at.status();
    const bool same = at->has_value() && quiet_at.has_value() && **at == *quiet_at;
    quiet_at = *at;
    return same;
  };

  if (options.exit_when_done) {
    // Done when every order is terminal (or just projected, without the
    // lifecycle services), every simulated order is in the store, and no
    // consumer has anything left to read: an event appended after the
    // projector stopped (a refund, a NotificationSent from a service slowed
    // by a rebalance) would leave the projection short of the log.
    auto settled = [&]() -> Result<bool> {
      auto counts = (*store)->CountByStatus();
      if (!counts.ok()) return counts.status();
      uint64_t total = 0, done = 0;
      for (const auto& [status, n] : *counts) {
        total += n;
        if (!options.lifecycle || status == "delivered" || status == "cancelled") done += n;
      }
      if (total < placed_ids.size() || done != total) return false;
      return quiet();
    };
    auto last_log = Clock::now();
    std::string last_line;
    auto unchanged_since = Clock::now();
    auto last_stuck_report = Clock::now() - std::chrono::minutes(1);
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
          std::vector<std::string> lagging;
          auto at_end = all_at_end(&lagging);
          if (!at_end.ok()) line += "; log ends unknown: " + at_end.status().message();
          if (at_end.ok() && !lagging.empty()) {
            line += "; behind:";
            for (size_t i = 0; i < lagging.size() && i < 8; ++i) line += " " + lagging[i] + ",";
            line.pop_back();
            if (lagging.size() > 8) line += " and " + std::to_string(lagging.size() - 8) + " more";
          }
          spdlog::info("waiting for every order to finish:{}", line);
          if (line != last_line) {
            last_line = line;
            unchanged_since = Clock::now();
          }
          // Nothing moves although every consumer is at the log end: say which
          // orders are stuck and what their history holds, so the missing
          // step can be told apart (once every 30 s).
          const auto now = Clock::now();
          if (at_end.ok() && lagging.empty() && now - unchanged_since > std::chrono::seconds(15) &&
              now - last_stuck_report > std::chrono::seconds(30)) {
            last_stuck_report = now;
            for (const auto& [status, n] : *counts) {
              if (status == "delivered" || status == "cancelled") continue;
              projections::OrderQuery query;
              query.status = OrderStatusFromName(status);
              query.limit = 3;
              auto page = (*store)->ListOrders(query);
              if (!page.ok()) continue;
              for (const auto& o : page->orders) {
                std::string events;
                if (auto history = (*store)->GetHistory(o.order_id); history.ok()) {
                  for (const auto& e : *history) events += (events.empty() ? "" : ", ") + e.event_type;
                }
                spdlog::warn("order {} is stuck in {} with every consumer at the log end; its history: {}",
                             o.order_id, status, events);
              }
            }
          }
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

  // Stopping with the embedded broker, whose log dies with this process: take
  // no new orders, and let every service, the projector and the archiver
  // finish what is in the log, so the archive holds all of it (bounded).
  if (archive && !halt.load()) {
    if (http) http->Stop();
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    quiet_at.reset();
    spdlog::info("stopping: letting the services finish what is in the log");
    bool drained = false;
    while (Clock::now() < deadline && !halt.load()) {
      auto q = quiet();
      drained = q.ok() && *q;
      if (drained) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!drained) spdlog::warn("stopping before every service caught up; the next start resumes from the archive");
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

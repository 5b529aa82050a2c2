#include "cli/app/up.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>

#include "eventstore/embedded_broker.h"
#include "eventstore/topics.h"
#include "eventstore/log_archive.h"
#include "projections/store.h"
#include "services/orders/order_service.h"
#include "cli/app/archiver.h"
#include "cli/app/priority.h"
#include "cli/app/projector_service.h"
#include "services/lifecycle/settle.h"
#include "cli/app/simulator.h"
#include "services/lifecycle/lifecycle.h"
#include "cli/app/task_group.h"
#include "cli/app/up_ops.h"
#include "projections/views.h"

namespace orderflow::services {
namespace {

using SteadyClock = std::chrono::steady_clock;

// `orderflow up` as an object: each part is started by one method, in order,
// and the members are declared so that what uses a part is destroyed before
// it (the threads first, then the HTTP server, then the services, the
// projector, the clients, the archive and the broker).
class Up final {
 public:
  Up(const UpOptions& options, const domain::Catalog& catalog, std::stop_token stop)
      : options_(options), catalog_(catalog), clock_(*options.kafka.clock), stop_(stop), kafka_(options.kafka),
        topics_(eventstore::DefaultTopics(options.orders_partitions())) {}
  ~Up() { Shutdown(); }

  Result<UpSummary> Run(const std::function<void(const UpEndpoints&)>& on_ready);

 private:
  Status OpenLog();
  Status RestoreArchive();
  Status StartProjector();
  Status StartOrderService();
  ApiSources MakeApiSources();
  Status StartServices();
  void StartThreads();
  void Simulate();
  void WaitUntilDone();
  void ReportStuckOrders(const std::map<std::string, uint64_t>& counts);
  void DrainBeforeStop();
  void Shutdown();
  Result<SettleReport> CheckSettled();
  Result<UpSummary> Summarize();

  bool should_stop() const { return stopping_.stop_requested(); }
  // Waits `d` of the clock, or less once Up is stopping.
  void Pause(SteadyClock::duration d) const { clock_.SleepFor(d, stopping_.get_token()); }

  const UpOptions& options_;
  const domain::Catalog& catalog_;
  const Clock& clock_;
  std::stop_token stop_;
  const SteadyClock::time_point started_ = clock_.Now();
  eventstore::KafkaConfig kafka_;
  std::vector<eventstore::TopicSpec> topics_;
  UpSummary summary_;

  std::unique_ptr<eventstore::EmbeddedBroker> broker_;
  // With the embedded broker, a local archive keeps the log across restarts.
  std::unique_ptr<eventstore::LogArchive> archive_;
  // With the embedded broker the archive is the log's durable copy: nothing
  // commits or is acknowledged before the archive holds it, so a killed
  // process restarts from an archive that covers every store.
  std::function<Status(const projections::Offsets&)> wait_durable_;
  std::unique_ptr<ProjectorService> projector_;
  std::unique_ptr<eventstore::Reader> meta_reader_;
  // Before producer_: ~Producer flushes, and the flush's delivery reports count here.
  std::atomic<uint64_t> delivery_failures_{0};
  std::unique_ptr<eventstore::Producer> producer_;
  std::unique_ptr<OrderService> orders_;
  std::vector<std::unique_ptr<ServiceRunner>> runners_;
  // Per runner, per input class: its consumer group's committed offsets, for
  // the partitions other instances (other processes) hold. Set before the
  // services start, read-only after.
  std::vector<std::vector<std::unique_ptr<eventstore::GroupOffsets>>> group_offsets_;
  std::atomic<bool> services_started_{false};
  std::unique_ptr<UpOps> ops_;  // what the API's operations routes ask
  std::unique_ptr<HttpServer> http_;
  std::vector<std::string> placed_ids_;

  // The archiver is halted last: the others wait for the archive.
  TaskGroup archiver_;
  TaskGroup tasks_;  // the projector and the services

  // Requested by the caller's stop or by the first task error (tasks_ halts);
  // every wait of Up's own wakes on it. The callbacks go before tasks_.
  std::stop_source stopping_;
  std::stop_callback<std::function<void()>> on_stop_{stop_, [this] { stopping_.request_stop(); }};
  std::stop_callback<std::function<void()>> on_halt_{tasks_.token(), [this] { stopping_.request_stop(); }};
};

Result<UpSummary> Up::Run(const std::function<void(const UpEndpoints&)>& on_ready) {
  // What processes events is created at --services-nice (its threads inherit
  // it); the order service and the HTTP API at the process's priority.
  const int nice = options_.services_nice;
  ORDERFLOW_RETURN_IF_ERROR(RunAtNice(nice, [this] { return OpenLog(); }));
  ORDERFLOW_RETURN_IF_ERROR(RunAtNice(nice, [this] { return StartProjector(); }));
  ORDERFLOW_RETURN_IF_ERROR(StartOrderService());
  if (options_.http) {
    auto started = HttpServer::Start(*options_.http, MakeApiSources());
    if (!started.ok()) return started.status();
    http_ = std::move(started).value();
  }
  ORDERFLOW_RETURN_IF_ERROR(RunAtNice(nice, [this] { return StartServices(); }));
  StartThreads();
  // Let the consumer groups settle before orders flow, so the first orders do
  // not wait for the initial rebalance.
  for (int i = 0; i < 300 && !should_stop(); ++i) {
    if (std::all_of(runners_.begin(), runners_.end(), [](const auto& r) { return r->ready(); })) break;
    Pause(std::chrono::milliseconds(50));
  }
  if (on_ready) on_ready({kafka_.brokers, http_ ? http_->address() : ""});

  Simulate();
  if (options_.exit_when_done) {
    WaitUntilDone();
    if (options_.on_done && !should_stop()) options_.on_done();
  } else {
    WaitForStop(stopping_.get_token());
  }
  DrainBeforeStop();
  Shutdown();
  ORDERFLOW_RETURN_IF_ERROR(tasks_.first_error());
  return Summarize();
}

// The embedded broker with the archived log put back, or the given cluster
// with orderflow's topics provisioned.
Status Up::OpenLog() {
  if (!kafka_.brokers.empty()) {
    ORDERFLOW_RETURN_IF_ERROR(eventstore::ProvisionTopics(kafka_, topics_, std::chrono::seconds(15)));
  } else {
    auto opened = eventstore::LogArchive::Open(options_.data_dir + "/archive");
    if (!opened.ok()) return opened.status();
    archive_ = std::move(opened).value();
    auto recorded = archive_->TopicPartitions();
    if (!recorded.ok()) return recorded.status();
    constexpr int kEmbeddedBrokers = 3;
    for (auto& t : topics_) t = eventstore::OnCluster(t, kEmbeddedBrokers);  // the counts the broker will make
    if (recorded->empty()) {
      std::map<std::string, int32_t> counts;
      for (const auto& t : topics_) counts[t.name] = t.partitions;
      ORDERFLOW_RETURN_IF_ERROR(archive_->SetTopicPartitions(counts));
    } else {
      for (auto& t : topics_) {
        if (recorded->count(t.name)) t.partitions = recorded->at(t.name);  // as the archived log had them
      }
    }
    auto started = eventstore::EmbeddedBroker::Start(kEmbeddedBrokers);
    if (!started.ok()) return started.status();
    broker_ = std::move(started).value();
    std::vector<eventstore::TopicSpec> on_cluster = topics_;
    for (auto& t : on_cluster) t.name = eventstore::ClusterName(kafka_, t.name);
    ORDERFLOW_RETURN_IF_ERROR(broker_->CreateTopics(on_cluster));
    kafka_.brokers = broker_->bootstraps();
    spdlog::info("embedded Kafka broker at {} (other orderflow commands reach it with --brokers {})", kafka_.brokers,
                 kafka_.brokers);
    wait_durable_ = [this](const projections::Offsets& targets) {
      return archive_->WaitFor(targets, std::chrono::seconds(10));
    };
  }
  summary_.brokers = kafka_.brokers;
  auto meta_reader = eventstore::Reader::Create(kafka_, "orderflow-up-meta");
  if (!meta_reader.ok()) return meta_reader.status();
  meta_reader_ = std::move(meta_reader).value();
  if (!broker_) {
    // An existing cluster's topics keep the partition counts they were created with.
    for (auto& t : topics_) {
      auto n = meta_reader_->PartitionCount(t.name, std::chrono::seconds(10));
      if (!n.ok()) return n.status();
      t.partitions = *n;
    }
  }
  return RestoreArchive();
}

// The embedded broker starts empty: put the archived log back, each record at
// its partition and offset, before anything consumes.
Status Up::RestoreArchive() {
  if (!broker_) return Status::Ok();
  return services::RestoreArchive(options_.data_dir, kafka_, *archive_);
}

Status Up::StartProjector() {
  ProjectorServiceOptions o;
  o.kafka = kafka_;
  o.data_dir = options_.data_dir;
  o.batch_size = options_.batch_size;
  if (options_.projector_interval) o.batch_interval = *options_.projector_interval;
  o.wait_durable = wait_durable_;
  auto started = ProjectorService::Start(std::move(o));
  if (!started.ok()) return started.status();
  projector_ = std::move(started).value();
  auto end = projector_->projector().LogEnd();
  if (!end.ok()) return end.status();
  ops_ = std::make_unique<UpOps>(kafka_, topics_, catalog_, *projector_, runners_, group_offsets_, services_started_,
                                 std::move(end).value());
  return Status::Ok();
}

Status Up::StartOrderService() {
  auto producer = eventstore::Producer::Create(kafka_, "orderflow-order");
  if (!producer.ok()) return producer.status();
  producer_ = std::move(producer).value();
  // Metadata and connections before the first order, not during it.
  if (Status warm = producer_->WarmUp({eventstore::kOrdersTopic}, std::chrono::seconds(10)); !warm.ok()) {
    spdlog::warn("order producer: {}", warm.ToString());
  }
  orders_ = std::make_unique<OrderService>(*producer_, catalog_);
  return Status::Ok();
}

ApiSources Up::MakeApiSources() {
  ApiSources sources;
  sources.store = &projector_->store();
  sources.orders = orders_.get();
  sources.producer = producer_.get();
  sources.catalog = &catalog_;
  sources.orders_topic = eventstore::kOrdersTopic;
  sources.projector_counters = &projector_->projector().counters();
  sources.hurry_projection = [projector = &projector_->projector()] { projector->Hurry(); };
  sources.wait_durable = wait_durable_;
  sources.ops = ops_.get();
  return sources;
}

// The lifecycle services, each with its own store under <data-dir>/services/:
// fulfillment (payment, inventory, shipping, delivery and the notification
// router in one runner) and notification (sending only), or with
// --separate-services the five on their own.
Status Up::StartServices() {
  if (options_.lifecycle) {
    LifecycleConfig config;
    config.transit_delay = options_.transit_delay;
    config.payment.max_amount_minor = options_.max_payment_minor;
    config.payment.blocked_customers = options_.blocked_customers;
    config.notification_sends_only = !options_.separate_services;  // fulfillment routes
    std::vector<std::string> names = {kFulfillment, "notification"};
    if (options_.separate_services) names = LifecycleServiceNames();
    for (const std::string& name : names) {
      ServiceOptions so;
      so.name = name;
      so.kafka = kafka_;
      so.data_dir = options_.data_dir + "/services/" + name;
      so.exactly_once = options_.exactly_once;
      so.wait_durable = wait_durable_;
      auto runner = MakeLifecycleService(so, catalog_, config);
      if (!runner.ok()) return runner.status();
      std::vector<std::unique_ptr<eventstore::GroupOffsets>> groups;
      for (size_t i = 0; i < (*runner)->options().inputs.size(); ++i) {
        auto offsets = eventstore::GroupOffsets::Create(
            kafka_, ServiceGroupId(name, i, (*runner)->options().inputs.size()));
        if (!offsets.ok()) return offsets.status();
        groups.push_back(std::move(offsets).value());
      }
      group_offsets_.push_back(std::move(groups));
      runners_.push_back(std::move(runner).value());
    }
  }
  return Status::Ok();
}

void Up::StartThreads() {
  const int nice = options_.services_nice;
  tasks_.Spawn("projector", [this, nice](std::stop_token halt) {
    SetThreadNice(nice);
    return projector_->Run(halt);
  });
  for (auto& runner : runners_) {
    tasks_.Spawn(runner->options().name, [r = runner.get(), nice](std::stop_token halt) {
      SetThreadNice(nice);  // before Run creates its consumers
      return r->Run(halt);
    });
  }
  services_started_.store(true);
  // The archiver copies every record of every topic into the archive as it is
  // appended; its errors stop everything.
  if (archive_) {
    archiver_.Spawn("archiver", [this, nice](std::stop_token halt) {
      SetThreadNice(nice);
      Status s = RunArchiver(kafka_, topics_, *archive_, halt);
      if (!s.ok()) tasks_.Fail(Status(s.code(), "archiver: " + s.message()));
      return Status::Ok();
    });
  }
}

// Places the simulated orders, paced by --rate.
void Up::Simulate() {
  const auto simulation_start = clock_.Now();
  OrderSimulator simulator(catalog_, options_.seed);
  placed_ids_.reserve(options_.simulate);
  if (options_.rate > 0) spdlog::info("simulating {} orders at {}/s", options_.simulate, options_.rate);
  else spdlog::info("simulating {} orders", options_.simulate);
  auto last_report = clock_.Now();
  // Orders due within a millisecond go out without a sleep: at thousands per
  // second a wake-up per order would cost the simulator more than placing it.
  constexpr auto kPacingSlack = std::chrono::milliseconds(1);
  for (uint64_t i = 0; i < options_.simulate && !should_stop(); ++i) {
    if (options_.rate > 0) {
      const auto due = simulation_start + std::chrono::microseconds(static_cast<int64_t>(1e6 * i / options_.rate));
      if (const auto ahead = due - clock_.Now(); ahead > kPacingSlack) Pause(ahead);
    }
    std::string id = NewOrderId();
    auto placed = orders_->Place(simulator.Next(), id, NowMs(), [this](const Status& s, auto) {
      if (!s.ok()) delivery_failures_.fetch_add(1);
    });
    if (!placed.ok()) {
      tasks_.Fail(placed.status());
      break;
    }
    placed_ids_.push_back(std::move(id));
    if (clock_.Now() - last_report > std::chrono::seconds(2)) {
      last_report = clock_.Now();
      uint64_t consumed = 0;
      if (auto offsets = projector_->store().GetOffsets(); offsets.ok()) {
        for (const auto& [tp, offset] : *offsets) consumed += static_cast<uint64_t>(offset);
      }
      spdlog::info("placed {}/{} orders, projected {} events", i + 1, options_.simulate, consumed);
    }
  }
  // Longer than the producer's message.timeout.ms (120 s): by then every order
  // was acknowledged or failed, however long the brokers were away. An order
  // whose OrderPlaced failed to be delivered is counted as rejected (below),
  // as a client's request would have been refused; only records still
  // unsettled after that are an error.
  Status flushed = producer_->Flush(std::chrono::seconds(150));
  if (!flushed.ok() && delivery_failures_.load() > 0) {
    spdlog::warn("{} simulated order(s) were not acknowledged by the brokers and count as rejected: {}",
                 delivery_failures_.load(), flushed.ToString());
    flushed = producer_->Flush(std::chrono::seconds(10));  // Ok once every record has settled
  }
  if (!flushed.ok() && !should_stop()) tasks_.Fail(flushed);
  summary_.orders_placed = placed_ids_.size() - delivery_failures_.load();
  summary_.orders_rejected = delivery_failures_.load();
  if (options_.simulate > 0) spdlog::info("placed {} orders", summary_.orders_placed);
}

// Every consumer of this process, then the log's ends: see settle.h for why
// in this order. The archive reads every topic, the projector orders.events,
// each lifecycle service its inputs.
Result<SettleReport> Up::CheckSettled() {
  std::vector<ConsumerPosition> positions;
  if (archive_) {
    ConsumerPosition archive{"archive", {}, std::nullopt, archive_->Ends()};
    for (const auto& t : topics_) archive.topics.push_back(t.name);
    positions.push_back(std::move(archive));
  }
  auto projected = projector_->store().GetOffsets();
  if (!projected.ok()) return projected.status();
  positions.push_back({"projector", {eventstore::kOrdersTopic}, std::nullopt, std::move(projected).value()});
  for (size_t k = 0; k < runners_.size(); ++k) {
    auto group = ops_->GroupPositions(k);
    if (!group.ok()) return group.status();
    ConsumerPosition p{runners_[k]->options().name, {}, std::nullopt, std::move(group).value()};
    for (const auto& priority_class : runners_[k]->options().inputs) {
      p.topics.insert(p.topics.end(), priority_class.begin(), priority_class.end());
    }
    positions.push_back(std::move(p));
  }
  std::vector<eventstore::TopicPartition> partitions;
  for (const auto& t : topics_) {
    for (int32_t p = 0; p < t.partitions; ++p) partitions.push_back({t.name, p});
  }
  auto marks = meta_reader_->QueryWatermarks(partitions, std::chrono::seconds(5));
  if (!marks.ok()) return marks.status();
  LogEnds ends;
  for (size_t i = 0; i < partitions.size(); ++i) ends[partitions[i]] = (*marks)[i].high;
  return services::CheckSettled(positions, ends);
}

// Until every order is terminal (or just projected, without the lifecycle
// services), every simulated order is in the store, and the system has
// settled: an event appended after the projector stopped (a refund, a
// NotificationSent from a service slowed by a rebalance) would leave the
// projection short of the log.
void Up::WaitUntilDone() {
  auto last_log = clock_.Now();
  std::string last_line;
  auto unchanged_since = clock_.Now();
  auto last_stuck_report = clock_.Now() - std::chrono::minutes(1);
  while (!should_stop()) {
    const auto scan_started = clock_.Now();
    auto counts = projector_->store().CountByStatus();
    const auto scan_took = clock_.Now() - scan_started;
    if (!counts.ok() && !counts.status().IsRetryable()) {
      tasks_.Fail(counts.status());
      break;
    }
    uint64_t total = 0, done = 0;
    if (counts.ok()) {
      for (const auto& [status, n] : *counts) {
        total += n;
        if (!options_.lifecycle || status == "delivered" || status == "cancelled") done += n;
      }
    }
    const bool terminal = counts.ok() && total >= placed_ids_.size() && done == total;
    const bool log_now = counts.ok() && clock_.Now() - last_log > std::chrono::seconds(3);
    // Each check scans the status index (every order): at most every 200 ms,
    // and with ten times its scan's duration between scans, so that a long
    // simulation spends at most a tenth of a core on watching itself.
    const auto between_scans = std::max<SteadyClock::duration>(std::chrono::milliseconds(200), 10 * scan_took);
    if (!terminal && !log_now) {
      Pause(between_scans);
      continue;
    }
    auto settled = CheckSettled();
    if (!settled.ok() && !settled.status().IsRetryable()) {
      tasks_.Fail(settled.status());
      break;
    }
    if (terminal && settled.ok() && settled->settled) break;
    if (log_now) {
      last_log = clock_.Now();
      std::string line;
      for (const auto& [status, n] : *counts) line += " " + status + "=" + std::to_string(n);
      if (!settled.ok()) line += "; log ends unknown: " + settled.status().message();
      if (settled.ok() && !settled->behind.empty()) {
        const auto& behind = settled->behind;
        line += "; behind:";
        for (size_t i = 0; i < behind.size() && i < 8; ++i) line += " " + behind[i] + ",";
        line.pop_back();
        if (behind.size() > 8) line += " and " + std::to_string(behind.size() - 8) + " more";
      }
      spdlog::info("waiting for every order to finish:{}", line);
      if (line != last_line) {
        last_line = line;
        unchanged_since = clock_.Now();
      }
      // Nothing moves although every consumer is at the log end: say which
      // orders are stuck and what their history holds, so the missing step
      // can be told apart (once every 30 s).
      const auto now = clock_.Now();
      if (settled.ok() && settled->settled && now - unchanged_since > std::chrono::seconds(15) &&
          now - last_stuck_report > std::chrono::seconds(30)) {
        last_stuck_report = now;
        ReportStuckOrders(*counts);
      }
    }
    Pause(between_scans);
  }
  for (const std::string& id : placed_ids_) {
    if (should_stop()) break;
    auto order = projector_->store().GetOrder(id);
    if (!order.ok() || !order->has_value()) {
      tasks_.Fail(order.ok() ? Status::Internal("order " + id + " was placed but is not in the store") : order.status());
    }
  }
}

void Up::ReportStuckOrders(const std::map<std::string, uint64_t>& counts) {
  for (const auto& [status, n] : counts) {
    if (status == "delivered" || status == "cancelled") continue;
    projections::OrderQuery query;
    query.status = projections::OrderStatusFromName(status);
    query.limit = 3;
    auto page = projector_->store().ListOrders(query);
    if (!page.ok()) continue;
    for (const auto& o : page->orders) {
      std::string events;
      if (auto history = projector_->store().GetHistory(o.order_id); history.ok()) {
        for (const auto& e : *history) events += (events.empty() ? "" : ", ") + e.event_type;
      }
      spdlog::warn("order {} is stuck in {} with every consumer at the log end; its history: {}", o.order_id, status,
                   events);
    }
  }
}

// Stopping with the embedded broker, whose log dies with this process: take
// no new orders, and let every service, the projector and the archiver finish
// what is in the log, so the archive holds all of it (bounded).
void Up::DrainBeforeStop() {
  if (!archive_ || tasks_.halted()) return;
  if (http_) http_->Stop();
  const auto deadline = clock_.Now() + std::chrono::seconds(20);
  spdlog::info("stopping: letting the services finish what is in the log");
  bool drained = false;
  while (clock_.Now() < deadline && !tasks_.halted()) {
    auto settled = CheckSettled();
    drained = settled.ok() && settled->settled;
    if (drained) break;
    clock_.SleepFor(std::chrono::milliseconds(100), tasks_.token());
  }
  if (!drained) spdlog::warn("stopping before every service caught up; the next start resumes from the archive");
}

// The stop order: no new requests, then the projector and the services, then
// the archiver they wait for. Idempotent.
void Up::Shutdown() {
  if (http_) http_->Stop();
  tasks_.Halt();
  tasks_.Join();
  archiver_.Halt();
  archiver_.Join();
}

Result<UpSummary> Up::Summarize() {
  const auto& totals = projector_->projector().totals();
  summary_.events_applied = totals.applied;
  summary_.duplicates = totals.duplicates;
  summary_.records_rejected = totals.rejected;
  auto counts = projector_->store().CountByStatus();
  if (!counts.ok()) return counts.status();
  summary_.orders_by_status = std::move(counts).value();
  summary_.delivered = summary_.orders_by_status["delivered"];
  summary_.cancelled = summary_.orders_by_status["cancelled"];
  auto digest = projector_->store().Digest();
  if (!digest.ok()) return digest.status();
  summary_.digest = std::move(digest).value();
  summary_.seconds = std::chrono::duration<double>(clock_.Now() - started_).count();
  return summary_;
}

}  // namespace

Result<UpSummary> RunUp(const UpOptions& options, const domain::Catalog& catalog, std::stop_token stop,
                        const std::function<void(const UpEndpoints&)>& on_ready) {
  Up up(options, catalog, stop);
  return up.Run(on_ready);
}

}  // namespace orderflow::services

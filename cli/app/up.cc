#include "cli/app/up.h"

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
#include "projections/store.h"
#include "services/orders/order_service.h"
#include "cli/app/priority.h"
#include "cli/app/projector_service.h"
#include "services/lifecycle/settle.h"
#include "cli/app/simulator.h"
#include "services/lifecycle/lifecycle.h"
#include "cli/app/task_group.h"
#include "projections/views.h"

namespace orderflow::services {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Sleeps until `deadline` or until `stop` is set, in small steps.
void SleepUntil(SteadyClock::time_point deadline, const std::atomic<bool>& stop) {
  while (!stop.load() && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(std::min<SteadyClock::duration>(deadline - SteadyClock::now(), std::chrono::milliseconds(20)));
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

// `orderflow up` as an object: each part is started by one method, in order,
// and the members are declared so that what uses a part is destroyed before
// it (the threads first, then the HTTP server, then the services, the
// projector, the clients, the archive and the broker).
class Up final : public OpsQueries {
 public:
  Up(const UpOptions& options, const domain::Catalog& catalog, const std::atomic<bool>& stop)
      : options_(options), catalog_(catalog), stop_(stop), kafka_(options.kafka),
        topics_(eventstore::DefaultTopics(options.partitions)) {}
  ~Up() { Shutdown(); }

  Result<UpSummary> Run(const std::function<void(const UpEndpoints&)>& on_ready);

 private:
  Status OpenLog();
  Status RestoreArchive();
  Status StartProjector();
  Status StartOrderService();
  ApiSources MakeApiSources();
  // What the API's operations routes ask (OpsQueries).
  std::string NotReadyReason() override;
  std::vector<PartitionLag> Lag() override;
  std::vector<ServiceHealth> Health() override;
  std::map<std::string, uint64_t> DeadLettersParked() override;
  Result<std::vector<StockLevel>> Stock() override;
  Result<std::vector<eventstore::DeadLetter>> DeadLetters() override;
  Result<eventstore::RedriveResult> Redrive(int64_t id) override;
  Status StartServices();
  void StartThreads();
  void Simulate();
  void WaitUntilDone();
  void ReportStuckOrders(const std::map<std::string, uint64_t>& counts);
  void DrainBeforeStop();
  void Shutdown();
  Result<SettleReport> CheckSettled();
  Result<std::map<eventstore::TopicPartition, int64_t>> GroupPositions(size_t runner);
  Result<UpSummary> Summarize();

  bool should_stop() const { return stop_.load() || tasks_.halted(); }

  const UpOptions& options_;
  const domain::Catalog& catalog_;
  const std::atomic<bool>& stop_;
  const SteadyClock::time_point started_ = SteadyClock::now();
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
  std::atomic<bool> caught_up_{false};
  projections::Offsets start_end_;  // the log's end at start: ready once projected that far
  std::mutex lag_mu_;
  std::unique_ptr<eventstore::Reader> lag_reader_;  // under lag_mu_
  std::unique_ptr<HttpServer> http_;
  std::vector<std::string> placed_ids_;

  // The archiver is halted last: the others wait for the archive.
  TaskGroup archiver_;
  TaskGroup tasks_;  // the projector and the services
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
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (on_ready) on_ready({kafka_.brokers, http_ ? http_->address() : ""});

  Simulate();
  if (options_.exit_when_done) {
    WaitUntilDone();
  } else {
    while (!should_stop()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
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
    if (recorded->empty()) {
      std::map<std::string, int32_t> counts;
      for (const auto& t : topics_) counts[t.name] = t.partitions;
      ORDERFLOW_RETURN_IF_ERROR(archive_->SetTopicPartitions(counts));
    } else {
      for (auto& t : topics_) {
        if (recorded->count(t.name)) t.partitions = recorded->at(t.name);  // as the archived log had them
      }
    }
    auto started = eventstore::EmbeddedBroker::Start(3);
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
  auto store = projections::ProjectionStore::Open(options_.data_dir, {.read_only = true});
  if (store.ok()) {
    auto offsets = (*store)->GetOffsets();
    if (!offsets.ok()) return offsets.status();
    if (!offsets->empty() && archive_->size() == 0) {
      return Status::FailedPrecondition(
          options_.data_dir + " holds state from an earlier run but no archive of its log (" + options_.data_dir +
          "/archive), and the embedded broker keeps no data across restarts; use a new --data-dir (or remove "
          "this one), or import a `orderflow log export` file into a broker and pass --brokers");
    }
  }
  if (archive_->size() == 0) return Status::Ok();
  spdlog::info("republishing {} archived records into the embedded broker", archive_->size());
  auto republished = eventstore::Republish(
      kafka_, [&](const std::function<Status(eventstore::ArchivedRecord&&)>& sink) { return archive_->ForEach(sink); });
  if (!republished.ok()) {
    return Status(republished.status().code(),
                  "republishing the archive in " + options_.data_dir + "/archive: " + republished.status().message());
  }
  spdlog::info("republished {} records", *republished);
  return Status::Ok();
}

Status Up::StartProjector() {
  ProjectorServiceOptions o;
  o.kafka = kafka_;
  o.data_dir = options_.data_dir;
  o.batch_size = options_.batch_size;
  o.wait_durable = wait_durable_;
  auto started = ProjectorService::Start(std::move(o));
  if (!started.ok()) return started.status();
  projector_ = std::move(started).value();
  auto end = projector_->projector().LogEnd();
  if (!end.ok()) return end.status();
  start_end_ = std::move(end).value();
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

// Ready once the projection caught up with the log as it was at start, and
// every lifecycle service has its partitions.
std::string Up::NotReadyReason() {
  if (!caught_up_.load()) {
    auto reached = projector_->projector().Reached(start_end_);
    if (!reached.ok() || !*reached) return "the projection is catching up with the log";
    caught_up_.store(true);
  }
  if (!services_started_.load()) return "the services are starting";
  for (const auto& r : runners_) {
    if (!r->ready()) return r->options().name + " has no partitions yet";
  }
  return "";
}

// Lag per consumer and partition: the projector's from its reader's cached
// watermarks, the services' from the broker (the HTTP API calls this on a
// worker thread).
std::vector<PartitionLag> Up::Lag() {
  std::vector<PartitionLag> out;
  auto stored = projector_->store().GetOffsets();
  for (const auto& tp : projector_->projector().partitions()) {
    const int64_t high = projector_->reader().CachedHighWatermark(tp);
    const int64_t have = stored.ok() && stored->count(tp) ? stored->at(tp) : 0;
    out.push_back({"projector", tp, high < 0 ? 0 : std::max<int64_t>(0, high - have), have, high});
  }
  if (!services_started_.load()) return out;
  std::lock_guard lock(lag_mu_);
  if (!lag_reader_) {
    auto created = eventstore::Reader::Create(kafka_, "orderflow-api-lag");
    if (!created.ok()) return out;
    lag_reader_ = std::move(created).value();
  }
  for (size_t k = 0; k < runners_.size(); ++k) {
    // The coordinator did not answer: this process's own positions, as before
    // the group's were read, rather than no rows (a lag of 0).
    auto positions = GroupPositions(k);
    const auto rows = positions.ok() ? *positions : runners_[k]->committed_offsets();
    for (const auto& [tp, next] : rows) {
      auto w = lag_reader_->QueryWatermarks(tp, std::chrono::seconds(2));
      const int64_t high = w.ok() ? w->high : -1;
      out.push_back({runners_[k]->options().name, tp, high < 0 ? 0 : std::max<int64_t>(0, high - next), next, high});
    }
  }
  return out;
}

// Where service `k`'s whole consumer group stands, per input partition: this
// process's own stored offset for a partition it holds, the group's committed
// offset (OffsetFetch) for one another instance holds or nobody holds between
// a revocation and the next assignment. Every instance commits to the group
// only after its outputs are flushed and its store committed (and repeats the
// commit while idle), so a partition at the log end there has nothing left to
// cause, whichever process handled it.
Result<std::map<eventstore::TopicPartition, int64_t>> Up::GroupPositions(size_t k) {
  const ServiceRunner& runner = *runners_[k];
  const auto held = runner.assigned_partitions();
  const auto local = runner.committed_offsets();
  std::map<eventstore::TopicPartition, int64_t> out;
  for (size_t i = 0; i < runner.options().inputs.size(); ++i) {
    std::vector<eventstore::TopicPartition> partitions;
    for (const std::string& topic : runner.options().inputs[i]) {
      for (const auto& t : topics_) {
        if (t.name != topic) continue;
        for (int32_t p = 0; p < t.partitions; ++p) partitions.push_back({topic, p});
      }
    }
    auto committed = group_offsets_[k][i]->Committed(partitions, std::chrono::seconds(5));
    if (!committed.ok()) return committed.status();
    for (const auto& [tp, next] : *committed) out[tp] = std::max<int64_t>(0, next);
  }
  for (const auto& tp : held) {
    auto it = local.find(tp);
    out[tp] = it == local.end() ? 0 : it->second;
  }
  return out;
}

std::vector<ServiceHealth> Up::Health() {
  std::vector<ServiceHealth> out;
  NotReadyReason();  // updates caught_up_
  const bool caught = caught_up_.load();
  out.push_back({"projector", caught, caught ? "" : "catching up with the log"});
  if (!services_started_.load()) {
    out.push_back({"services", false, "starting"});
    return out;
  }
  for (const auto& r : runners_) out.push_back({r->options().name, r->ready(), r->ready() ? "" : "waiting for partitions"});
  return out;
}

Result<std::vector<StockLevel>> Up::Stock() {
  const ServiceRunner* inventory = nullptr;
  if (services_started_.load()) {
    for (const auto& r : runners_) {
      if (r->options().name == "inventory") inventory = r.get();
    }
  }
  if (inventory == nullptr) return Status::Unavailable("the inventory service is starting");
  std::vector<StockLevel> out;
  for (const auto& item : catalog_.items()) {
    auto stored = inventory->ReadState("stock/" + item.sku);
    if (!stored.ok()) return stored.status();
    int64_t available = item.initial_stock;
    if (*stored) available = std::strtoll((*stored)->c_str(), nullptr, 10);
    out.push_back({item.sku, item.name, available});
  }
  return out;
}

ApiSources Up::MakeApiSources() {
  ApiSources sources;
  sources.store = &projector_->store();
  sources.orders = orders_.get();
  sources.producer = producer_.get();
  sources.catalog = &catalog_;
  sources.orders_topic = eventstore::kOrdersTopic;
  sources.projector_counters = &projector_->projector().counters();
  sources.wait_durable = wait_durable_;
  sources.ops = this;
  return sources;
}

std::map<std::string, uint64_t> Up::DeadLettersParked() {
  std::map<std::string, uint64_t> out = {{"projector", projector_->projector().counters().dead_letters.load()}};
  if (services_started_.load()) {
    for (const auto& r : runners_) out[r->options().name] += r->stats().dead_letters.load();
  }
  return out;
}

Result<std::vector<eventstore::DeadLetter>> Up::DeadLetters() {
  return eventstore::ReadDeadLetters(kafka_, std::chrono::seconds(5));
}

Result<eventstore::RedriveResult> Up::Redrive(int64_t id) {
  return eventstore::Redrive(kafka_, {id}, /*force=*/false, std::chrono::seconds(10));
}

// The lifecycle services, each with its own store under <data-dir>/services/.
Status Up::StartServices() {
  if (options_.lifecycle) {
    LifecycleConfig config;
    config.transit_delay = options_.transit_delay;
    config.payment.max_amount_minor = options_.max_payment_minor;
    config.payment.blocked_customers = options_.blocked_customers;
    for (const std::string& name : LifecycleServiceNames()) {
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
  tasks_.Spawn("projector", [this, nice](const std::atomic<bool>& halt) {
    SetThreadNice(nice);
    return projector_->Run(halt);
  });
  for (auto& runner : runners_) {
    tasks_.Spawn(runner->options().name, [r = runner.get(), nice](const std::atomic<bool>& halt) {
      SetThreadNice(nice);  // before Run creates its consumers
      return r->Run(halt);
    });
  }
  services_started_.store(true);
  // The archiver copies every record of every topic into the archive as it is
  // appended; its errors stop everything.
  if (archive_) {
    archiver_.Spawn("archiver", [this, nice](const std::atomic<bool>& halt) {
      SetThreadNice(nice);
      Status s = RunArchiver(kafka_, topics_, *archive_, halt);
      if (!s.ok()) tasks_.Fail(Status(s.code(), "archiver: " + s.message()));
      return Status::Ok();
    });
  }
}

// Places the simulated orders, paced by --rate.
void Up::Simulate() {
  const auto simulation_start = SteadyClock::now();
  OrderSimulator simulator(catalog_, options_.seed);
  placed_ids_.reserve(options_.simulate);
  if (options_.rate > 0) spdlog::info("simulating {} orders at {}/s", options_.simulate, options_.rate);
  else spdlog::info("simulating {} orders", options_.simulate);
  auto last_report = SteadyClock::now();
  for (uint64_t i = 0; i < options_.simulate && !should_stop(); ++i) {
    if (options_.rate > 0) {
      SleepUntil(simulation_start + std::chrono::microseconds(static_cast<int64_t>(1e6 * i / options_.rate)), stop_);
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
    if (SteadyClock::now() - last_report > std::chrono::seconds(2)) {
      last_report = SteadyClock::now();
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
    auto group = GroupPositions(k);
    if (!group.ok()) return group.status();
    ConsumerPosition p{runners_[k]->options().name, {}, std::nullopt, std::move(group).value()};
    for (const auto& priority_class : runners_[k]->options().inputs) {
      p.topics.insert(p.topics.end(), priority_class.begin(), priority_class.end());
    }
    positions.push_back(std::move(p));
  }
  LogEnds ends;
  for (const auto& t : topics_) {
    for (int32_t p = 0; p < t.partitions; ++p) {
      auto w = meta_reader_->QueryWatermarks({t.name, p}, std::chrono::seconds(5));
      if (!w.ok()) return w.status();
      ends[{t.name, p}] = w->high;
    }
  }
  return services::CheckSettled(positions, ends);
}

// Until every order is terminal (or just projected, without the lifecycle
// services), every simulated order is in the store, and the system has
// settled: an event appended after the projector stopped (a refund, a
// NotificationSent from a service slowed by a rebalance) would leave the
// projection short of the log.
void Up::WaitUntilDone() {
  auto last_log = SteadyClock::now();
  std::string last_line;
  auto unchanged_since = SteadyClock::now();
  auto last_stuck_report = SteadyClock::now() - std::chrono::minutes(1);
  while (!should_stop()) {
    auto counts = projector_->store().CountByStatus();
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
    const bool log_now = counts.ok() && SteadyClock::now() - last_log > std::chrono::seconds(3);
    if (!terminal && !log_now) {
      // Each check scans the status index: not more often than this.
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    auto settled = CheckSettled();
    if (!settled.ok() && !settled.status().IsRetryable()) {
      tasks_.Fail(settled.status());
      break;
    }
    if (terminal && settled.ok() && settled->settled) break;
    if (log_now) {
      last_log = SteadyClock::now();
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
        unchanged_since = SteadyClock::now();
      }
      // Nothing moves although every consumer is at the log end: say which
      // orders are stuck and what their history holds, so the missing step
      // can be told apart (once every 30 s).
      const auto now = SteadyClock::now();
      if (settled.ok() && settled->settled && now - unchanged_since > std::chrono::seconds(15) &&
          now - last_stuck_report > std::chrono::seconds(30)) {
        last_stuck_report = now;
        ReportStuckOrders(*counts);
      }
    }
    // Each check scans the status index: not more often than this.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
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
  const auto deadline = SteadyClock::now() + std::chrono::seconds(20);
  spdlog::info("stopping: letting the services finish what is in the log");
  bool drained = false;
  while (SteadyClock::now() < deadline && !tasks_.halted()) {
    auto settled = CheckSettled();
    drained = settled.ok() && settled->settled;
    if (drained) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
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
  summary_.seconds = std::chrono::duration<double>(SteadyClock::now() - started_).count();
  return summary_;
}

}  // namespace

Result<UpSummary> RunUp(const UpOptions& options, const domain::Catalog& catalog, const std::atomic<bool>& stop,
                        const std::function<void(const UpEndpoints&)>& on_ready) {
  Up up(options, catalog, stop);
  return up.Run(on_ready);
}

}  // namespace orderflow::services

// UpOps (up_ops.h): the running `orderflow up` as the API's operations
// routes see it.
#include "cli/app/up_ops.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "services/lifecycle/host_reactor.h"
#include "services/lifecycle/lifecycle.h"

namespace orderflow::services {

UpOps::UpOps(const eventstore::KafkaConfig& kafka, const std::vector<eventstore::TopicSpec>& topics,
             const domain::Catalog& catalog, ProjectorService& projector,
             const std::vector<std::unique_ptr<ServiceRunner>>& runners,
             const std::vector<std::vector<std::unique_ptr<eventstore::GroupOffsets>>>& group_offsets,
             const std::atomic<bool>& services_started, projections::Offsets start_end)
    : kafka_(kafka), topics_(topics), catalog_(catalog), projector_(projector), runners_(runners),
      group_offsets_(group_offsets), services_started_(services_started), start_end_(std::move(start_end)) {}

UpOps::~UpOps() = default;

// Ready once the projection caught up with the log as it was at start, and
// every lifecycle service has its partitions.
std::string UpOps::NotReadyReason() {
  if (!caught_up_.load()) {
    auto reached = projector_.projector().Reached(start_end_);
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
std::vector<PartitionLag> UpOps::Lag() {
  std::vector<PartitionLag> out;
  auto stored = projector_.store().GetOffsets();
  for (const auto& tp : projector_.projector().partitions()) {
    const int64_t high = projector_.reader().CachedHighWatermark(tp);
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
Result<std::map<eventstore::TopicPartition, int64_t>> UpOps::GroupPositions(size_t k) {
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

std::vector<ServiceHealth> UpOps::Health() {
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

Result<std::vector<StockLevel>> UpOps::Stock() {
  const ServiceRunner* inventory = nullptr;
  std::string prefix;  // where the inventory's state is in its runner's
  if (services_started_.load()) {
    for (const auto& r : runners_) {
      const ServiceOptions& o = r->options();
      if (o.name == "inventory") inventory = r.get();
      if (o.name != "inventory" && std::count(o.producers.begin(), o.producers.end(), "inventory")) {
        inventory = r.get();  // a host (fulfillment): the inventory's state is behind its name
        prefix = HostedStatePrefix("inventory");
      }
    }
  }
  if (inventory == nullptr) return Status::Unavailable("the inventory service is starting");
  std::vector<StockLevel> out;
  for (const auto& item : catalog_.items()) {
    auto stored = inventory->ReadState(prefix + "stock/" + item.sku);
    if (!stored.ok()) return stored.status();
    int64_t available = item.initial_stock;
    if (*stored) available = std::strtoll((*stored)->c_str(), nullptr, 10);
    out.push_back({item.sku, item.name, available});
  }
  return out;
}

std::map<std::string, uint64_t> UpOps::DeadLettersParked() {
  std::map<std::string, uint64_t> out = {{"projector", projector_.projector().counters().dead_letters.load()}};
  if (services_started_.load()) {
    for (const auto& r : runners_) out[r->options().name] += r->stats().dead_letters.load();
  }
  return out;
}

Result<std::vector<eventstore::DeadLetter>> UpOps::DeadLetters() {
  return eventstore::ReadDeadLetters(kafka_, std::chrono::seconds(5));
}

Result<eventstore::RedriveResult> UpOps::Redrive(int64_t id) {
  return eventstore::Redrive(kafka_, {id}, /*force=*/false, std::chrono::seconds(10));
}

}  // namespace orderflow::services

#include "projections/projector.h"

#include "eventstore/backoff.h"
#include "eventstore/dead_letter.h"
#include "eventstore/topics.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace orderflow::projections {
namespace {

// The RocksDB store as a sink: its PreparedBatch behind the SinkBatch face.
class StoreBatch final : public SinkBatch {
 public:
  explicit StoreBatch(PreparedBatch batch) : batch(std::move(batch)) {}
  const BatchStats& stats() const override { return batch.stats(); }
  const Offsets& next_offsets() const override { return batch.next_offsets(); }
  const std::vector<std::pair<size_t, std::string>>& rejections() const override { return batch.rejections(); }
  PreparedBatch batch;
};

class StoreSinkImpl final : public Sink {
 public:
  explicit StoreSinkImpl(ProjectionStore& store) : store_(store) {}
  std::string where() const override { return store_.dir(); }
  std::string rebuild_hint() const override {
    return "Rebuild with `orderflow replay` into a new directory, or restore a snapshot that the log still covers";
  }
  bool pipelined() const override { return true; }
  Result<Offsets> LoadOffsets() override { return store_.GetOffsets(); }
  Result<Offsets> CommittedOffsets() override { return store_.GetOffsets(); }
  Result<std::unique_ptr<SinkBatch>> Prepare(const std::vector<eventstore::Record>& records,
                                             const SinkBatch* in_flight) override {
    const PreparedBatch* previous = in_flight ? &static_cast<const StoreBatch*>(in_flight)->batch : nullptr;
    auto prepared = store_.Prepare(records, previous);
    if (!prepared.ok()) return prepared.status();
    return std::unique_ptr<SinkBatch>(std::make_unique<StoreBatch>(std::move(prepared).value()));
  }
  Status Commit(const SinkBatch& batch) override { return store_.Commit(static_cast<const StoreBatch&>(batch).batch); }
  void Release(std::unique_ptr<SinkBatch> batch, bool committed) override {
    if (committed) store_.KeepCommitted(std::move(static_cast<StoreBatch&>(*batch).batch));
  }
  Status AdvanceOffsets(const Offsets& positions) override { return store_.AdvanceOffsets(positions); }

 private:
  ProjectionStore& store_;
};

}  // namespace

std::unique_ptr<Sink> StoreSink(ProjectionStore& store) { return std::make_unique<StoreSinkImpl>(store); }

Projector::Projector(Sink& sink, eventstore::Reader& reader, ProjectorOptions options)
    : sink_(sink), reader_(reader), options_(std::move(options)) {}

Projector::Projector(ProjectionStore& store, eventstore::Reader& reader, ProjectorOptions options)
    : owned_sink_(StoreSink(store)), sink_(*owned_sink_), reader_(reader), options_(std::move(options)) {}

Projector::~Projector() {
  Status s = Drain();
  if (!s.ok()) spdlog::error("{}: last batch may not have been committed: {}", options_.name, s.ToString());
}

Status Projector::Drain() {
  if (!commit_.valid()) return Status::Ok();
  Status s = commit_.get();
  if (s.ok()) ForOperators(in_flight_->next_offsets());
  sink_.Release(std::move(in_flight_), s.ok());
  return s;
}

Result<Offsets> Projector::LogEnd() const {
  Offsets out;
  const std::vector<eventstore::TopicPartition> tps = partitions();
  auto marks = reader_.QueryWatermarks(tps, options_.metadata_timeout);
  if (!marks.ok()) return marks.status();
  for (size_t i = 0; i < tps.size(); ++i) out[tps[i]] = (*marks)[i].high;
  return out;
}

Status Projector::Start() {
  auto partitions = reader_.Partitions(options_.topics, options_.metadata_timeout);
  if (!partitions.ok()) return partitions.status();
  {
    std::lock_guard lock(partitions_mu_);
    partitions_ = std::move(partitions).value();
  }
  auto stored = sink_.LoadOffsets();
  if (!stored.ok()) return stored.status();
  std::vector<std::pair<eventstore::TopicPartition, int64_t>> positions;
  auto marks = reader_.QueryWatermarks(partitions_, options_.metadata_timeout);
  if (!marks.ok()) return marks.status();
  for (size_t i = 0; i < partitions_.size(); ++i) {
    const eventstore::TopicPartition& tp = partitions_[i];
    int64_t offset = stored->count(tp) ? stored->at(tp) : 0;
    ORDERFLOW_RETURN_IF_ERROR(eventstore::CheckLogCovers(tp, offset, (*marks)[i], sink_.where(), sink_.rebuild_hint()));
    positions.emplace_back(tp, offset);
  }
  for (const auto& [tp, offset] : *stored) {
    if (std::find(partitions_.begin(), partitions_.end(), tp) == partitions_.end()) {
      return Status::OutOfRange(tp.topic + "[" + std::to_string(tp.partition) + "] is in " + sink_.where() +
                                " but not in the cluster; the topic was recreated with fewer partitions. " +
                                sink_.rebuild_hint());
    }
  }
  return reader_.Assign(positions);
}

Result<size_t> Projector::Step() {
  PublishForOperators(/*now=*/false);  // what the steps before committed
  const auto t0 = options_.clock->Now();
  auto records = reader_.Poll(options_.batch_size, options_.poll_timeout, options_.fill_batches);
  const auto t1 = options_.clock->Now();
  totals_.poll_seconds += std::chrono::duration<double>(t1 - t0).count();
  if (!records.ok()) return records.status();
  const size_t polled = records->size();
  if (options_.accept) std::erase_if(*records, [this](const eventstore::Record& r) { return !options_.accept(r); });
  if (records->empty()) {
    ORDERFLOW_RETURN_IF_ERROR(Drain());
    // Transaction markers are never handed out: step the stored offsets over
    // them when nothing came (time travel drops records, so it may not).
    if (polled == 0 && !options_.accept) {
      Offsets positions;
      for (const auto& [tp, position] : reader_.Positions(partitions_)) {
        if (position >= 0) positions[tp] = position;
      }
      auto stored = sink_.CommittedOffsets();
      if (!stored.ok()) return stored.status();
      std::vector<std::pair<eventstore::TopicPartition, int64_t>> moved;
      for (const auto& [tp, position] : positions) {
        if (!stored->count(tp) || stored->at(tp) < position) moved.emplace_back(tp, position);
      }
      if (!moved.empty()) {
        ORDERFLOW_RETURN_IF_ERROR(sink_.AdvanceOffsets(positions));
        ForOperators(Offsets(moved.begin(), moved.end()));
      }
    }
    return polled;
  }
  auto prepared = sink_.Prepare(*records, in_flight_.get());
  if (!prepared.ok()) return prepared.status();
  ORDERFLOW_RETURN_IF_ERROR(Drain());  // batches commit in order
  totals_.apply_seconds += std::chrono::duration<double>(options_.clock->Now() - t1).count();
  std::unique_ptr<SinkBatch> batch = std::move(prepared).value();
  const BatchStats& stats = batch->stats();
  ++totals_.batches;
  totals_.applied += stats.applied;
  totals_.duplicates += stats.duplicates;
  totals_.rejected += stats.rejected;
  totals_.records += records->size();
  for (size_t i = 0; i < stats.applied_by_type.size(); ++i) {
    if (stats.applied_by_type[i] != 0) counters_.applied_by_type[i].fetch_add(stats.applied_by_type[i]);
  }
  counters_.duplicates.fetch_add(stats.duplicates);
  counters_.rejected.fetch_add(stats.rejected);
  // Dead letters are in the log before their batch (and its offsets) commit.
  if (options_.dead_letters != nullptr && !batch->rejections().empty()) {
    const int64_t now = SystemClock().WallMs();
    for (const auto& [index, error] : batch->rejections()) {
      auto d = eventstore::MakeDeadLetter((*records)[index], options_.name, error, 1, now);
      ORDERFLOW_RETURN_IF_ERROR(options_.dead_letters->Append(eventstore::kDeadLetterTopic, d.key, d.value, d.headers));
    }
    ORDERFLOW_RETURN_IF_ERROR(options_.dead_letters->Flush(std::chrono::seconds(30)));
    counters_.dead_letters.fetch_add(batch->rejections().size());
  }
  if (!sink_.pipelined()) {
    if (options_.wait_durable) ORDERFLOW_RETURN_IF_ERROR(options_.wait_durable(batch->next_offsets()));
    ORDERFLOW_RETURN_IF_ERROR(sink_.Commit(*batch));
    ForOperators(batch->next_offsets());
    sink_.Release(std::move(batch), true);
    return records->size();
  }
  in_flight_ = std::move(batch);
  // The records are not needed by the commit: the batch holds copies.
  commit_ = std::async(std::launch::async, [this] {
    if (options_.wait_durable) ORDERFLOW_RETURN_IF_ERROR(options_.wait_durable(in_flight_->next_offsets()));
    return sink_.Commit(*in_flight_);
  });
  return records->size();
}

Result<bool> Projector::Reached(const Offsets& targets) const {
  auto stored = sink_.CommittedOffsets();
  if (!stored.ok()) return stored.status();
  for (const auto& [tp, target] : targets) {
    int64_t have = stored->count(tp) ? stored->at(tp) : 0;
    if (have < target) return false;
  }
  return true;
}

Status Projector::Recover(const Status& cause, std::stop_token stop) {
  eventstore::Backoff backoff(std::chrono::milliseconds(50), options_.max_backoff);
  Status last = cause;
  while (!stop.stop_requested()) {
    const auto wait = backoff.Next();
    spdlog::warn("{}: {}; resuming from the stored offsets in {} ms", options_.name, last.ToString(), wait.count());
    options_.clock->SleepFor(wait, stop);
    last = Drain();
    if (last.ok() || last.IsRetryable()) last = sink_.Reopen();
    if (last.ok()) last = Start();
    if (last.ok()) {
      ++totals_.reopens;
      spdlog::info("{}: resumed", options_.name);
      return Status::Ok();
    }
    if (!last.IsRetryable()) return last;
  }
  return Status::Ok();
}

Status Projector::Run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    const auto started = options_.clock->Now();
    auto n = Step();
    if (n.ok()) {
      // A full batch means more is waiting: it does not wait (catching up is not capped).
      if (*n > 0 && *n < options_.batch_size && options_.min_batch_interval.count() > 0) {
        // Before the lock: a stop already requested runs the callback here, and it takes the lock.
        std::stop_callback wake(stop, [this] {
          std::lock_guard lock(hurry_mu_);
          hurry_cv_.notify_all();
        });
        std::unique_lock lock(hurry_mu_);
        options_.clock->WaitUntil(lock, hurry_cv_, started + options_.min_batch_interval,
                                  [&] { return hurried_ || stop.stop_requested(); });
        hurried_ = false;
      }
      continue;
    }
    if (!n.status().IsRetryable()) return n.status();
    ORDERFLOW_RETURN_IF_ERROR(Recover(n.status(), stop));
  }
  return DrainForStop();
}

void Projector::Hurry() {
  {
    std::lock_guard lock(hurry_mu_);
    hurried_ = true;
  }
  hurry_cv_.notify_all();
}

Status Projector::RunUntilCaughtUp(std::stop_token stop) {
  auto end = LogEnd();
  if (!end.ok()) return end.status();
  while (!stop.stop_requested()) {
    auto reached = Reached(*end);
    if (!reached.ok()) return reached.status();
    if (*reached) break;
    auto n = Step();
    if (n.ok()) continue;
    if (!n.status().IsRetryable()) return n.status();
    ORDERFLOW_RETURN_IF_ERROR(Recover(n.status(), stop));
  }
  if (stop.stop_requested()) return DrainForStop();
  Status drained = Drain();
  PublishForOperators(/*now=*/true);
  return drained;
}

void Projector::ForOperators(const Offsets& committed) {
  if (!options_.commit_for_operators) return;
  for (const auto& [tp, next] : committed) to_publish_[tp] = next;
}

void Projector::PublishForOperators(bool now) {
  if (to_publish_.empty()) return;
  const auto at = options_.clock->Now();
  if (!now && at < next_publish_) return;
  reader_.CommitForOperators({to_publish_.begin(), to_publish_.end()});
  to_publish_.clear();
  next_publish_ = at + std::chrono::seconds(1);
}

Status Projector::DrainForStop() {
  Status s = Drain();
  PublishForOperators(/*now=*/true);
  if (s.ok() || !s.IsRetryable()) return s;
  // State and offsets commit together, so the batch that did not fit is not
  // half written: the next start consumes it again from the stored offsets.
  spdlog::warn("{}: stopped with the last batch perhaps not committed ({}); the next start resumes from the "
               "stored offsets", options_.name, s.ToString());
  return Status::Ok();
}

}  // namespace orderflow::projections

#include "projections/projector.h"

#include "domain/clock.h"
#include "eventstore/backoff.h"
#include "eventstore/dead_letter.h"
#include "eventstore/topics.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

namespace orderflow::projections {

Projector::Projector(ProjectionStore& store, eventstore::Reader& reader, ProjectorOptions options)
    : store_(store), reader_(reader), options_(std::move(options)) {}

Projector::~Projector() {
  Status s = Drain();
  if (!s.ok()) spdlog::error("projector: last batch not committed: {}", s.ToString());
}

Status Projector::Drain() {
  if (!commit_.valid()) return Status::Ok();
  Status s = commit_.get();
  if (s.ok() && options_.commit_for_operators) {
    reader_.CommitForOperators({in_flight_->next_offsets().begin(), in_flight_->next_offsets().end()});
  }
  in_flight_.reset();
  return s;
}

Result<Offsets> Projector::LogEnd() const {
  Offsets out;
  for (const auto& tp : partitions_) {
    auto w = reader_.QueryWatermarks(tp, options_.metadata_timeout);
    if (!w.ok()) return w.status();
    out[tp] = w->high;
  }
  return out;
}

Status Projector::Start() {
  std::vector<eventstore::TopicPartition> partitions;
  for (const std::string& topic : options_.topics) {
    auto count = reader_.PartitionCount(topic, options_.metadata_timeout);
    if (!count.ok()) return count.status();
    for (int32_t p = 0; p < *count; ++p) partitions.push_back({topic, p});
  }
  {
    std::lock_guard lock(partitions_mu_);
    partitions_ = std::move(partitions);
  }
  auto stored = store_.GetOffsets();
  if (!stored.ok()) return stored.status();
  std::vector<std::pair<eventstore::TopicPartition, int64_t>> positions;
  for (const auto& tp : partitions_) {
    int64_t offset = stored->count(tp) ? stored->at(tp) : 0;
    auto w = reader_.QueryWatermarks(tp, options_.metadata_timeout);
    if (!w.ok()) return w.status();
    ORDERFLOW_RETURN_IF_ERROR(eventstore::CheckLogCovers(
        tp, offset, *w, store_.dir(),
        "Rebuild with `orderflow replay` into a new directory, or restore a snapshot that the log still covers"));
    positions.emplace_back(tp, offset);
  }
  for (const auto& [tp, offset] : *stored) {
    if (std::find(partitions_.begin(), partitions_.end(), tp) == partitions_.end()) {
      return Status::OutOfRange(tp.topic + "[" + std::to_string(tp.partition) +
                                "] is in the store but not in the cluster; the topic was recreated with fewer"
                                " partitions. Rebuild with `orderflow replay` into a new directory");
    }
  }
  return reader_.Assign(positions);
}

Result<size_t> Projector::Step() {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto records = reader_.Poll(options_.batch_size, options_.poll_timeout, options_.fill_batches);
  const auto t1 = Clock::now();
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
      auto stored = store_.GetOffsets();
      if (!stored.ok()) return stored.status();
      std::vector<std::pair<eventstore::TopicPartition, int64_t>> moved;
      for (const auto& [tp, position] : positions) {
        if (!stored->count(tp) || stored->at(tp) < position) moved.emplace_back(tp, position);
      }
      if (!moved.empty()) {
        ORDERFLOW_RETURN_IF_ERROR(store_.AdvanceOffsets(positions));
        if (options_.commit_for_operators) reader_.CommitForOperators(moved);
      }
    }
    return polled;
  }
  auto prepared = store_.Prepare(*records, in_flight_ ? &*in_flight_ : nullptr);
  if (!prepared.ok()) return prepared.status();
  ORDERFLOW_RETURN_IF_ERROR(Drain());  // batches commit in order
  totals_.apply_seconds += std::chrono::duration<double>(Clock::now() - t1).count();
  const BatchStats& stats = prepared->stats();
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
  if (options_.dead_letters != nullptr && !prepared->rejections().empty()) {
    const int64_t now = SystemClock().WallMs();
    for (const auto& [index, error] : prepared->rejections()) {
      auto d = eventstore::MakeDeadLetter((*records)[index], "projector", error, 1, now);
      ORDERFLOW_RETURN_IF_ERROR(options_.dead_letters->Append(eventstore::kDeadLetterTopic, d.key, d.value, d.headers));
    }
    ORDERFLOW_RETURN_IF_ERROR(options_.dead_letters->Flush(std::chrono::seconds(30)));
    counters_.dead_letters.fetch_add(prepared->rejections().size());
  }
  in_flight_.emplace(std::move(prepared).value());
  // The records are not needed by the commit: the WriteBatch holds copies.
  commit_ = std::async(std::launch::async, [this] {
    if (options_.wait_durable) ORDERFLOW_RETURN_IF_ERROR(options_.wait_durable(in_flight_->next_offsets()));
    return store_.Commit(*in_flight_);
  });
  return records->size();
}

Result<bool> Projector::Reached(const Offsets& targets) const {
  auto stored = store_.GetOffsets();
  if (!stored.ok()) return stored.status();
  for (const auto& [tp, target] : targets) {
    int64_t have = stored->count(tp) ? stored->at(tp) : 0;
    if (have < target) return false;
  }
  return true;
}

Status Projector::Run(const std::atomic<bool>& stop) {
  eventstore::Backoff backoff(std::chrono::milliseconds(50), std::chrono::milliseconds(5000));
  auto sleep = [&](std::chrono::milliseconds d) {
    for (auto waited = std::chrono::milliseconds(0); waited < d && !stop.load(); waited += std::chrono::milliseconds(10)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
  while (!stop.load()) {
    auto n = Step();
    if (n.ok()) {
      backoff.Reset();
      continue;
    }
    if (!n.status().IsRetryable()) return n.status();
    const auto wait = backoff.Next();
    spdlog::warn("projector: {}; resuming from the stored offsets in {} ms", n.status().ToString(), wait.count());
    sleep(wait);
    // The failed step may have dropped records it had polled: re-assign every
    // partition at the committed offsets so nothing is skipped.
    while (!stop.load()) {
      Status drained = Drain();
      if (!drained.ok() && !drained.IsRetryable()) return drained;
      Status restarted = Start();
      if (restarted.ok()) break;
      if (!restarted.IsRetryable()) return restarted;
      sleep(backoff.Next());
    }
  }
  return Drain();
}

}  // namespace orderflow::projections

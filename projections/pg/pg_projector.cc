#include "projections/pg/pg_projector.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "domain/clock.h"
#include "eventstore/backoff.h"
#include "eventstore/dead_letter.h"
#include "eventstore/topics.h"

namespace orderflow::projections {

PgProjector::PgProjector(PgProjectorOptions options) : options_(std::move(options)) {}
PgProjector::~PgProjector() = default;

Result<std::unique_ptr<PgProjector>> PgProjector::Start(PgProjectorOptions options) {
  std::unique_ptr<PgProjector> p(new PgProjector(std::move(options)));
  const std::string suffix = "-" + p->options_.instance;
  auto reader = eventstore::Reader::Create(p->options_.kafka, "orderflow-pg-projector" + suffix);
  if (!reader.ok()) return reader.status();
  p->reader_ = std::move(reader).value();
  auto producer = eventstore::Producer::Create(p->options_.kafka, "orderflow-pg-projector-dlq" + suffix);
  if (!producer.ok()) return producer.status();
  p->dead_letters_ = std::move(producer).value();
  for (const char* topic : {eventstore::kOrdersTopic, eventstore::kInventoryTopic}) {
    auto count = p->reader_->PartitionCount(topic, p->options_.metadata_timeout);
    if (!count.ok()) return count.status();
    for (int32_t i = 0; i < *count; ++i) p->partitions_.push_back({topic, i});
  }
  ORDERFLOW_RETURN_IF_ERROR(p->Connect());
  ORDERFLOW_RETURN_IF_ERROR(p->Assign());
  return p;
}

Status PgProjector::Connect() {
  model_.reset();  // ends the old session first, releasing its writer lock
  PgOptions pg = options_.pg;
  pg.lock_wait = options_.writer_lock_wait;
  auto model = PgReadModel::Open(pg, options_.catalog);
  if (!model.ok()) return model.status();
  model_ = std::move(model).value();
  return Status::Ok();
}

Status PgProjector::Assign() {
  auto stored = model_->LoadOffsets();
  if (!stored.ok()) return stored.status();
  std::vector<std::pair<eventstore::TopicPartition, int64_t>> positions;
  for (const auto& tp : partitions_) {
    const int64_t offset = stored->count(tp) ? stored->at(tp) : 0;
    auto w = reader_->QueryWatermarks(tp, options_.metadata_timeout);
    if (!w.ok()) return w.status();
    ORDERFLOW_RETURN_IF_ERROR(eventstore::CheckLogCovers(
        tp, offset, *w, "PostgreSQL schema " + options_.pg.schema,
        "Rebuild it with `orderflow replay --to-postgres URL`"));
    positions.emplace_back(tp, offset);
  }
  return reader_->Assign(positions);
}

Result<size_t> PgProjector::Step() {
  auto records = reader_->Poll(options_.batch_size, options_.poll_timeout);
  if (!records.ok()) return records.status();
  if (records->empty()) {
    // Transaction markers are never handed out: step the stored offsets over them.
    projections::Offsets positions;
    for (const auto& [tp, position] : reader_->Positions(partitions_)) {
      if (position >= 0) positions[tp] = position;
    }
    ORDERFLOW_RETURN_IF_ERROR(model_->AdvanceOffsets(positions));
    return size_t{0};
  }
  auto batch = model_->Prepare(*records);
  if (!batch.ok()) return batch.status();
  // Dead letters are in the log before their batch (and its offsets) commit.
  if (!batch->rejections().empty()) {
    const int64_t now = SystemClock().WallMs();
    for (const auto& [index, error] : batch->rejections()) {
      auto d = eventstore::MakeDeadLetter((*records)[index], "pg-projector", error, 1, now);
      ORDERFLOW_RETURN_IF_ERROR(dead_letters_->Append(eventstore::kDeadLetterTopic, d.key, d.value, d.headers));
    }
    ORDERFLOW_RETURN_IF_ERROR(dead_letters_->Flush(std::chrono::seconds(30)));
  }
  ORDERFLOW_RETURN_IF_ERROR(model_->Commit(*batch));
  reader_->CommitForOperators({batch->next_offsets().begin(), batch->next_offsets().end()});
  const PgBatchStats& stats = batch->stats();
  ++totals_.batches;
  totals_.applied += stats.applied;
  totals_.duplicates += stats.duplicates;
  totals_.rejected += stats.rejected;
  totals_.records += records->size();
  return records->size();
}

// After a transient error: wait, reconnect to PostgreSQL if the session is
// gone, and re-assign every partition at the stored offsets (a failed step
// may have dropped records it had polled).
Status PgProjector::Recover(const Status& cause, const std::atomic<bool>& stop) {
  eventstore::Backoff backoff(std::chrono::milliseconds(100), options_.max_backoff);
  Status last = cause;
  while (!stop.load()) {
    const auto wait = backoff.Next();
    spdlog::warn("pg-projector: {}; resuming from the stored offsets in {} ms", last.ToString(), wait.count());
    for (auto waited = std::chrono::milliseconds(0); waited < wait && !stop.load(); waited += std::chrono::milliseconds(10)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    last = Connect();
    if (last.ok()) last = Assign();
    if (last.ok()) {
      ++totals_.reconnects;
      spdlog::info("pg-projector: resumed");
      return Status::Ok();
    }
    // kInUse after Connect's own wait (writer_lock_wait): another writer took
    // over while we were away; we wait for it as a standby would.
    if (!last.IsRetryable() && last.code() != StatusCode::kInUse) return last;
  }
  return Status::Ok();
}

Status PgProjector::Run(const std::atomic<bool>& stop) {
  while (!stop.load()) {
    auto n = Step();
    if (n.ok()) continue;
    if (!n.status().IsRetryable()) return n.status();
    ORDERFLOW_RETURN_IF_ERROR(Recover(n.status(), stop));
  }
  return Status::Ok();
}

Result<projections::Offsets> PgProjector::LogEnd() {
  projections::Offsets end;
  for (const auto& tp : partitions_) {
    auto w = reader_->QueryWatermarks(tp, options_.metadata_timeout);
    if (!w.ok()) return w.status();
    end[tp] = w->high;
  }
  return end;
}

// The read model mirrors its committed offsets: no database round trip per step.
bool PgProjector::Reached(const projections::Offsets& targets) const {
  const projections::Offsets& stored = model_->committed_offsets();
  for (const auto& [tp, target] : targets) {
    if ((stored.count(tp) ? stored.at(tp) : 0) < target) return false;
  }
  return true;
}

Status PgProjector::RunUntilCaughtUp(const std::atomic<bool>& stop) {
  auto end = LogEnd();
  if (!end.ok()) return end.status();
  while (!stop.load() && !Reached(*end)) {
    auto n = Step();
    if (n.ok()) continue;
    if (!n.status().IsRetryable()) return n.status();
    ORDERFLOW_RETURN_IF_ERROR(Recover(n.status(), stop));
  }
  return Status::Ok();
}

}  // namespace orderflow::projections

#include "projections/pg/pg_projector.h"

#include "eventstore/topics.h"

namespace orderflow::projections {
namespace {

class PgSinkBatch final : public SinkBatch {
 public:
  explicit PgSinkBatch(PgBatch batch) : batch(std::move(batch)) {}
  const BatchStats& stats() const override { return batch.stats(); }
  const Offsets& next_offsets() const override { return batch.next_offsets(); }
  const std::vector<std::pair<size_t, std::string>>& rejections() const override { return batch.rejections(); }
  PgBatch batch;
};

}  // namespace

Result<std::unique_ptr<PgSink>> PgSink::Open(PgOptions pg, domain::Catalog catalog) {
  std::unique_ptr<PgSink> sink(new PgSink(std::move(pg), std::move(catalog)));
  ORDERFLOW_RETURN_IF_ERROR(sink->Connect());
  return sink;
}

std::string PgSink::where() const { return "PostgreSQL schema " + pg_.schema; }
std::string PgSink::rebuild_hint() const { return "Rebuild it with `orderflow replay --to-postgres URL`"; }
Result<Offsets> PgSink::LoadOffsets() { return model_->LoadOffsets(); }
Result<Offsets> PgSink::CommittedOffsets() { return model_->committed_offsets(); }

Result<std::unique_ptr<SinkBatch>> PgSink::Prepare(const std::vector<eventstore::Record>& records,
                                                   const SinkBatch* /*in_flight: never, not pipelined*/) {
  auto batch = model_->Prepare(records);
  if (!batch.ok()) return batch.status();
  return std::unique_ptr<SinkBatch>(std::make_unique<PgSinkBatch>(std::move(batch).value()));
}

Status PgSink::Commit(const SinkBatch& batch) { return model_->Commit(static_cast<const PgSinkBatch&>(batch).batch); }
Status PgSink::AdvanceOffsets(const Offsets& positions) { return model_->AdvanceOffsets(positions); }

Status PgSink::Connect() {
  model_.reset();  // ends the old session first, releasing its writer lock
  auto model = PgReadModel::Open(pg_, catalog_);
  if (!model.ok()) return model.status();
  model_ = std::move(model).value();
  return Status::Ok();
}

Status PgSink::Reopen() {
  Status s = Connect();
  // kInUse after Open's own wait (lock_wait): another writer took over while
  // we were away; we wait for it as a standby would.
  if (s.code() == StatusCode::kInUse) return Status::Unavailable(s.message());
  return s;
}

PgProjector::~PgProjector() = default;

Result<std::unique_ptr<PgProjector>> PgProjector::Start(PgProjectorOptions options) {
  std::unique_ptr<PgProjector> p(new PgProjector());
  const std::string suffix = "-" + options.instance;
  auto reader = eventstore::Reader::Create(options.kafka, "orderflow-pg-projector" + suffix);
  if (!reader.ok()) return reader.status();
  p->reader_ = std::move(reader).value();
  auto producer = eventstore::Producer::Create(options.kafka, "orderflow-pg-projector-dlq" + suffix);
  if (!producer.ok()) return producer.status();
  p->dead_letters_ = std::move(producer).value();
  PgOptions pg = options.pg;
  pg.lock_wait = options.writer_lock_wait;
  auto sink = PgSink::Open(std::move(pg), options.catalog);
  if (!sink.ok()) return sink.status();
  p->sink_ = std::move(sink).value();

  ProjectorOptions popts;
  popts.name = "pg-projector";
  popts.topics = {eventstore::kOrdersTopic, eventstore::kInventoryTopic};
  popts.batch_size = options.batch_size;
  popts.poll_timeout = options.poll_timeout;
  popts.metadata_timeout = options.metadata_timeout;
  popts.max_backoff = options.max_backoff;
  popts.dead_letters = p->dead_letters_.get();
  popts.commit_for_operators = true;
  p->projector_ = std::make_unique<Projector>(*p->sink_, *p->reader_, popts);
  ORDERFLOW_RETURN_IF_ERROR(p->projector_->Start());
  return p;
}

}  // namespace orderflow::projections

// `orderflow service pg-projector`: keeps the PostgreSQL read model
// (pg_read_model.h) up to date from orders.events and inventory.events, with
// the same loop as the RocksDB projection (projections/projector.h) over the
// read model as a Sink.
//
// Offsets live in the read model, written in the same transaction as each
// batch's rows: after a SIGKILL the projector resumes from them. Records that
// do not decode are parked on orders.dlq (service "pg-projector") before
// their batch commits. When PostgreSQL or Kafka goes away, the projector
// waits with backoff, reconnects and resumes from the stored offsets.
#pragma once

#include <stop_token>
#include <chrono>
#include <memory>
#include <string>

#include "domain/catalog.h"
#include "domain/status.h"
#include "eventstore/kafka.h"
#include "projections/pg/pg_read_model.h"
#include "projections/projector.h"
#include "projections/sink.h"

namespace orderflow::projections {

struct PgProjectorOptions {
  eventstore::KafkaConfig kafka;
  PgOptions pg;
  domain::Catalog catalog = domain::Catalog::Demo();  // initial stock per SKU
  std::string instance = "1";  // names the Kafka clients
  size_t batch_size = 5000;
  std::chrono::milliseconds poll_timeout{100};
  std::chrono::milliseconds metadata_timeout{10000};
  std::chrono::milliseconds max_backoff{5000};
  // At start and on reconnecting: how long to wait for the writer lock that
  // the session of a killed predecessor (or of our own lost connection) holds
  // until PostgreSQL notices it is gone.
  std::chrono::milliseconds writer_lock_wait{10000};
};

// The read model as a sink: not pipelined (each batch commits before the next
// is prepared: Prepare reads the rows the previous batch wrote). Reopen
// connects again; a schema another writer took over meanwhile (kInUse after
// writer_lock_wait) is retried, as a standby waits.
class PgSink final : public Sink {
 public:
  // Connects (PgReadModel::Open, with its errors).
  static Result<std::unique_ptr<PgSink>> Open(PgOptions pg, domain::Catalog catalog);

  std::string where() const override;
  std::string rebuild_hint() const override;
  bool pipelined() const override { return false; }
  Result<Offsets> LoadOffsets() override;
  Result<Offsets> CommittedOffsets() override;  // the read model's mirror: no round trip
  Result<std::unique_ptr<SinkBatch>> Prepare(const std::vector<eventstore::Record>& records,
                                             const SinkBatch* in_flight) override;
  Status Commit(const SinkBatch& batch) override;
  Status AdvanceOffsets(const Offsets& positions) override;
  Status Reopen() override;

 private:
  PgSink(PgOptions pg, domain::Catalog catalog) : pg_(std::move(pg)), catalog_(std::move(catalog)) {}
  Status Connect();  // a new session (PgReadModel::Open), after ending the old one
  PgOptions pg_;
  domain::Catalog catalog_;
  std::unique_ptr<PgReadModel> model_;
};

class PgProjector {
 public:
  // Connects to PostgreSQL (migrating the schema) and Kafka, and assigns each
  // partition at its stored offset. Errors: those of PgReadModel::Open, and
  // kOutOfRange when the log no longer holds a stored offset.
  static Result<std::unique_ptr<PgProjector>> Start(PgProjectorOptions options);
  ~PgProjector();

  // Applies what arrives until `stop` is set. Transient errors (PostgreSQL or
  // Kafka unavailable) are retried with backoff from the stored offsets.
  Status Run(std::stop_token stop) { return projector_->Run(stop); }
  // As Run, but returns once the log's end as it is now is applied.
  Status RunUntilCaughtUp(std::stop_token stop) { return projector_->RunUntilCaughtUp(stop); }

  const ProjectorTotals& totals() const { return projector_->totals(); }

 private:
  PgProjector() = default;
  std::unique_ptr<PgSink> sink_;
  std::unique_ptr<eventstore::Reader> reader_;
  std::unique_ptr<eventstore::Producer> dead_letters_;
  std::unique_ptr<Projector> projector_;  // last: destroyed first
};

}  // namespace orderflow::projections

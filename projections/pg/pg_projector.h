// `orderflow service pg-projector`: keeps the PostgreSQL read model
// (pg_read_model.h) up to date from orders.events and inventory.events.
//
// Offsets live in the read model, written in the same transaction as each
// batch's rows: after a SIGKILL the projector resumes from them. Records that
// do not decode are parked on orders.dlq (service "pg-projector") before
// their batch commits. When PostgreSQL or Kafka goes away, the projector
// waits with backoff, reconnects and resumes from the stored offsets.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "domain/catalog.h"
#include "domain/status.h"
#include "eventstore/kafka.h"
#include "projections/pg/pg_read_model.h"

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

struct PgProjectorTotals {
  uint64_t batches = 0;
  uint64_t applied = 0;
  uint64_t duplicates = 0;
  uint64_t rejected = 0;
  uint64_t records = 0;
  uint64_t reconnects = 0;
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
  Status Run(const std::atomic<bool>& stop);
  // As Run, but returns once the log's end as it is now is applied.
  Status RunUntilCaughtUp(const std::atomic<bool>& stop);

  const PgProjectorTotals& totals() const { return totals_; }

 private:
  explicit PgProjector(PgProjectorOptions options);
  Status Connect();
  Status Assign();
  Result<size_t> Step();
  Status Recover(const Status& cause, const std::atomic<bool>& stop);
  bool Reached(const projections::Offsets& targets) const;
  Result<projections::Offsets> LogEnd();

  PgProjectorOptions options_;
  std::unique_ptr<PgReadModel> model_;
  std::unique_ptr<eventstore::Reader> reader_;
  std::unique_ptr<eventstore::Producer> dead_letters_;
  std::vector<eventstore::TopicPartition> partitions_;
  PgProjectorTotals totals_;
};

}  // namespace orderflow::projections

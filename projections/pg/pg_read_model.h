// The PostgreSQL read model: orders.events and inventory.events as SQL
// tables, for analysts and other systems (docs/sql.md).
//
// Tables, in one PostgreSQL schema (default "orderflow"):
//   orders        one row per order: current status, totals, times (the fold)
//   order_lines   the lines of each order
//   order_events  every applied event: type, schema version, time, log
//                 position, payload as JSON (upcast to the current schema);
//                 primary key (topic, partition, log_offset)
//   stock         per SKU: catalog stock, added, reserved, released, available
//   rejected_records  records that did not decode (also parked on orders.dlq)
//   offsets       next offset to consume per topic and partition
//   schema_migrations  the migrations applied
// plus views that give the figures of `orderflow analytics`.
//
// Commit() writes a batch's rows and the partitions' next offsets in ONE
// PostgreSQL transaction, so a crash at any point leaves all of a batch or
// none of it, and consumption resumes at the stored offsets: nothing lost,
// nothing applied twice (the same contract as the RocksDB stores).
//
// One writer per schema: Open takes a session advisory lock, which the
// database releases when the connection ends (also on SIGKILL).
//
// Not thread-safe: one thread uses a PgReadModel.
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "domain/catalog.h"
#include "domain/events.h"
#include "domain/status.h"
#include "eventstore/kafka.h"
#include "projections/store.h"

namespace orderflow::projections {

// The newest read-model schema this code knows (schema_migrations.version).
// A database with a newer one is refused: an older build would misread it.
inline constexpr int kPgSchemaVersion = 1;

struct PgOptions {
  std::string url;                // libpq connection URI or key=value string
  std::string schema = "orderflow";  // the PostgreSQL schema holding the tables
  // How long Open waits for another session's writer lock before kInUse. A
  // writer killed a moment ago still holds it until its backend notices, which
  // takes as long as the statement it was running.
  std::chrono::milliseconds lock_wait{0};
};

using PgBatchStats = BatchStats;

// A batch folded in memory, ready to be written. Move-only.
class PgBatch {
 public:
  PgBatch();
  ~PgBatch();
  PgBatch(PgBatch&&) noexcept;
  PgBatch& operator=(PgBatch&&) noexcept;

  const PgBatchStats& stats() const;
  // The records that did not decode: (index in Prepare's input, error). The
  // caller parks them on orders.dlq before it commits the batch.
  const std::vector<std::pair<size_t, std::string>>& rejections() const;
  // The next offset of every partition the batch consumed.
  const projections::Offsets& next_offsets() const;

 private:
  friend class PgReadModel;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class PgReadModel {
 public:
  // Connects, takes the schema's writer lock, applies the migrations the
  // schema lacks, and records the catalog's initial stock.
  // Errors: kUnavailable when the database cannot be reached (retryable);
  // kInUse when another writer holds the schema; kFailedPrecondition when the
  // schema is newer than this build.
  static Result<std::unique_ptr<PgReadModel>> Open(const PgOptions& options, const domain::Catalog& catalog);
  ~PgReadModel();

  // Next offset to consume per partition, as last committed.
  Result<projections::Offsets> LoadOffsets();

  // Folds `records` (in log order per partition) in memory on top of the
  // stored rows: records below the stored offsets are skipped, events the
  // order already applied are dropped. Reads the orders the batch touches.
  Result<PgBatch> Prepare(const std::vector<eventstore::Record>& records);
  // Writes a prepared batch's rows and next offsets in one transaction.
  // Commit batches in the order they were prepared, each before the next
  // Prepare (Prepare reads what the previous batch wrote).
  Status Commit(const PgBatch& batch);

  // Moves stored offsets forward to `positions` where they are behind,
  // changing no rows (transaction markers the consumer stepped over).
  Status AdvanceOffsets(const projections::Offsets& positions);

  // The offsets as after the last commit (or LoadOffsets), without asking the database.
  const projections::Offsets& committed_offsets() const;

  const PgOptions& options() const { return options_; }

 private:
  struct Impl;
  PgReadModel(PgOptions options, std::unique_ptr<Impl> impl);
  PgOptions options_;
  std::unique_ptr<Impl> impl_;
};

// `orderflow replay --to-postgres`: the read model rebuilt from offset zero.
struct PgRebuildOptions {
  eventstore::KafkaConfig kafka;
  PgOptions pg;
  domain::Catalog catalog = domain::Catalog::Demo();  // initial stock per SKU
  std::chrono::milliseconds metadata_timeout{10000};
  // Called about once a second: records read so far, records to read.
  std::function<void(uint64_t done, uint64_t total)> progress;
};
struct PgRebuildResult {
  uint64_t records = 0;
  uint64_t applied = 0;
  uint64_t duplicates = 0;
  uint64_t rejected = 0;
  uint64_t orders = 0;
  double seconds = 0;
  double events_per_second = 0;
};
// Reads both topics up to their ends as when started, COPYs the rows into a
// fresh schema "<schema>_rebuild" and swaps it in for `schema` at the end, in
// one transaction: readers use the old tables until then. Takes the writer
// lock of `schema` (kInUse while a pg-projector runs: stop it first; it
// resumes from the rebuilt offsets).
Result<PgRebuildResult> RebuildPostgres(const PgRebuildOptions& options);

}  // namespace orderflow::projections

// Sink: what a projection loop (projector.h) writes batches to. Two exist:
// the RocksDB store (StoreSink, below) and the PostgreSQL read model
// (pg/pg_projector.h). Both keep each batch's state and the next offset of
// every partition it consumed in one atomic write, so the loop resumes from
// LoadOffsets after a crash and applies nothing twice.
//
// Threads: the loop calls everything from one thread, except that a pipelined
// sink's Commit runs on a helper thread while the next batch is prepared.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "domain/status.h"
#include "eventstore/kafka.h"
#include "projections/store.h"

namespace orderflow::projections {

// A batch decoded and applied in memory, not yet written.
class SinkBatch {
 public:
  virtual ~SinkBatch() = default;
  virtual const BatchStats& stats() const = 0;
  // The next offset of every partition the batch consumed.
  virtual const Offsets& next_offsets() const = 0;
  // The records that did not decode: (index in Prepare's input, error). The
  // loop parks them on orders.dlq before it commits the batch.
  virtual const std::vector<std::pair<size_t, std::string>>& rejections() const = 0;
};

class Sink {
 public:
  virtual ~Sink() = default;

  // Where the state lives, for errors: "the store in DIR", "PostgreSQL schema S".
  virtual std::string where() const = 0;
  // What an operator does when the log no longer covers the stored offsets.
  virtual std::string rebuild_hint() const = 0;
  // True when a batch may be prepared while the previous one commits on
  // another thread (Prepare sees `in_flight`'s state); false when each batch
  // commits before the next is prepared.
  virtual bool pipelined() const = 0;

  // The next offset to consume per partition, as committed (read from the
  // sink's storage: the loop calls it when it starts and restarts).
  virtual Result<Offsets> LoadOffsets() = 0;
  // The same, as this process last committed or loaded them (cheap: called
  // to decide whether the loop has caught up).
  virtual Result<Offsets> CommittedOffsets() = 0;
  // Folds `records` (log order per partition) on top of the stored state and
  // `in_flight` (the batch still committing, or null).
  virtual Result<std::unique_ptr<SinkBatch>> Prepare(const std::vector<eventstore::Record>& records,
                                                     const SinkBatch* in_flight) = 0;
  // Writes a prepared batch and its next offsets atomically. Batches commit
  // in the order they were prepared.
  virtual Status Commit(const SinkBatch& batch) = 0;
  // The loop hands back every batch Commit wrote (`committed`), in commit
  // order, before it prepares a batch that does not see it as in flight; and
  // may hand back one whose Commit failed (false). A sink may keep what a
  // committed batch holds for the batches to come (the store keeps its
  // orders: ProjectionStore::KeepCommitted).
  virtual void Release(std::unique_ptr<SinkBatch> batch, bool committed) {}
  // Moves stored offsets forward to `positions` where they are behind,
  // changing no state (transaction markers the consumer stepped over).
  virtual Status AdvanceOffsets(const Offsets& positions) = 0;
  // After a transient error, before the loop assigns its partitions again:
  // reconnect what was lost (PostgreSQL's session). Retryable errors are retried.
  virtual Status Reopen() { return Status::Ok(); }
};

// The RocksDB projection as a sink (pipelined). `store` must outlive it.
std::unique_ptr<Sink> StoreSink(ProjectionStore& store);

}  // namespace orderflow::projections

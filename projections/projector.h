// Projector: feeds a ProjectionStore from the log, batch by batch.
//
// Start() checks that the log still holds every offset the store needs (the
// log start is not past the stored offset, the log end is not before it) and
// assigns the reader there; Step() polls one batch and applies it atomically
// with its offsets. Steps are pipelined: batch k commits on a helper thread
// while batch k+1 is decoded and applied in memory, so a Step may return
// before its batch is durable; Drain() (and an idle Step) waits for it.
// Not thread-safe: one thread drives a Projector; the store
// may be queried from other threads meanwhile.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "domain/status.h"
#include "eventstore/kafka.h"
#include "projections/store.h"

namespace orderflow::projections {

struct ProjectorOptions {
  std::vector<std::string> topics;  // every partition of each is consumed
  size_t batch_size = 5000;         // records per WriteBatch at most
  std::chrono::milliseconds poll_timeout{100};
  bool fill_batches = false;  // wait for full batches (replay) instead of applying what is there (live)
  // If set, only records it accepts are applied (time travel); the others are
  // dropped without advancing their partition's stored offset.
  std::function<bool(const eventstore::Record&)> accept;
  std::chrono::milliseconds metadata_timeout{10000};
  // If set, records that do not decode are also parked on orders.dlq (as
  // service "projector") before their batch commits. Replay leaves it unset.
  eventstore::Producer* dead_letters = nullptr;
  // If set, a batch commits only once this returns for its next offsets (the
  // log is durable that far: `orderflow up` on the embedded broker).
  std::function<Status(const Offsets&)> wait_durable;
  // After each commit, also commit the offsets to the reader's consumer group
  // (information for operators: `orderflow lag`). Live projectors set it; replay does not.
  bool commit_for_operators = false;
};

// Counters another thread may read while the projector runs (metrics).
struct ProjectorCounters {
  std::array<std::atomic<uint64_t>, domain::kEventTypeCount> applied_by_type{};
  std::atomic<uint64_t> duplicates{0};
  std::atomic<uint64_t> rejected{0};
  std::atomic<uint64_t> dead_letters{0};  // records parked on orders.dlq
};

struct ProjectorTotals {
  uint64_t applied = 0;
  uint64_t duplicates = 0;
  uint64_t rejected = 0;
  uint64_t records = 0;  // records read from the log (incl. re-deliveries)
  double poll_seconds = 0;   // time spent waiting for and copying records
  double apply_seconds = 0;  // time spent decoding, applying and writing
};

class Projector {
 public:
  // `store` and `reader` must outlive the projector.
  Projector(ProjectionStore& store, eventstore::Reader& reader, ProjectorOptions options);
  ~Projector();  // drains; errors are logged

  // Verifies log bounds and assigns every partition at its stored offset (0 if
  // none). Errors: kOutOfRange naming topic, partition and offsets when the log
  // no longer covers the stored offset; kNotFound for a missing topic.
  Status Start();

  // Polls one batch, prepares it and hands it to the committer. Returns the
  // number of records read; when none arrived, drains the batch in flight.
  // An error from committing the previous batch is returned here.
  Result<size_t> Step();

  // Waits until the batch in flight (if any) is committed.
  Status Drain();

  // True when every partition's stored offset has reached `targets`.
  Result<bool> Reached(const Offsets& targets) const;

  // Current end of the log (high watermark) of every assigned partition.
  Result<Offsets> LogEnd() const;

  // Runs Step until `stop` is set or an error occurs (transient errors are
  // retried with backoff).
  Status Run(const std::atomic<bool>& stop);

  const ProjectorTotals& totals() const { return totals_; }
  const ProjectorCounters& counters() const { return counters_; }
  // The partitions projected; safe to call from any thread (HTTP /metrics
  // reads it while the projector thread may be restarting).
  std::vector<eventstore::TopicPartition> partitions() const {
    std::lock_guard lock(partitions_mu_);
    return partitions_;
  }

 private:
  ProjectionStore& store_;
  eventstore::Reader& reader_;
  ProjectorOptions options_;
  // Written by Start (the projector thread) under partitions_mu_; that thread reads it unlocked.
  std::vector<eventstore::TopicPartition> partitions_;
  mutable std::mutex partitions_mu_;
  ProjectorTotals totals_;
  ProjectorCounters counters_;
  std::optional<PreparedBatch> in_flight_;
  std::future<Status> commit_;
};

}  // namespace orderflow::projections

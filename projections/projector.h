// Projector: the one loop that feeds a projection from the log, batch by
// batch, into a Sink (sink.h): the RocksDB store or the PostgreSQL read model.
//
// Start() checks that the log still holds every offset the sink needs (the
// log start is not past the stored offset, the log end is not before it) and
// assigns the reader there; Step() polls one batch and applies it atomically
// with its offsets. On a pipelined sink (the store) batch k commits on a
// helper thread while batch k+1 is decoded and applied in memory, so a Step
// may return before its batch is durable; Drain() (and an idle Step) waits
// for it. Records that do not decode are parked on orders.dlq before their
// batch commits (when `dead_letters` is set). Run() retries transient errors
// with backoff: it reopens the sink and resumes from the stored offsets.
// Not thread-safe: one thread drives a Projector; the sink
// may be queried from other threads meanwhile.
#pragma once

#include <array>
#include <atomic>
#include <stop_token>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "domain/clock.h"
#include "domain/status.h"
#include "eventstore/kafka.h"
#include "projections/sink.h"
#include "projections/store.h"

namespace orderflow::projections {

struct ProjectorOptions {
  std::string name = "projector";   // in the log, and the service named on dead letters
  std::vector<std::string> topics;  // every partition of each is consumed
  size_t batch_size = 5000;         // records per WriteBatch at most
  std::chrono::milliseconds poll_timeout{100};
  // Run() starts a step at least this long after one that read records but
  // not a full batch, so the next batch holds what arrived meanwhile: under
  // load an order's events share fewer batches, and its record, indexes and
  // the offsets are written fewer times. 0: a step follows at once. After an
  // idle poll or a full batch (a backlog) the next step does not wait, nor
  // after Hurry (a reader waits for a position).
  std::chrono::milliseconds min_batch_interval{0};
  bool fill_batches = false;  // wait for full batches (replay) instead of applying what is there (live)
  // If set, only records it accepts are applied (time travel); the others are
  // dropped without advancing their partition's stored offset.
  std::function<bool(const eventstore::Record&)> accept;
  std::chrono::milliseconds metadata_timeout{10000};
  // If set, records that do not decode are also parked on orders.dlq (as
  // service `name`) before their batch commits. Replay leaves it unset.
  eventstore::Producer* dead_letters = nullptr;
  // If set, a batch commits only once this returns for its next offsets (the
  // log is durable that far: `orderflow up` on the embedded broker).
  std::function<Status(const Offsets&)> wait_durable;
  // After commits, also commit the offsets to the reader's consumer group
  // (information for operators: `orderflow lag`): at most once a second while
  // busy, and when Run or RunUntilCaughtUp ends. Live projectors set it; replay does not.
  bool commit_for_operators = false;
  std::chrono::milliseconds max_backoff{5000};  // Run's longest wait between retries
  const Clock* clock = &SystemClock();          // the waits between retries, the step timings
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
  uint64_t batches = 0;
  uint64_t reopens = 0;  // recoveries from transient errors
  double poll_seconds = 0;   // time spent waiting for and copying records
  double apply_seconds = 0;  // time spent decoding, applying and writing
};

class Projector {
 public:
  // `sink` (or `store`) and `reader` must outlive the projector.
  Projector(Sink& sink, eventstore::Reader& reader, ProjectorOptions options);
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

  // True when every partition's committed offset has reached `targets`.
  Result<bool> Reached(const Offsets& targets) const;

  // Current end of the log (high watermark) of every assigned partition.
  Result<Offsets> LogEnd() const;

  // Runs Step until `stop` is set or an error occurs (transient errors are
  // retried with backoff). A stop while the last batch cannot commit for a
  // transient reason (a full disk) is a clean stop: nothing of that batch was
  // written, and the next start applies it from the stored offsets.
  Status Run(std::stop_token stop);
  // As Run, but returns once the log's end as it was when called is committed.
  Status RunUntilCaughtUp(std::stop_token stop);
  // Ends Run's wait out of min_batch_interval, now or at the next one: a
  // reader waits for a position (HTTP ?min_position), so the next step starts
  // at once. Safe from any thread.
  void Hurry();

  const ProjectorTotals& totals() const { return totals_; }
  const ProjectorCounters& counters() const { return counters_; }
  // The partitions projected; safe to call from any thread (HTTP /metrics
  // reads it while the projector thread may be restarting).
  std::vector<eventstore::TopicPartition> partitions() const {
    std::lock_guard lock(partitions_mu_);
    return partitions_;
  }

 private:
  // After a transient error `cause`: waits, reopens the sink and assigns every
  // partition at its stored offset again (a failed step may have dropped records).
  Status Recover(const Status& cause, std::stop_token stop);
  // Drain when stopping (a retryable error is logged, not returned), then
  // publish the offsets for operators.
  Status DrainForStop();
  // Offsets committed to the sink, to be copied to the consumer group
  // (commit_for_operators); PublishForOperators sends them once a second,
  // or `now`.
  void ForOperators(const Offsets& committed);
  void PublishForOperators(bool now);

  std::unique_ptr<Sink> owned_sink_;  // the store's, when constructed on a store
  Sink& sink_;
  eventstore::Reader& reader_;
  ProjectorOptions options_;
  // Written by Start (the projector thread) under partitions_mu_; that thread reads it unlocked.
  std::vector<eventstore::TopicPartition> partitions_;
  mutable std::mutex partitions_mu_;
  // Hurry: set by any thread, taken by Run's wait between steps.
  std::mutex hurry_mu_;
  std::condition_variable hurry_cv_;
  bool hurried_ = false;
  ProjectorTotals totals_;
  ProjectorCounters counters_;
  std::unique_ptr<SinkBatch> in_flight_;  // committing on a helper thread (pipelined sinks)
  std::future<Status> commit_;
  Offsets to_publish_;  // for the consumer group, not sent yet (ForOperators)
  std::chrono::steady_clock::time_point next_publish_{};
};

}  // namespace orderflow::projections

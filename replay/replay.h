// Rebuilds the projections into an empty data directory from offset zero of
// every partition (or from a restored snapshot's offsets) with the bulk loader
// (projections/bulk_load.h); time travel from a snapshot goes through the
// batch path (one WriteBatch per batch), as the live projector does.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "domain/status.h"
#include "eventstore/kafka.h"
#include "projections/store.h"

namespace orderflow::replay {

struct PartitionProgress {
  eventstore::TopicPartition partition;
  int64_t done = 0;  // next offset applied
  int64_t end = 0;   // offset to reach
};

struct ReplayProgress {
  uint64_t records = 0;       // read so far
  uint64_t total = 0;         // records to read (end of log at start)
  double seconds = 0;
  double records_per_second = 0;
  std::vector<PartitionProgress> partitions;
};

struct ReplayOptions {
  eventstore::KafkaConfig kafka;
  std::string data_dir;             // must be empty or absent, unless `force`
  bool force = false;               // replace an existing orderflow store in data_dir
  std::vector<std::string> topics;  // default: orders.events
  size_t batch_size = 10000;
  // Time travel: stop each partition after this offset / at the first record
  // appended after this time (epoch ms); -1 = to the end of the log.
  int64_t until_offset = -1;
  int64_t until_time_ms = -1;
  // Start from this snapshot (restored into data_dir) and replay only the tail.
  std::string snapshots_dir;
  std::string from_snapshot;
  // Apply through ProjectionStore's batch path (as the live projector does)
  // instead of the bulk loader: for comparisons. Time travel from a snapshot
  // (until_offset or until_time with from_snapshot) always takes it.
  bool batch_path = false;
  // Called about twice a second while replaying, and once at the end.
  std::function<void(const ReplayProgress&)> on_progress;
};

struct ReplayResult {
  uint64_t records = 0;  // records read
  uint64_t events = 0;   // events applied
  uint64_t duplicates = 0;
  uint64_t rejected = 0;
  double seconds = 0;
  double events_per_second = 0;
  double poll_seconds = 0;   // waiting for records
  double apply_seconds = 0;  // decoding, applying, writing
  projections::Offsets end;  // offsets reached per partition
  std::string digest;
};

// Errors: kFailedPrecondition if the directory is not empty; kOutOfRange
// naming partition and offsets if a partition no longer starts at offset 0.
Result<ReplayResult> Replay(const ReplayOptions& options);

// What RestoreIfLost did.
struct RestoreReport {
  std::string snapshot;  // the snapshot restored; empty: rebuilt from offset zero
  ReplayResult tail;     // the replay of the log after it
};

// For a projector starting without its store (`data_dir` holds none: a lost
// disk, a new machine): restores the newest snapshot in `snapshots_dir` that
// this build can read and replays the log after it, so the store is back at
// the log's end in a fraction of a full replay; without one, rebuilds it from
// offset zero with the bulk loader (a third of the live projector's CPU). The
// store is built beside, in `<data_dir>.restore`, and moved in with its
// CURRENT file last: a crash on the way leaves no store, and the next start
// restores again. Returns nullopt, doing nothing, when `data_dir` holds a
// store or the log holds no record yet. `options.data_dir` and
// `options.from_snapshot` are ignored.
Result<std::optional<RestoreReport>> RestoreIfLost(const ReplayOptions& options, const std::string& data_dir,
                                                   const std::string& snapshots_dir);

// If the store in `data_dir` was built by other projection code (an older
// kProjectionVersion), rebuilds it from the log in the side directory
// `<data_dir>.rebuild` while the old one stays readable, then swaps the two
// atomically (renameat2 RENAME_EXCHANGE) and removes the old one. Returns
// whether a rebuild happened. `options.data_dir` is ignored.
Result<bool> RebuildIfOutdated(const ReplayOptions& options, const std::string& data_dir);

}  // namespace orderflow::replay

// BulkLoader: rebuilds a projection store from offset zero without going
// through RocksDB's memtables one key at a time.
//
// Nothing reads a store while it is rebuilt, so the loader folds each order's
// events in memory inside a bounded window (an order's state is written once
// per window, not once per event), writes each window as sorted files with
// rocksdb::SstFileWriter and ingests them. Decoding runs on the caller's
// thread, folding on a worker thread, and writing up to two sealed windows on
// threads of their own while the next one fills. The result is the same store, byte for byte, as
// ProjectionStore's batch path (Prepare/Commit) builds from the same records,
// and Digest() is its state digest, summed from what was written.
//
// Crash safety: ProjectionStore::Open with StoreOptions::rebuild writes the
// file REBUILD-UNFINISHED in the store's directory (synced, with the
// directory) before the store changes; Finish() writes the offsets in one
// synced batch and then removes the file. A store killed in between is
// refused by every other open as unfinished, and `orderflow replay` replaces it.
//
// Thread safety: Add and Finish are called from one thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "domain/clock.h"
#include "domain/status.h"
#include "eventstore/kafka.h"
#include "projections/store.h"

namespace orderflow::projections {

struct BulkLoadOptions {
  // A window is written when it holds this many events or about this many
  // bytes of order state, whichever comes first: it bounds the loader's
  // memory (three windows at most: one filling, two being written). Each
  // window's files stay in L0 until the store's first compaction.
  size_t window_events = 200'000;
  size_t window_bytes = 8u << 20;  // order states, ~1 KiB each
  // The window's history entries are written (in files of their own) when
  // there are this many or about this many bytes of them, so a window can
  // span an order's whole lifecycle without holding its history: an order
  // whose events fall in several windows is read back in each.
  size_t history_events = 25'000;
  size_t history_bytes = 4u << 20;
  const Clock* clock = &SystemClock();  // for the timings in the debug line at the end
  // On a restored snapshot: the ids of the orders it holds (ReadOrdersFilter,
  // snapshot.h). A new order the filter says is not there is not looked up in
  // the store; empty or not a filter: every new order is.
  std::string stored_orders;
};

struct BulkLoadTotals {
  uint64_t records = 0;  // records given to Add
  uint64_t applied = 0;
  uint64_t duplicates = 0;
  uint64_t rejected = 0;
  uint64_t windows = 0;  // windows written
  uint64_t looked_up = 0;  // orders asked of the store: an earlier window or the snapshot may hold them
};

class BulkLoader {
 public:
  // `store` must have been opened for writing with StoreOptions::rebuild and
  // must outlive the loader. An empty store is rebuilt from offset zero; a
  // store that holds state (a restored snapshot) gets the records past its
  // offsets loaded on top, each order read from it when first met.
  static Result<std::unique_ptr<BulkLoader>> Start(ProjectionStore& store, const BulkLoadOptions& options = {});
  ~BulkLoader();  // stops the worker; a loader not finished leaves the store unfinished

  // Decodes `records` (in log order per partition) and hands them to the
  // worker; returns the worker's first error, if any, once it has one.
  Status Add(std::vector<eventstore::Record> records);

  // Before the first Add: about how many records the rebuild will load, to
  // size its memory for them (the filter of orders seen, SeenFilter). Optional.
  void ExpectRecords(uint64_t records);

  // Writes the last window, the analytics counters and `positions` (the next
  // offset per partition) and marks the store finished. Idempotent.
  Status Finish(const Offsets& positions);

  // The state digest (ProjectionStore::Digest) of the store as Finish left it,
  // computed from the entries as they were written: no pass over the store.
  // Errors: kFailedPrecondition before Finish.
  Result<std::string> Digest() const;

  // Next offset per partition of the records added so far.
  const Offsets& next_offsets() const;
  BulkLoadTotals totals() const;

 private:
  struct Impl;
  explicit BulkLoader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace orderflow::projections

// ProjectionStore's insides, shared by its .cc files (store.cc,
// store_writes.cc, store_queries.cc, store_files.cc) and the bulk rebuild
// (bulk_load.cc): the open database with its mirrors of the committed
// offsets, counters and digest, the unfinished-rebuild mark, and the
// RocksDB-status mapping. The layout of keys and values is store_layout.h.
// Internal to projections/.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/status.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "domain/order.h"
#include "domain/status.h"
#include "domain/take_cache.h"
#include "eventstore/state_db.h"
#include "projections/state_digest.h"
#include "projections/store.h"
#include "projections/store_layout.h"

namespace orderflow::projections {

using eventstore::FromRocks;

// A file in the store's directory, written (and synced) before a rebuild
// creates the database and removed after the rebuild's last synced write: a
// directory that has it holds a store that was never finished, whatever
// point the rebuild stopped at.
constexpr char kRebuildMarkFile[] = "REBUILD-UNFINISHED";
Status MarkRebuildUnfinished(const std::string& dir);
Status ClearRebuildMark(const std::string& dir);
bool HasRebuildMark(const std::string& dir);

struct ProjectionStore::Impl {
  std::unique_ptr<eventstore::StateDb> state;
  rocksdb::DB* db = nullptr;  // state->db()
  StoreOptions options;
  mutable std::mutex offsets_mu;
  mutable std::condition_variable committed;  // notified (under offsets_mu) after each commit
  uint64_t commit_count = 0;                  // guarded by offsets_mu
  Offsets offsets;  // mirror of the committed offsets in meta
  std::map<std::string, int64_t> analytics;  // mirror of the analytics family (guarded by offsets_mu)
  // Mirror of meta's kDigestKey (guarded by offsets_mu); nullopt for a
  // read-only store written before the key existed: then Digest() reads.
  std::optional<StateDigest> digest;

  // The orders of committed batches (ProjectionStore::KeepCommitted): their
  // states and stored values, taken by Prepare instead of read from RocksDB.
  // Anything else that writes the orders family (BulkLoader) clears it.
  struct CachedOrder {
    domain::OrderState state;
    std::optional<std::string> stored;
  };
  std::mutex cache_mu;
  domain::TakeCache<CachedOrder> order_cache{0};  // guarded by cache_mu; sized by Open from options

  rocksdb::ColumnFamilyHandle* cf(Family f) const { return state->cf(f); }

  Result<Offsets> LoadOffsets() const {
    return eventstore::ReadPartitionValues(*db, cf(kMeta), kOffsetPrefix, "offset");
  }
};

}  // namespace orderflow::projections

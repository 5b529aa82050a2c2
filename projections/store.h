// ProjectionStore: the local RocksDB state rebuilt from the log.
//
// Column families:
//   orders       order id -> OrderRecord (current state, incl. applied event ids)
//   history      order id \0 seq(be32) -> HistoryRecord (the event as in the log)
//   by_status    status \0 order id -> ""   (secondary index)
//   by_customer  customer \0 order id -> "" (secondary index)
//   by_time      be64(~placed at ms) order id -> "" (newest first)
//   rejected     topic \0 partition(be32) offset(be64) -> RejectedRecord
//   meta         "offset/<topic>/<partition(be32)>" -> next offset (be64);
//                "projection_version"; "state_digest" (the kept StateDigest)
//   analytics    counters: revenue and refunds, units and revenue per SKU, orders and net
//                revenue per hour, delivery times
//
// ApplyBatch writes the state changes of a whole batch and the next offset of
// every partition it consumed in ONE WriteBatch: after a crash the store holds
// either all of a batch or none of it, and consumption resumes at the stored
// offsets. Events whose id the order already applied are dropped.
//
// ApplyBatch = Prepare + Commit. A pipelined caller prepares batch k+1 (decode,
// apply, encode) while batch k commits on another thread: Prepare reads the
// orders of the batch still in flight from that batch, not from RocksDB.
//
// Thread safety: one Prepare and one Commit may run at the same time (on two
// threads); Commits happen in Prepare order. Query methods may run
// concurrently with everything.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "domain/order.h"
#include "domain/status.h"
#include "eventstore/kafka.h"

namespace rocksdb {
class DB;
}

namespace orderflow::projections {

// Bump when the projection code changes how state is derived: an older store
// must then be rebuilt from the log.
// 2: shipping address and payment method, upcast v1 events
// 3: net revenue per hour in analytics
// 4: the by_time index (orders newest first)
inline constexpr uint32_t kProjectionVersion = 4;

struct StoreOptions {
  bool read_only = false;  // query a store another process is writing
  // Skip the write-ahead log; atomic flushes keep column families and
  // offsets consistent, and Close()/Flush() persists. A crash leaves a
  // consistent, older state. Replay opens with `rebuild` (below) instead, so
  // a crash mid-replay leaves a store marked unfinished, rebuilt from scratch.
  bool bulk_load = false;
  // A rebuild (implies bulk_load): marks the store unfinished until
  // FinishRebuild or BulkLoader::Finish, and accepts a store whose rebuild did
  // not finish. Every other open refuses one (kFailedPrecondition).
  bool rebuild = false;
  // Orders of committed batches kept in memory (KeepCommitted) for Prepare
  // to take instead of reading and decoding them; 0: none.
  size_t order_cache = 16384;
};

struct BatchStats {
  size_t applied = 0;     // events applied to state
  size_t duplicates = 0;  // events dropped because their id was already applied
  size_t rejected = 0;    // records that did not decode (kept in the rejected family)
  size_t skipped = 0;     // records below the stored offsets (re-deliveries; PostgreSQL only)
  size_t kept_orders = 0;  // orders taken from committed batches (KeepCommitted), not read from RocksDB
  std::array<uint32_t, domain::kEventTypeCount> applied_by_type{};  // indexed like domain::EventPayload
};

struct HistoryEntry {
  uint32_t sequence = 0;
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t record_timestamp_ms = 0;
  std::string event_type;
  uint16_t schema_version = 0;
  std::optional<domain::Event> event;  // empty if the stored bytes no longer decode
  std::string decode_error;
};

struct RejectedEntry {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string error;
};

using Offsets = std::map<eventstore::TopicPartition, int64_t>;

struct SkuSales {
  std::string sku;
  int64_t units = 0;          // units in paid orders
  int64_t revenue_minor = 0;  // their line revenue
};

// The analytics projection.
struct Analytics {
  int64_t gross_minor = 0;     // payments authorized
  int64_t refunded_minor = 0;  // refunds
  int64_t net_minor = 0;
  std::map<std::string, uint64_t> orders_by_status;
  std::vector<SkuSales> top_by_units;
  std::vector<SkuSales> top_by_revenue;
  std::map<int64_t, int64_t> orders_per_hour;   // hour start (epoch ms) -> orders placed
  std::map<int64_t, int64_t> revenue_per_hour;  // hour start (epoch ms) -> authorized minus refunded (minor)
  int64_t delivered = 0;
  double average_placed_to_delivered_ms = 0;
};

// A page of ListOrders: orders in id order within the chosen index.
struct OrderQuery {
  std::optional<domain::OrderStatus> status;  // only orders with this status
  std::string customer;                       // only this customer's orders (empty: any)
  std::string after;                          // the page starts after this order id (a previous page's `next`)
  size_t limit = 50;
  // Without a status or customer filter: newest placed first (`next` is then
  // an opaque cursor, not an order id). With a filter, order id order.
  bool newest_first = false;
};
struct OrderPage {
  std::vector<domain::OrderState> orders;
  std::string next;  // pass as `after` for the next page; empty on the last page
};

// A batch decoded and applied in memory, ready to be written. Move-only.
class PreparedBatch {
 public:
  PreparedBatch();
  ~PreparedBatch();
  PreparedBatch(PreparedBatch&&) noexcept;
  PreparedBatch& operator=(PreparedBatch&&) noexcept;

  const BatchStats& stats() const;
  // The next offset of every partition the batch consumed.
  const Offsets& next_offsets() const;
  // The records Prepare rejected: (index in its input, error).
  const std::vector<std::pair<size_t, std::string>>& rejections() const;

 private:
  friend class ProjectionStore;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The projection version recorded in the store in `dir`: nullopt when there
// is no store there. Reads without taking the store's lock.
Result<std::optional<uint32_t>> StoredProjectionVersion(const std::string& dir);

// Whether `dir` holds a store whose bulk rebuild never finished (false when
// there is no store). Reads without taking the store's lock.
Result<bool> IsUnfinishedRebuild(const std::string& dir);

// Removes the store's files from `dir` before a rebuild replaces it: keeps
// subdirectories (`orderflow up` keeps its services' stores there) and the
// unfinished-rebuild mark, so a store interrupted here is still refused.
Status RemoveStoreFiles(const std::string& dir);

// Rewrites the recorded projection version (tests simulating an older build).
Status SetStoredProjectionVersionForTesting(const std::string& dir, uint32_t version);

class StateDigest;

class ProjectionStore {
 public:
  friend class BulkLoader;  // writes the store's families directly

  // Opens (creating if needed, unless read_only) the store in `dir`.
  // Errors: kNotFound if read_only and there is no store; kFailedPrecondition
  // if the projection version differs; kInUse if another process (or this one) holds it for writing.
  static Result<std::unique_ptr<ProjectionStore>> Open(const std::string& dir, const StoreOptions& options);
  ~ProjectionStore();

  // Decodes and applies `records` (in log order per partition) atomically with
  // their offsets. Records at offsets already consumed are skipped.
  Result<BatchStats> ApplyBatch(const std::vector<eventstore::Record>& records);

  // Decodes and applies `records` in memory on top of the committed state and
  // of `in_flight` (a prepared batch not yet committed, or nullptr). `in_flight`
  // is only read, so it may be committing on another thread meanwhile.
  Result<PreparedBatch> Prepare(const std::vector<eventstore::Record>& records, const PreparedBatch* in_flight);

  // Writes a prepared batch (state and offsets in one WriteBatch).
  Status Commit(const PreparedBatch& batch);

  // Hands back a batch that Commit wrote: its orders' states are kept for the
  // next Prepare (StoreOptions::order_cache). Call it from Prepare's thread,
  // after that batch's Commit returned Ok, before any Prepare that does not
  // see it as in flight; once one batch is handed back, every committed one
  // must be, in commit order (an order kept from an earlier batch would be
  // stale). A batch that did not commit is only dropped, never handed back.
  void KeepCommitted(PreparedBatch batch);

  // Next offset to consume per partition, as last committed.
  Result<Offsets> GetOffsets() const;

  // Moves the stored offset of each partition in `positions` forward to the
  // given one where it is behind, changing no state: for offsets the consumer
  // stepped over without a record (transaction markers, aborted records).
  Status AdvanceOffsets(const Offsets& positions);

  // Current state of one order; nullopt if unknown.
  Result<std::optional<domain::OrderState>> GetOrder(const std::string& order_id) const;

  // The order's record as stored, in *record (its capacity is reused); false
  // if the order is unknown. DecodeOrderRecord (projections/order_record.h)
  // gives GetOrder's state, and equal bytes decode to equal state: a caller
  // that keeps what it derived from a record can compare bytes instead of
  // decoding again.
  Result<bool> GetOrderRecord(const std::string& order_id, std::string* record) const;

  // Changes whenever a write to this store becomes visible to its readers
  // (it is RocksDB's latest sequence number, plus one). Whatever a caller
  // derived from reads made after VisibleStamp() returned S is still what
  // those reads would return while VisibleStamp() returns S. 0 for a store
  // opened for a bulk load, whose ingested files need not advance it: never
  // equal to a stamp worth keeping. Cheap (one atomic load).
  uint64_t VisibleStamp() const;

  // The order's events in log order.
  Result<std::vector<HistoryEntry>> GetHistory(const std::string& order_id) const;

  // One page of orders matching `query`, from the status or customer index
  // (or all orders). A page may come back short with `next` set when the
  // filters skip many entries: the scan per call is bounded.
  Result<OrderPage> ListOrders(const OrderQuery& query) const;

  // Number of orders per status (status name -> count), from the index.
  Result<std::map<std::string, uint64_t>> CountByStatus() const;

  Result<std::vector<RejectedEntry>> GetRejected(size_t limit) const;

  // Revenue, orders by status, top `top` SKUs, orders per hour, delivery time.
  Result<Analytics> GetAnalytics(size_t top = 5) const;

  // The state digest (hex; projections/state_digest.h) over every projection
  // column family (not meta). Equal digests mean equal state, byte for byte.
  // Kept up to date by every write (in meta, committed with the state), so
  // this reads nothing; a read-only store from before it was kept is read.
  Result<std::string> Digest() const;
  // The same digest computed by reading every entry of the store: what
  // `orderflow digest --verify` compares with the kept one.
  Result<std::string> DigestByReading() const;

  // The first key (in family order, then key order) whose presence or value
  // differs between this store and `other`, described in one line; nullopt
  // when the projections are equal.
  Result<std::optional<std::string>> FirstDifference(const ProjectionStore& other) const;

  // A RocksDB checkpoint of the store in `dir` (which must not exist).
  Status CheckpointTo(const std::string& dir) const;

  // Merges the orders family into one sorted run when it holds more than
  // `max_l0_files` overlapping files at level 0, as a rebuild leaves it (one
  // per window; compactions come later, in the live service). A replay that
  // starts on the store (a snapshot's tail) looks every new order up there:
  // in a pile of files, each lookup probes every file. Returns the number of
  // level-0 files merged (0: none needed). State and digest are unchanged.
  Result<uint64_t> CompactOrders(uint64_t max_l0_files = 4) const;

  // The ids of every order the store holds as a filter's bytes (SeenFilter,
  // seen_filter.h): kept beside a snapshot, it tells a restore's tail which
  // new orders cannot be in the store, without asking it. Exact about "no".
  Result<std::string> OrdersFilter() const;

  // A consistent copy of every family (state, meta, offsets) into a new store
  // in `dir`; works on a read-only view of a store another process writes.
  Status CopyTo(const std::string& dir) const;

  // Commits so far in this process. WaitForCommit blocks until the count
  // passes `seen` or `deadline` passes (or WakeAll is called), and returns it:
  // readers that need a position wait here instead of polling.
  uint64_t CommitCount() const;
  uint64_t WaitForCommit(uint64_t seen, std::chrono::steady_clock::time_point deadline) const;
  void WakeAll() const;

  // For a store opened with `rebuild` and written through the batch path:
  // persists it and removes the unfinished mark (BulkLoader::Finish does both
  // for the bulk path).
  Status FinishRebuild();

  // Persists memtables (needed after bulk_load writes).
  Status Flush();

  const std::string& dir() const { return dir_; }

 private:
  struct Impl;
  explicit ProjectionStore(std::unique_ptr<Impl> impl, std::string dir);
  Result<StateDigest> ReadDigest() const;  // every state entry, read
  std::unique_ptr<Impl> impl_;
  std::string dir_;
};

// A projection store is derived from the log, so a corrupt one can be set
// aside and rebuilt. If the store in `dir` does not open because it is
// corrupt, moves its files (the regular files directly in `dir`; the folders
// beside them, such as `up`'s services/ and archive/, stay) into
// dir/corrupt-<UTC time>/ and returns that folder; the next open finds no
// store and the projector rebuilds it from offset zero. Returns "" when the
// store opens (or there is none). Other open errors are returned as they are.
Result<std::string> SetAsideIfCorrupt(const std::string& dir);

}  // namespace orderflow::projections

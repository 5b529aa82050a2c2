// Opening a ProjectionStore (store.h): RocksDB tuned for the live service or
// for a rebuild, the projection version check, and the mirrors of offsets,
// counters and digest loaded; and waiting for commits. The write path is
// store_writes.cc, the queries store_queries.cc, the files store_files.cc.
#include "projections/store.h"

#include <rocksdb/db.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "domain/hex.h"
#include "eventstore/big_endian.h"
#include "eventstore/codec.h"
#include "projections/records_internal.h"
#include "projections/state_digest.h"
#include "projections/store_internal.h"

namespace orderflow::projections {

ProjectionStore::ProjectionStore(std::unique_ptr<Impl> impl, std::string dir)
    : impl_(std::move(impl)), dir_(std::move(dir)) {}

ProjectionStore::~ProjectionStore() {
  if (impl_ && impl_->options.bulk_load && !impl_->options.read_only) {
    Flush().IgnoreError();  // best effort; explicit Flush() reports errors
  }
}

Result<std::unique_ptr<ProjectionStore>> ProjectionStore::Open(const std::string& dir, const StoreOptions& options) {
  namespace fs = std::filesystem;
  if (!options.rebuild && HasRebuildMark(dir)) {
    return Status::FailedPrecondition("store " + dir + " is an unfinished rebuild (the replay that wrote it stopped "
                                      "before its end); run `orderflow replay --data-dir " + dir +
                                      "` again, it replaces an unfinished store");
  }
  if (options.read_only && !fs::exists(fs::path(dir) / "CURRENT")) {
    return Status::NotFound("no orderflow store in " + dir +
                            "; run `orderflow up` or `orderflow replay` with --data-dir " + dir + " first");
  }
  StoreOptions store_options = options;
  if (options.rebuild) store_options.bulk_load = true;
  rocksdb::DBOptions db_options;
  db_options.atomic_flush = true;  // families and offsets stay consistent even without the WAL
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 3;
  db_options.allow_concurrent_memtable_write = !store_options.bulk_load;  // the vector memtable needs this off

  rocksdb::ColumnFamilyOptions cf_options;
  // RocksDB's tuning guide: no compression on L0/L1 (written often, soon
  // compacted), LZ4 below.
  cf_options.compression_per_level = {rocksdb::kNoCompression, rocksdb::kNoCompression, rocksdb::kLZ4Compression,
                                      rocksdb::kLZ4Compression, rocksdb::kLZ4Compression, rocksdb::kLZ4Compression,
                                      rocksdb::kLZ4Compression};
  // 16 MiB, not 64: each live write is a skiplist insert (and a memtable Bloom
  // probe) whose cost grows with the memtable; the projector spent a third of
  // orderflow's CPU on them at saturation. Measured (docs/benchmarks.md): 60,000
  // orders at 2,000/s, 7-12 % less CPU per order with the flushes and compactions.
  // The memtable's filter makes lookups of new orders (misses) cheap.
  eventstore::TuneForPointLookups(cf_options, 16, 0.05);

  eventstore::StateDbOptions state_options;
  state_options.read_only = options.read_only;
  state_options.db = db_options;
  state_options.default_family = cf_options;
  // Bulk load (replay) only writes the families other than `orders`, and a
  // vector memtable takes those writes at append cost, sorting at flush time on
  // the background thread. `orders` is read back while applying, so it keeps
  // the skiplist.
  rocksdb::ColumnFamilyOptions write_only_options = cf_options;
  if (store_options.bulk_load) {
    write_only_options.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
    // Smaller memtables flush during the replay instead of all at its end.
    write_only_options.write_buffer_size = 16 << 20;
    write_only_options.max_write_buffer_number = 4;
  }
  if (store_options.bulk_load) {
    // As RocksDB's PrepareForBulkLoad: no compactions while rebuilding (the
    // live service compacts later), and no write stalls from L0 file counts.
    for (auto* o : {&cf_options, &write_only_options}) {
      // The memtables take little while rebuilding (the loader writes files):
      // a memtable filter would cost ~10 ms per family to allocate at open.
      o->memtable_prefix_bloom_size_ratio = 0;
      o->disable_auto_compactions = true;
      o->level0_file_num_compaction_trigger = 1 << 30;
      o->level0_slowdown_writes_trigger = 1 << 30;
      o->level0_stop_writes_trigger = 1 << 30;
      o->soft_pending_compaction_bytes_limit = 0;
      o->hard_pending_compaction_bytes_limit = 0;
    }
  }
  for (int f = 0; f < kFamilyCount; ++f) {
    state_options.families.emplace_back(kFamilyNames[f], f == kOrders || f == kMeta ? cf_options : write_only_options);
  }

  // From here until the rebuild's last write the store says it is
  // unfinished. A new store is marked before it exists, an existing one
  // once this open holds its lock (a store a service runs on is left alone).
  const bool fresh = !fs::exists(fs::path(dir) / "CURRENT");
  if (options.rebuild && !options.read_only && fresh) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Status::InvalidArgument("cannot create data directory " + dir + ": " + ec.message());
    ORDERFLOW_RETURN_IF_ERROR(MarkRebuildUnfinished(dir));
  }
  state_options.corruption_remedy =
      "the projection store is derived from the log: rebuild it with `orderflow replay --data-dir " + dir +
      " --force`, or start `orderflow up` or `orderflow service projector` with --rebuild-corrupt, which sets the "
      "corrupt files aside and rebuilds the store from the log";
  auto state = eventstore::StateDb::Open(dir, "store", std::move(state_options));
  if (!state.ok()) return state.status();
  if (options.rebuild && !options.read_only && !fresh) ORDERFLOW_RETURN_IF_ERROR(MarkRebuildUnfinished(dir));
  auto impl = std::make_unique<Impl>();
  impl->options = store_options;
  impl->order_cache = domain::TakeCache<Impl::CachedOrder>(options.read_only ? 0 : options.order_cache);
  impl->state = std::move(state).value();
  impl->db = &impl->state->db();

  std::string version;
  rocksdb::Status vs = impl->db->Get(rocksdb::ReadOptions(), impl->cf(kMeta), kProjectionVersionKey, &version);
  if (vs.IsNotFound() && !options.read_only) {
    std::string v;
    PutBE32(&v, kProjectionVersion);
    ORDERFLOW_RETURN_IF_ERROR(
        FromRocks(impl->db->Put(rocksdb::WriteOptions(), impl->cf(kMeta), kProjectionVersionKey, v), "write meta"));
  } else if (vs.ok() && GetBE(version) != kProjectionVersion && !options.read_only) {
    // Readers may still look at an older store (it is served until a rebuild
    // swaps in a new one); only writers must not mix projection versions.
    return Status::FailedPrecondition("store " + dir + " has projection version " + std::to_string(GetBE(version)) +
                                      ", this build needs " + std::to_string(kProjectionVersion) +
                                      "; rebuild it with `orderflow replay` into a new directory");
  } else if (!vs.ok() && !vs.IsNotFound()) {
    return FromRocks(vs, "read meta");
  }


  auto offsets = impl->LoadOffsets();
  if (!offsets.ok()) return offsets.status();
  impl->offsets = std::move(offsets).value();
  {
    std::unique_ptr<rocksdb::Iterator> it(impl->db->NewIterator(rocksdb::ReadOptions(), impl->cf(kAnalytics)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      impl->analytics[it->key().ToString()] = static_cast<int64_t>(GetBE(it->value().ToStringView()));
    }
    ORDERFLOW_RETURN_IF_ERROR(FromRocks(it->status(), "read analytics"));
  }
  std::unique_ptr<ProjectionStore> store(new ProjectionStore(std::move(impl), dir));
  std::string digest;
  rocksdb::Status ds = store->impl_->db->Get(rocksdb::ReadOptions(), store->impl_->cf(kMeta), kDigestKey, &digest);
  if (ds.ok()) {
    store->impl_->digest = StateDigest::Parse(digest);
    if (!store->impl_->digest) return Status::Corruption("store " + dir + ": malformed " + kDigestKey + " in meta");
  } else if (!ds.IsNotFound()) {
    return FromRocks(ds, "read meta");
  } else if (!options.read_only) {
    // A store written before the digest was kept: read it once, keep it.
    auto computed = store->ReadDigest();
    if (!computed.ok()) return computed.status();
    ORDERFLOW_RETURN_IF_ERROR(FromRocks(
        store->impl_->db->Put(rocksdb::WriteOptions(), store->impl_->cf(kMeta), kDigestKey, computed->Serialize()),
        "write meta"));
    store->impl_->digest = std::move(computed).value();
  }
  return store;
}

uint64_t ProjectionStore::CommitCount() const {
  std::lock_guard lock(impl_->offsets_mu);
  return impl_->commit_count;
}

uint64_t ProjectionStore::WaitForCommit(uint64_t seen, std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock lock(impl_->offsets_mu);
  impl_->committed.wait_until(lock, deadline, [&] { return impl_->commit_count != seen; });
  return impl_->commit_count;
}

void ProjectionStore::WakeAll() const {
  std::lock_guard lock(impl_->offsets_mu);
  ++impl_->commit_count;
  impl_->committed.notify_all();
}

}  // namespace orderflow::projections

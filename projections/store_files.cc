// A store's files: its projection version, the mark of an unfinished rebuild,
// removing, checkpointing and copying it, setting a corrupt one aside (store.h).
#include "projections/store.h"

#include "domain/clock.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "domain/hex.h"
#include "eventstore/big_endian.h"
#include "eventstore/codec.h"
#include "projections/records_internal.h"
#include "projections/seen_filter.h"
#include "projections/state_digest.h"
#include "projections/store_internal.h"

namespace orderflow::projections {

namespace {
// Opens `dir` with every family, read-only or not, for the version helpers.
Result<std::unique_ptr<eventstore::StateDb>> OpenRaw(const std::string& dir, bool read_only) {
  eventstore::StateDbOptions options;
  options.read_only = read_only;
  for (const char* name : kFamilyNames) options.families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  return eventstore::StateDb::Open(dir, "projection store", std::move(options));
}
}  // namespace

Result<std::optional<uint32_t>> StoredProjectionVersion(const std::string& dir) {
  if (!std::filesystem::exists(std::filesystem::path(dir) / "CURRENT")) return std::optional<uint32_t>();
  auto db = OpenRaw(dir, true);
  if (!db.ok()) return db.status();
  std::string value;
  rocksdb::Status s = (*db)->db().Get(rocksdb::ReadOptions(), (*db)->cf(kMeta), kProjectionVersionKey, &value);
  if (s.IsNotFound()) return std::optional<uint32_t>();
  ORDERFLOW_RETURN_IF_ERROR(FromRocks(s, "read projection version"));
  return std::optional<uint32_t>(static_cast<uint32_t>(GetBE(value)));
}

namespace {
// Makes a file's creation or removal in `dir` durable.
Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::Internal("open directory " + dir + ": " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Status::Internal("sync directory " + dir + ": " + std::strerror(err));
  return Status::Ok();
}
}  // namespace

bool HasRebuildMark(const std::string& dir) {
  std::error_code ec;
  return std::filesystem::exists(std::filesystem::path(dir) / kRebuildMarkFile, ec);
}

Status MarkRebuildUnfinished(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / kRebuildMarkFile).string();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Internal("mark " + dir + " as being rebuilt: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Status::Internal("mark " + dir + " as being rebuilt: " + std::strerror(err));
  return SyncDirectory(dir);
}

Status ClearRebuildMark(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / kRebuildMarkFile).string();
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::Internal("finish the rebuild of " + dir + ": " + std::strerror(errno));
  }
  return SyncDirectory(dir);
}

Result<bool> IsUnfinishedRebuild(const std::string& dir) { return HasRebuildMark(dir); }

Status RemoveStoreFiles(const std::string& dir) {
  ORDERFLOW_RETURN_IF_ERROR(MarkRebuildUnfinished(dir));
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_directory() || entry.path().filename() == kRebuildMarkFile) continue;
    std::filesystem::remove(entry.path(), ec);
    if (ec) return Status::Internal("cannot remove " + entry.path().string() + ": " + ec.message());
  }
  if (ec) return Status::Internal("cannot list " + dir + ": " + ec.message());
  return Status::Ok();
}

Status SetStoredProjectionVersionForTesting(const std::string& dir, uint32_t version) {
  auto db = OpenRaw(dir, false);
  if (!db.ok()) return db.status();
  std::string v;
  PutBE32(&v, version);
  return FromRocks((*db)->db().Put(rocksdb::WriteOptions(), (*db)->cf(kMeta), kProjectionVersionKey, v),
                   "write version");
}

Status ProjectionStore::CheckpointTo(const std::string& dir) const {
  rocksdb::Checkpoint* raw = nullptr;
  ORDERFLOW_RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(impl_->db, &raw), "checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  return FromRocks(checkpoint->CreateCheckpoint(dir), "checkpoint into " + dir);
}

Result<uint64_t> ProjectionStore::CompactOrders(uint64_t max_l0_files) const {
  std::string value;  // a string property: "num-files-at-level<N>" has no integer form
  if (!impl_->db->GetProperty(impl_->cf(kOrders), "rocksdb.num-files-at-level0", &value)) return uint64_t{0};
  const uint64_t files = std::strtoull(value.c_str(), nullptr, 10);
  if (files <= max_l0_files) return uint64_t{0};
  rocksdb::CompactRangeOptions options;
  options.exclusive_manual_compaction = false;  // the store's own compactions may go on beside it
  ORDERFLOW_RETURN_IF_ERROR(
      FromRocks(impl_->db->CompactRange(options, impl_->cf(kOrders), nullptr, nullptr), "compact the orders"));
  return files;
}

Result<std::string> ProjectionStore::OrdersFilter() const {
  SeenFilter filter;
  uint64_t estimate = 0;  // sizes the filter only: a wrong one costs lookups, never an order
  impl_->db->GetIntProperty(impl_->cf(kOrders), "rocksdb.estimate-num-keys", &estimate);
  filter.SizeFor(estimate);
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf(kOrders)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) filter.Add(it->key().ToStringView());
  ORDERFLOW_RETURN_IF_ERROR(FromRocks(it->status(), "read the orders"));
  return filter.Serialize();
}

Status ProjectionStore::CopyTo(const std::string& dir) const {
  auto target = ProjectionStore::Open(dir, {.read_only = false, .bulk_load = true});
  if (!target.ok()) return target.status();
  const rocksdb::Snapshot* snapshot = impl_->db->GetSnapshot();
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  Status status;
  for (int f = 0; f < kFamilyCount && status.ok(); ++f) {
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf(static_cast<Family>(f))));
    rocksdb::WriteBatch batch;
    for (it->SeekToFirst(); it->Valid() && status.ok(); it->Next()) {
      status = FromRocks(batch.Put((*target)->impl_->cf(static_cast<Family>(f)), it->key(), it->value()), "copy");
      if (batch.Count() >= 10000) {
        rocksdb::WriteOptions wo;
        wo.disableWAL = true;
        if (status.ok()) status = FromRocks((*target)->impl_->db->Write(wo, &batch), "copy");
        batch.Clear();
      }
    }
    if (status.ok()) status = FromRocks(it->status(), "copy");
    rocksdb::WriteOptions wo;
    wo.disableWAL = true;
    if (status.ok() && batch.Count() > 0) status = FromRocks((*target)->impl_->db->Write(wo, &batch), "copy");
  }
  impl_->db->ReleaseSnapshot(snapshot);
  ORDERFLOW_RETURN_IF_ERROR(status);
  return (*target)->Flush();
}

Status ProjectionStore::FinishRebuild() {
  if (!impl_->options.rebuild) return Status::Ok();
  ORDERFLOW_RETURN_IF_ERROR(Flush());
  ORDERFLOW_RETURN_IF_ERROR(FromRocks(impl_->db->SyncWAL(), "finish the rebuild"));
  return ClearRebuildMark(dir_);
}

Status ProjectionStore::Flush() {
  if (impl_->options.read_only) return Status::Ok();
  rocksdb::FlushOptions fo;
  fo.wait = true;
  return FromRocks(impl_->db->Flush(fo, impl_->state->families()), "flush store");
}

Result<std::string> SetAsideIfCorrupt(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::exists(fs::path(dir) / "CURRENT")) return std::string();
  {
    auto store = ProjectionStore::Open(dir, {.read_only = true});
    if (store.ok() || store.status().code() != StatusCode::kCorruption) {
      if (!store.ok() && store.status().code() != StatusCode::kFailedPrecondition) return store.status();
      return std::string();
    }
    spdlog::error("{}", store.status().message());
  }
  const std::time_t now = SystemClock().WallMs() / 1000;
  std::tm utc{};
  gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "corrupt-%Y%m%dT%H%M%SZ", &utc);
  const fs::path aside = fs::path(dir) / stamp;
  std::error_code ec;
  fs::create_directories(aside, ec);
  if (ec) return Status::Unavailable("cannot create " + aside.string() + ": " + ec.message());
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) continue;
    fs::rename(entry.path(), aside / entry.path().filename(), ec);
    if (ec) return Status::Unavailable("cannot move " + entry.path().string() + " to " + aside.string() + ": " + ec.message());
  }
  if (ec) return Status::Unavailable("cannot list " + dir + ": " + ec.message());
  spdlog::warn("moved the corrupt projection store in {} to {}; rebuilding it from the log", dir, aside.string());
  return aside.string();
}

}  // namespace orderflow::projections

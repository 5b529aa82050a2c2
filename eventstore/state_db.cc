#include "eventstore/state_db.h"

#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/sst_file_manager.h>
#include <rocksdb/table.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>

#include "eventstore/big_endian.h"

namespace orderflow::eventstore {

Status FromRocks(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return Status::Ok();
  std::string msg = std::string(context) + ": " + s.ToString();
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) return Status::Unavailable(msg);
  if (s.IsNoSpace()) return Status::Unavailable(msg + " (disk full: free space; orderflow resumes by itself)");
  if (s.IsCorruption()) return Status::Corruption(msg);
  if (s.IsNotFound()) return Status::NotFound(msg);
  return Status::Internal(msg);
}

std::string PartitionKey(std::string_view prefix, const TopicPartition& tp) {
  std::string key(prefix);
  key += tp.topic;
  key += '/';
  PutBE32(&key, static_cast<uint32_t>(tp.partition));
  return key;
}

std::string BE64(int64_t v) {
  std::string out;
  PutBE64(&out, static_cast<uint64_t>(v));
  return out;
}

void PutPartitionValues(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* family, std::string_view prefix,
                        const PartitionValues& values) {
  // A WriteBatch only fails on a dropped column family, which never happens here.
  for (const auto& [tp, value] : values) batch.Put(family, PartitionKey(prefix, tp), BE64(value)).PermitUncheckedError();
}

Result<PartitionValues> ReadPartitionValues(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family,
                                            std::string_view prefix, std::string_view what) {
  PartitionValues out;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), family));
  for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size())); it->Valid() && it->key().starts_with(rocksdb::Slice(prefix.data(), prefix.size()));
       it->Next()) {
    std::string_view rest = it->key().ToStringView().substr(prefix.size());
    if (rest.size() < 5 || rest[rest.size() - 5] != '/' || it->value().size() != 8) {
      return Status::Corruption("malformed " + std::string(what) + " entry in " + db.GetName());
    }
    TopicPartition tp{std::string(rest.substr(0, rest.size() - 5)),
                      static_cast<int32_t>(GetBE(rest.substr(rest.size() - 4)))};
    out[tp] = static_cast<int64_t>(GetBE(it->value().ToStringView()));
  }
  ORDERFLOW_RETURN_IF_ERROR(FromRocks(it->status(), "read " + std::string(what) + " in " + db.GetName()));
  return out;
}

namespace {

// The process holding `dir`'s RocksDB LOCK file (RocksDB takes a POSIX write
// lock on it), if another one does: asked with F_GETLK, so a store in use is
// told by its lock, never by the wording of RocksDB's error.
std::optional<pid_t> LockHolder(const std::string& dir) {
  const int fd = ::open((dir + "/LOCK").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  const bool asked = ::fcntl(fd, F_GETLK, &probe) == 0;
  ::close(fd);
  if (!asked || probe.l_type == F_UNLCK) return std::nullopt;
  return probe.l_pid;
}

}  // namespace

// The directories this process holds for writing (POSIX locks do not tell a
// process about its own): claimed on open, released when the store closes.
class StateDb::OpenedHere {
 public:
  static std::unique_ptr<OpenedHere> Claim(const std::string& dir) {
    std::error_code ec;
    std::string key = std::filesystem::weakly_canonical(dir, ec).string();
    if (ec) key = dir;
    std::lock_guard lock(Mu());
    if (!Dirs().insert(key).second) return nullptr;
    return std::unique_ptr<OpenedHere>(new OpenedHere(std::move(key)));
  }
  ~OpenedHere() {
    std::lock_guard lock(Mu());
    Dirs().erase(key_);
  }

 private:
  explicit OpenedHere(std::string key) : key_(std::move(key)) {}
  static std::mutex& Mu() {
    static std::mutex mu;
    return mu;
  }
  static std::set<std::string>& Dirs() {
    static std::set<std::string> dirs;
    return dirs;
  }
  std::string key_;
};

void TuneForPointLookups(rocksdb::ColumnFamilyOptions& family, size_t write_buffer_mib, double memtable_filter_ratio) {
  family.write_buffer_size = write_buffer_mib << 20;
  family.memtable_prefix_bloom_size_ratio = memtable_filter_ratio;
  family.memtable_whole_key_filtering = true;
  // Inserts start from where the last one went (one hint per memtable: an
  // empty prefix for every key) and climb only as far as needed, so a batch
  // written in key order costs O(log distance) per key instead of O(log n)
  // from the top. Writers keep their batches sorted for it.
  family.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(0));
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  family.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
}

Result<std::unique_ptr<StateDb>> StateDb::Open(const std::string& dir, std::string_view what, StateDbOptions options) {
  namespace fs = std::filesystem;
  std::unique_ptr<OpenedHere> opened_here;
  if (!options.read_only) {
    if (auto holder = LockHolder(dir)) {
      return Status::InUse("open " + std::string(what) + " " + dir + ": the data directory is in use by another " +
                           "orderflow process (pid " + std::to_string(*holder) + ")");
    }
    opened_here = OpenedHere::Claim(dir);
    if (!opened_here) {
      return Status::InUse("open " + std::string(what) + " " + dir +
                           ": the data directory is in use by this process already");
    }
  }
  if (options.read_only && !fs::exists(fs::path(dir) / "CURRENT")) {
    return Status::NotFound("no " + std::string(what) + " in " + dir);
  }
  if (!options.read_only) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Status::InvalidArgument("cannot create data directory " + dir + ": " + ec.message());
    options.db.create_if_missing = true;
    options.db.create_missing_column_families = true;
    // With an SstFileManager RocksDB recovers by itself from a background
    // flush or compaction that failed for lack of space, once space is freed.
    // No preallocation: RocksDB reserves a WAL's full size (1.1 × the write
    // buffer, ~70 MiB) up front per store, so a fuller disk would fail inside
    // that reservation instead of at the free-space check.
    options.db.allow_fallocate = false;
    if (!options.db.sst_file_manager) {
      options.db.sst_file_manager.reset(rocksdb::NewSstFileManager(rocksdb::Env::Default()));
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (auto& [name, family] : options.families) descriptors.emplace_back(name, family);
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, options.default_family);

  std::unique_ptr<StateDb> store(new StateDb());
  store->dir_ = dir;
  store->opened_here_ = std::move(opened_here);
  store->what_ = std::string(what);
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = options.read_only
                          ? rocksdb::DB::OpenForReadOnly(options.db, dir, descriptors, &store->handles_, &raw)
                          : rocksdb::DB::Open(options.db, dir, descriptors, &store->handles_, &raw);
  store->db_.reset(raw);
  Status opened = FromRocks(s, "open " + std::string(what) + " " + dir);
  if (opened.code() == StatusCode::kCorruption && !options.corruption_remedy.empty()) {
    return Status::Corruption(opened.message() + "; " + options.corruption_remedy);
  }
  ORDERFLOW_RETURN_IF_ERROR(opened);
  return store;
}

StateDb::~StateDb() {
  if (!db_) return;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  db_->Close().PermitUncheckedError();
}

Status StateDb::HasRoom() const {
  struct statvfs fs {};
  if (::statvfs(dir_.c_str(), &fs) != 0) return Status::Ok();  // cannot tell: let the write say
  const uint64_t size = static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize;
  const uint64_t free = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  const uint64_t reserve = std::clamp<uint64_t>(size / 20, uint64_t{4} << 20, uint64_t{256} << 20);
  if (free >= reserve) return Status::Ok();
  return Status::Unavailable("no space left for the " + what_ + " in " + dir_ + ": " + std::to_string(free >> 20) +
                             " MiB free on its filesystem, " + std::to_string(reserve >> 20) +
                             " MiB kept in reserve; writing is paused until space is freed");
}

Status StateDb::Write(rocksdb::WriteBatch& batch, std::string_view context,
                      const rocksdb::WriteOptions& options) const {
  ORDERFLOW_RETURN_IF_ERROR(HasRoom());
  return FromRocks(db_->Write(options, &batch), context);
}

}  // namespace orderflow::eventstore

// The one local-state layer: every RocksDB store orderflow keeps (the
// projections, each service's private state, the embedded broker's log
// archive) opens, maps errors and keys its consumed offsets through here, so
// that state and offsets commit in one atomic write everywhere and a store's
// failure reads the same whichever store it is.
//
// Internal to the .cc files that keep a store (it pulls in RocksDB's headers).
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/status.h"
#include "eventstore/kafka.h"

namespace orderflow::eventstore {

// RocksDB status -> orderflow Status by RocksDB's code, with `context`
// ("open store DIR") first: kUnavailable for busy/timeouts/no space (retry),
// kCorruption, kNotFound, kInternal for the rest. (A directory another
// process holds is found by StateDb::Open from the lock itself: kInUse.)
Status FromRocks(const rocksdb::Status& s, std::string_view context);

// Keys per partition: prefix + topic + '/' + big-endian 32-bit partition.
std::string PartitionKey(std::string_view prefix, const TopicPartition& tp);
// Values per partition (be64) under `prefix`: consumed offsets, archive ends.
using PartitionValues = std::map<TopicPartition, int64_t>;
void PutPartitionValues(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* family, std::string_view prefix,
                        const PartitionValues& values);
Result<PartitionValues> ReadPartitionValues(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family,
                                            std::string_view prefix, std::string_view what);
std::string BE64(int64_t v);

// A family read by key while it is written live: a `write_buffer_mib` memtable
// with a whole-key Bloom filter (`memtable_filter_ratio` of it) and 10-bit
// Bloom filters in its files, so a lookup of a missing key searches nothing.
void TuneForPointLookups(rocksdb::ColumnFamilyOptions& family, size_t write_buffer_mib, double memtable_filter_ratio);

struct StateDbOptions {
  bool read_only = false;
  rocksdb::DBOptions db;
  // Column families in the order cf() indexes them; "default" is opened
  // after them (RocksDB requires it). Empty: the default family only, cf(0).
  std::vector<std::pair<std::string, rocksdb::ColumnFamilyOptions>> families;
  rocksdb::ColumnFamilyOptions default_family;
  // Appended to a kCorruption from the open: how this store is rebuilt.
  std::string corruption_remedy;
};

class StateDb {
 public:
  // Opens (creating when not read-only) the store in `dir`. `what` names it in
  // errors ("projection store", "payment store"). A read-only open of a
  // directory with no store is kNotFound.
  static Result<std::unique_ptr<StateDb>> Open(const std::string& dir, std::string_view what, StateDbOptions options);
  ~StateDb();
  StateDb(const StateDb&) = delete;
  StateDb& operator=(const StateDb&) = delete;

  rocksdb::DB& db() const { return *db_; }
  rocksdb::ColumnFamilyHandle* cf(size_t index) const { return handles_[index]; }
  const std::vector<rocksdb::ColumnFamilyHandle*>& families() const { return handles_; }
  const std::string& dir() const { return dir_; }

  // One atomic write (state and the offsets it consumed go in the same batch).
  // Refused (kUnavailable, nothing written) while HasRoom() says no.
  Status Write(rocksdb::WriteBatch& batch, std::string_view context,
               const rocksdb::WriteOptions& options = rocksdb::WriteOptions()) const;

  // Disk full is an operating condition: kUnavailable ("no space left for ...,
  // N MiB free ...") while the store's filesystem has less than a reserve free
  // (5 % of its size, at least 4 MiB, at most 256 MiB), so writers pause before
  // RocksDB meets ENOSPC mid-write, and resume once space is freed.
  Status HasRoom() const;

 private:
  StateDb() = default;
  class OpenedHere;
  std::unique_ptr<OpenedHere> opened_here_;  // released after the database closes
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::string dir_;
  std::string what_;
};

}  // namespace orderflow::eventstore

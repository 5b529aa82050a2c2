// The log, kept outside the broker: a local archive of every record of
// orderflow's topics (`orderflow up` on the embedded broker, which keeps no
// data across restarts), and export files (`orderflow log export|import`, for
// backups and migrations between clusters). Either can be appended to an
// empty cluster again, each record at its original partition and offset, so
// every store's consumed offsets stay valid.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "domain/status.h"
#include "eventstore/kafka.h"

namespace rocksdb {
class DB;
}
namespace orderflow::eventstore {
class StateDb;
}

namespace orderflow::eventstore {

struct ArchivedRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = 0;
  std::string key;
  std::string value;
  std::vector<eventstore::Header> headers;
};

using ArchiveOffsets = std::map<eventstore::TopicPartition, int64_t>;
// Feeds records to `sink` in (topic, partition, offset) order.
using RecordSource = std::function<Status(const std::function<Status(ArchivedRecord&&)>& sink)>;

// A RocksDB store of records, keyed by topic, partition and offset; each
// partition's records are contiguous from offset 0.
class LogArchive {
 public:
  static Result<std::unique_ptr<LogArchive>> Open(const std::string& dir);
  ~LogArchive();

  // Archives the records past each partition's end (in offset order). A record
  // beyond the end (a gap) is kCorruption: the archive would not reproduce offsets.
  Status Append(const std::vector<eventstore::Record>& records);

  // Next offset (= records archived) per partition.
  ArchiveOffsets Ends() const;

  // Waits until every partition in `targets` is archived up to (not
  // including) its offset. Errors: kUnavailable after `timeout`.
  Status WaitFor(const ArchiveOffsets& targets, std::chrono::milliseconds timeout) const;

  // The partition count of each archived topic, recorded once so a restart
  // recreates the topics as they were.
  Status SetTopicPartitions(const std::map<std::string, int32_t>& partitions);
  Result<std::map<std::string, int32_t>> TopicPartitions() const;
  uint64_t size() const;

  // Every record, in (topic, partition, offset) order.
  Status ForEach(const std::function<Status(ArchivedRecord&&)>& sink) const;

 private:
  LogArchive() = default;
  std::unique_ptr<StateDb> store_;
  rocksdb::DB* db_ = nullptr;  // store_->db()
  mutable std::mutex mu_;
  mutable std::condition_variable appended_;
  ArchiveOffsets ends_;
  uint64_t size_ = 0;
};

// Appends every record from `source` to its topic and partition (which must
// exist and be empty) and checks it lands at its archived offset.
// Errors: kFailedPrecondition for a non-empty partition, kCorruption when an
// offset differs, the producer's errors. Calls `progress` with records so far.
Result<uint64_t> Republish(const eventstore::KafkaConfig& kafka, const RecordSource& source,
                           const std::function<void(uint64_t)>& progress = nullptr);

// Writes every record of `topics` (each partition from offset 0 to its end)
// to the file `path`. Errors: kFailedPrecondition when a partition no longer
// starts at offset 0 (the export could not be imported at the same offsets).
Result<uint64_t> ExportLog(const eventstore::KafkaConfig& kafka, const std::vector<std::string>& topics,
                           const std::string& path, const std::function<void(uint64_t)>& progress = nullptr);

// The records of an export file, for Republish. Errors: kCorruption for a
// file that is not an orderflow log export (or is damaged), kNotFound.
struct LogFile {
  ArchiveOffsets records;  // per partition
  RecordSource source;
};
Result<LogFile> OpenLogFile(const std::string& path);

}  // namespace orderflow::eventstore

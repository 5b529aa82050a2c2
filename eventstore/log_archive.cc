#include "eventstore/log_archive.h"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <fcntl.h>
#include <kj/io.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>

#include "domain/clock.h"
#include "eventstore/big_endian.h"
#include "eventstore/capnp_util.h"
#include "eventstore/state_db.h"
#include "schemas/archive.capnp.h"

namespace orderflow::eventstore {
namespace {

using eventstore::GetBE;

constexpr char kMagic[] = "orderflow-log-export 1\n";
constexpr char kEndsPrefix[] = "\x01" "end/";     // meta keys sort before every topic name
constexpr char kPartsPrefix[] = "\x01" "parts/";

std::string RecordKey(const std::string& topic, int32_t partition, int64_t offset) {
  std::string key = topic + '\0';
  eventstore::PutBE32(&key, static_cast<uint32_t>(partition));
  eventstore::PutBE64(&key, static_cast<uint64_t>(offset));
  return key;
}

std::string EndKey(const eventstore::TopicPartition& tp) {
  std::string key = kEndsPrefix + tp.topic + '\0';
  eventstore::PutBE32(&key, static_cast<uint32_t>(tp.partition));
  return key;
}

void Fill(schema::ArchivedRecord::Builder b, const std::string& topic, int32_t partition, int64_t offset,
          int64_t timestamp_ms, std::string_view key, std::string_view value,
          const std::vector<eventstore::Header>& headers) {
  b.setTopic(topic);
  b.setPartition(partition);
  b.setOffset(offset);
  b.setTimestampMs(timestamp_ms);
  b.setKey(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(key.data()), key.size()));
  b.setValue(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(value.data()), value.size()));
  auto hs = b.initHeaders(static_cast<unsigned>(headers.size()));
  for (size_t i = 0; i < headers.size(); ++i) {
    hs[i].setName(headers[i].name);
    hs[i].setValue(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(headers[i].value.data()),
                                       headers[i].value.size()));
  }
}

ArchivedRecord FromReader(schema::ArchivedRecord::Reader r) {
  ArchivedRecord out;
  out.topic = eventstore::ToString(r.getTopic());
  out.partition = r.getPartition();
  out.offset = r.getOffset();
  out.timestamp_ms = r.getTimestampMs();
  out.key.assign(reinterpret_cast<const char*>(r.getKey().begin()), r.getKey().size());
  out.value.assign(reinterpret_cast<const char*>(r.getValue().begin()), r.getValue().size());
  for (auto h : r.getHeaders()) {
    out.headers.push_back({eventstore::ToString(h.getName()),
                           std::string(reinterpret_cast<const char*>(h.getValue().begin()), h.getValue().size())});
  }
  return out;
}

std::string Encode(const eventstore::Record& r) {
  capnp::MallocMessageBuilder message;
  Fill(message.initRoot<schema::ArchivedRecord>(), std::string(r.topic()), r.partition(), r.offset(),
       r.timestamp_ms(), r.key(), r.value(), r.Headers());
  return eventstore::WritePacked(message);
}

Result<ArchivedRecord> Decode(std::string_view bytes) {
  return eventstore::ReadPackedRoot<schema::ArchivedRecord, ArchivedRecord>(
      bytes, "archived", [](schema::ArchivedRecord::Reader r) -> Result<ArchivedRecord> { return FromReader(r); });
}

}  // namespace

LogArchive::~LogArchive() = default;

Result<std::unique_ptr<LogArchive>> LogArchive::Open(const std::string& dir) {
  StateDbOptions options;
  options.db.keep_log_file_num = 3;
  options.default_family.compression = rocksdb::kLZ4Compression;
  auto store = StateDb::Open(dir, "log archive", std::move(options));
  if (!store.ok()) return store.status();
  std::unique_ptr<LogArchive> archive(new LogArchive());
  archive->store_ = std::move(store).value();
  archive->db_ = &archive->store_->db();
  std::unique_ptr<rocksdb::Iterator> it(archive->db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(kEndsPrefix); it->Valid() && it->key().starts_with(kEndsPrefix); it->Next()) {
    std::string_view rest = it->key().ToStringView().substr(sizeof(kEndsPrefix) - 1);
    if (rest.size() < 5 || it->value().size() != 8) return Status::Corruption("malformed archive end in " + dir);
    eventstore::TopicPartition tp{std::string(rest.substr(0, rest.size() - 5)),
                                  static_cast<int32_t>(GetBE(rest.substr(rest.size() - 4)))};
    const auto end = static_cast<int64_t>(GetBE(it->value().ToStringView()));
    archive->ends_[tp] = end;
    archive->size_ += static_cast<uint64_t>(end);
  }
  ORDERFLOW_RETURN_IF_ERROR(FromRocks(it->status(), "read archive " + dir));
  return archive;
}

Status LogArchive::Append(const std::vector<eventstore::Record>& records) {
  std::lock_guard lock(mu_);
  ArchiveOffsets next = ends_;
  rocksdb::WriteBatch batch;
  uint64_t added = 0;
  for (const eventstore::Record& r : records) {
    eventstore::TopicPartition tp{std::string(r.topic()), r.partition()};
    int64_t& end = next[tp];
    if (r.offset() < end) continue;  // archived already
    if (r.offset() > end) {
      return Status::Corruption("archive gap: " + tp.topic + "[" + std::to_string(tp.partition) + "] offset " +
                              std::to_string(r.offset()) + " follows offset " + std::to_string(end - 1) +
                              " (transaction markers or a moved log start cannot be archived at the same offsets)");
    }
    batch.Put(RecordKey(tp.topic, tp.partition, r.offset()), Encode(r)).PermitUncheckedError();
    end = r.offset() + 1;
    ++added;
  }
  if (added == 0) return Status::Ok();
  for (const auto& [tp, end] : next) {
    if (ends_[tp] == end) continue;
    std::string value;
    eventstore::PutBE64(&value, static_cast<uint64_t>(end));
    batch.Put(EndKey(tp), value).PermitUncheckedError();
  }
  ORDERFLOW_RETURN_IF_ERROR(store_->Write(batch, "write archive"));
  ends_ = std::move(next);
  size_ += added;
  appended_.notify_all();
  return Status::Ok();
}

Status LogArchive::WaitFor(const ArchiveOffsets& targets, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  auto reached = [&] {
    for (const auto& [tp, offset] : targets) {
      auto it = ends_.find(tp);
      if ((it == ends_.end() ? 0 : it->second) < offset) return false;
    }
    return true;
  };
  if (appended_.wait_for(lock, timeout, reached)) return Status::Ok();
  return Status::Unavailable("the archive did not reach the log's end within " + std::to_string(timeout.count()) +
                             " ms");
}

Status LogArchive::SetTopicPartitions(const std::map<std::string, int32_t>& partitions) {
  rocksdb::WriteBatch batch;
  for (const auto& [topic, n] : partitions) {
    std::string value;
    eventstore::PutBE32(&value, static_cast<uint32_t>(n));
    batch.Put(kPartsPrefix + topic, value).PermitUncheckedError();
  }
  return store_->Write(batch, "write archive");
}

Result<std::map<std::string, int32_t>> LogArchive::TopicPartitions() const {
  std::map<std::string, int32_t> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(kPartsPrefix); it->Valid() && it->key().starts_with(kPartsPrefix); it->Next()) {
    if (it->value().size() != 4) return Status::Corruption("malformed partition count in the archive");
    out[it->key().ToString().substr(sizeof(kPartsPrefix) - 1)] = static_cast<int32_t>(GetBE(it->value().ToStringView()));
  }
  ORDERFLOW_RETURN_IF_ERROR(FromRocks(it->status(), "read archive"));
  return out;
}

ArchiveOffsets LogArchive::Ends() const {
  std::lock_guard lock(mu_);
  return ends_;
}

uint64_t LogArchive::size() const {
  std::lock_guard lock(mu_);
  return size_;
}

Status LogArchive::ForEach(const std::function<Status(ArchivedRecord&&)>& sink) const {
  rocksdb::ReadOptions options;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().starts_with("\x01")) continue;  // meta
    auto record = Decode(it->value().ToStringView());
    if (!record.ok()) return record.status();
    ORDERFLOW_RETURN_IF_ERROR(sink(std::move(record).value()));
  }
  return FromRocks(it->status(), "read archive");
}

Result<uint64_t> Republish(const eventstore::KafkaConfig& kafka, const RecordSource& source,
                           const std::function<void(uint64_t)>& progress) {
  auto reader = eventstore::Reader::Create(kafka, "orderflow-republish");
  if (!reader.ok()) return reader.status();
  auto producer = eventstore::Producer::Create(kafka, "orderflow-republish");
  if (!producer.ok()) return producer.status();
  std::set<eventstore::TopicPartition> checked;
  struct Shared {
    std::mutex mu;
    Status error;
  };
  auto shared = std::make_shared<Shared>();
  uint64_t count = 0;
  Status s = source([&](ArchivedRecord&& r) -> Status {
    eventstore::TopicPartition tp{r.topic, r.partition};
    if (checked.insert(tp).second) {
      auto partitions = (*reader)->PartitionCount(r.topic, std::chrono::seconds(10));
      if (!partitions.ok()) return partitions.status();
      if (r.partition >= *partitions) {
        return Status::FailedPrecondition(r.topic + " has " + std::to_string(*partitions) +
                                          " partitions here, but the records come from partition " +
                                          std::to_string(r.partition) + "; create it with as many partitions");
      }
      auto w = (*reader)->QueryWatermarks(tp, std::chrono::seconds(10));
      if (!w.ok()) return w.status();
      if (w->high != 0) {
        return Status::FailedPrecondition(r.topic + "[" + std::to_string(r.partition) + "] already holds " +
                                          std::to_string(w->high) +
                                          " records; records can only be republished into empty partitions");
      }
    }
    const int64_t want = r.offset;
    const std::string where = r.topic + "[" + std::to_string(r.partition) + "]";
    ORDERFLOW_RETURN_IF_ERROR((*producer)->AppendTo(
        r.topic, r.partition, r.key, r.value, r.headers, r.timestamp_ms,
        [shared, want, where](const Status& st, eventstore::Position pos) {
          std::lock_guard lock(shared->mu);
          if (!shared->error.ok()) return;
          if (!st.ok()) {
            shared->error = st;
          } else if (pos.offset != want) {
            shared->error = Status::Corruption(where + ": a record archived at offset " + std::to_string(want) +
                                             " landed at offset " + std::to_string(pos.offset));
          }
        }));
    if (++count % 20000 == 0) {
      ORDERFLOW_RETURN_IF_ERROR((*producer)->Flush(std::chrono::seconds(60)));
      if (progress) progress(count);
    }
    std::lock_guard lock(shared->mu);
    return shared->error;
  });
  ORDERFLOW_RETURN_IF_ERROR(s);
  ORDERFLOW_RETURN_IF_ERROR((*producer)->Flush(std::chrono::seconds(60)));
  std::lock_guard lock(shared->mu);
  ORDERFLOW_RETURN_IF_ERROR(shared->error);
  if (progress) progress(count);
  return count;
}

Result<uint64_t> ExportLog(const eventstore::KafkaConfig& kafka, const std::vector<std::string>& topics,
                           const std::string& path, const std::function<void(uint64_t)>& progress) {
  auto reader = eventstore::Reader::Create(kafka, "orderflow-export");
  if (!reader.ok()) return reader.status();
  capnp::MallocMessageBuilder header_message;
  auto header = header_message.initRoot<schema::LogFileHeader>();
  header.setFormatVersion(1);
  header.setCreatedAtMs(SystemClock().WallMs());
  auto list = header.initPartitions(static_cast<unsigned>(topics.size()));
  std::vector<std::pair<eventstore::TopicPartition, int64_t>> ends;
  for (size_t t = 0; t < topics.size(); ++t) {
    auto count = (*reader)->PartitionCount(topics[t], std::chrono::seconds(10));
    if (!count.ok()) return count.status();
    list[t].setTopic(topics[t]);
    list[t].setPartitions(*count);
    auto records = list[t].initRecords(static_cast<unsigned>(*count));
    for (int32_t p = 0; p < *count; ++p) {
      eventstore::TopicPartition tp{topics[t], p};
      auto w = (*reader)->QueryWatermarks(tp, std::chrono::seconds(10));
      if (!w.ok()) return w.status();
      if (w->low != 0) {
        return Status::FailedPrecondition(topics[t] + "[" + std::to_string(p) + "] now starts at offset " +
                                          std::to_string(w->low) +
                                          ": its first records are gone, so an export could not be imported at the "
                                          "same offsets");
      }
      records.set(static_cast<unsigned>(p), w->high);
      ends.emplace_back(tp, w->high);
    }
  }
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::InvalidArgument("cannot write " + tmp + ": " + std::strerror(errno));
  uint64_t written = 0;
  Status result;
  try {
    kj::FdOutputStream raw(fd);
    kj::BufferedOutputStreamWrapper out(raw);
    out.write(kMagic, sizeof(kMagic) - 1);
    capnp::writePackedMessage(out, header_message);
    for (const auto& [tp, end] : ends) {
      if (end == 0) continue;
      ORDERFLOW_RETURN_IF_ERROR((*reader)->Assign({{tp, 0}}));
      int64_t next = 0;
      while (next < end) {
        auto records = (*reader)->Poll(5000, std::chrono::milliseconds(500), true);
        if (!records.ok()) {
          result = records.status();
          break;
        }
        for (const eventstore::Record& r : *records) {
          if (r.offset() >= end) break;
          if (r.offset() != next) {
            result = Status::Corruption(tp.topic + "[" + std::to_string(tp.partition) + "] skips from offset " +
                                      std::to_string(next) + " to " + std::to_string(r.offset()) +
                                      " (transaction markers): it cannot be exported at the same offsets");
            break;
          }
          capnp::MallocMessageBuilder m;
          Fill(m.initRoot<schema::ArchivedRecord>(), tp.topic, tp.partition, r.offset(), r.timestamp_ms(), r.key(),
               r.value(), r.Headers());
          capnp::writePackedMessage(out, m);
          next = r.offset() + 1;
          if (++written % 20000 == 0 && progress) progress(written);
        }
        if (!result.ok()) break;
      }
      if (!result.ok()) break;
    }
    out.flush();
  } catch (const kj::Exception& e) {
    result = Status::Internal("writing " + tmp + ": " + e.getDescription().cStr());
  }
  if (result.ok() && ::fsync(fd) != 0) result = Status::Internal("fsync " + tmp + ": " + std::strerror(errno));
  ::close(fd);
  if (result.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    result = Status::Internal("rename " + tmp + ": " + std::strerror(errno));
  }
  if (!result.ok()) {
    std::remove(tmp.c_str());
    return result;
  }
  if (progress) progress(written);
  return written;
}

Result<LogFile> OpenLogFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::NotFound("cannot read " + path + ": " + std::strerror(errno));
  char magic[sizeof(kMagic) - 1];
  const bool ok = ::read(fd, magic, sizeof magic) == static_cast<ssize_t>(sizeof magic) &&
                  std::string_view(magic, sizeof magic) == std::string_view(kMagic, sizeof magic);
  if (!ok) {
    ::close(fd);
    return Status::Corruption(path + " is not an orderflow log export (no '" +
                              std::string(kMagic, sizeof(kMagic) - 2) + "' header)");
  }
  LogFile file;
  try {
    kj::FdInputStream raw(fd);
    kj::BufferedInputStreamWrapper in(raw);
    capnp::PackedMessageReader reader(in);
    auto header = reader.getRoot<schema::LogFileHeader>();
    if (header.getFormatVersion() != 1) {
      ::close(fd);
      return Status::Corruption(path + ": format version " + std::to_string(header.getFormatVersion()) +
                                " is not supported by this build");
    }
    for (auto t : header.getPartitions()) {
      for (unsigned p = 0; p < t.getRecords().size(); ++p) {
        file.records[{eventstore::ToString(t.getTopic()), static_cast<int32_t>(p)}] = t.getRecords()[p];
      }
    }
  } catch (const kj::Exception& e) {
    ::close(fd);
    return Status::Corruption(path + ": damaged header: " + e.getDescription().cStr());
  }
  ::close(fd);
  const ArchiveOffsets expected = file.records;
  file.source = [path, expected](const std::function<Status(ArchivedRecord&&)>& sink) -> Status {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::NotFound("cannot read " + path + ": " + std::strerror(errno));
    ArchiveOffsets seen;
    Status result;
    try {
      kj::FdInputStream raw(fd);
      kj::BufferedInputStreamWrapper in(raw);
      char magic[sizeof(kMagic) - 1];
      in.read(magic, sizeof magic);
      { capnp::PackedMessageReader skip(in); }
      capnp::ReaderOptions options;
      options.traversalLimitInWords = 1 << 22;
      while (result.ok() && in.tryGetReadBuffer().size() > 0) {
        capnp::PackedMessageReader m(in, options);
        ArchivedRecord r = FromReader(m.getRoot<schema::ArchivedRecord>());
        eventstore::TopicPartition tp{r.topic, r.partition};
        if (!expected.count(tp) || r.offset != seen[tp]) {
          result = Status::Corruption(path + ": record " + r.topic + "[" + std::to_string(r.partition) + "]@" +
                                      std::to_string(r.offset) + " is out of place; the file is damaged");
          break;
        }
        seen[tp] = r.offset + 1;
        result = sink(std::move(r));
      }
    } catch (const kj::Exception& e) {
      result = Status::Corruption(path + ": damaged record: " + e.getDescription().cStr());
    }
    ::close(fd);
    ORDERFLOW_RETURN_IF_ERROR(result);
    for (const auto& [tp, n] : expected) {
      const int64_t have = seen.count(tp) ? seen.at(tp) : 0;
      if (have != n) {
        return Status::Corruption(path + ": " + tp.topic + "[" + std::to_string(tp.partition) + "] has " +
                                  std::to_string(have) + " records, the header says " + std::to_string(n) +
                                  "; the file is damaged: it ends early");
      }
    }
    return Status::Ok();
  };
  return file;
}

}  // namespace orderflow::eventstore

// The embedded log's archive at work in `orderflow up` (archiver.h).
#include "cli/app/archiver.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <functional>
#include <utility>

#include "projections/store.h"

namespace orderflow::services {

Status RunArchiver(const eventstore::KafkaConfig& kafka, const std::vector<eventstore::TopicSpec>& topics,
                   eventstore::LogArchive& archive, std::stop_token halt) {
  auto reader = eventstore::Reader::Create(kafka, "orderflow-archiver");
  if (!reader.ok()) return reader.status();
  const auto ends = archive.Ends();
  std::vector<std::pair<eventstore::TopicPartition, int64_t>> positions;
  for (const auto& t : topics) {
    for (int32_t p = 0; p < t.partitions; ++p) {
      eventstore::TopicPartition tp{t.name, p};
      positions.emplace_back(tp, ends.count(tp) ? ends.at(tp) : 0);
    }
  }
  ORDERFLOW_RETURN_IF_ERROR((*reader)->Assign(positions));
  while (!halt.stop_requested()) {
    auto records = (*reader)->Poll(5000, std::chrono::milliseconds(50));
    if (!records.ok()) {
      if (!records.status().IsRetryable()) return records.status();
      kafka.clock->SleepFor(std::chrono::milliseconds(100), halt);
      continue;
    }
    if (records->empty()) continue;
    // A full disk pauses the archive (and with it the acknowledgements that
    // wait for it) until space is freed; the same records are appended then.
    for (Status appended = archive.Append(*records); !appended.ok(); appended = archive.Append(*records)) {
      if (!appended.IsRetryable()) return appended;
      spdlog::warn("archive: {}", appended.ToString());
      if (!kafka.clock->SleepFor(std::chrono::seconds(2), halt)) return Status::Ok();
    }
  }
  return Status::Ok();
}

Status RestoreArchive(const std::string& data_dir, const eventstore::KafkaConfig& kafka,
                      eventstore::LogArchive& archive) {
  auto store = projections::ProjectionStore::Open(data_dir, {.read_only = true});
  if (store.ok()) {
    auto offsets = (*store)->GetOffsets();
    if (!offsets.ok()) return offsets.status();
    if (!offsets->empty() && archive.size() == 0) {
      return Status::FailedPrecondition(
          data_dir + " holds state from an earlier run but no archive of its log (" + data_dir +
          "/archive), and the embedded broker keeps no data across restarts; use a new --data-dir (or remove "
          "this one), or import a `orderflow log export` file into a broker and pass --brokers");
    }
  }
  if (archive.size() == 0) return Status::Ok();
  spdlog::info("republishing {} archived records into the embedded broker", archive.size());
  auto republished = eventstore::Republish(
      kafka, [&](const std::function<Status(eventstore::ArchivedRecord&&)>& sink) { return archive.ForEach(sink); });
  if (!republished.ok()) {
    return Status(republished.status().code(),
                  "republishing the archive in " + data_dir + "/archive: " + republished.status().message());
  }
  spdlog::info("republished {} records", *republished);
  return Status::Ok();
}

}  // namespace orderflow::services

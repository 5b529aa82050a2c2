#include "replay/replay.h"

#include <chrono>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <stdio.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <vector>

#include "eventstore/topics.h"
#include "projections/bulk_load.h"
#include "projections/projector.h"
#include "projections/snapshot.h"

namespace orderflow::replay {

Result<bool> RebuildIfOutdated(const ReplayOptions& options, const std::string& data_dir) {
  namespace fs = std::filesystem;
  auto version = projections::StoredProjectionVersion(data_dir);
  if (!version.ok()) return version.status();
  if (!version->has_value() || **version == projections::kProjectionVersion) return false;
  spdlog::warn("{} was built by projection version {}; rebuilding it with version {} from the log (the old state "
               "stays readable until the swap)",
               data_dir, **version, projections::kProjectionVersion);
  ReplayOptions side = options;
  side.data_dir = data_dir + ".rebuild";
  side.force = true;
  side.from_snapshot.clear();
  side.until_offset = side.until_time_ms = -1;
  std::error_code ec;
  const fs::path services = fs::path(data_dir) / "services";
  const fs::path side_services = fs::path(side.data_dir) / "services";
  // A crash mid-swap may have left up's services' stores in the side directory.
  if (fs::exists(side_services) && !fs::exists(services)) fs::rename(side_services, services, ec);
  fs::remove_all(side.data_dir, ec);
  auto rebuilt = Replay(side);
  if (!rebuilt.ok()) return rebuilt.status();
  // `orderflow up` keeps its services' own stores under <data-dir>/services/:
  // not part of the projection, they travel with the swap (and are recovered
  // above if a crash comes between these two renames).
  if (fs::exists(services)) {
    fs::rename(services, side_services, ec);
    if (ec) return Status::Internal("moving the services' stores: " + ec.message());
  }
  if (renameat2(AT_FDCWD, side.data_dir.c_str(), AT_FDCWD, data_dir.c_str(), RENAME_EXCHANGE) != 0) {
    return Status::Internal("swapping " + side.data_dir + " and " + data_dir + ": " + std::strerror(errno));
  }
  fs::remove_all(side.data_dir, ec);  // now the old store
  spdlog::info("rebuilt {}: {} events, digest {}", data_dir, rebuilt->events, rebuilt->digest);
  return true;
}

namespace {

// Whether the replayed topics exist and hold a record; false for a topic not
// created yet.
Result<bool> LogHasRecords(const ReplayOptions& options) {
  auto reader = eventstore::Reader::Create(options.kafka, "orderflow-restore");
  if (!reader.ok()) return reader.status();
  const std::vector<std::string> topics =
      options.topics.empty() ? std::vector<std::string>{eventstore::kOrdersTopic} : options.topics;
  for (const std::string& topic : topics) {
    auto partitions = (*reader)->PartitionCount(topic, std::chrono::seconds(10));
    if (partitions.status().code() == StatusCode::kNotFound) continue;
    if (!partitions.ok()) return partitions.status();
    for (int32_t p = 0; p < *partitions; ++p) {
      auto w = (*reader)->QueryWatermarks({topic, p}, std::chrono::seconds(10));
      if (!w.ok()) return w.status();
      if (w->high > w->low) return true;
    }
  }
  return false;
}

}  // namespace

Result<std::optional<RestoreReport>> RestoreIfLost(const ReplayOptions& options, const std::string& data_dir,
                                                   const std::string& snapshots_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(fs::path(data_dir) / "CURRENT", ec)) return std::optional<RestoreReport>();
  auto snapshots = projections::ListSnapshots(snapshots_dir);
  if (!snapshots.ok()) return snapshots.status();
  const projections::SnapshotManifest* newest = nullptr;  // ListSnapshots: oldest first
  for (auto it = snapshots->rbegin(); it != snapshots->rend() && newest == nullptr; ++it) {
    if (Status usable = projections::CheckRestorable(*it); usable.ok()) {
      newest = &*it;
    } else {
      spdlog::info("passing over a snapshot in {}: {}", snapshots_dir, usable.message());
    }
  }
  if (newest == nullptr) {
    // No snapshot: the bulk loader from offset zero costs a third of the live
    // projector's CPU. Nothing to do on a log without records (a new cluster:
    // `up` creates the topics after this), or one that cannot be asked now
    // (topics being created by another process): the live projector starts
    // from offset zero, as it always could.
    auto records = LogHasRecords(options);
    if (!records.ok()) {
      spdlog::info("{} holds no store; the log cannot be asked whether it holds records ({}): the projector "
                   "starts from offset zero",
                   data_dir, records.status().ToString());
      return std::optional<RestoreReport>();
    }
    if (!*records) return std::optional<RestoreReport>();
    spdlog::info("{} holds no store and {} no snapshot this build reads: rebuilding it from offset zero", data_dir,
                 snapshots_dir);
  } else {
    spdlog::info("{} holds no store: restoring snapshot {} from {} and replaying the log after it", data_dir,
                 newest->name, snapshots_dir);
  }
  ReplayOptions side = options;
  side.data_dir = data_dir + ".restore";
  side.force = false;
  side.snapshots_dir = snapshots_dir;
  side.from_snapshot = newest == nullptr ? "" : newest->name;
  side.until_offset = side.until_time_ms = -1;
  fs::remove_all(side.data_dir, ec);  // what a crash left on the way
  auto tail = Replay(side);
  if (!tail.ok()) {
    fs::remove_all(side.data_dir, ec);
    if (newest != nullptr) return tail.status();
    // From offset zero this was only quicker than the live projector, which
    // starts from offset zero itself (and says what is wrong if it stays so).
    spdlog::info("{}: rebuilding from offset zero failed ({}); the projector starts from offset zero", data_dir,
                 tail.status().ToString());
    return std::optional<RestoreReport>();
  }
  // Without CURRENT data_dir holds no store: files in it are what an earlier
  // restore left on the way. Its subdirectories (up's services) stay.
  auto files_in = [&ec](const std::string& dir) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir, ec)) files.push_back(entry.path());
    return files;
  };
  fs::create_directories(data_dir, ec);
  for (const fs::path& leftover : files_in(data_dir)) {
    if (!fs::is_directory(leftover, ec)) fs::remove(leftover, ec);
  }
  if (ec) return Status::Internal("cannot clear " + data_dir + " for the restored store: " + ec.message());
  for (const fs::path& file : files_in(side.data_dir)) {
    if (file.filename() == "CURRENT") continue;
    fs::rename(file, fs::path(data_dir) / file.filename(), ec);
    if (ec) return Status::Internal("cannot move the restored store into " + data_dir + ": " + ec.message());
  }
  fs::rename(fs::path(side.data_dir) / "CURRENT", fs::path(data_dir) / "CURRENT", ec);
  if (ec) return Status::Internal("cannot move the restored store into " + data_dir + ": " + ec.message());
  fs::remove_all(side.data_dir, ec);
  spdlog::info("restored {} from {} and {} events, digest {}", data_dir,
               newest == nullptr ? std::string("offset zero") : "snapshot " + newest->name, tail->events, tail->digest);
  return std::optional<RestoreReport>(RestoreReport{side.from_snapshot, std::move(tail).value()});
}

namespace {

using TimePoint = std::chrono::steady_clock::time_point;

// Up to this many records (~20 MiB of order events) are read with the deep
// prefetch: they fit in it whole. Read through the shallow queue, 2 of 10
// snapshot tails (39k events) waited ~0.45 s for librdkafka 2.0.2's fetcher
// to refill it (docs/benchmarks.md).
constexpr uint64_t kDeepPrefetchRecords = 100'000;

// User + system CPU of the whole process so far, for the debug line.
double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// From offset zero into an empty store: projections::BulkLoader, fed by a
// reader over every partition. Time travel drops what is past the limit.
// `stored_orders`: the restored snapshot's filter of its orders (BulkLoadOptions).
Result<ReplayResult> BulkReplay(const ReplayOptions& options, std::string stored_orders) {
  auto store = projections::ProjectionStore::Open(options.data_dir, {.read_only = false, .rebuild = true});
  if (!store.ok()) return store.status();
  // The loader, not the fetch, is the bound: prefetch little, so that the
  // replay's memory does not grow with the log. A shallow queue needs a
  // ticker partition on each broker (Reader::Tickers); without one, prefetch
  // up to 32 MiB or 100k messages, which the loader takes longer to drain
  // than librdkafka 2.0.2's fetcher sleeps.
  auto reader_with = [&](bool shallow) {
    eventstore::KafkaConfig kafka = options.kafka;
    kafka.overrides.insert(kafka.overrides.begin(),
                           {{"queued.max.messages.kbytes", shallow ? "2048" : "32768"},
                            {"queued.min.messages", shallow ? "5000" : "100000"},
                            {"fetch.message.max.bytes", "1048576"},
                            {"fetch.max.bytes", shallow ? "2097152" : "52428800"}});
    return eventstore::Reader::Create(kafka, "orderflow-replay");
  };
  auto reader = reader_with(true);
  if (!reader.ok()) return reader.status();
  // From offset zero into an empty store; after a restored snapshot, from its offsets.
  auto loader = projections::BulkLoader::Start(**store, {.stored_orders = std::move(stored_orders)});
  if (!loader.ok()) return loader.status();
  const projections::Offsets start = (*loader)->next_offsets();
  const std::vector<std::string> topics =
      options.topics.empty() ? std::vector<std::string>{eventstore::kOrdersTopic} : options.topics;
  std::vector<std::string> others;  // where tickers may be
  for (const auto& spec : eventstore::DefaultTopics()) {
    if (std::find(topics.begin(), topics.end(), spec.name) == topics.end()) others.push_back(spec.name);
  }
  projections::Offsets end;
  std::vector<std::pair<eventstore::TopicPartition, int64_t>> positions;
  auto listed = (*reader)->Partitions(topics, std::chrono::seconds(10));
  if (!listed.ok()) return listed.status();
  const std::vector<eventstore::TopicPartition>& partitions = *listed;
  auto marks = (*reader)->QueryWatermarks(partitions, std::chrono::seconds(10));
  if (!marks.ok()) return marks.status();
  for (size_t i = 0; i < partitions.size(); ++i) {
    const eventstore::TopicPartition& tp = partitions[i];
    const eventstore::Watermarks& w = (*marks)[i];
    const auto from = start.find(tp);
    const int64_t position = from == start.end() ? 0 : from->second;
    ORDERFLOW_RETURN_IF_ERROR(eventstore::CheckLogCovers(
        tp, position, w, options.data_dir,
        start.empty() ? "The log no longer holds every event; rebuild from a snapshot instead"
                      : "The log no longer holds the snapshot's tail; restore a newer snapshot"));
    end[tp] = options.until_offset >= 0 ? std::min(w.high, options.until_offset + 1) : w.high;
    positions.emplace_back(tp, position);
  }
  uint64_t total = 0;  // records to load
  for (const auto& [tp, position] : positions) total += static_cast<uint64_t>(std::max<int64_t>(0, end[tp] - position));
  (*loader)->ExpectRecords(total);
  // A short log (a snapshot's tail) fits in the deep prefetch: no tickers,
  // and no wait for the fetcher each time the shallow queue fills.
  Result<std::vector<eventstore::TopicPartition>> tickers = std::vector<eventstore::TopicPartition>();
  if (total <= kDeepPrefetchRecords) {
    reader = reader_with(false);
    if (!reader.ok()) return reader.status();
  } else {
    tickers = (*reader)->Tickers(partitions, others, std::chrono::seconds(10));
    if (!tickers.ok()) {
      spdlog::info("replay: {}: prefetching deeper", tickers.status().message());
      reader = reader_with(false);
      if (!reader.ok()) return reader.status();
      tickers = std::vector<eventstore::TopicPartition>();
    }
  }
  ORDERFLOW_RETURN_IF_ERROR((*reader)->Assign(positions, *tickers));

  std::set<eventstore::TopicPartition> stopped;  // time travel: past the limit
  auto past_limit = [&](const eventstore::Record& r) {
    return (options.until_offset >= 0 && r.offset() > options.until_offset) ||
           (options.until_time_ms >= 0 && r.timestamp_ms() > options.until_time_ms);
  };
  const auto started = options.kafka.clock->Now();
  const double cpu_at_start = ProcessCpuSeconds();
  auto last_progress = started;
  double poll_seconds = 0;
  auto report = [&](TimePoint now) {
    if (!options.on_progress) return;
    replay::ReplayProgress p;
    p.records = (*loader)->totals().records;
    p.total = total;
    p.seconds = std::chrono::duration<double>(now - started).count();
    p.records_per_second = p.seconds > 0 ? p.records / p.seconds : 0;
    const auto& next = (*loader)->next_offsets();
    for (const auto& [tp, high] : end) {
      auto it = next.find(tp);
      p.partitions.push_back({tp, it == next.end() ? 0 : it->second, high});
    }
    options.on_progress(p);
  };
  auto reached = [&] {
    const auto& next = (*loader)->next_offsets();
    for (const auto& [tp, high] : end) {
      if (stopped.count(tp)) continue;
      auto it = next.find(tp);
      if ((it == next.end() ? 0 : it->second) < high) return false;
    }
    return true;
  };
  projections::Offsets stepped;  // positions past transaction markers at the end of a partition
  double first_record_s = -1;
  bool came_short = false;
  while (!reached()) {
    const auto t0 = options.kafka.clock->Now();
    // A full batch where plenty is left; near the end whatever has come, so
    // the last poll does not wait out its timeout for records that are not
    // there. `total` counts offsets (markers, aborted records and time
    // travel's cut make the end nearer): twice the batch leaves room, and a
    // poll that came back short stops filling until one comes back full.
    const uint64_t loaded = (*loader)->totals().records;
    const bool fill = !came_short && total > loaded && total - loaded >= 2 * options.batch_size;
    auto polled = (*reader)->Poll(options.batch_size, std::chrono::milliseconds(100), fill);
    if (polled.ok()) came_short = polled->size() < options.batch_size;
    poll_seconds += std::chrono::duration<double>(options.kafka.clock->Now() - t0).count();
    if (!polled.ok()) {
      if (!polled.status().IsRetryable()) return polled.status();
      spdlog::warn("replay: {}; reading again from where it was", polled.status().ToString());
      std::vector<std::pair<eventstore::TopicPartition, int64_t>> resume;
      for (const auto& tp : partitions) {
        auto it = (*loader)->next_offsets().find(tp);
        resume.emplace_back(tp, it == (*loader)->next_offsets().end() ? 0 : it->second);
      }
      ORDERFLOW_RETURN_IF_ERROR((*reader)->Assign(resume, *tickers));
      continue;
    }
    if (polled->empty()) {
      // Transaction markers are never handed out: a partition whose reader
      // position passed the end is done.
      bool all = true;
      for (const auto& [tp, position] : (*reader)->Positions(partitions)) {
        auto it = (*loader)->next_offsets().find(tp);
        const int64_t next = it == (*loader)->next_offsets().end() ? 0 : it->second;
        if (position >= end[tp] && next < end[tp]) stepped[tp] = position;
        all = all && (stopped.count(tp) || position >= end[tp]);
      }
      if (all) break;
      continue;
    }
    if (options.until_offset >= 0 || options.until_time_ms >= 0) {
      std::erase_if(*polled, [&](const eventstore::Record& r) {
        eventstore::TopicPartition tp{std::string(r.topic()), r.partition()};
        if (stopped.count(tp)) return true;
        if (past_limit(r)) {
          stopped.insert(tp);
          return true;
        }
        return false;
      });
    }
    const auto now = options.kafka.clock->Now();
    if (first_record_s < 0) first_record_s = std::chrono::duration<double>(now - started).count();
    ORDERFLOW_RETURN_IF_ERROR((*loader)->Add(std::move(polled).value()));
    if (now - last_progress > std::chrono::milliseconds(500)) {
      last_progress = now;
      report(now);
    }
  }
  const auto read_all = options.kafka.clock->Now();
  ORDERFLOW_RETURN_IF_ERROR((*loader)->Finish(stepped));
  const auto finished = options.kafka.clock->Now();
  const double span_cpu = ProcessCpuSeconds() - cpu_at_start;
  spdlog::debug("replay: first record after {:.3f} s, every record read after {:.3f} s, finished after {:.3f} s; "
                "the process's CPU in that span {:.3f} s ({:.2f} us per record)",
                first_record_s, std::chrono::duration<double>(read_all - started).count(),
                std::chrono::duration<double>(finished - started).count(), span_cpu,
                span_cpu * 1e6 / std::max<uint64_t>(1, (*loader)->totals().records));
  report(finished);
  const auto totals = (*loader)->totals();
  ReplayResult result;
  result.records = totals.records;
  result.events = totals.applied;
  result.duplicates = totals.duplicates;
  result.rejected = totals.rejected;
  result.seconds = std::chrono::duration<double>(finished - started).count();
  result.events_per_second = result.seconds > 0 ? result.records / result.seconds : 0;
  result.poll_seconds = poll_seconds;
  result.apply_seconds = result.seconds - poll_seconds;
  result.end = end;
  // Computed while the files were written: reading the store back would cost
  // about a fifth of the rebuild (BulkLoaderTest checks the two agree).
  auto digest = (*loader)->Digest();
  if (!digest.ok()) return digest.status();
  result.digest = std::move(digest).value();
  return result;
}

}  // namespace

Result<ReplayResult> Replay(const ReplayOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(options.data_dir, ec) && !fs::is_empty(options.data_dir, ec)) {
    auto unfinished = projections::IsUnfinishedRebuild(options.data_dir);
    if (!unfinished.ok()) return unfinished.status();
    if (*unfinished) spdlog::info("{} holds an unfinished rebuild: replacing it", options.data_dir);
    if (!options.force && !*unfinished) {
      return Status::FailedPrecondition("data directory " + options.data_dir +
                                        " is not empty; replay rebuilds into an empty directory (pass a new "
                                        "--data-dir, or --force to replace the store in it)");
    }
    const bool has_store = fs::exists(fs::path(options.data_dir) / "CURRENT");
    if (!has_store && !*unfinished) {
      return Status::FailedPrecondition(options.data_dir + " is not an orderflow store; --force only replaces one");
    }
    if (has_store) {
      // Refuse a store a running service holds (this takes its lock, then
      // marks the store unfinished).
      auto in_use = projections::ProjectionStore::Open(options.data_dir, {.rebuild = true});
      if (!in_use.ok() && in_use.status().code() == StatusCode::kInUse) return in_use.status();
    }
    ORDERFLOW_RETURN_IF_ERROR(projections::RemoveStoreFiles(options.data_dir));
  }
  std::optional<projections::SnapshotManifest> restored;
  if (!options.from_snapshot.empty()) {
    auto m = projections::RestoreSnapshot(options.snapshots_dir, options.from_snapshot, options.data_dir);
    if (!m.ok()) return m.status();
    restored = std::move(m).value();
  }
  // A snapshot's tail goes through the bulk loader too, unless time travel
  // needs the batch path's checks below.
  if (!options.batch_path && (options.from_snapshot.empty() ||
                              (options.until_offset < 0 && options.until_time_ms < 0))) {
    return BulkReplay(options, restored ? projections::ReadOrdersFilter(options.snapshots_dir,
                                                                         options.from_snapshot, *restored)
                                        : std::string());
  }
  auto store = projections::ProjectionStore::Open(options.data_dir, {.read_only = false, .rebuild = true});
  if (!store.ok()) return store.status();
  if (!options.from_snapshot.empty() && options.until_time_ms >= 0) {
    return Status::InvalidArgument("--until-time replays from offset zero; it cannot start from a snapshot");
  }
  if (!options.from_snapshot.empty() && options.until_offset >= 0) {
    auto stored = (*store)->GetOffsets();
    if (!stored.ok()) return stored.status();
    for (const auto& [tp, offset] : *stored) {
      if (offset > options.until_offset + 1) {
        return Status::FailedPrecondition("snapshot " + options.from_snapshot + " is already past offset " +
                                          std::to_string(options.until_offset) + " in " + tp.topic + "[" +
                                          std::to_string(tp.partition) + "]; replay from offset zero instead");
      }
    }
  }
  auto reader = eventstore::Reader::Create(options.kafka, "orderflow-replay");
  if (!reader.ok()) return reader.status();

  projections::ProjectorOptions popts;
  popts.topics = options.topics.empty() ? std::vector<std::string>{eventstore::kOrdersTopic} : options.topics;
  popts.batch_size = options.batch_size;
  popts.poll_timeout = std::chrono::milliseconds(5);
  popts.fill_batches = true;
  // Time travel: partitions that passed the limit count as done.
  std::set<eventstore::TopicPartition> stopped;
  if (options.until_offset >= 0 || options.until_time_ms >= 0) {
    popts.accept = [&options, &stopped](const eventstore::Record& r) {
      eventstore::TopicPartition tp{std::string(r.topic()), r.partition()};
      if (stopped.count(tp)) return false;
      if ((options.until_offset >= 0 && r.offset() > options.until_offset) ||
          (options.until_time_ms >= 0 && r.timestamp_ms() > options.until_time_ms)) {
        stopped.insert(tp);
        return false;
      }
      return true;
    };
  }
  projections::Projector projector(**store, **reader, popts);
  ORDERFLOW_RETURN_IF_ERROR(projector.Start());
  auto end = projector.LogEnd();
  if (!end.ok()) return end.status();
  if (options.until_offset >= 0) {
    for (auto& [tp, high] : *end) high = std::min(high, options.until_offset + 1);
  }
  uint64_t total = 0;
  for (const auto& [tp, high] : *end) total += static_cast<uint64_t>(high);

  const auto started = options.kafka.clock->Now();
  auto last_progress = started;
  auto report = [&](TimePoint now) {
    if (!options.on_progress) return;
    ReplayProgress p;
    p.records = projector.totals().records;
    p.total = total;
    p.seconds = std::chrono::duration<double>(now - started).count();
    p.records_per_second = p.seconds > 0 ? p.records / p.seconds : 0;
    if (auto offsets = (*store)->GetOffsets(); offsets.ok()) {
      for (const auto& [tp, high] : *end) {
        auto it = offsets->find(tp);
        p.partitions.push_back({tp, it == offsets->end() ? 0 : it->second, high});
      }
    }
    options.on_progress(p);
  };
  while (true) {
    projections::Offsets remaining;
    for (const auto& [tp, high] : *end) {
      if (!stopped.count(tp)) remaining[tp] = high;
    }
    auto reached = projector.Reached(remaining);
    if (!reached.ok()) return reached.status();
    if (*reached) break;
    auto n = projector.Step();
    if (!n.ok()) {
      if (!n.status().IsRetryable()) return n.status();
      // The failed step may have dropped polled records: resume from what is committed.
      Status drained = projector.Drain();
      if (!drained.ok() && !drained.IsRetryable()) return drained;
      Status restarted = projector.Start();
      if (!restarted.ok() && !restarted.IsRetryable()) return restarted;
    }
    auto now = options.kafka.clock->Now();
    if (now - last_progress > std::chrono::milliseconds(500)) {
      last_progress = now;
      report(now);
    }
  }
  ORDERFLOW_RETURN_IF_ERROR(projector.Drain());  // the last batch may still be committing
  ORDERFLOW_RETURN_IF_ERROR((*store)->FinishRebuild());
  const auto finished = options.kafka.clock->Now();
  report(finished);

  ReplayResult result;
  result.records = projector.totals().records;
  result.events = projector.totals().applied;
  result.duplicates = projector.totals().duplicates;
  result.rejected = projector.totals().rejected;
  result.seconds = std::chrono::duration<double>(finished - started).count();
  result.events_per_second = result.seconds > 0 ? result.records / result.seconds : 0;
  result.poll_seconds = projector.totals().poll_seconds;
  result.apply_seconds = projector.totals().apply_seconds;
  result.end = std::move(end).value();
  auto digest = (*store)->Digest();
  if (!digest.ok()) return digest.status();
  result.digest = std::move(digest).value();
  return result;
}

}  // namespace orderflow::replay

#include "cli/commands.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "projections/store.h"
#include "replay/replay.h"
#include "projections/pg/pg_read_model.h"

namespace po = boost::program_options;
using nlohmann::json;

namespace orderflow::cli {
namespace {

// Epoch milliseconds, or an ISO-8601 UTC time "YYYY-MM-DDTHH:MM:SS[.mmm]Z".
Result<int64_t> ParseTime(const std::string& text) {
  int64_t ms = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec == std::errc() && ptr == text.data() + text.size()) return ms;
  std::tm tm{};
  int millis = 0;
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return Usage("cannot read time '" + text + "' (epoch ms or YYYY-MM-DDTHH:MM:SS.mmmZ)");
  if (*rest == '.') {
    // Up to three digits of fraction: ".5" is 500 ms; further digits are ignored.
    int digits = 0;
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest) {
      if (digits < 3) millis = millis * 10 + (*rest - '0'), ++digits;
    }
    for (; digits < 3; ++digits) millis *= 10;
  }
  if (*rest != 'Z' || rest[1] != '\0') return Usage("time '" + text + "' must end in Z (UTC)");
  return static_cast<int64_t>(timegm(&tm)) * 1000 + millis;
}

// The progress line on a terminal, redrawn in place.
void PrintProgress(const replay::ReplayProgress& pr) {
  double pct = pr.total ? 100.0 * pr.records / pr.total : 100.0;
  double eta = pr.records_per_second > 0 ? (pr.total - std::min(pr.total, pr.records)) / pr.records_per_second : 0;
  // The partition with the most left decides when replay ends: show its ETA too.
  const replay::PartitionProgress* behind = nullptr;
  for (const auto& part : pr.partitions) {
    if (!behind || part.end - part.done > behind->end - behind->done) behind = &part;
  }
  std::string slowest;
  if (behind != nullptr && pr.seconds > 0 && behind->done > 0) {
    double part_rate = behind->done / pr.seconds;
    slowest = "; " + behind->partition.topic + "[" + std::to_string(behind->partition.partition) + "] " +
              std::to_string(behind->done) + "/" + std::to_string(behind->end) + ", ETA " +
              std::to_string(static_cast<int>((behind->end - behind->done) / part_rate + 0.5)) + " s";
  }
  std::fprintf(stderr, "\rreplay: %llu/%llu events (%.0f%%), %.0f events/s, ETA %.0f s%s   ",
               static_cast<unsigned long long>(pr.records), static_cast<unsigned long long>(pr.total), pct,
               pr.records_per_second, eta, slowest.c_str());
}

void PrintResult(const replay::ReplayResult& r, const std::string& data_dir, bool as_json) {
  if (as_json) {
    json offsets = json::object();
    for (const auto& [tp, off] : r.end) offsets[tp.topic + "/" + std::to_string(tp.partition)] = off;
    PrintJson({{"events", r.records},
               {"applied", r.events},
               {"duplicates_dropped", r.duplicates},
               {"records_rejected", r.rejected},
               {"seconds", r.seconds},
               {"events_per_second", r.events_per_second},
               {"poll_seconds", r.poll_seconds},
               {"apply_seconds", r.apply_seconds},
               {"offsets", offsets},
               {"digest", r.digest}});
  } else {
    std::printf("replayed %llu events in %.3f s (%.0f events/s) into %s\n",
                static_cast<unsigned long long>(r.records), r.seconds, r.events_per_second, data_dir.c_str());
    std::printf("digest %s\n", r.digest.c_str());
  }
}

// --verify: the rebuilt store in `data_dir` must equal the one in `verify_dir`.
Result<int> Verify(const std::string& data_dir, const std::string& verify_dir, bool as_json) {
  auto live = projections::ProjectionStore::Open(verify_dir, {.read_only = true});
  if (!live.ok()) return Fail(live.status());
  auto rebuilt = projections::ProjectionStore::Open(data_dir, {.read_only = true});
  if (!rebuilt.ok()) return Fail(rebuilt.status());
  auto diff = (*rebuilt)->FirstDifference(**live);
  if (!diff.ok()) return Fail(diff.status());
  if (diff->has_value()) {
    return Fail(Status::FailedPrecondition("verify: " + data_dir + " differs from " + verify_dir + ": " + **diff));
  }
  if (!as_json) std::printf("verified: equal to %s\n", verify_dir.c_str());
  return 0;
}

// --to-postgres: the PostgreSQL read model rebuilt from offset zero.
Result<int> ReplayToPostgres(const Parsed& p, const projections::PgOptions& pg) {
  projections::PgRebuildOptions o;
  ORDERFLOW_ASSIGN_OR_RETURN(o.kafka, KafkaFrom(p.common, true));
  o.pg = pg;
  ORDERFLOW_ASSIGN_OR_RETURN(o.catalog, LoadCatalog(p.common));
  const bool tty = isatty(STDERR_FILENO) && !p.common.json;
  if (tty) {
    o.progress = [](uint64_t done, uint64_t total) {
      std::fprintf(stderr, "\rreplay --to-postgres: %llu/%llu records   ", static_cast<unsigned long long>(done),
                   static_cast<unsigned long long>(total));
    };
  }
  auto r = projections::RebuildPostgres(o);
  if (tty) std::fprintf(stderr, "\n");
  if (!r.ok()) return Fail(r.status());
  if (p.common.json) {
    PrintJson({{"records", r->records},
               {"applied", r->applied},
               {"duplicates_dropped", r->duplicates},
               {"records_rejected", r->rejected},
               {"orders", r->orders},
               {"seconds", r->seconds},
               {"events_per_second", r->events_per_second},
               {"schema", pg.schema}});
  } else {
    std::printf("replayed %llu events in %.3f s (%.0f events/s) into PostgreSQL schema %s (%llu orders)\n",
                static_cast<unsigned long long>(r->records), r->seconds, r->events_per_second, pg.schema.c_str(),
                static_cast<unsigned long long>(r->orders));
  }
  return 0;
}

}  // namespace

Result<int> CmdReplay(const std::vector<std::string>& args) {
  replay::ReplayOptions o;
  po::options_description d("replay options");
  std::string verify_dir, until_time, snapshots_dir;
  projections::PgOptions pg;
  d.add_options()("batch-size", po::value(&o.batch_size)->default_value(10000), "events per WriteBatch")(
      "force", po::bool_switch(&o.force), "replace the orderflow store already in --data-dir")(
      "until-offset", po::value(&o.until_offset)->value_name("N"),
      "time travel: apply each partition up to offset N (inclusive)")(
      "until-time", po::value(&until_time)->value_name("T"),
      "time travel: apply records appended at or before T (epoch ms, or YYYY-MM-DDTHH:MM:SS[.mmm]Z)")(
      "from-snapshot", po::value(&o.from_snapshot)->value_name("NAME"),
      "restore snapshot NAME into --data-dir, then replay only the tail")(
      "snapshots", po::value(&snapshots_dir)->value_name("DIR"),
      "where snapshots live (default: <data-dir of the snapshot's store>-snapshots; with --from-snapshot required)")(
      "verify", po::value(&verify_dir)->value_name("DIR"),
      "compare the rebuilt state with the store in DIR; exit 1 naming the first differing key")(
      "to-postgres", po::value(&pg.url)->value_name("URL"),
      "rebuild the PostgreSQL read model of URL instead (stop its pg-projector first)")(
      "pg-schema", po::value(&pg.schema)->default_value(pg.schema), "with --to-postgres: the schema to rebuild");
  Parsed p;
  ORDERFLOW_RETURN_IF_ERROR(Parse(args, "orderflow replay --brokers LIST --data-dir NEW_DIR [--json]\n\n"
                   "Rebuilds the projections into an empty directory from offset zero of every partition and\n"
                   "prints events, elapsed seconds, events/s and the state digest.\n"
                   "With --to-postgres URL, rebuilds the PostgreSQL read model instead: into a fresh schema,\n"
                   "swapped in at the end (docs/sql.md).",
             d, {}, p, "warn"));
  if (p.common.help) return 0;
  if (o.batch_size == 0) return Usage("--batch-size must be > 0");
  if (!pg.url.empty()) {
    if (!verify_dir.empty() || !until_time.empty() || !o.from_snapshot.empty() || o.until_offset >= 0) {
      return Usage("--to-postgres rebuilds from offset zero: it takes no --verify, --until-*, --from-snapshot");
    }
    return ReplayToPostgres(p, pg);
  }
  if (!until_time.empty()) { ORDERFLOW_ASSIGN_OR_RETURN(o.until_time_ms, ParseTime(until_time)); }
  if (!o.from_snapshot.empty() && snapshots_dir.empty()) {
    return Usage("--from-snapshot needs --snapshots DIR (where `orderflow snapshot create` put it)");
  }
  o.snapshots_dir = snapshots_dir;
  ORDERFLOW_ASSIGN_OR_RETURN(o.kafka, KafkaFrom(p.common, true));
  o.data_dir = p.common.data_dir;
  const bool tty = isatty(STDERR_FILENO) && !p.common.json;
  if (tty) o.on_progress = PrintProgress;
  auto result = replay::Replay(o);
  if (tty) std::fprintf(stderr, "\n");
  if (!result.ok()) return Fail(result.status());
  PrintResult(*result, o.data_dir, p.common.json);
  spdlog::debug("replay: {:.3f} s polling, {:.3f} s applying", result->poll_seconds, result->apply_seconds);
  if (!verify_dir.empty()) return Verify(o.data_dir, verify_dir, p.common.json);
  return 0;
}

}  // namespace orderflow::cli

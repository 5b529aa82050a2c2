// `orderflow replay --to-postgres`: the read model rebuilt from offset zero
// into a fresh schema, swapped in at the end (see pg_read_model.h).
#include <spdlog/spdlog.h>

#include <chrono>

#include "eventstore/topics.h"
#include "projections/pg/pg_fold.h"
#include "projections/pg/pg_internal.h"
#include "projections/pg/pg_schema.h"
#include "projections/pg/pg_read_model.h"

namespace orderflow::projections {
namespace {

struct LogRange {
  std::vector<eventstore::TopicPartition> partitions;
  projections::Offsets end;  // high watermarks when the rebuild started
  uint64_t total = 0;
};

Result<LogRange> MeasureLog(eventstore::Reader& reader, const PgRebuildOptions& o) {
  LogRange range;
  auto listed = reader.Partitions({eventstore::kOrdersTopic, eventstore::kInventoryTopic}, o.metadata_timeout);
  if (!listed.ok()) return listed.status();
  auto marks = reader.QueryWatermarks(*listed, o.metadata_timeout);  // one round for every partition
  if (!marks.ok()) return marks.status();
  for (size_t i = 0; i < listed->size(); ++i) {
    const eventstore::TopicPartition& tp = (*listed)[i];
    const eventstore::Watermarks& w = (*marks)[i];
    ORDERFLOW_RETURN_IF_ERROR(eventstore::CheckLogCovers(tp, 0, w, "PostgreSQL schema " + o.pg.schema,
                                                         "The log no longer holds every event"));
    range.partitions.push_back(tp);
    range.end[tp] = w.high;
    range.total += static_cast<uint64_t>(w.high);
  }
  return range;
}

// Reads every partition up to `range.end`, folding into `fold` and COPYing
// the event rows into `schema` batch by batch.
Status ReadAll(eventstore::Reader& reader, const LogRange& range, pqxx::transaction_base& tx,
               const std::string& schema, pg::Fold& fold, const PgRebuildOptions& o, PgRebuildResult& result) {
  std::vector<std::pair<eventstore::TopicPartition, int64_t>> start;
  for (const auto& tp : range.partitions) start.emplace_back(tp, 0);
  ORDERFLOW_RETURN_IF_ERROR(reader.Assign(start));
  auto reached = [&] {
    for (const auto& [tp, high] : range.end) {
      auto it = fold.next.find(tp);
      if ((it == fold.next.end() ? 0 : it->second) < high) return false;
    }
    return true;
  };
  const projections::Offsets none;
  auto last_progress = o.kafka.clock->Now();
  while (!reached()) {
    auto polled = reader.Poll(5000, std::chrono::milliseconds(100), /*fill=*/true);
    if (!polled.ok()) return polled.status();
    if (polled->empty()) {
      bool all = true;  // transaction markers at the end are never handed out
      for (const auto& [tp, position] : reader.Positions(range.partitions)) all = all && position >= range.end.at(tp);
      if (all) break;
      continue;
    }
    size_t index = 0;
    for (const auto& record : *polled) {
      const eventstore::TopicPartition tp{std::string(record.topic()), record.partition()};
      if (record.offset() < range.end.at(tp)) fold.Add(record, index, none);
      ++index;
    }
    result.records += polled->size();
    fold.ApplyPending();
    ORDERFLOW_RETURN_IF_ERROR(pg::Guard("copy events", [&] {
      pg::WriteLogRows(tx, schema, fold);
      return Status::Ok();
    }));
    fold.events.clear();
    fold.rejected.clear();
    fold.rejections.clear();
    if (o.progress && o.kafka.clock->Now() - last_progress > std::chrono::seconds(1)) {
      last_progress = o.kafka.clock->Now();
      o.progress(result.records, range.total);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<PgRebuildResult> RebuildPostgres(const PgRebuildOptions& o) {
  const std::string& schema = o.pg.schema;
  const std::string fresh = schema + "_rebuild";
  if (!pg::ValidSchemaName(schema)) return Status::InvalidArgument("--pg-schema '" + schema + "' is not a plain lowercase name");
  const auto started = o.kafka.clock->Now();
  std::unique_ptr<pqxx::connection> conn;
  ORDERFLOW_RETURN_IF_ERROR(pg::Guard("connect to " + pg::RedactUrl(o.pg.url), [&] {
    conn = std::make_unique<pqxx::connection>(o.pg.url);
    return Status::Ok();
  }));
  ORDERFLOW_RETURN_IF_ERROR(pg::TakeWriterLock(*conn, schema));
  ORDERFLOW_RETURN_IF_ERROR(pg::Guard("drop an unfinished rebuild", [&] {
    pqxx::nontransaction tx{*conn};
    tx.exec0("SET client_min_messages = warning");
    tx.exec0("DROP SCHEMA IF EXISTS " + fresh + " CASCADE");
    return Status::Ok();
  }));
  ORDERFLOW_RETURN_IF_ERROR(pg::Migrate(*conn, fresh));
  ORDERFLOW_RETURN_IF_ERROR(pg::RecordCatalog(*conn, fresh, o.catalog));

  auto reader = eventstore::Reader::Create(o.kafka, "orderflow-pg-rebuild");
  if (!reader.ok()) return reader.status();
  auto range = MeasureLog(**reader, o);
  if (!range.ok()) return range.status();

  PgRebuildResult result;
  pg::Fold fold;  // every order stays in memory until the end
  std::unique_ptr<pqxx::work> tx;
  ORDERFLOW_RETURN_IF_ERROR(pg::Guard("begin", [&] {
    tx = std::make_unique<pqxx::work>(*conn);
    return Status::Ok();
  }));
  ORDERFLOW_RETURN_IF_ERROR(ReadAll(**reader, *range, *tx, fresh, fold, o, result));
  result.applied = fold.stats.applied;
  result.duplicates = fold.stats.duplicates;
  result.rejected = fold.stats.rejected;
  result.orders = fold.orders.size();
  ORDERFLOW_RETURN_IF_ERROR(pg::Guard("write orders and offsets", [&] {
    pg::WriteStateRows(*tx, fresh, fold, /*upsert_orders=*/false);
    // Every partition ends where the log ended, markers included.
    tx->exec0(pg::OffsetsUpsert(*tx, fresh, range->end));
    tx->exec0("ANALYZE " + fresh + ".orders");
    tx->commit();
    return Status::Ok();
  }));
  // The swap: readers see the old tables until this commits, the new after.
  ORDERFLOW_RETURN_IF_ERROR(pg::Guard("swap the rebuilt schema in", [&] {
    pqxx::work swap{*conn};
    swap.exec0("SET LOCAL client_min_messages = warning");
    const std::string old = schema + "_old";
    swap.exec0("DROP SCHEMA IF EXISTS " + old + " CASCADE");
    swap.exec0("DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = '" + schema +
               "') THEN EXECUTE 'ALTER SCHEMA " + schema + " RENAME TO " + old + "'; END IF; END $$");
    swap.exec0("ALTER SCHEMA " + fresh + " RENAME TO " + schema);
    swap.exec0("DROP SCHEMA IF EXISTS " + old + " CASCADE");
    swap.commit();
    return Status::Ok();
  }));
  result.seconds = std::chrono::duration<double>(o.kafka.clock->Now() - started).count();
  result.events_per_second = result.seconds > 0 ? static_cast<double>(result.records) / result.seconds : 0;
  return result;
}

}  // namespace orderflow::projections

// The fold of the PostgreSQL read model: records turned into rows in memory
// (Fold; no PostgreSQL involved), and the rows written in a transaction
// (WriteRows). Shared by the live read model (pg_read_model.cc) and the
// rebuild (pg_rebuild.cc). Internal to projections/pg/; includes libpqxx.
// Not thread-safe: a Fold belongs to one batch on one thread.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "domain/order.h"
#include "domain/status.h"
#include "eventstore/kafka.h"
#include "projections/pg/pg_read_model.h"

namespace orderflow::projections::pg {

struct EventRow {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string order_id;
  int32_t sequence = 0;
  std::string event_id;
  std::string type;
  uint16_t schema_version = 0;
  int64_t occurred_at_ms = 0;
  int64_t record_timestamp_ms = 0;
  std::string producer;
  std::string payload;  // JSON
};
struct RejectedRow {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string error;
};
struct StockDelta {
  int64_t added = 0;
  int64_t reserved = 0;
  int64_t released = 0;
};
struct Loaded {
  domain::OrderState state;
  bool dirty = false;          // changed by this fold: its row is rewritten
  bool lines_changed = false;  // an OrderPlaced was applied: its lines are rewritten
};

// Why `record` cannot be stored ("" when it can): it does not decode, its key
// is not the event's aggregate id, or a text in it PostgreSQL cannot hold.
std::string Rejection(const eventstore::Record& record, const Result<domain::Event>& event,
                      const nlohmann::json& payload);

// Records folded into rows. Add() every record, load the stored states of the
// orders `pending` touches into `orders`, then ApplyPending().
struct Fold {
  struct Pending {
    const eventstore::Record* record;
    domain::Event event;
    nlohmann::json payload;
  };
  PgBatchStats stats;
  projections::Offsets next;  // next offset of every partition seen
  std::vector<std::pair<size_t, std::string>> rejections;
  std::vector<RejectedRow> rejected;
  std::vector<Pending> pending;
  std::map<std::string, Loaded> orders;
  std::vector<EventRow> events;
  std::map<std::string, StockDelta> stock;

  void Add(const eventstore::Record& record, size_t index, const projections::Offsets& committed);
  void ApplyPending();
};

const std::vector<std::string>& EventColumns();
const std::vector<std::string>& OrderColumns();
void WriteEvent(pqxx::stream_to& out, const EventRow& row);
void WriteOrder(pqxx::stream_to& out, const domain::OrderState& order);
void WriteLines(pqxx::stream_to& out, const domain::OrderState& order);
std::string StockUpsert(pqxx::transaction_base& tx, const std::string& schema,
                        const std::map<std::string, StockDelta>& stock);
std::string OffsetsUpsert(pqxx::transaction_base& tx, const std::string& schema, const projections::Offsets& next);

// Writes the fold's rows in `tx`. With `upsert_orders`, orders are merged into
// existing rows (live); without, the tables are empty (a rebuild) and rows are
// COPYed straight in. Throws what libpqxx throws (call inside Guard).
void WriteRows(pqxx::transaction_base& tx, const std::string& schema, const Fold& fold, bool upsert_orders);
// The two halves of WriteRows: order_events and rejected_records; orders,
// order_lines and stock.
void WriteLogRows(pqxx::transaction_base& tx, const std::string& schema, const Fold& fold);
void WriteStateRows(pqxx::transaction_base& tx, const std::string& schema, const Fold& fold, bool upsert_orders);

}  // namespace orderflow::projections::pg

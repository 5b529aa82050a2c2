// The fold (pg_fold.h): records turned into rows without PostgreSQL, and
// those rows written in a transaction by COPY and upserts.
#include "projections/pg/pg_fold.h"

#include <spdlog/spdlog.h>

#include <tuple>

#include "domain/utf8.h"
#include "eventstore/codec.h"
#include "eventstore/topics.h"
#include "projections/order_record.h"
#include "projections/views.h"

namespace orderflow::projections::pg {

namespace {

// PostgreSQL text holds well-formed UTF-8 without NUL.
bool ValidUtf8(std::string_view s) { return s.find('\0') == std::string_view::npos && domain::IsValidUtf8(s); }

bool JsonTextStorable(const nlohmann::json& j) {
  if (j.is_string()) return ValidUtf8(j.get_ref<const std::string&>());
  if (j.is_structured()) {
    for (const auto& [key, value] : j.items()) {
      if (!ValidUtf8(key) || !JsonTextStorable(value)) return false;
    }
  }
  return true;
}

std::string HexBytea(const std::string& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\\x";
  out.reserve(2 + bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 0xF];
  }
  return out;
}

}  // namespace

std::string Rejection(const eventstore::Record& record, const Result<domain::Event>& event,
                      const nlohmann::json& payload) {
  if (!event.ok()) return event.status().ToString();
  if (event->order_id != record.key()) {
    return "record key does not match the event's aggregate id '" + event->order_id + "'";
  }
  if (!ValidUtf8(event->order_id) || !ValidUtf8(event->producer) || !JsonTextStorable(payload)) {
    return "a text field is not valid UTF-8 or holds a NUL byte, which PostgreSQL text cannot store";
  }
  return std::string();
}

void Fold::Add(const eventstore::Record& record, size_t index, const projections::Offsets& committed) {
  eventstore::TopicPartition tp{std::string(record.topic()), record.partition()};
  auto it = next.find(tp);
  const int64_t done = it != next.end() ? it->second : (committed.count(tp) ? committed.at(tp) : 0);
  if (record.offset() < done) {
    ++stats.skipped;
    return;
  }
  next[tp] = record.offset() + 1;
  auto event = eventstore::DecodeEvent(record.value());
  nlohmann::json payload = event.ok() ? PayloadJson(event->payload) : nlohmann::json();
  std::string error = Rejection(record, event, payload);
  if (!error.empty()) {
    spdlog::warn("pg: {}[{}] offset {}: rejected record: {}", record.topic(), record.partition(), record.offset(),
                 error);
    rejected.push_back({tp.topic, tp.partition, record.offset(), error});
    rejections.emplace_back(index, std::move(error));
    ++stats.rejected;
    return;
  }
  pending.push_back({&record, std::move(event).value(), std::move(payload)});
}

void Fold::ApplyPending() {
  for (Pending& p : pending) {
    const domain::Event& e = p.event;
    if (p.record->topic() == eventstore::kInventoryTopic) {
      if (const auto* added = std::get_if<domain::StockAdded>(&e.payload)) stock[added->sku].added += added->quantity;
      ++stats.applied;
      ++stats.applied_by_type[e.payload.index()];
      continue;
    }
    Loaded& loaded = orders[e.order_id];
    if (loaded.state.HasApplied(e.id)) {
      ++stats.duplicates;
      continue;
    }
    domain::Apply(loaded.state, e);
    loaded.dirty = true;
    ++stats.applied;
    ++stats.applied_by_type[e.payload.index()];
    if (std::holds_alternative<domain::OrderPlaced>(e.payload)) loaded.lines_changed = true;
    if (const auto* r = std::get_if<domain::InventoryLineReserved>(&e.payload)) stock[r->sku].reserved += r->quantity;
    if (const auto* r = std::get_if<domain::InventoryLineReleased>(&e.payload)) stock[r->sku].released += r->quantity;
    events.push_back({std::string(p.record->topic()), p.record->partition(), p.record->offset(), e.order_id,
                      static_cast<int32_t>(loaded.state.version), domain::UuidToString(e.id),
                      std::string(domain::EventTypeName(e.payload)), e.schema_version, e.occurred_at_ms,
                      p.record->timestamp_ms(), e.producer, p.payload.dump()});
  }
  pending.clear();
}

const std::vector<std::string>& EventColumns() {
  static const std::vector<std::string> columns = {
      "topic", "partition", "log_offset", "order_id", "sequence", "event_id", "type", "schema_version",
      "occurred_at_ms", "record_timestamp_ms", "producer", "payload"};
  return columns;
}

const std::vector<std::string>& OrderColumns() {
  static const std::vector<std::string> columns = {
      "order_id", "customer_id", "status", "total_minor", "currency", "paid_minor", "refunded_minor",
      "placed_at_ms", "updated_at_ms", "delivered_at_ms", "payment_id", "payment_method", "shipping_address",
      "carrier", "tracking_number", "cancel_reason", "event_count", "notifications_sent", "state"};
  return columns;
}

void WriteEvent(pqxx::stream_to& out, const EventRow& r) {
  out << std::make_tuple(r.topic, r.partition, r.offset, r.order_id, r.sequence, r.event_id, r.type,
                         static_cast<int>(r.schema_version), r.occurred_at_ms, r.record_timestamp_ms, r.producer,
                         r.payload);
}

void WriteOrder(pqxx::stream_to& out, const domain::OrderState& o) {
  out << std::make_tuple(o.order_id, o.customer_id, std::string(domain::OrderStatusName(o.status)), o.total_minor,
                         o.currency, o.paid_minor, o.refunded_minor, o.placed_at_ms, o.updated_at_ms,
                         o.delivered_at_ms, o.payment_id, o.payment_method, o.shipping_address, o.carrier,
                         o.tracking_number, o.cancel_reason, static_cast<int64_t>(o.version),
                         static_cast<int64_t>(o.notifications_sent),
                         HexBytea(projections::EncodeOrderRecord(o)));
}

void WriteLines(pqxx::stream_to& out, const domain::OrderState& o) {
  int line_no = 0;
  for (const auto& l : o.lines) out << std::make_tuple(o.order_id, line_no++, l.sku, l.quantity, l.unit_price_minor);
}

std::string StockUpsert(pqxx::transaction_base& tx, const std::string& schema,
                        const std::map<std::string, StockDelta>& stock) {
  std::string sql = "INSERT INTO " + schema + ".stock AS s (sku, added, reserved, released) VALUES ";
  bool first = true;
  for (const auto& [sku, d] : stock) {
    sql += std::string(first ? "" : ", ") + "(" + tx.quote(sku) + ", " + std::to_string(d.added) + ", " +
           std::to_string(d.reserved) + ", " + std::to_string(d.released) + ")";
    first = false;
  }
  return sql + " ON CONFLICT (sku) DO UPDATE SET added = s.added + EXCLUDED.added,"
               " reserved = s.reserved + EXCLUDED.reserved, released = s.released + EXCLUDED.released";
}

std::string OffsetsUpsert(pqxx::transaction_base& tx, const std::string& schema, const projections::Offsets& next) {
  std::string sql = "INSERT INTO " + schema + ".offsets AS o (topic, partition, next_offset) VALUES ";
  bool first = true;
  for (const auto& [tp, offset] : next) {
    sql += std::string(first ? "" : ", ") + "(" + tx.quote(tp.topic) + ", " + std::to_string(tp.partition) + ", " +
           std::to_string(offset) + ")";
    first = false;
  }
  return sql + " ON CONFLICT (topic, partition) DO UPDATE SET next_offset = GREATEST(o.next_offset, EXCLUDED.next_offset)";
}

void WriteRows(pqxx::transaction_base& tx, const std::string& s, const Fold& fold, bool upsert_orders) {
  WriteLogRows(tx, s, fold);
  WriteStateRows(tx, s, fold, upsert_orders);
}

void WriteLogRows(pqxx::transaction_base& tx, const std::string& s, const Fold& fold) {
  if (!fold.events.empty()) {
    pqxx::stream_to out{tx, s + ".order_events", EventColumns()};
    for (const EventRow& r : fold.events) WriteEvent(out, r);
    out.complete();
  }
  if (!fold.rejected.empty()) {
    pqxx::stream_to out{tx, s + ".rejected_records", std::vector<std::string>{"topic", "partition", "log_offset", "error"}};
    for (const auto& r : fold.rejected) out << std::make_tuple(r.topic, r.partition, r.offset, r.error);
    out.complete();
  }
}

void WriteStateRows(pqxx::transaction_base& tx, const std::string& s, const Fold& fold, bool upsert_orders) {
  std::vector<const domain::OrderState*> dirty, relined;
  for (const auto& [id, loaded] : fold.orders) {
    if (loaded.dirty) dirty.push_back(&loaded.state);
    if (loaded.lines_changed) relined.push_back(&loaded.state);
  }
  if (!dirty.empty()) {
    // Orders change: COPY into a session table, then one upsert from it.
    const std::string target = upsert_orders ? "pg_temp.orders_in" : s + ".orders";
    if (upsert_orders) {
      tx.exec0("CREATE TEMP TABLE IF NOT EXISTS orders_in (LIKE " + s + ".orders) ON COMMIT DELETE ROWS");
    }
    pqxx::stream_to out{tx, target, OrderColumns()};
    for (const auto* o : dirty) WriteOrder(out, *o);
    out.complete();
    if (upsert_orders) {
      std::string columns, updates;
      for (const auto& c : OrderColumns()) {
        columns += (columns.empty() ? "" : ", ") + c;
        if (c != "order_id") updates += (updates.empty() ? "" : ", ") + c + " = EXCLUDED." + c;
      }
      tx.exec0("INSERT INTO " + s + ".orders (" + columns + ") SELECT " + columns +
               " FROM pg_temp.orders_in ON CONFLICT (order_id) DO UPDATE SET " + updates);
    }
  }
  if (!relined.empty()) {
    if (upsert_orders) {
      std::string list;
      for (const auto* o : relined) list += (list.empty() ? "" : ",") + tx.quote(o->order_id);
      tx.exec0("DELETE FROM " + s + ".order_lines WHERE order_id IN (" + list + ")");
    }
    pqxx::stream_to out{tx, s + ".order_lines",
                        std::vector<std::string>{"order_id", "line_no", "sku", "quantity", "unit_price_minor"}};
    for (const auto* o : relined) WriteLines(out, *o);
    out.complete();
  }
  if (!fold.stock.empty()) tx.exec0(StockUpsert(tx, s, fold.stock));
}

}  // namespace orderflow::projections::pg

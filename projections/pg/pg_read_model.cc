#include "projections/pg/pg_read_model.h"

#include <spdlog/spdlog.h>

#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>
#include <thread>
#include <unordered_map>
#include <tuple>

#include "domain/order.h"
#include "domain/utf8.h"
#include "eventstore/codec.h"
#include "eventstore/topics.h"
#include "projections/order_record.h"
#include "projections/pg/pg_internal.h"
#include "projections/views.h"

namespace orderflow::projections {

namespace pg {

// libpqxx reports failures by throwing. Guard() is the boundary: the one place
// that catches them, turning each into a Status. What a retry from the stored
// offsets can cure is kUnavailable: a lost or closed session (whatever libpqxx
// threw on it: a COPY on a dead socket throws a bare pqxx::failure, a query an
// sql_error without SQLSTATE), a commit of unknown outcome, a rolled-back
// transaction (serialization failure, deadlock: in libpqxx 6 these are not
// sql_errors), and the server states of classes 08 (connection), 40
// (rollback), 53 (out of disk or memory) and 57P (shutting down). The rest,
// a bug or a schema someone changed, is kInternal.
Status FromCurrentException(const std::string& what, const pqxx::connection_base* conn) {
  auto first_line = [](const char* text) {
    std::string s(text);
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    auto nl = s.find('\n');
    return nl == std::string::npos ? s : s.substr(0, nl);
  };
  const bool session_lost = conn != nullptr && !conn->is_open();
  try {
    throw;
  } catch (const pqxx::in_doubt_error& e) {
    return Status::Unavailable("PostgreSQL: " + what + ": commit outcome unknown: " + first_line(e.what()));
  } catch (const pqxx::sql_error& e) {
    const std::string state = e.sqlstate();
    const bool transient = session_lost || state.empty() || state.starts_with("08") || state.starts_with("40") ||
                           state.starts_with("53") || state.starts_with("57P") || state == "25P03";
    std::string message = "PostgreSQL: " + what + ": " + first_line(e.what()) +
                          (state.empty() ? "" : " (SQLSTATE " + state + ")");
    return transient ? Status::Unavailable(std::move(message)) : Status::Internal(std::move(message));
  } catch (const pqxx::failure& e) {
    // broken_connection, transaction_rollback, and libpq I/O errors.
    return Status::Unavailable("PostgreSQL: " + what + ": " + first_line(e.what()));
  } catch (const std::exception& e) {
    std::string message = "PostgreSQL: " + what + ": " + first_line(e.what());
    return session_lost ? Status::Unavailable(message + " (session lost)") : Status::Internal(std::move(message));
  }
}

bool ValidSchemaName(const std::string& name) {
  if (name.empty() || name.size() > 40) return false;
  if (!(std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  for (char c : name) {
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      return false;
    }
  }
  return true;
}

std::string RedactUrl(const std::string& url) {
  const auto scheme = url.find("://");
  const auto at = url.find('@');
  if (scheme == std::string::npos || at == std::string::npos || at < scheme) return url;
  const auto colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

namespace {

// {s} in a migration stands for the schema name (checked by ValidSchemaName).
std::string Expand(std::string_view sql, const std::string& schema) {
  std::string out;
  for (size_t i = 0; i < sql.size(); ++i) {
    if (sql.compare(i, 3, "{s}") == 0) {
      out += schema;
      i += 2;
    } else {
      out += sql[i];
    }
  }
  return out;
}

struct Migration {
  int version;
  const char* description;
  const char* sql;
};

// Never edit a migration that has shipped: add the next one.
constexpr Migration kMigrations[] = {
    {1, "orders, order_lines, order_events, stock, rejected_records, offsets; analytics views", R"sql(
CREATE TABLE {s}.orders (
  order_id text PRIMARY KEY,
  customer_id text NOT NULL,
  status text NOT NULL,
  total_minor bigint NOT NULL,
  currency text NOT NULL,
  paid_minor bigint NOT NULL,
  refunded_minor bigint NOT NULL,
  placed_at_ms bigint NOT NULL,
  updated_at_ms bigint NOT NULL,
  delivered_at_ms bigint NOT NULL,
  payment_id text NOT NULL,
  payment_method text NOT NULL,
  shipping_address text NOT NULL,
  carrier text NOT NULL,
  tracking_number text NOT NULL,
  cancel_reason text NOT NULL,
  event_count integer NOT NULL,
  notifications_sent integer NOT NULL,
  state bytea NOT NULL,
  placed_at timestamptz GENERATED ALWAYS AS (to_timestamp(NULLIF(placed_at_ms, 0) / 1000.0)) STORED,
  updated_at timestamptz GENERATED ALWAYS AS (to_timestamp(NULLIF(updated_at_ms, 0) / 1000.0)) STORED,
  delivered_at timestamptz GENERATED ALWAYS AS (to_timestamp(NULLIF(delivered_at_ms, 0) / 1000.0)) STORED
);
CREATE INDEX orders_status ON {s}.orders (status);
CREATE INDEX orders_customer ON {s}.orders (customer_id);
CREATE INDEX orders_placed ON {s}.orders (placed_at_ms DESC);
COMMENT ON COLUMN {s}.orders.state IS 'the fold state (OrderRecord, Cap''n Proto) the projector continues from';

CREATE TABLE {s}.order_lines (
  order_id text NOT NULL,
  line_no integer NOT NULL,
  sku text NOT NULL,
  quantity integer NOT NULL,
  unit_price_minor bigint NOT NULL,
  PRIMARY KEY (order_id, line_no)
);
CREATE INDEX order_lines_sku ON {s}.order_lines (sku);

CREATE TABLE {s}.order_events (
  topic text NOT NULL,
  partition integer NOT NULL,
  log_offset bigint NOT NULL,
  order_id text NOT NULL,
  sequence integer NOT NULL,
  event_id uuid NOT NULL,
  type text NOT NULL,
  schema_version smallint NOT NULL,
  occurred_at_ms bigint NOT NULL,
  record_timestamp_ms bigint NOT NULL,
  producer text NOT NULL,
  payload jsonb NOT NULL,
  occurred_at timestamptz GENERATED ALWAYS AS (to_timestamp(occurred_at_ms / 1000.0)) STORED,
  PRIMARY KEY (topic, partition, log_offset)
);
CREATE INDEX order_events_order ON {s}.order_events (order_id, sequence);
CREATE INDEX order_events_type ON {s}.order_events (type);

CREATE TABLE {s}.stock (
  sku text PRIMARY KEY,
  initial bigint NOT NULL DEFAULT 0,
  added bigint NOT NULL DEFAULT 0,
  reserved bigint NOT NULL DEFAULT 0,
  released bigint NOT NULL DEFAULT 0,
  available bigint GENERATED ALWAYS AS (initial + added - reserved + released) STORED
);

CREATE TABLE {s}.rejected_records (
  topic text NOT NULL,
  partition integer NOT NULL,
  log_offset bigint NOT NULL,
  error text NOT NULL,
  PRIMARY KEY (topic, partition, log_offset)
);

CREATE TABLE {s}.offsets (
  topic text NOT NULL,
  partition integer NOT NULL,
  next_offset bigint NOT NULL,
  PRIMARY KEY (topic, partition)
);

-- The figures of `orderflow analytics`, in SQL.
CREATE VIEW {s}.orders_by_status AS
  SELECT status, count(*) AS orders FROM {s}.orders GROUP BY status;

CREATE VIEW {s}.revenue AS
  SELECT coalesce(sum(amount) FILTER (WHERE type = 'PaymentAuthorized'), 0)::bigint AS gross_minor,
         coalesce(sum(amount) FILTER (WHERE type = 'PaymentRefunded'), 0)::bigint AS refunded_minor,
         (coalesce(sum(amount) FILTER (WHERE type = 'PaymentAuthorized'), 0) -
          coalesce(sum(amount) FILTER (WHERE type = 'PaymentRefunded'), 0))::bigint AS net_minor
  FROM (SELECT type, (payload->>'amount_minor')::bigint AS amount FROM {s}.order_events
        WHERE type IN ('PaymentAuthorized', 'PaymentRefunded')) e;

CREATE VIEW {s}.revenue_per_hour AS
  SELECT hour_start_ms, to_timestamp(hour_start_ms / 1000.0) AS hour,
         count(*) FILTER (WHERE type = 'OrderPlaced') AS orders_placed,
         coalesce(sum(CASE type WHEN 'PaymentAuthorized' THEN (payload->>'amount_minor')::bigint
                                WHEN 'PaymentRefunded' THEN -(payload->>'amount_minor')::bigint END), 0)::bigint
           AS revenue_minor
  FROM (SELECT (occurred_at_ms / 3600000) * 3600000 AS hour_start_ms, type, payload FROM {s}.order_events
        WHERE type IN ('OrderPlaced', 'PaymentAuthorized', 'PaymentRefunded')) e
  GROUP BY hour_start_ms;

CREATE VIEW {s}.top_skus AS
  SELECT l.sku, sum(l.quantity)::bigint AS units, sum(l.quantity * l.unit_price_minor)::bigint AS revenue_minor
  FROM {s}.order_events e JOIN {s}.order_lines l ON l.order_id = e.order_id
  WHERE e.type = 'PaymentAuthorized'
  GROUP BY l.sku;

CREATE VIEW {s}.delivery_times AS
  SELECT count(*) AS delivered,
         coalesce(avg(delivered_at_ms - placed_at_ms), 0)::double precision AS average_placed_to_delivered_ms
  FROM {s}.orders WHERE status = 'delivered' AND placed_at_ms > 0 AND delivered_at_ms > 0;
)sql"},
};
static_assert(std::size(kMigrations) == kPgSchemaVersion, "kPgSchemaVersion names the last migration");

}  // namespace

Status Migrate(pqxx::connection& conn, const std::string& schema) {
  return Guard(conn, "migrate schema " + schema, [&] {
    pqxx::work tx{conn};
    tx.exec0("SET LOCAL client_min_messages = warning");
    tx.exec0("CREATE SCHEMA IF NOT EXISTS " + schema);
    tx.exec0("CREATE TABLE IF NOT EXISTS " + schema +
             ".schema_migrations (version integer PRIMARY KEY, description text NOT NULL,"
             " applied_at timestamptz NOT NULL DEFAULT now())");
    const int have = tx.exec1("SELECT coalesce(max(version), 0) FROM " + schema + ".schema_migrations")[0].as<int>();
    if (have > kPgSchemaVersion) {
      return Status::FailedPrecondition(
          "PostgreSQL schema " + schema + " is at read-model version " + std::to_string(have) +
          ", newer than this orderflow's " + std::to_string(kPgSchemaVersion) +
          ": run the newer orderflow, or rebuild into another schema with --pg-schema");
    }
    for (const Migration& m : kMigrations) {
      if (m.version <= have) continue;
      tx.exec0(Expand(m.sql, schema));
      tx.exec_params0("INSERT INTO " + schema + ".schema_migrations (version, description) VALUES ($1, $2)",
                      m.version, std::string(m.description));
      spdlog::info("pg: schema {} migrated to version {} ({})", schema, m.version, m.description);
    }
    tx.commit();
    return Status::Ok();
  });
}

Status TakeWriterLock(pqxx::connection& conn, const std::string& schema, std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (bool said = false;; said = true) {
    bool got = false;
    ORDERFLOW_RETURN_IF_ERROR(Guard(conn, "lock schema " + schema, [&] {
      pqxx::nontransaction tx{conn};
      got = tx.exec_params1("SELECT pg_try_advisory_lock(hashtext($1))", "orderflow-read-model:" + schema)[0].as<bool>();
      return Status::Ok();
    }));
    if (got) return Status::Ok();
    if (std::chrono::steady_clock::now() >= deadline) break;
    if (!said) {
      spdlog::info("pg: another session holds the writer lock of schema {} (a writer that just ended, or a running "
                   "one); waiting up to {} ms",
                   schema, wait.count());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status::InUse("another orderflow writer (a pg-projector or replay --to-postgres) holds PostgreSQL schema " +
                       schema + "; stop it first, or use another --pg-schema");
}

Status RecordCatalog(pqxx::connection& conn, const std::string& schema, const domain::Catalog& catalog) {
  if (catalog.items().empty()) return Status::Ok();
  return Guard(conn, "record the catalog's stock", [&] {
    pqxx::work tx{conn};
    std::string sql = "INSERT INTO " + schema + ".stock (sku, initial) VALUES ";
    bool first = true;
    for (const auto& item : catalog.items()) {
      sql += (first ? "(" : ", (") + tx.quote(item.sku) + ", " + std::to_string(item.initial_stock) + ")";
      first = false;
    }
    tx.exec0(sql + " ON CONFLICT (sku) DO UPDATE SET initial = EXCLUDED.initial");
    tx.commit();
    return Status::Ok();
  });
}

// ---- The fold: records -> rows, without PostgreSQL ----

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

}  // namespace pg

// ---- PgBatch ----

struct PgBatch::Impl {
  pg::Fold fold;
};
PgBatch::PgBatch() : impl_(std::make_unique<Impl>()) {}
PgBatch::~PgBatch() = default;
PgBatch::PgBatch(PgBatch&&) noexcept = default;
PgBatch& PgBatch::operator=(PgBatch&&) noexcept = default;
const PgBatchStats& PgBatch::stats() const { return impl_->fold.stats; }
const std::vector<std::pair<size_t, std::string>>& PgBatch::rejections() const { return impl_->fold.rejections; }
const projections::Offsets& PgBatch::next_offsets() const { return impl_->fold.next; }

// ---- PgReadModel ----

struct PgReadModel::Impl {
  std::unique_ptr<pqxx::connection> conn;
  projections::Offsets committed;  // as in the offsets table after the last commit
  // The committed fold state of recently changed orders, so that a batch
  // reads only the others from the database. Valid because this session is
  // the schema's only writer (the advisory lock); emptied when it grows past
  // kCachedOrders, and after a failed commit.
  static constexpr size_t kCachedOrders = 100'000;
  std::unordered_map<std::string, domain::OrderState> cache;
};

PgReadModel::PgReadModel(PgOptions options, std::unique_ptr<Impl> impl)
    : options_(std::move(options)), impl_(std::move(impl)) {}
PgReadModel::~PgReadModel() = default;

Result<std::unique_ptr<PgReadModel>> PgReadModel::Open(const PgOptions& options, const domain::Catalog& catalog) {
  if (!pg::ValidSchemaName(options.schema)) {
    return Status::InvalidArgument("--pg-schema '" + options.schema +
                                   "': use lowercase letters, digits and '_' (at most 40), starting with a letter");
  }
  auto impl = std::make_unique<Impl>();
  ORDERFLOW_RETURN_IF_ERROR(pg::Guard("connect to " + pg::RedactUrl(options.url), [&] {
    impl->conn = std::make_unique<pqxx::connection>(options.url);
    return Status::Ok();
  }));
  ORDERFLOW_RETURN_IF_ERROR(pg::TakeWriterLock(*impl->conn, options.schema, options.lock_wait));
  ORDERFLOW_RETURN_IF_ERROR(pg::Migrate(*impl->conn, options.schema));
  ORDERFLOW_RETURN_IF_ERROR(pg::RecordCatalog(*impl->conn, options.schema, catalog));
  std::unique_ptr<PgReadModel> model(new PgReadModel(options, std::move(impl)));
  auto offsets = model->LoadOffsets();
  if (!offsets.ok()) return offsets.status();
  return model;
}

const projections::Offsets& PgReadModel::committed_offsets() const { return impl_->committed; }

Result<projections::Offsets> PgReadModel::LoadOffsets() {
  projections::Offsets out;
  ORDERFLOW_RETURN_IF_ERROR(pg::Guard(*impl_->conn, "read the stored offsets", [&] {
    pqxx::nontransaction tx{*impl_->conn};
    for (const auto& row : tx.exec("SELECT topic, partition, next_offset FROM " + options_.schema + ".offsets")) {
      out[{row[0].as<std::string>(), row[1].as<int32_t>()}] = row[2].as<int64_t>();
    }
    return Status::Ok();
  }));
  impl_->committed = out;
  return out;
}

Result<PgBatch> PgReadModel::Prepare(const std::vector<eventstore::Record>& records) {
  PgBatch batch;
  pg::Fold& fold = batch.impl_->fold;
  for (size_t i = 0; i < records.size(); ++i) fold.Add(records[i], i, impl_->committed);
  std::set<std::string> ids;
  for (const auto& p : fold.pending) {
    if (p.record->topic() != eventstore::kOrdersTopic || fold.orders.count(p.event.order_id)) continue;
    auto cached = impl_->cache.find(p.event.order_id);
    if (cached != impl_->cache.end()) {
      fold.orders[p.event.order_id].state = cached->second;
    } else {
      ids.insert(p.event.order_id);
    }
  }
  if (!ids.empty()) {
    ORDERFLOW_RETURN_IF_ERROR(pg::Guard(*impl_->conn, "read the batch's orders", [&] {
      pqxx::nontransaction tx{*impl_->conn};
      std::string list;
      for (const auto& id : ids) list += (list.empty() ? "" : ",") + tx.quote(id);
      auto rows = tx.exec("SELECT order_id, state FROM " + options_.schema + ".orders WHERE order_id IN (" + list + ")");
      for (const auto& row : rows) {
        pqxx::binarystring bytes(row[1]);
        auto state = projections::DecodeOrderRecord(bytes.str());
        if (!state.ok()) {
          return Status::Corruption("PostgreSQL: stored state of order " + row[0].as<std::string>() + ": " +
                                    state.status().message() + "; rebuild with `orderflow replay --to-postgres`");
        }
        fold.orders[row[0].as<std::string>()].state = std::move(state).value();
      }
      return Status::Ok();
    }));
  }
  fold.ApplyPending();
  return batch;
}

Status PgReadModel::Commit(const PgBatch& batch) {
  const pg::Fold& fold = batch.impl_->fold;
  const std::string& s = options_.schema;
  Status committed = pg::Guard(*impl_->conn, "commit a batch", [&] {
    pqxx::work tx{*impl_->conn};
    pg::WriteRows(tx, s, fold, /*upsert_orders=*/true);
    if (!fold.next.empty()) tx.exec0(pg::OffsetsUpsert(tx, s, fold.next));
    tx.commit();
    return Status::Ok();
  });
  if (!committed.ok()) {
    impl_->cache.clear();
    return committed;
  }
  if (impl_->cache.size() > Impl::kCachedOrders) impl_->cache.clear();
  for (const auto& [id, loaded] : fold.orders) {
    if (loaded.dirty) impl_->cache[id] = loaded.state;
  }
  for (const auto& [tp, offset] : fold.next) impl_->committed[tp] = std::max(impl_->committed[tp], offset);
  return Status::Ok();
}

Status PgReadModel::AdvanceOffsets(const projections::Offsets& positions) {
  projections::Offsets moved;
  for (const auto& [tp, position] : positions) {
    auto it = impl_->committed.find(tp);
    if (it == impl_->committed.end() || it->second < position) moved[tp] = position;
  }
  if (moved.empty()) return Status::Ok();
  ORDERFLOW_RETURN_IF_ERROR(pg::Guard(*impl_->conn, "advance the stored offsets", [&] {
    pqxx::work tx{*impl_->conn};
    tx.exec0(pg::OffsetsUpsert(tx, options_.schema, moved));
    tx.commit();
    return Status::Ok();
  }));
  for (const auto& [tp, offset] : moved) impl_->committed[tp] = offset;
  return Status::Ok();
}

namespace pg {

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

}  // namespace pg

}  // namespace orderflow::projections

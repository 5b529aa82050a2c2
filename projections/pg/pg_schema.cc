// The read model's schema in PostgreSQL (pg_schema.h): its migrations, the
// one-writer lock and the catalog's stock rows.
#include "projections/pg/pg_schema.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <string_view>

#include "projections/pg/pg_internal.h"

namespace orderflow::projections::pg {

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

Status TakeWriterLock(pqxx::connection& conn, const std::string& schema, std::chrono::milliseconds wait,
                      const Clock& clock) {
  const auto deadline = clock.Now() + wait;
  for (bool said = false;; said = true) {
    bool got = false;
    ORDERFLOW_RETURN_IF_ERROR(Guard(conn, "lock schema " + schema, [&] {
      pqxx::nontransaction tx{conn};
      got = tx.exec_params1("SELECT pg_try_advisory_lock(hashtext($1))", "orderflow-read-model:" + schema)[0].as<bool>();
      return Status::Ok();
    }));
    if (got) return Status::Ok();
    if (clock.Now() >= deadline) break;
    if (!said) {
      spdlog::info("pg: another session holds the writer lock of schema {} (a writer that just ended, or a running "
                   "one); waiting up to {} ms",
                   schema, wait.count());
    }
    clock.SleepFor(std::chrono::milliseconds(100));
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

}  // namespace orderflow::projections::pg

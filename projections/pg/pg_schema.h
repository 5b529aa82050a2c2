// The read model's schema in PostgreSQL: creating it and applying the
// migrations it lacks, the advisory lock that keeps one writer per schema,
// and the catalog's stock. Internal to projections/pg/; includes libpqxx.
// Each call runs on the connection it is given (one thread at a time) and
// returns what libpqxx threw as a Status (pg_internal.h's Guard).
#pragma once

#include <chrono>
#include <pqxx/pqxx>
#include <string>

#include "domain/catalog.h"
#include "domain/clock.h"
#include "domain/status.h"
#include "projections/pg/pg_read_model.h"

namespace orderflow::projections::pg {

// Lowercase identifier: safe to splice into SQL unquoted.
bool ValidSchemaName(const std::string& name);

// kInUse if another session holds it for longer than `wait` of `clock`.
Status TakeWriterLock(pqxx::connection& conn, const std::string& schema,
                      std::chrono::milliseconds wait = std::chrono::milliseconds(0),
                      const Clock& clock = SystemClock());
// Creates `schema` if needed and applies the migrations it lacks.
Status Migrate(pqxx::connection& conn, const std::string& schema);
Status RecordCatalog(pqxx::connection& conn, const std::string& schema, const domain::Catalog& catalog);

}  // namespace orderflow::projections::pg

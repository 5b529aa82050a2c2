// Internal to the PostgreSQL read model (projections/pg/): the exception
// boundary around libpqxx. The schema is pg_schema.h, the fold that turns
// records into rows pg_fold.h. Includes libpqxx: do not include it elsewhere.
#pragma once

#include <pqxx/pqxx>
#include <string>
#include <utility>

#include "domain/status.h"

namespace orderflow::projections::pg {

// Must be called inside a catch block: the exception in flight as a Status
// (kUnavailable for what a retry can cure, kInternal otherwise). `conn`, when
// given, is the session the failed call used: whatever it threw, a session that
// is no longer open makes the failure kUnavailable.
Status FromCurrentException(const std::string& what, const pqxx::connection_base* conn = nullptr);

// Runs `f` (returning Status), turning whatever libpqxx throws into a Status.
// `conn`: the session `f` uses, if it has one yet (see FromCurrentException).
template <typename F>
Status Guard(const pqxx::connection_base* conn, const std::string& what, F&& f) {
  try {
    return f();
  } catch (...) {
    return FromCurrentException(what, conn);
  }
}
template <typename F>
Status Guard(const std::string& what, F&& f) {
  return Guard(nullptr, what, std::forward<F>(f));
}
template <typename F>
Status Guard(const pqxx::connection_base& conn, const std::string& what, F&& f) {
  return Guard(&conn, what, std::forward<F>(f));
}

// The URL with its password replaced by ***.
std::string RedactUrl(const std::string& url);

}  // namespace orderflow::projections::pg

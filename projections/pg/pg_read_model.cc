// PgReadModel (pg_read_model.h): opening a schema, preparing a batch on the
// orders it reads back (or keeps cached), committing rows with offsets; and
// the boundary that turns what libpqxx throws into a Status (pg_internal.h).
#include "projections/pg/pg_read_model.h"

#include <spdlog/spdlog.h>

#include <pqxx/pqxx>
#include <set>
#include <unordered_map>

#include "domain/order.h"
#include "eventstore/topics.h"
#include "projections/order_record.h"
#include "projections/pg/pg_fold.h"
#include "projections/pg/pg_internal.h"
#include "projections/pg/pg_schema.h"

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

std::string RedactUrl(const std::string& url) {
  const auto scheme = url.find("://");
  const auto at = url.find('@');
  if (scheme == std::string::npos || at == std::string::npos || at < scheme) return url;
  const auto colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
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
    try {
      tx.commit();
    } catch (const pqxx::in_doubt_error&) {
      throw;
    } catch (const pqxx::sql_error& e) {
      // A session ended while COMMIT was under way may have ended after the
      // server committed: the backend, told to terminate, answers COMMIT with
      // 57P01, and libpqxx throws that (not in_doubt_error) while the socket
      // still reads as open. Any other answer (a rollback, a constraint) is an
      // outcome known.
      const std::string state = e.sqlstate();
      if (!state.empty() && !state.starts_with("08") && !state.starts_with("57P")) throw;
      throw pqxx::in_doubt_error(e.what());
    } catch (const pqxx::broken_connection& e) {
      throw pqxx::in_doubt_error(e.what());
    }
    return Status::Ok();
  });
  // A commit of unknown outcome landed whole with its offsets or not at all:
  // the caller resumes from the stored offsets either way.
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

}  // namespace orderflow::projections

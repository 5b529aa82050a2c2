// ProjectionStore's write path (store.h): a batch of records decoded,
// applied in memory on top of the committed state and of the batch still in
// flight (Prepare), then written with its offsets and the new digest in one
// WriteBatch (Commit); and moving offsets over records that change nothing
// (AdvanceOffsets). The bulk rebuild writes the same bytes another way
// (bulk_load.cc).
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "eventstore/big_endian.h"
#include "eventstore/codec.h"
#include "projections/records_internal.h"
#include "projections/state_digest.h"
#include "projections/store.h"
#include "projections/store_internal.h"

namespace orderflow::projections {

struct PreparedBatch::Impl {
  struct Loaded {
    domain::OrderState state;
    domain::OrderStatus initial_status = domain::OrderStatus::kNone;  // as committed before this batch
    std::optional<std::string> stored;  // the order's value before this batch
    std::string encoded;                // its value after this batch, if dirty
    bool dirty = false;
  };
  BatchStats stats;
  rocksdb::WriteBatch batch;
  std::map<std::string, Loaded> orders;  // every order the batch touched, as after it
  Offsets next;                          // next offset of each partition the batch consumed
  std::vector<std::pair<size_t, std::string>> rejections;  // index in the input records, error
  std::map<std::string, int64_t> analytics;  // analytics counters this batch changed, as after it
  StateDigest digest;  // the store's digest once this batch is committed
};

PreparedBatch::PreparedBatch() : impl_(std::make_unique<Impl>()) {}
PreparedBatch::~PreparedBatch() = default;
PreparedBatch::PreparedBatch(PreparedBatch&&) noexcept = default;
PreparedBatch& PreparedBatch::operator=(PreparedBatch&&) noexcept = default;
const BatchStats& PreparedBatch::stats() const { return impl_->stats; }
const std::vector<std::pair<size_t, std::string>>& PreparedBatch::rejections() const { return impl_->rejections; }
const Offsets& PreparedBatch::next_offsets() const { return impl_->next; }

Result<BatchStats> ProjectionStore::ApplyBatch(const std::vector<eventstore::Record>& records) {
  auto prepared = Prepare(records, nullptr);
  if (!prepared.ok()) return prepared.status();
  ORDERFLOW_RETURN_IF_ERROR(Commit(*prepared));
  BatchStats stats = prepared->stats();
  KeepCommitted(std::move(prepared).value());
  return stats;
}

Result<PreparedBatch> ProjectionStore::Prepare(const std::vector<eventstore::Record>& records,
                                               const PreparedBatch* in_flight) {
  if (impl_->options.read_only) return Status::FailedPrecondition("store opened read-only");
  PreparedBatch prepared;
  PreparedBatch::Impl& out = *prepared.impl_;
  BatchStats& stats = out.stats;
  Offsets committed;
  {
    std::lock_guard lock(impl_->offsets_mu);
    committed = impl_->offsets;
  }
  if (in_flight != nullptr) {
    for (const auto& [tp, offset] : in_flight->impl_->next) committed[tp] = offset;
  }

  // 1. Decode. Records at offsets already consumed are re-deliveries: skipped.
  struct Decoded {
    const eventstore::Record* record;
    domain::Event event;
  };
  std::vector<Decoded> decoded;
  decoded.reserve(records.size());
  std::vector<std::pair<std::string, std::string>> rejected;
  Offsets& next = out.next;
  for (const eventstore::Record& record : records) {
    eventstore::TopicPartition tp{std::string(record.topic()), record.partition()};
    auto it = next.find(tp);
    int64_t done = it != next.end() ? it->second : (committed.count(tp) ? committed[tp] : 0);
    if (record.offset() < done) continue;
    next[tp] = record.offset() + 1;

    auto event = eventstore::DecodeEvent(record.value());
    const std::string error = RejectionOf(record, event);
    if (!error.empty()) {
      spdlog::warn("{}[{}] offset {}: rejected record: {}", record.topic(), record.partition(), record.offset(),
                   error);
      rejected.emplace_back(RejectedKey(record), internal::EncodeRejected(record, error));
      out.rejections.emplace_back(static_cast<size_t>(&record - records.data()), error);
      ++stats.rejected;
      continue;
    }
    decoded.push_back({&record, std::move(event).value()});
  }

  // 2. Load every order the batch touches: from the batch in flight if it has
  // it, else as a batch committed before left it (KeepCommitted), else from
  // RocksDB with one sorted MultiGet.
  auto& orders = out.orders;
  for (const Decoded& d : decoded) orders.try_emplace(d.event.order_id);
  {
    std::vector<rocksdb::Slice> keys;
    std::vector<PreparedBatch::Impl::Loaded*> targets;
    keys.reserve(orders.size());
    std::unique_lock cache_lock(impl_->cache_mu);
    for (auto& [id, loaded] : orders) {
      if (in_flight != nullptr) {
        auto it = in_flight->impl_->orders.find(id);
        if (it != in_flight->impl_->orders.end()) {
          loaded.state = it->second.state;
          loaded.initial_status = it->second.state.status;
          loaded.stored = it->second.dirty ? std::optional<std::string>(it->second.encoded) : it->second.stored;
          continue;
        }
      }
      if (auto cached = impl_->order_cache.Take(id)) {
        loaded.state = std::move(cached->state);
        loaded.initial_status = loaded.state.status;
        loaded.stored = std::move(cached->stored);
        ++stats.kept_orders;
        continue;
      }
      keys.emplace_back(id);
      targets.push_back(&loaded);
    }
    cache_lock.unlock();
    std::vector<rocksdb::PinnableSlice> values(keys.size());
    std::vector<rocksdb::Status> statuses(keys.size());
    impl_->db->MultiGet(rocksdb::ReadOptions(), impl_->cf(kOrders), keys.size(), keys.data(), values.data(),
                        statuses.data(), /*sorted_input=*/true);
    for (size_t i = 0; i < keys.size(); ++i) {
      const rocksdb::Status& s = statuses[i];
      if (s.ok()) {
        auto state = internal::DecodeOrder(values[i].ToStringView());
        if (!state.ok()) {
          return Status::Corruption("stored order " + keys[i].ToString() + ": " + state.status().message());
        }
        targets[i]->state = std::move(state).value();
        targets[i]->initial_status = targets[i]->state.status;
        targets[i]->stored = values[i].ToString();
      } else if (!s.IsNotFound()) {
        return FromRocks(s, "read order " + keys[i].ToString());
      }
    }
  }
  // 3. Apply in log order; collect history entries and analytics deltas.
  std::map<std::string, int64_t> analytics_delta;
  std::vector<std::pair<std::string, std::string>> history;
  history.reserve(decoded.size());
  for (Decoded& d : decoded) {
    PreparedBatch::Impl::Loaded& loaded = orders[d.event.order_id];
    domain::OrderState& state = loaded.state;
    if (state.HasApplied(d.event.id)) {
      ++stats.duplicates;
      continue;
    }
    const domain::OrderStatus status_before = state.status;
    domain::Apply(state, std::move(d.event));  // keeps what is read below: type, stamps, schema version
    loaded.dirty = true;
    ++stats.applied;
    ++stats.applied_by_type[d.event.payload.index()];
    if (!std::holds_alternative<domain::OrderDelivered>(d.event.payload) || status_before != state.status) {
      CountAnalytics(d.event, state, analytics_delta);
    }
    const eventstore::Record& record = *d.record;
    history.emplace_back(HistoryKey(state.order_id, state.version),
                         internal::EncodeHistory(record, domain::EventTypeName(d.event.payload), d.event.schema_version));
  }

  // 4. One WriteBatch, each family's keys in sorted order: RocksDB's memtable
  // inserts sorted keys much faster than random ones.
  // The digest follows every entry put or deleted: a put of a new key adds
  // it; an order put replaces its stored value; a status delete removes an
  // index entry (empty value) that the order's previous status put.
  StateDigest& digest = out.digest;
  {
    std::lock_guard lock(impl_->offsets_mu);
    if (in_flight != nullptr) {
      digest = in_flight->impl_->digest;
    } else if (impl_->digest) {
      digest = *impl_->digest;
    } else {
      return Status::FailedPrecondition("store " + dir_ + " was opened read-only; it cannot apply events");
    }
  }
  rocksdb::WriteBatch& batch = out.batch;
  auto put = [&batch, &digest, this](Family f, const std::string& k, const std::string& v) {
    if (f != kMeta) digest.Add(f, k, v);
    return FromRocks(batch.Put(impl_->cf(f), k, v), "batch");
  };
  std::sort(history.begin(), history.end());
  for (const auto& [k, v] : history) ORDERFLOW_RETURN_IF_ERROR(put(kHistory, k, v));
  std::vector<std::string> status_deletes, status_puts, customer_puts, time_puts;
  for (auto& [id, loaded] : orders) {
    if (!loaded.dirty) continue;
    if (loaded.stored) digest.Remove(kOrders, id, *loaded.stored);
    loaded.encoded = internal::EncodeOrder(loaded.state);
    ORDERFLOW_RETURN_IF_ERROR(put(kOrders, id, loaded.encoded));
    const domain::OrderStatus from = loaded.initial_status, to = loaded.state.status;
    if (from == to) continue;
    if (from == domain::OrderStatus::kNone) {
      customer_puts.push_back(IndexKey(loaded.state.customer_id, id));
      time_puts.push_back(TimeKey(loaded.state.placed_at_ms, id));
    } else {
      status_deletes.push_back(IndexKey(domain::OrderStatusName(from), id));
    }
    status_puts.push_back(IndexKey(domain::OrderStatusName(to), id));
  }
  std::sort(status_deletes.begin(), status_deletes.end());
  std::sort(status_puts.begin(), status_puts.end());
  std::sort(customer_puts.begin(), customer_puts.end());
  std::sort(time_puts.begin(), time_puts.end());
  for (const auto& k : status_deletes) {
    digest.Remove(kByStatus, k, std::string_view());
    ORDERFLOW_RETURN_IF_ERROR(FromRocks(batch.Delete(impl_->cf(kByStatus), k), "batch"));
  }
  for (const auto& k : status_puts) ORDERFLOW_RETURN_IF_ERROR(put(kByStatus, k, ""));
  for (const auto& k : customer_puts) ORDERFLOW_RETURN_IF_ERROR(put(kByCustomer, k, ""));
  for (const auto& k : time_puts) ORDERFLOW_RETURN_IF_ERROR(put(kByTime, k, ""));
  for (const auto& [k, v] : rejected) ORDERFLOW_RETURN_IF_ERROR(put(kRejected, k, v));
  if (!analytics_delta.empty()) {
    std::lock_guard lock(impl_->offsets_mu);
    for (const auto& [k, d] : analytics_delta) {
      std::optional<int64_t> base;  // nullopt: no entry yet
      if (in_flight != nullptr && in_flight->impl_->analytics.count(k)) {
        base = in_flight->impl_->analytics.at(k);
      } else if (impl_->analytics.count(k)) {
        base = impl_->analytics.at(k);
      }
      if (base) digest.Remove(kAnalytics, k, CounterValue(*base));  // the counter's entry is replaced
      out.analytics[k] = base.value_or(0) + d;
    }
  }
  for (const auto& [k, v] : out.analytics) ORDERFLOW_RETURN_IF_ERROR(put(kAnalytics, k, CounterValue(v)));
  for (const auto& [tp, offset] : next) {
    std::string value;
    PutBE64(&value, static_cast<uint64_t>(offset));
    ORDERFLOW_RETURN_IF_ERROR(put(kMeta, OffsetKey(tp), value));
  }
  if (batch.Count() > 0) ORDERFLOW_RETURN_IF_ERROR(put(kMeta, kDigestKey, digest.Serialize()));
  return prepared;
}

Status ProjectionStore::Commit(const PreparedBatch& prepared) {
  const PreparedBatch::Impl& in = *prepared.impl_;
  if (in.batch.Count() == 0) return Status::Ok();
  rocksdb::WriteOptions write_options;
  write_options.disableWAL = impl_->options.bulk_load;
  ORDERFLOW_RETURN_IF_ERROR(impl_->state->Write(const_cast<rocksdb::WriteBatch&>(in.batch), "write batch", write_options));
  std::lock_guard lock(impl_->offsets_mu);
  for (const auto& [tp, offset] : in.next) impl_->offsets[tp] = offset;
  for (const auto& [k, v] : in.analytics) impl_->analytics[k] = v;
  impl_->digest = in.digest;
  ++impl_->commit_count;
  impl_->committed.notify_all();
  return Status::Ok();
}

void ProjectionStore::KeepCommitted(PreparedBatch batch) {
  std::lock_guard lock(impl_->cache_mu);
  for (auto& [id, loaded] : batch.impl_->orders) {
    // An order the batch did not change (its events were duplicates) keeps its stored value.
    std::optional<std::string> stored = loaded.dirty ? std::optional<std::string>(std::move(loaded.encoded))
                                                     : std::move(loaded.stored);
    impl_->order_cache.Put(id, {std::move(loaded.state), std::move(stored)});
  }
}

Status ProjectionStore::AdvanceOffsets(const Offsets& positions) {
  rocksdb::WriteBatch batch;
  Offsets moved;
  {
    std::lock_guard lock(impl_->offsets_mu);
    for (const auto& [tp, offset] : positions) {
      auto it = impl_->offsets.find(tp);
      if (it != impl_->offsets.end() && it->second >= offset) continue;
      std::string value;
      PutBE64(&value, static_cast<uint64_t>(offset));
      ORDERFLOW_RETURN_IF_ERROR(FromRocks(batch.Put(impl_->cf(kMeta), OffsetKey(tp), value), "advance offsets"));
      moved[tp] = offset;
    }
  }
  if (moved.empty()) return Status::Ok();
  ORDERFLOW_RETURN_IF_ERROR(impl_->state->Write(batch, "advance offsets"));
  std::lock_guard lock(impl_->offsets_mu);
  for (const auto& [tp, offset] : moved) impl_->offsets[tp] = std::max(impl_->offsets[tp], offset);
  ++impl_->commit_count;
  impl_->committed.notify_all();
  return Status::Ok();
}

}  // namespace orderflow::projections

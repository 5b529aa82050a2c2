// ProjectionStore's reading side: offsets, orders, history, pages of orders,
// counts, analytics, rejected records, the digest and the first difference
// between two stores (store.h).
#include "projections/store.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "domain/hex.h"
#include "eventstore/big_endian.h"
#include "eventstore/codec.h"
#include "projections/records_internal.h"
#include "projections/state_digest.h"
#include "projections/store_internal.h"

namespace orderflow::projections {

Result<Offsets> ProjectionStore::GetOffsets() const {
  if (impl_->options.read_only) return impl_->LoadOffsets();
  std::lock_guard lock(impl_->offsets_mu);
  return impl_->offsets;
}

Result<std::optional<domain::OrderState>> ProjectionStore::GetOrder(const std::string& order_id) const {
  std::string bytes;
  auto found = GetOrderRecord(order_id, &bytes);
  if (!found.ok()) return found.status();
  if (!*found) return std::optional<domain::OrderState>();
  auto state = internal::DecodeOrder(bytes);
  if (!state.ok()) return state.status();
  return std::optional<domain::OrderState>(std::move(state).value());
}

Result<bool> ProjectionStore::GetOrderRecord(const std::string& order_id, std::string* record) const {
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf(kOrders), order_id, record);
  if (s.IsNotFound()) return false;
  if (!s.ok()) return FromRocks(s, "read order " + order_id);
  return true;
}

uint64_t ProjectionStore::VisibleStamp() const {
  // RocksDB publishes a write's sequence number once the write is in the
  // memtable, and a read without a snapshot reads at the latest published
  // one: equal numbers, equal reads. A file ingested below everything
  // (BulkLoader) may take sequence number 0 and advance nothing.
  if (impl_->options.bulk_load) return 0;
  return impl_->db->GetLatestSequenceNumber() + 1;
}

Result<std::vector<HistoryEntry>> ProjectionStore::GetHistory(const std::string& order_id) const {
  std::vector<HistoryEntry> out;
  const std::string prefix = HistoryPrefix(order_id);
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf(kHistory)));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto stored = internal::DecodeHistory(it->value().ToStringView());
    if (!stored.ok()) return stored.status();
    HistoryEntry e;
    e.sequence = static_cast<uint32_t>(GetBE(it->key().ToStringView().substr(prefix.size())));
    e.topic = stored->topic;
    e.partition = stored->partition;
    e.offset = stored->offset;
    e.record_timestamp_ms = stored->record_timestamp_ms;
    e.event_type = stored->event_type;
    e.schema_version = stored->schema_version;
    auto event = eventstore::DecodeEvent(stored->envelope);
    if (event.ok()) {
      e.event = std::move(event).value();
    } else {
      e.decode_error = event.status().ToString();
    }
    out.push_back(std::move(e));
  }
  ORDERFLOW_RETURN_IF_ERROR(FromRocks(it->status(), "read history"));
  return out;
}

Result<OrderPage> ProjectionStore::ListOrders(const OrderQuery& query) const {
  // The scan reads at most this many index entries per call; filters that
  // skip more return a short page with `next` set.
  constexpr size_t kMaxScanned = 10'000;
  OrderPage page;
  Family family = kOrders;
  std::string prefix;
  std::string after = query.after;
  if (query.newest_first && query.customer.empty() && !query.status) {
    family = kByTime;
    // The cursor is the index key, in hex (it holds the time).
    if (!domain::HexDecode(query.after, &after)) {
      return Status::InvalidArgument("'after' is not a cursor this listing returned");
    }
  } else if (!query.customer.empty()) {
    family = kByCustomer;
    prefix = IndexKey(query.customer, "");
  } else if (query.status) {
    family = kByStatus;
    prefix = IndexKey(domain::OrderStatusName(*query.status), "");
  }
  // A cursor is the position of an order that a page returned last: one
  // that names no order in the store was not issued here.
  if (!after.empty()) {
    const std::string cursor_id = family == kByTime ? (after.size() > 8 ? after.substr(8) : std::string()) : after;
    std::string ignored;
    const rocksdb::Status found =
        cursor_id.empty() ? rocksdb::Status::NotFound()
                          : impl_->db->Get(rocksdb::ReadOptions(), impl_->cf(kOrders), cursor_id, &ignored);
    if (found.IsNotFound()) return Status::InvalidArgument("'after' is not a cursor this listing returned");
    if (!found.ok()) return FromRocks(found, "read the order named by a cursor");
  }
  const bool filter_status = query.status && family != kByStatus;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf(family)));
  it->Seek(prefix + after);
  if (!after.empty() && it->Valid() && it->key().ToStringView() == prefix + after) it->Next();
  size_t scanned = 0;
  std::string last;
  for (; it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (page.orders.size() == query.limit || scanned == kMaxScanned) {
      page.next = last;
      break;
    }
    ++scanned;
    last = it->key().ToString().substr(prefix.size());
    std::string id = last;
    if (family == kByTime) {
      id = last.substr(8);
      last = domain::HexEncode(last);
    }
    domain::OrderState state;
    if (family == kOrders) {
      auto decoded = internal::DecodeOrder(it->value().ToStringView());
      if (!decoded.ok()) return decoded.status();
      state = std::move(decoded).value();
    } else {
      auto order = GetOrder(id);
      if (!order.ok()) return order.status();
      if (!order->has_value()) continue;  // indexed by a batch not yet visible here
      state = std::move(**order);
    }
    if (filter_status && state.status != *query.status) continue;
    page.orders.push_back(std::move(state));
  }
  ORDERFLOW_RETURN_IF_ERROR(FromRocks(it->status(), "list orders"));
  return page;
}

Result<std::map<std::string, uint64_t>> ProjectionStore::CountByStatus() const {
  std::map<std::string, uint64_t> out;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf(kByStatus)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view key = it->key().ToStringView();
    out[std::string(key.substr(0, key.find('\0')))] += 1;
  }
  ORDERFLOW_RETURN_IF_ERROR(FromRocks(it->status(), "read status index"));
  return out;
}

Result<Analytics> ProjectionStore::GetAnalytics(size_t top) const {
  std::map<std::string, int64_t> counters;
  if (impl_->options.read_only) {
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf(kAnalytics)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      counters[it->key().ToString()] = static_cast<int64_t>(GetBE(it->value().ToStringView()));
    }
    ORDERFLOW_RETURN_IF_ERROR(FromRocks(it->status(), "read analytics"));
  } else {
    std::lock_guard lock(impl_->offsets_mu);
    counters = impl_->analytics;
  }
  Analytics a;
  a.gross_minor = counters[kGrossKey];
  a.refunded_minor = counters[kRefundedKey];
  a.net_minor = a.gross_minor - a.refunded_minor;
  a.delivered = counters[kDeliveredCountKey];
  a.average_placed_to_delivered_ms =
      a.delivered > 0 ? static_cast<double>(counters[kDeliveredMsKey]) / static_cast<double>(a.delivered) : 0;
  std::map<std::string, SkuSales> skus;
  for (const auto& [k, v] : counters) {
    std::string_view key = k;
    if (key.starts_with(kHourPrefix) && key.size() == sizeof(kHourPrefix) - 1 + 8) {
      a.orders_per_hour[static_cast<int64_t>(GetBE(key.substr(sizeof(kHourPrefix) - 1))) * 3'600'000] = v;
    } else if (key.starts_with(kRevenueHourPrefix) && key.size() == sizeof(kRevenueHourPrefix) - 1 + 8) {
      a.revenue_per_hour[static_cast<int64_t>(GetBE(key.substr(sizeof(kRevenueHourPrefix) - 1))) * 3'600'000] = v;
    } else if (key.starts_with(kSkuUnitsPrefix)) {
      std::string sku(key.substr(sizeof(kSkuUnitsPrefix) - 1));
      skus[sku].sku = sku;
      skus[sku].units = v;
    } else if (key.starts_with(kSkuRevenuePrefix)) {
      std::string sku(key.substr(sizeof(kSkuRevenuePrefix) - 1));
      skus[sku].sku = sku;
      skus[sku].revenue_minor = v;
    }
  }
  for (auto& [sku, sales] : skus) {
    a.top_by_units.push_back(sales);
    a.top_by_revenue.push_back(sales);
  }
  auto trim_sorted = [top](std::vector<SkuSales>& v, auto key) {
    std::sort(v.begin(), v.end(), [&](const SkuSales& x, const SkuSales& y) {
      return key(x) != key(y) ? key(x) > key(y) : x.sku < y.sku;
    });
    if (v.size() > top) v.resize(top);
  };
  trim_sorted(a.top_by_units, [](const SkuSales& s) { return s.units; });
  trim_sorted(a.top_by_revenue, [](const SkuSales& s) { return s.revenue_minor; });
  auto by_status = CountByStatus();
  if (!by_status.ok()) return by_status.status();
  a.orders_by_status = std::move(by_status).value();
  return a;
}

Result<std::vector<RejectedEntry>> ProjectionStore::GetRejected(size_t limit) const {
  std::vector<RejectedEntry> out;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf(kRejected)));
  for (it->SeekToFirst(); it->Valid() && out.size() < limit; it->Next()) {
    auto entry = internal::DecodeRejected(it->value().ToStringView());
    if (!entry.ok()) return entry.status();
    out.push_back(std::move(entry).value());
  }
  ORDERFLOW_RETURN_IF_ERROR(FromRocks(it->status(), "read rejected records"));
  return out;
}

Result<std::string> ProjectionStore::Digest() const {
  {
    std::lock_guard lock(impl_->offsets_mu);
    if (impl_->digest) return impl_->digest->Hex();
  }
  return DigestByReading();
}

Result<std::string> ProjectionStore::DigestByReading() const {
  auto digest = ReadDigest();
  if (!digest.ok()) return digest.status();
  return digest->Hex();
}

Result<StateDigest> ProjectionStore::ReadDigest() const {
  StateDigest digest;
  // One snapshot for every family, so a digest taken while writing is consistent.
  const rocksdb::Snapshot* snapshot = impl_->db->GetSnapshot();
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  ro.fill_cache = false;
  Status status;
  for (Family f : kStateFamilies) {
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf(f)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) digest.Add(f, it->key().ToStringView(), it->value().ToStringView());
    status = FromRocks(it->status(), "digest");
    if (!status.ok()) break;
  }
  impl_->db->ReleaseSnapshot(snapshot);
  ORDERFLOW_RETURN_IF_ERROR(status);
  return digest;
}

Result<std::optional<std::string>> ProjectionStore::FirstDifference(const ProjectionStore& other) const {
  auto printable = [](std::string_view key) {
    std::string out;
    for (unsigned char c : key) {
      if (c >= 0x20 && c < 0x7f) {
        out.push_back(static_cast<char>(c));
      } else {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        out += buf;
      }
    }
    return out;
  };
  for (Family f : kStateFamilies) {
    std::unique_ptr<rocksdb::Iterator> a(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf(f)));
    std::unique_ptr<rocksdb::Iterator> b(other.impl_->db->NewIterator(rocksdb::ReadOptions(), other.impl_->cf(f)));
    a->SeekToFirst();
    b->SeekToFirst();
    while (a->Valid() || b->Valid()) {
      const std::string family = kFamilyNames[f];
      if (!b->Valid() || (a->Valid() && a->key().compare(b->key()) < 0)) {
        return std::optional<std::string>(family + " key '" + printable(a->key().ToStringView()) + "' only in " + dir_);
      }
      if (!a->Valid() || b->key().compare(a->key()) < 0) {
        return std::optional<std::string>(family + " key '" + printable(b->key().ToStringView()) + "' only in " +
                                           other.dir_);
      }
      if (a->value() != b->value()) {
        return std::optional<std::string>(family + " key '" + printable(a->key().ToStringView()) +
                                           "' has different values");
      }
      a->Next();
      b->Next();
    }
    ORDERFLOW_RETURN_IF_ERROR(FromRocks(a->status(), "compare"));
    ORDERFLOW_RETURN_IF_ERROR(FromRocks(b->status(), "compare"));
  }
  return std::optional<std::string>();
}

}  // namespace orderflow::projections

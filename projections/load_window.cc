#include "projections/load_window.h"

#include <rocksdb/filter_policy.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <xxhash.h>

#include <algorithm>

#include "projections/records_internal.h"

namespace orderflow::projections {
namespace {

using eventstore::FromRocks;

// The statuses in the bytewise order of their names (the by_status keys' order).
const std::vector<domain::OrderStatus>& StatusesByName() {
  static const std::vector<domain::OrderStatus> statuses = [] {
    std::vector<domain::OrderStatus> out;
    for (int s = 0; s <= static_cast<int>(domain::OrderStatus::kCancelled); ++s) {
      out.push_back(static_cast<domain::OrderStatus>(s));
    }
    std::sort(out.begin(), out.end(),
              [](auto a, auto b) { return domain::OrderStatusName(a) < domain::OrderStatusName(b); });
    return out;
  }();
  return statuses;
}

}  // namespace

void WindowOrders::Reserve(size_t orders) {
  // Twofold at least: a window that outgrows its room (a chunk larger than
  // the ones before, or orders read back, which count with their stored
  // values) copies its orders a logarithmic number of times, not once per chunk.
  if (orders > orders_.capacity()) orders_.reserve(std::max(orders, 2 * orders_.capacity()));
  size_t slots = 16;
  while (slots < 2 * orders) slots <<= 1;
  if (slots > slots_.size()) Rehash(slots);
}

void WindowOrders::Clear() {
  orders_.clear();
  std::fill(slots_.begin(), slots_.end(), 0);
  ids_.Clear();
}

uint64_t WindowOrders::Hash(std::string_view id) { return XXH3_64bits(id.data(), id.size()); }

size_t WindowOrders::SlotOf(std::string_view id, uint64_t h) const {
  const size_t mask = slots_.size() - 1;
  for (size_t at = h & mask;; at = (at + 1) & mask) {
    const uint64_t slot = slots_[at];
    if (slot == 0 || ((slot & kTag) == (h & kTag) && orders_[PlaceOf(slot)].id == id)) return at;
  }
}

void WindowOrders::Rehash(size_t slots) {
  slots_.assign(slots, 0);
  for (size_t i = 0; i < orders_.size(); ++i) {
    const uint64_t h = Hash(orders_[i].id);
    slots_[SlotOf(orders_[i].id, h)] = (h & kTag) | (i + 1);
  }
}

std::pair<WindowOrder*, bool> WindowOrders::FindOrAdd(std::string_view id) {
  if (2 * (orders_.size() + 1) > slots_.size()) Rehash(std::max<size_t>(16, 2 * slots_.size()));
  const uint64_t h = Hash(id);
  uint64_t& slot = slots_[SlotOf(id, h)];
  if (slot != 0) return {&orders_[PlaceOf(slot)], false};
  orders_.emplace_back();
  orders_.back().id = ids_.Copy(id);
  slot = (h & kTag) | orders_.size();
  return {&orders_.back(), true};
}

const WindowOrder* WindowOrders::Find(std::string_view id) const {
  if (orders_.empty()) return nullptr;
  const uint64_t slot = slots_[SlotOf(id, Hash(id))];
  return slot == 0 ? nullptr : &orders_[PlaceOf(slot)];
}

std::vector<WindowOrderRef> ChangedOrdersById(const LoadWindow& w) {
  std::vector<WindowOrderRef> changed;
  changed.reserve(w.orders.size());
  for (const WindowOrder& order : w.orders.all()) {
    if (order.dirty) changed.push_back(&order);
  }
  std::vector<WindowOrderRef> sorted;
  sorted.reserve(changed.size());
  for (size_t i : SortedByKey(changed.size(), [&](size_t i) { return changed[i]->id; })) sorted.push_back(changed[i]);
  return sorted;
}

void LayOutOrders(const std::vector<WindowOrderRef>& changed, WindowEntries* out) {
  out->order_values.resize(changed.size());
  out->orders.reserve(changed.size());
  for (size_t i = 0; i < changed.size(); ++i) {
    const WindowOrder& loaded = *changed[i];
    const std::string_view id = loaded.id;
    if (loaded.stored) out->overwritten.Remove(kOrders, id, *loaded.stored);
    out->order_values[i] = internal::EncodeOrder(loaded.state);
    out->orders.push_back({id, out->order_values[i]});
  }
}

void LayOutHistory(const std::vector<WindowOrderRef>& changed, WindowEntries* out) {
  size_t count = 0;
  for (WindowOrderRef order : changed) count += order->history.size();
  out->history.reserve(count);
  for (WindowOrderRef order : changed) {
    for (const auto& [version, entry] : order->history) {
      out->history.push_back({out->history_keys.History(order->id, version), entry});
    }
  }
}

// by_status by (status name, id), by_customer by (customer, id), by_time by
// (time, id): built from the orders in id order; the names are bucketed, the
// customer keys and the times sorted.
void LayOutIndexes(const std::vector<WindowOrderRef>& changed, const LoadWindow& w, WindowEntries* out) {
  KeyArena& arena = out->index_keys;
  std::vector<FileEntries> by_status(StatusesByName().size());
  FileEntries customer_entries;
  FileEntries time_entries;
  std::vector<std::pair<uint64_t, size_t>> by_time;  // (the key's time, place in time_entries)
  for (WindowOrderRef order : changed) {
    const WindowOrder& loaded = *order;
    const std::string_view id = loaded.id;
    const domain::OrderStatus from = loaded.initial_status, to = loaded.state.status;
    if (from == to) continue;
    if (from == domain::OrderStatus::kNone) {
      customer_entries.push_back({arena.Index(loaded.state.customer_id, id), {}});
      const std::string_view time_key = arena.Time(loaded.state.placed_at_ms, id);
      by_time.emplace_back(Prefix8(time_key), time_entries.size());  // the key's be64 time
      time_entries.push_back({time_key, {}});
    } else {
      by_status[static_cast<size_t>(from)].push_back({arena.Index(domain::OrderStatusName(from), id), {}, true});
    }
    by_status[static_cast<size_t>(to)].push_back({arena.Index(domain::OrderStatusName(to), id), {}});
  }
  for (domain::OrderStatus status : StatusesByName()) {
    const FileEntries& bucket = by_status[static_cast<size_t>(status)];
    out->by_status.insert(out->by_status.end(), bucket.begin(), bucket.end());
  }
  out->by_customer.reserve(customer_entries.size());
  for (size_t i : SortedByKey(customer_entries.size(), [&](size_t i) { return customer_entries[i].key; })) {
    out->by_customer.push_back(customer_entries[i]);  // the keys are unique (one per order)
  }
  std::sort(by_time.begin(), by_time.end());  // the second member keeps id order within a millisecond
  out->by_time.reserve(by_time.size());
  for (const auto& [t, at] : by_time) out->by_time.push_back(time_entries[at]);
  const auto& rejected = w.rejected;
  for (size_t i : SortedByKey(rejected.size(), [&](size_t i) -> const std::string& { return rejected[i].first; })) {
    // A record rejected twice (re-delivered) keeps one entry, as in a WriteBatch.
    if (!out->rejected.empty() && out->rejected.back().key == rejected[i].first) continue;
    out->rejected.push_back({rejected[i].first, rejected[i].second});
  }
}

Status WriteSortedFile(rocksdb::ColumnFamilyHandle* family_handle, Family family, const std::string& path,
                       FileEntries& entries, StateDigest* written) {
  auto less = [](const FileEntry& a, const FileEntry& b) { return a.key < b.key; };
  if (!std::is_sorted(entries.begin(), entries.end(), less)) std::sort(entries.begin(), entries.end(), less);
  rocksdb::Options options;
  // Uncompressed, as the live store's L0 and L1: the compactions that move
  // them down compress them (LZ4), off the rebuild's path.
  options.compression = rocksdb::kNoCompression;
  rocksdb::BlockBasedTableOptions table;
  if (family == kOrders) {
    // Only orders are read by key (the other families by prefix), and only
    // while rebuilding by LoadEarlier: the other files need no filter.
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  } else {
    table.block_size = 16 * 1024;
  }
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // The page cache keeps what was written: ingestion and the first reads
  // find it there (the writer would otherwise drop it every megabyte).
  rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), options, family_handle, /*invalidate_page_cache=*/false);
  ORDERFLOW_RETURN_IF_ERROR(FromRocks(writer.Open(path), "create " + path));
  for (const FileEntry& e : entries) {
    const rocksdb::Slice key(e.key.data(), e.key.size());
    rocksdb::Status s = e.deleted ? writer.Delete(key) : writer.Put(key, rocksdb::Slice(e.value.data(), e.value.size()));
    if (!s.ok()) return FromRocks(s, "write " + path);  // the message built only on failure: this runs per entry
    if (e.deleted) {
      written->Remove(family, e.key, std::string_view());
    } else {
      written->Add(family, e.key, e.value);
    }
  }
  return FromRocks(writer.Finish(), "finish " + path);
}

}  // namespace orderflow::projections

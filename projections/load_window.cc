#include "projections/load_window.h"

#include <rocksdb/filter_policy.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>

#include <algorithm>
#include <unordered_map>

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

void LayOutWindow(const LoadWindow& w, WindowEntries* out) {
  const auto& orders = w.orders;
  const auto& rejected = w.rejected;
  std::vector<const std::pair<const std::string, WindowOrder>*> dirty;
  dirty.reserve(orders.size());
  size_t history_count = 0;
  for (const auto& entry : orders) {
    if (!entry.second.dirty) continue;
    dirty.push_back(&entry);
    history_count += entry.second.history.size();
  }
  // Every family's entries are built in key order from the orders in id
  // order: history by (id, version), by_status by (status name, id), by_customer
  // by (customer, id), by_time by (time, id); only the ids and the times are sorted.
  KeyArena& arena = out->arena;
  std::vector<std::string>& order_values = out->order_values;
  order_values.resize(dirty.size());
  FileEntries& order_entries = out->orders;
  FileEntries& history_entries = out->history;
  FileEntries& status_entries = out->by_status;
  FileEntries& customer_entries = out->by_customer;
  FileEntries& time_entries = out->by_time;
  FileEntries& rejected_entries = out->rejected;
  order_entries.reserve(dirty.size());
  history_entries.reserve(history_count);
  std::vector<FileEntries> by_status(StatusesByName().size());
  std::unordered_map<std::string_view, FileEntries> by_customer;
  std::vector<std::pair<uint64_t, size_t>> by_time;  // (the key's time, place in time_entries)
  StateDigest& overwritten = out->overwritten;
  for (size_t i : SortedByKey(dirty.size(), [&](size_t i) -> const std::string& { return dirty[i]->first; })) {
    const auto& [id, loaded] = *dirty[i];
    if (loaded.stored) overwritten.Remove(kOrders, id, *loaded.stored);
    std::string& value = order_values[order_entries.size()];
    value = internal::EncodeOrder(loaded.state);
    order_entries.push_back({id, value});
    for (const auto& [version, entry] : loaded.history) history_entries.push_back({arena.History(id, version), entry});
    const domain::OrderStatus from = loaded.initial_status, to = loaded.state.status;
    if (from == to) continue;
    if (from == domain::OrderStatus::kNone) {
      by_customer[loaded.state.customer_id].push_back({arena.Index(loaded.state.customer_id, id), {}});
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
    status_entries.insert(status_entries.end(), bucket.begin(), bucket.end());
  }
  std::vector<std::string_view> customers;
  customers.reserve(by_customer.size());
  for (const auto& [customer, bucket] : by_customer) customers.push_back(customer);
  std::sort(customers.begin(), customers.end());
  for (std::string_view customer : customers) {
    const FileEntries& bucket = by_customer[customer];
    customer_entries.insert(customer_entries.end(), bucket.begin(), bucket.end());
  }
  std::sort(by_time.begin(), by_time.end());  // the second member keeps id order within a millisecond
  FileEntries sorted_time;
  sorted_time.reserve(by_time.size());
  for (const auto& [t, at] : by_time) sorted_time.push_back(time_entries[at]);
  time_entries = std::move(sorted_time);
  for (size_t i : SortedByKey(rejected.size(), [&](size_t i) -> const std::string& { return rejected[i].first; })) {
    // A record rejected twice (re-delivered) keeps one entry, as in a WriteBatch.
    if (!rejected_entries.empty() && rejected_entries.back().key == rejected[i].first) continue;
    rejected_entries.push_back({rejected[i].first, rejected[i].second});
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
    ORDERFLOW_RETURN_IF_ERROR(FromRocks(s, "write " + path));
    if (e.deleted) {
      written->Remove(family, e.key, std::string_view());
    } else {
      written->Add(family, e.key, e.value);
    }
  }
  return FromRocks(writer.Finish(), "finish " + path);
}

}  // namespace orderflow::projections

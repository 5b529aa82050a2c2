// A bulk-load window and the files it becomes, for BulkLoader (bulk_load.h):
// the orders a window folded with the history entries it adds; their layout
// as each family's entries in key order (LayOut*), keys built as
// store_layout.h lays them out; and one family's entries written as a sorted
// file for RocksDB to ingest (WriteSortedFile). Internal to projections/.
//
// Thread safety: none of its own. A window is filled on one thread and laid
// out on another once sealed; WriteSortedFile may run on several threads at
// once, each on its own entries and path.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/order.h"
#include "domain/status.h"
#include "projections/state_digest.h"
#include "projections/store_layout.h"

namespace orderflow::projections {

// One entry of a file being written: views into the window (values) and into
// a KeyArena (keys). A deletion has no value.
struct FileEntry {
  std::string_view key;
  std::string_view value;
  bool deleted = false;
};
using FileEntries = std::vector<FileEntry>;

// Keys built while a window is written, in large blocks: no allocation per
// key. Each key is laid out by store_layout.h's Append*Key in a reused
// buffer, then copied here.
class KeyArena {
 public:
  std::string_view History(std::string_view id, uint32_t seq) {
    building_.clear();
    AppendHistoryKey(&building_, id, seq);
    return Keep();
  }
  std::string_view Index(std::string_view a, std::string_view b) {
    building_.clear();
    AppendIndexKey(&building_, a, b);
    return Keep();
  }
  std::string_view Time(int64_t placed_at_ms, std::string_view id) {
    building_.clear();
    AppendTimeKey(&building_, placed_at_ms, id);
    return Keep();
  }
  std::string_view Copy(std::string_view bytes) { return Keep(bytes); }
  // Forgets every key, keeping the first block for the keys to come.
  void Clear() {
    if (blocks_.empty()) return;
    blocks_.resize(1);
    at_ = blocks_[0].get();
    left_ = first_block_;
  }

 private:
  // Copies the key in `building_` (or `bytes`) into a block; it stays put until the arena goes.
  std::string_view Keep() { return Keep(building_); }
  std::string_view Keep(std::string_view bytes) {
    const size_t size = bytes.size();
    if (size == 0) return {};
    if (size > left_) {
      // Not zeroed: a page is touched only when a key is copied into it.
      const size_t block = std::max<size_t>(size, 1u << 20);
      blocks_.push_back(std::make_unique_for_overwrite<char[]>(block));
      if (blocks_.size() == 1) first_block_ = block;
      at_ = blocks_.back().get();
      left_ = block;
    }
    char* out = at_;
    std::memcpy(out, bytes.data(), size);
    at_ += size;
    left_ -= size;
    return {out, size};
  }
  std::string building_;
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* at_ = nullptr;
  size_t left_ = 0;
  size_t first_block_ = 0;
};

// One order as a window holds it: its state after the window's events.
struct WindowOrder {
  std::string_view id;  // in the window's arena of ids
  domain::OrderState state;
  domain::OrderStatus initial_status = domain::OrderStatus::kNone;  // as written by earlier windows
  std::optional<std::string> stored;  // the order's value as an earlier window wrote it
  bool dirty = false;
  // The history entries this window adds (version, value), in version order:
  // written in the order of the orders' ids, they need no sorting.
  // The values are views into the window's history_buffers.
  std::vector<std::pair<uint32_t, std::string_view>> history;
};

// The orders of a window in the order they came, found by id through an
// open-addressing table of their places: no allocation per order (the ids go
// in an arena), one probe of the table per lookup, and laying the window out
// walks one array. With a node-based hash map (two allocations per order, a
// pointer chase per lookup and per step of the walk) the 400k-event replay
// cost 8.7 us of CPU per event, 6.7 with this (docs/benchmarks.md).
class WindowOrders {
 public:
  // Room for `orders` in all without growing (grown at least twofold when it grows).
  void Reserve(size_t orders);
  // Empty, keeping the room (and the arena's first block).
  void Clear();
  // The order `id`, added (empty) if the window has none; second: whether it was added.
  // The pointer is valid until the next FindOrAdd.
  std::pair<WindowOrder*, bool> FindOrAdd(std::string_view id);
  const WindowOrder* Find(std::string_view id) const;
  std::vector<WindowOrder>& all() { return orders_; }
  const std::vector<WindowOrder>& all() const { return orders_; }
  size_t size() const { return orders_.size(); }

 private:
  // A slot: 0 when empty; else the id's hash's high 32 bits (its tag), then its order's place + 1.
  static constexpr uint64_t kTag = 0xffff'ffff'0000'0000;
  static uint64_t Hash(std::string_view id);
  static size_t PlaceOf(uint64_t slot) { return (slot & ~kTag) - 1; }
  // The slot of `id` (hash `h`): its order's, or the empty one where it would go.
  size_t SlotOf(std::string_view id, uint64_t h) const;
  void Rehash(size_t slots);
  std::vector<WindowOrder> orders_;
  std::vector<uint64_t> slots_;
  KeyArena ids_;
};

// The orders and rejected records a window folded, not yet written.
struct LoadWindow {
  WindowOrders orders;
  std::vector<std::pair<std::string, std::string>> rejected;
  size_t events = 0;
  size_t bytes = 0;  // order states and rejected records
  size_t history_events = 0, history_bytes = 0;  // held in `orders`, not yet written
  // What the history entries in `orders` view (chunks of entries laid end to end).
  std::vector<std::unique_ptr<std::string>> history_buffers;

  // Empty, to be filled again (the orders' room kept).
  void Clear() {
    orders.Clear();
    rejected.clear();
    events = bytes = history_events = history_bytes = 0;
    history_buffers.clear();
  }
};

// Bytewise key order (RocksDB's default comparator) compares eight bytes as
// one integer: the big-endian value of s[at, at + 8), zero-padded.
inline uint64_t Prefix8(std::string_view s, size_t at = 0) {
  uint64_t v = 0;
  const size_t n = at < s.size() ? std::min<size_t>(8, s.size() - at) : 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t{static_cast<unsigned char>(s[at + i])} << (56 - 8 * i);
  return v;
}
// The indices 0..n-1 in the bytewise order of key(i), sorted on sixteen bytes
// of each key held beside its index (no pointer chasing while sorting): the
// sixteen after the prefix every key shares. Order ids made together share
// their first ~9 bytes (UUIDv7: the time comes first), index keys their name.
template <typename KeyOf>
std::vector<size_t> SortedByKey(size_t n, KeyOf key) {
  size_t common = 0;
  if (n > 1) {
    const auto& first_key = key(0);  // a reference: a key returned by value lives as long
    const std::string_view first = first_key;
    common = first.size();
    for (size_t i = 1; i < n && common > 0; ++i) {
      const auto& k_ref = key(i);
      const std::string_view k = k_ref;
      const size_t limit = std::min(common, k.size());
      size_t j = 0;
      while (j < limit && k[j] == first[j]) ++j;
      common = j;
    }
  }
  struct Item {
    uint64_t hi, lo;
    size_t index;
  };
  std::vector<Item> items(n);
  for (size_t i = 0; i < n; ++i) {
    const auto& k_ref = key(i);
    const std::string_view k = k_ref;
    items[i] = {Prefix8(k, common), Prefix8(k, common + 8), i};
  }
  std::sort(items.begin(), items.end(), [&](const Item& a, const Item& b) {
    if (a.hi != b.hi) return a.hi < b.hi;
    if (a.lo != b.lo) return a.lo < b.lo;
    return std::string_view(key(a.index)) < std::string_view(key(b.index));
  });
  std::vector<size_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = items[i].index;
  return out;
}

// The orders of a window that changed, in id order: every family's entries
// are built from them in key order.
using WindowOrderRef = const WindowOrder*;
std::vector<WindowOrderRef> ChangedOrdersById(const LoadWindow& window);

// The files of one window: each family's entries in key order, viewing the
// window laid out, the arenas (keys) and `order_values` (the encoded orders).
// Filled in place by the LayOut functions below and valid while that window
// lives; not copied or moved, so the views stay put. The three LayOut
// functions fill disjoint members, so they may run on three threads at once.
struct WindowEntries {
  WindowEntries() = default;
  WindowEntries(const WindowEntries&) = delete;
  WindowEntries& operator=(const WindowEntries&) = delete;

  // LayOutOrders
  std::vector<std::string> order_values;
  FileEntries orders;
  StateDigest overwritten;  // order values of earlier windows that this one replaces
  // LayOutHistory
  KeyArena history_keys;
  FileEntries history;
  // LayOutIndexes
  KeyArena index_keys;
  FileEntries by_status, by_customer, by_time, rejected;
};

// Each lays out its families' entries for `changed` (ChangedOrdersById of
// the window) into *out, whose members it fills were empty before.
void LayOutOrders(const std::vector<WindowOrderRef>& changed, WindowEntries* out);
void LayOutHistory(const std::vector<WindowOrderRef>& changed, WindowEntries* out);
// Also the window's rejected records.
void LayOutIndexes(const std::vector<WindowOrderRef>& changed, const LoadWindow& window, WindowEntries* out);

// Writes `entries` (in key order as built; sorted here if they are not) as a
// file of `family` at `path`, to be ingested into `family_handle`, and adds
// what it wrote to *written. A deleted key is an index entry an earlier
// window wrote. Errors: RocksDB's, through FromRocks, naming `path`.
Status WriteSortedFile(rocksdb::ColumnFamilyHandle* family_handle, Family family, const std::string& path,
                       FileEntries& entries, StateDigest* written);

}  // namespace orderflow::projections

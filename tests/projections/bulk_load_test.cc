#include "projections/bulk_load.h"
#include "projections/load_window.h"
#include "projections/seen_filter.h"
#include "projections/snapshot.h"
#include "projections/state_digest.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <random>

#include "eventstore/codec.h"
#include "projections/store.h"
#include "tests/util/events.h"
#include "tests/util/temp_dir.h"

namespace orderflow::projections {
namespace {

// SortedByKey gives RocksDB's bytewise order, whatever prefix the keys share.
TEST(SortedByKeyTest, PutsKeysInBytewiseOrderWhateverPrefixTheyShare) {
  std::mt19937 rng(7);
  const std::string alphabet("\x00\x01" "0a-\x7f\x80\xfe\xff", 9);
  for (const std::string& shared : std::vector<std::string>{"", "cust-", "0193a5b2-3c4d-7", std::string(40, 'x')}) {
    for (size_t n : {0, 1, 2, 3, 50, 2000}) {
      std::vector<std::string> keys;
      for (size_t i = 0; i < n; ++i) {
        std::string key = shared;
        const size_t tail = rng() % 24;  // some keys are the prefix of others, some repeat
        for (size_t j = 0; j < tail; ++j) key.push_back(alphabet[rng() % (j < 12 ? 2 : alphabet.size())]);
        keys.push_back(key);
      }
      std::vector<std::string> got;
      for (size_t i : SortedByKey(keys.size(), [&](size_t i) -> const std::string& { return keys[i]; })) {
        got.push_back(keys[i]);
      }
      std::vector<std::string> want = keys;
      std::sort(want.begin(), want.end());  // std::string compares bytewise, as RocksDB
      EXPECT_EQ(got, want) << "shared prefix '" << shared << "', " << n << " keys";
    }
  }
}

// A window's orders: each id added once, found again however far the window
// grew past what it reserved, in the order they came; absent ids are not found.
TEST(WindowOrdersTest, FindsEveryOrderAddedOnceInTheOrderTheyCameAsTheWindowGrows) {
  WindowOrders orders;
  orders.Reserve(4);
  std::vector<std::string> ids = {"", "a", std::string("a\0b", 3), std::string(100, 'z')};
  for (int i = 0; i < 5000; ++i) ids.push_back("0193a5b2-3c4d-7" + std::to_string(i));
  for (size_t i = 0; i < ids.size(); ++i) {
    auto [order, added] = orders.FindOrAdd(ids[i]);
    ASSERT_TRUE(added) << ids[i];
    order->state.version = static_cast<uint32_t>(i);
    EXPECT_FALSE(orders.FindOrAdd(ids[i]).second) << "added twice: " << ids[i];
  }
  ASSERT_EQ(orders.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const WindowOrder* found = orders.Find(ids[i]);
    ASSERT_NE(found, nullptr) << ids[i];
    EXPECT_EQ(found->id, ids[i]);
    EXPECT_EQ(found->state.version, i) << ids[i];
    EXPECT_EQ(orders.all()[i].id, ids[i]);
  }
  for (const std::string& absent :
       std::vector<std::string>{"b", "0193a5b2-3c4d-75000", std::string(99, 'z'), std::string("a\0", 2)}) {
    EXPECT_EQ(orders.Find(absent), nullptr) << absent;
  }
  EXPECT_EQ(WindowOrders().Find("a"), nullptr);  // an empty window finds nothing

  // Emptied and filled again (the bulk loader reuses its last window): none
  // of the old ids is found, the new ones are.
  orders.Clear();
  EXPECT_EQ(orders.size(), 0u);
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(orders.Find(ids[i]), nullptr) << ids[i];
  for (size_t i = ids.size(); i-- > ids.size() - 100;) ASSERT_TRUE(orders.FindOrAdd(ids[i]).second) << ids[i];
  EXPECT_EQ(orders.all()[0].id, ids.back());
  EXPECT_EQ(orders.Find(ids[ids.size() - 100])->id, ids[ids.size() - 100]);
  EXPECT_EQ(orders.Find(ids[0]), nullptr);
}

// The loader sizes its filter of seen orders for the log (BulkLoader::ExpectRecords):
// more orders than it was sized for make lookups more frequent, never an order forgotten.
TEST(SeenFilterTest, AFilterSizedForFewOrdersForgetsNoneOfManyMore) {
  SeenFilter seen;
  seen.SizeFor(1'000);  // the smallest filter, 1 MiB
  const int kAdded = 300'000;
  for (int i = 0; i < kAdded; ++i) seen.Add("order-" + std::to_string(i));
  seen.SizeFor(100'000'000);  // too late: the bits are allocated, and it must not resize them
  int forgotten = 0, false_positives = 0;
  for (int i = 0; i < kAdded; ++i) forgotten += seen.MaybeContains("order-" + std::to_string(i)) ? 0 : 1;
  for (int i = kAdded; i < 2 * kAdded; ++i) false_positives += seen.MaybeContains("order-" + std::to_string(i));
  EXPECT_EQ(forgotten, 0);
  EXPECT_LT(false_positives, kAdded / 20) << "28 bits per id should give well under 5 % false positives";
}

// A filter kept beside a snapshot is read by later builds: its bytes for the
// same ids must not change (the hash is XXH3's, the words little-endian), and
// anything that is not a filter's bytes is refused rather than trusted.
TEST(SeenFilterTest, AFilterReadBackFromItsBytesAnswersAsTheOriginalAndTheBytesAreStable) {
  SeenFilter seen;
  seen.SizeFor(1'000);
  for (int i = 0; i < 100; ++i) seen.Add("order-" + std::to_string(i));
  const std::string bytes = seen.Serialize();
  EXPECT_EQ(bytes.size(), 16u + (1u << 20));
  EXPECT_EQ(bytes.substr(0, 8), "ofseen01");
  // Pinned: a change of hash or layout would make every kept filter wrong.
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(XXH3_64bits(bytes.data(), bytes.size())));
  EXPECT_EQ(std::string(hex), "97c7dcebe670c7dd");
  auto back = SeenFilter::Parse(bytes);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->Serialize(), bytes);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(back->MaybeContains("order-" + std::to_string(i))) << i;
  int same = 0;
  for (int i = 100; i < 10'100; ++i) {
    const std::string id = "order-" + std::to_string(i);
    same += back->MaybeContains(id) == seen.MaybeContains(id);
  }
  EXPECT_EQ(same, 10'000);
  // An empty filter (nothing added) says no to everything.
  SeenFilter empty;
  empty.SizeFor(10);
  auto none = SeenFilter::Parse(empty.Serialize());
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->MaybeContains("order-1"));
  // Not a filter's bytes.
  EXPECT_FALSE(SeenFilter::Parse("").has_value());
  EXPECT_FALSE(SeenFilter::Parse(bytes.substr(0, bytes.size() - 1)).has_value());
  EXPECT_FALSE(SeenFilter::Parse(bytes + "x").has_value());
  EXPECT_FALSE(SeenFilter::Parse("ofseen02" + bytes.substr(8)).has_value());
  std::string no_blocks = bytes.substr(0, 16);
  no_blocks[15] = 0;
  no_blocks[14] = 0;
  EXPECT_FALSE(SeenFilter::Parse(no_blocks).has_value());
  std::string huge = bytes;
  huge[8] = 4;  // 2^58 + 2^14 blocks claimed: times 64 wraps to the real size, so only the bound refuses it
  EXPECT_FALSE(SeenFilter::Parse(huge).has_value());
}

using orderflow::testing::CopyRecords;
using orderflow::testing::LifecycleEvent;
using orderflow::testing::PlacedEvent;
using orderflow::testing::TempDir;
using orderflow::testing::ToRecord;

// A log over three partitions where orders live long: each order's events are
// spread far apart, so with small windows most orders span several windows;
// with re-delivered event ids, garbage and a key mismatch.
std::vector<eventstore::Record> SpreadLog() {
  std::vector<std::pair<int32_t, domain::Event>> events;
  for (int i = 0; i < 300; ++i) {
    const std::string id = "o-" + std::to_string(i * 7919 % 1000);
    events.emplace_back(i % 3, PlacedEvent(id, "c" + std::to_string(i % 11)));
  }
  for (int i = 0; i < 300; ++i) {
    const std::string id = "o-" + std::to_string(i * 7919 % 1000);
    if (i % 2 == 0) events.emplace_back(i % 3, LifecycleEvent(id, 1, domain::PaymentAuthorized{"p", 2900}));
    if (i % 5 == 0) events.emplace_back(i % 3, LifecycleEvent(id, 1, domain::PaymentAuthorized{"p", 2900}));  // again
  }
  for (int i = 0; i < 300; i += 4) {
    const std::string id = "o-" + std::to_string(i * 7919 % 1000);
    events.emplace_back(i % 3, LifecycleEvent(id, 2, domain::OrderCancelled{"x", domain::CancelSource::kSystem}));
    if (i % 8 == 0) events.emplace_back(i % 3, LifecycleEvent(id, 3, domain::PaymentRefunded{"r", 2900}));
  }
  std::vector<eventstore::Record> out;
  int64_t offsets[3] = {0, 0, 0};
  for (const auto& [p, e] : events) out.push_back(ToRecord(e, p, offsets[p]++));
  out.push_back(eventstore::Record::Make("orders.events", 1, offsets[1]++, "o-x", "\x01\x02garbage"));
  out.push_back(eventstore::Record::Make("orders.events", 2, offsets[2]++, "not-o-5",
                                         eventstore::EncodeEvent(PlacedEvent("o-5"))));
  return out;
}

std::string BatchPathDigest(const std::vector<eventstore::Record>& log) {
  TempDir dir;
  auto store = ProjectionStore::Open(dir.path(), {});
  EXPECT_TRUE(store.ok());
  for (size_t i = 0; i < log.size(); i += 37) EXPECT_TRUE((*store)->ApplyBatch(CopyRecords(log, i, i + 37)).ok());
  return *(*store)->Digest();
}

TEST(StateDigestTest, IsTheSameInAnyOrderAndChangesWithAnyEntry) {
  StateDigest a, b;
  a.Add(0, "k1", "v1");
  a.Add(1, "k2", "v2");
  b.Add(1, "k2", "v2");
  b.Add(0, "old", "x");
  b.Add(0, "k1", "v1");
  EXPECT_NE(a.Hex(), b.Hex());
  b.Remove(0, "old", "x");
  EXPECT_EQ(a.Hex(), b.Hex());
  StateDigest c = a;
  c.Remove(0, "k1", "v1");
  c.Add(0, "k1", "v1!");
  EXPECT_NE(a.Hex(), c.Hex());
  StateDigest d;  // the same entry in another family
  d.Add(1, "k1", "v1");
  d.Add(1, "k2", "v2");
  EXPECT_NE(a.Hex(), d.Hex());
  StateDigest e;  // key and value split differently
  e.Add(0, "k1v", "1");
  e.Add(1, "k2", "v2");
  EXPECT_NE(a.Hex(), e.Hex());
  StateDigest merged, part;
  merged.Add(1, "k2", "v2");
  part.Add(0, "k1", "v1");
  merged.Merge(part);
  EXPECT_EQ(merged.Hex(), a.Hex());
}

TEST(BulkLoaderTest, BuildsTheSameStoreAsTheBatchPathWhateverTheWindow) {
  const auto log = SpreadLog();
  const std::string expected = BatchPathDigest(log);
  // Windows of 1 to all events; each with its history written ahead of it
  // every 7 events, or only with the window.
  for (auto [window, history] : std::vector<std::pair<size_t, size_t>>{
           {1, 100'000}, {13, 100'000}, {100, 100'000}, {100'000, 100'000}, {13, 7}, {100, 7}, {100'000, 7}}) {
    SCOPED_TRACE("window " + std::to_string(window) + ", history " + std::to_string(history));
    TempDir dir;
    auto store = ProjectionStore::Open(dir.path(), {.rebuild = true});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto loader = BulkLoader::Start(**store, {.window_events = window, .history_events = history});
    ASSERT_TRUE(loader.ok()) << loader.status().ToString();
    for (size_t i = 0; i < log.size(); i += 50) ASSERT_TRUE((*loader)->Add(CopyRecords(log, i, i + 50)).ok());
    ASSERT_TRUE((*loader)->Finish({}).ok());
    const auto totals = (*loader)->totals();
    EXPECT_EQ(totals.rejected, 2u);
    EXPECT_GT(totals.duplicates, 0u);
    EXPECT_EQ(*(*store)->Digest(), expected) << "window of " << window << " events";
    // What the files hold, read back entry by entry: a later window's files
    // ingested before an earlier one's would leave older states on top.
    EXPECT_EQ(*(*store)->DigestByReading(), expected) << "window of " << window << " events";
    // The digest the loader computed while writing is the one read back from the store.
    EXPECT_EQ(*(*loader)->Digest(), expected) << "window of " << window << " events";
    auto offsets = (*store)->GetOffsets();
    ASSERT_TRUE(offsets.ok());
    EXPECT_EQ(offsets->size(), 3u);
    loader->reset();
    store->reset();
    // Finished: an ordinary open works and sees the same state and offsets.
    auto reopened = ProjectionStore::Open(dir.path(), {});
    ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
    EXPECT_EQ(*(*reopened)->Digest(), expected);
    EXPECT_EQ(*(*reopened)->GetOffsets(), *offsets);
  }
}

// Orders read back from earlier windows count against a window's bytes as
// new ones do: a log of updates to old orders is written in windows of the
// same bound, not held in one window until its count of events.
TEST(BulkLoaderTest, OrdersReadBackFromEarlierWindowsCountAgainstTheWindowsBytes) {
  std::vector<eventstore::Record> log;
  int64_t offset = 0;
  for (int i = 0; i < 400; ++i) log.push_back(ToRecord(PlacedEvent("o-" + std::to_string(i)), 0, offset++));
  for (int i = 0; i < 400; ++i) {
    log.push_back(ToRecord(LifecycleEvent("o-" + std::to_string(i), 1, domain::PaymentAuthorized{"p", 2900}), 0,
                           offset++));
  }
  TempDir dir;
  auto store = ProjectionStore::Open(dir.path(), {.rebuild = true});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto loader = BulkLoader::Start(**store, {.window_bytes = 100 * 1024});  // ~100 orders
  ASSERT_TRUE(loader.ok()) << loader.status().ToString();
  for (size_t i = 0; i < log.size(); i += 50) ASSERT_TRUE((*loader)->Add(CopyRecords(log, i, i + 50)).ok());
  ASSERT_TRUE((*loader)->Finish({}).ok());
  // Four windows of new orders, then four of orders read back (one window
  // of all 400 if they did not count).
  EXPECT_GE((*loader)->totals().windows, 8u);
  EXPECT_EQ(*(*store)->Digest(), BatchPathDigest(log));
}

// A rebuild leaves the orders as one file per window at level 0; before a
// snapshot is taken they are merged into one sorted run, which changes no
// state. A store with few files is left as it is.
TEST(BulkLoaderTest, ThePileOfOrderFilesARebuildLeavesIsMergedWithoutChangingTheState) {
  const auto log = SpreadLog();
  TempDir dir;
  auto store = ProjectionStore::Open(dir.path(), {.rebuild = true});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto loader = BulkLoader::Start(**store, {.window_events = 20});
  ASSERT_TRUE(loader.ok()) << loader.status().ToString();
  for (size_t i = 0; i < log.size(); i += 50) ASSERT_TRUE((*loader)->Add(CopyRecords(log, i, i + 50)).ok());
  ASSERT_TRUE((*loader)->Finish({}).ok());
  const std::string digest = *(*store)->Digest();
  auto merged = (*store)->CompactOrders();
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_GT(*merged, 4u) << "the rebuild left no pile of files: the test proves nothing";
  EXPECT_EQ(*(*store)->Digest(), digest);
  auto again = (*store)->CompactOrders();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u) << "one sorted run is left as it is";
}

TEST(BulkLoaderTest, AnUnfinishedRebuildIsRefusedByEveryOtherOpen) {
  const auto log = SpreadLog();
  TempDir dir;
  {
    auto store = ProjectionStore::Open(dir.path(), {.rebuild = true});
    ASSERT_TRUE(store.ok());
    auto loader = BulkLoader::Start(**store, {.window_events = 10});
    ASSERT_TRUE(loader.ok());
    ASSERT_TRUE((*loader)->Add(CopyRecords(log, 0, 400)).ok());
    // Dropped without Finish, as a killed replay would leave it.
  }
  EXPECT_TRUE(*IsUnfinishedRebuild(dir.path()));
  for (StoreOptions options : {StoreOptions{}, StoreOptions{.read_only = true}}) {
    auto store = ProjectionStore::Open(dir.path(), options);
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(store.status().message().find("unfinished rebuild"), std::string::npos) << store.status().ToString();
    EXPECT_NE(store.status().message().find("orderflow replay"), std::string::npos);
  }
}

// The mark exists before the rebuild creates the database and outlives the
// removal of a store being replaced: there is no point at which a killed
// rebuild leaves a directory that opens as a finished (empty or partial) store.
TEST(BulkLoaderTest, TheUnfinishedMarkComesBeforeTheStoreAndOutlivesItsRemoval) {
  TempDir dir;
  {
    auto store = ProjectionStore::Open(dir.path(), {.rebuild = true});
    ASSERT_TRUE(store.ok());
    EXPECT_TRUE(*IsUnfinishedRebuild(dir.path()));
    ASSERT_TRUE((*store)->FinishRebuild().ok());
  }
  EXPECT_FALSE(*IsUnfinishedRebuild(dir.path()));
  ASSERT_TRUE(ProjectionStore::Open(dir.path(), {.read_only = true}).ok());
  // Replacing it (replay --force): the files go, the mark is written first and stays.
  ASSERT_TRUE(RemoveStoreFiles(dir.path()).ok());
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/CURRENT"));
  EXPECT_TRUE(*IsUnfinishedRebuild(dir.path()));
  auto refused = ProjectionStore::Open(dir.path(), {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
}

// A window that cannot be written (here: its work directory is gone) ends the
// rebuild with that error from Add or Finish; it never leaves Add waiting for
// a worker that stopped (a replay once hung that way).
TEST(BulkLoaderTest, AWindowThatCannotBeWrittenFailsTheRebuildInsteadOfHangingIt) {
  const auto log = SpreadLog();
  TempDir dir;
  auto store = ProjectionStore::Open(dir.path(), {.rebuild = true});
  ASSERT_TRUE(store.ok());
  auto loader = BulkLoader::Start(**store, {.window_events = 5});
  ASSERT_TRUE(loader.ok());
  std::filesystem::remove_all(dir.path() + "/bulk-load");
  std::ofstream(dir.path() + "/bulk-load") << "not a directory";
  auto outcome = std::async(std::launch::async, [&]() -> Status {
    for (size_t i = 0; i < log.size(); i += 5) {
      Status added = (*loader)->Add(CopyRecords(log, i, i + 5));
      if (!added.ok()) return added;
    }
    return (*loader)->Finish({});
  });
  ASSERT_EQ(outcome.wait_for(std::chrono::seconds(30)), std::future_status::ready) << "the rebuild hung";
  const Status s = outcome.get();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("bulk-load"), std::string::npos) << s.ToString();
  EXPECT_TRUE(*IsUnfinishedRebuild(dir.path()));
}

// A restored snapshot's tail: the loader started on a store that holds the
// first part of the log (built by the batch path, as a live store is) loads
// the rest on top, reading each order from the store when it first meets it,
// and ends with the state and digest of the whole log applied in one go.
//
// With the filter of the orders the store held (kept beside a snapshot), new
// orders are not asked of the store: the same state with fewer lookups. A
// filter that is not one is ignored (every new order asked), never trusted.
TEST(BulkLoaderTest, LoadsTheTailOnTopOfAStoreThatHoldsTheStart) {
  const auto log = SpreadLog();
  const std::string expected = BatchPathDigest(log);
  for (size_t split : {size_t{1}, size_t{300}, size_t{650}, log.size()}) {
    std::map<std::string, uint64_t> looked_up;
    for (const std::string filter : {"none", "the store's", "garbage"}) {
      SCOPED_TRACE("split at " + std::to_string(split) + ", filter " + filter);
      TempDir dir;
      {
        auto store = ProjectionStore::Open(dir.path(), {});
        ASSERT_TRUE(store.ok());
        for (size_t i = 0; i < split; i += 37) {
          ASSERT_TRUE((*store)->ApplyBatch(CopyRecords(log, i, std::min(split, i + 37))).ok());
        }
      }
      auto store = ProjectionStore::Open(dir.path(), {.rebuild = true});
      ASSERT_TRUE(store.ok());
      const Offsets start = *(*store)->GetOffsets();
      BulkLoadOptions options{.window_events = 13, .history_events = 5};
      if (filter == "the store's") options.stored_orders = *(*store)->OrdersFilter();
      if (filter == "garbage") options.stored_orders = "ofseen01 but not a filter";
      auto loader = BulkLoader::Start(**store, options);
      ASSERT_TRUE(loader.ok()) << loader.status().ToString();
      EXPECT_EQ((*loader)->next_offsets(), start);
      // The whole log again: what the store holds already is skipped by offset.
      for (size_t i = 0; i < log.size(); i += 50) ASSERT_TRUE((*loader)->Add(CopyRecords(log, i, i + 50)).ok());
      ASSERT_TRUE((*loader)->Finish({}).ok());
      EXPECT_EQ(*(*loader)->Digest(), expected);
      EXPECT_EQ(*(*store)->Digest(), expected);
      EXPECT_EQ(*(*store)->DigestByReading(), expected);
      EXPECT_FALSE(*IsUnfinishedRebuild(dir.path()));
      looked_up[filter] = (*loader)->totals().looked_up;
    }
    EXPECT_EQ(looked_up["garbage"], looked_up["none"]) << "split at " << split;
    if (split == 1) {
      // The store held one order; the tail places 299 more, each asked of the store without the filter.
      EXPECT_GE(looked_up["none"], 299u);
      EXPECT_LE(looked_up["the store's"] + 299, looked_up["none"]);
    } else {
      EXPECT_LE(looked_up["the store's"], looked_up["none"]) << "split at " << split;
    }
  }
}

// A snapshot keeps the filter of its orders beside it; a restore reads it
// only when it is the one its manifest names.
TEST(SnapshotTest, KeepsTheFilterOfItsOrdersAndReadsItBackOnlyWhenItMatches) {
  const auto log = SpreadLog();
  TempDir dir;
  const std::string data = dir.path() + "/live", snapshots = dir.path() + "/snaps";
  std::string filter_of_store;
  {
    auto store = ProjectionStore::Open(data, {});
    ASSERT_TRUE(store.ok());
    for (size_t i = 0; i < 650; i += 37) {
      ASSERT_TRUE((*store)->ApplyBatch(CopyRecords(log, i, std::min<size_t>(650, i + 37))).ok());
    }
    filter_of_store = *(*store)->OrdersFilter();
  }
  auto m = CreateSnapshot(data, snapshots, "s", 1);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->orders_filter.size(), 16u);
  const std::string kept = ReadOrdersFilter(snapshots, "s", *m);
  ASSERT_EQ(kept, filter_of_store);
  auto filter = SeenFilter::Parse(kept);
  ASSERT_TRUE(filter.has_value());
  for (int i = 0; i < 300; ++i) {
    const std::string id = "o-" + std::to_string(i * 7919 % 1000);
    EXPECT_TRUE(filter->MaybeContains(id)) << id;
  }
  // The manifest as read back names it too.
  auto listed = ListSnapshots(snapshots);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].orders_filter, m->orders_filter);
  // A copy of the snapshot under another name finds its own file.
  std::filesystem::copy(snapshots + "/s", snapshots + "/copy", std::filesystem::copy_options::recursive);
  EXPECT_EQ(ReadOrdersFilter(snapshots, "copy", *m), filter_of_store);
  // One byte changed, or the file gone: not used.
  const std::string path = snapshots + "/s/orders.filter";
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1000);
    f.put('\x5a');
  }
  EXPECT_EQ(ReadOrdersFilter(snapshots, "s", *m), "");
  std::filesystem::remove(path);
  EXPECT_EQ(ReadOrdersFilter(snapshots, "s", *m), "");
  // A snapshot of an older build names none.
  SnapshotManifest older = *m;
  older.orders_filter.clear();
  EXPECT_EQ(ReadOrdersFilter(snapshots, "s", older), "");
}

}  // namespace
}  // namespace orderflow::projections

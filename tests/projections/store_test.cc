#include "projections/store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>

#include "projections/order_record.h"
#include "tests/util/events.h"
#include "tests/util/flip_byte.h"
#include "tests/util/temp_dir.h"

namespace orderflow::projections {
namespace {

using orderflow::testing::CopyRecords;
using orderflow::testing::LifecycleEvent;
using orderflow::testing::PlacedEvent;
using orderflow::testing::TempDir;
using orderflow::testing::ToRecord;

std::unique_ptr<ProjectionStore> OpenStore(const std::string& dir, StoreOptions options = {}) {
  auto store = ProjectionStore::Open(dir, options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

std::vector<eventstore::Record> Batch(std::vector<eventstore::Record> records) { return records; }

int64_t OffsetOf(const Offsets& offsets, int32_t partition) {
  auto it = offsets.find({"orders.events", partition});
  return it == offsets.end() ? 0 : it->second;
}

TEST(ProjectionStoreTest, AppliesEventsAndRecordsHistoryInLogOrder) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  std::vector<eventstore::Record> batch;
  batch.push_back(ToRecord(PlacedEvent("o-1"), 0, 0));
  batch.push_back(ToRecord(LifecycleEvent("o-1", 1, domain::PaymentAuthorized{"p", 2900}), 0, 1));
  batch.push_back(ToRecord(PlacedEvent("o-2", "bob"), 1, 0));
  auto stats = store->ApplyBatch(batch);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->applied, 3u);

  auto order = store->GetOrder("o-1");
  ASSERT_TRUE(order.ok());
  ASSERT_TRUE(order->has_value());
  EXPECT_EQ((*order)->status, domain::OrderStatus::kPaymentAuthorized);
  EXPECT_EQ((*order)->paid_minor, 2900);

  auto history = store->GetHistory("o-1");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].event_type, "OrderPlaced");
  EXPECT_EQ((*history)[0].offset, 0);
  EXPECT_EQ((*history)[1].event_type, "PaymentAuthorized");
  ASSERT_TRUE((*history)[1].event.has_value());
  EXPECT_EQ((*history)[1].event->id, orderflow::testing::TestEventId("o-1", 1));

  auto offsets = store->GetOffsets();
  ASSERT_TRUE(offsets.ok());
  EXPECT_EQ(OffsetOf(*offsets, 0), 2);
  EXPECT_EQ(OffsetOf(*offsets, 1), 1);

  auto counts = store->CountByStatus();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)["payment_authorized"], 1u);
  EXPECT_EQ((*counts)["placed"], 1u);
  EXPECT_EQ(counts->count("none"), 0u);
}

// sort=newest: the orders placed last come first, across batches and
// partitions, and the cursor pages through all of them once.
TEST(ProjectionStoreTest, NewestFirstListsByPlacedTimeAndPagesThroughAll) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  const int kOrders = 7;
  for (int i = 0; i < kOrders; ++i) {
    domain::Event placed = PlacedEvent("o-" + std::string(1, static_cast<char>('g' - i)));  // ids against time order
    placed.occurred_at_ms += i * 1000;
    std::vector<eventstore::Record> batch;
    batch.push_back(ToRecord(placed, i % 2, i / 2));
    ASSERT_TRUE(store->ApplyBatch(batch).ok());
  }
  std::vector<std::string> seen;
  OrderQuery query;
  query.newest_first = true;
  query.limit = 3;
  for (int page = 0; page < 5; ++page) {
    auto listed = store->ListOrders(query);
    ASSERT_TRUE(listed.ok()) << listed.status().ToString();
    for (const auto& o : listed->orders) seen.push_back(o.order_id);
    if (listed->next.empty()) break;
    query.after = listed->next;
  }
  // Placed at +0 s ... +6 s as o-g ... o-a: newest first is o-a ... o-g.
  EXPECT_EQ(seen, (std::vector<std::string>{"o-a", "o-b", "o-c", "o-d", "o-e", "o-f", "o-g"}));
  query.after = "not hex";
  EXPECT_EQ(store->ListOrders(query).status().code(), StatusCode::kInvalidArgument);
  // With a filter, the usual id order.
  OrderQuery by_customer;
  by_customer.customer = "alice";
  by_customer.newest_first = true;
  auto listed = store->ListOrders(by_customer);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->orders.size(), 7u);
  EXPECT_EQ(listed->orders.front().order_id, "o-a");
}

TEST(ProjectionStoreTest, OffsetsAndStateSurviveReopenTogether) {
  TempDir dir;
  {
    auto store = OpenStore(dir.path());
    ASSERT_TRUE(store->ApplyBatch(Batch({})).ok());
    std::vector<eventstore::Record> b;
    b.push_back(ToRecord(PlacedEvent("o-1"), 3, 41));
    ASSERT_TRUE(store->ApplyBatch(b).ok());
  }
  auto store = OpenStore(dir.path());
  auto offsets = store->GetOffsets();
  ASSERT_TRUE(offsets.ok());
  EXPECT_EQ(OffsetOf(*offsets, 3), 42);
  auto order = store->GetOrder("o-1");
  ASSERT_TRUE(order.ok() && order->has_value());
}

TEST(ProjectionStoreTest, PreparedButUncommittedBatchChangesNothing) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  std::vector<eventstore::Record> b;
  b.push_back(ToRecord(PlacedEvent("o-1"), 0, 0));
  auto digest_before = store->Digest();
  ASSERT_TRUE(digest_before.ok());
  {
    auto prepared = store->Prepare(b, nullptr);
    ASSERT_TRUE(prepared.ok());
    EXPECT_EQ(prepared->stats().applied, 1u);
  }
  EXPECT_EQ(*store->Digest(), *digest_before);
  EXPECT_TRUE(store->GetOffsets()->empty());
  EXPECT_FALSE(store->GetOrder("o-1")->has_value());
}

TEST(ProjectionStoreTest, PrepareSeesTheBatchInFlight) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  std::vector<eventstore::Record> first, second;
  first.push_back(ToRecord(PlacedEvent("o-1"), 0, 0));
  second.push_back(ToRecord(LifecycleEvent("o-1", 1, domain::PaymentAuthorized{"p", 2900}), 0, 1));
  second.push_back(ToRecord(PlacedEvent("o-1"), 0, 0));  // re-delivered: in flight already
  auto a = store->Prepare(first, nullptr);
  ASSERT_TRUE(a.ok());
  auto b = store->Prepare(second, &*a);  // before `a` is committed
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->stats().applied, 1u);
  ASSERT_TRUE(store->Commit(*a).ok());
  ASSERT_TRUE(store->Commit(*b).ok());
  auto order = store->GetOrder("o-1");
  ASSERT_TRUE(order.ok() && order->has_value());
  EXPECT_EQ((*order)->version, 2u);
  EXPECT_EQ((*order)->status, domain::OrderStatus::kPaymentAuthorized);
  auto counts = store->CountByStatus();
  EXPECT_EQ((*counts)["payment_authorized"], 1u);
  EXPECT_EQ(counts->count("placed"), 0u);
}

TEST(ProjectionStoreTest, RedeliveredEventIdsAreDropped) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  domain::Event placed = PlacedEvent("o-1");
  std::vector<eventstore::Record> b1, b2;
  b1.push_back(ToRecord(placed, 0, 0));
  ASSERT_TRUE(store->ApplyBatch(b1).ok());
  // The same event appended again (a producer retry) lands at a new offset.
  b2.push_back(ToRecord(placed, 0, 1));
  b2.push_back(ToRecord(placed, 0, 2));
  auto stats = store->ApplyBatch(b2);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->applied, 0u);
  EXPECT_EQ(stats->duplicates, 2u);
  EXPECT_EQ((*store->GetOrder("o-1"))->version, 1u);
  EXPECT_EQ(store->GetHistory("o-1")->size(), 1u);
  EXPECT_EQ(OffsetOf(*store->GetOffsets(), 0), 3);
}

// What the HTTP API's order cache relies on: a write that becomes visible
// moves VisibleStamp(), reads do not, and the stored bytes of an order change
// exactly when its state does (a re-delivered event moves the stamp, through
// the offsets, but not the order's bytes).
TEST(ProjectionStoreTest, VisibleStampMovesWithEveryWriteAndRecordBytesWithTheState) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  const uint64_t empty = store->VisibleStamp();
  EXPECT_NE(empty, 0u);
  std::string bytes = "left over";
  auto found = store->GetOrderRecord("o-1", &bytes);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(*found);

  auto apply = [&](const domain::Event& e, int64_t offset) {
    std::vector<eventstore::Record> batch;
    batch.push_back(ToRecord(e, 0, offset));
    return store->ApplyBatch(batch).ok();
  };
  domain::Event placed = PlacedEvent("o-1");
  ASSERT_TRUE(apply(placed, 0));
  const uint64_t after_place = store->VisibleStamp();
  EXPECT_NE(after_place, empty);
  ASSERT_TRUE(*store->GetOrderRecord("o-1", &bytes));
  const std::string placed_bytes = bytes;
  auto decoded = DecodeOrderRecord(placed_bytes);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->order_id, "o-1");
  EXPECT_EQ(decoded->version, (*store->GetOrder("o-1"))->version);
  EXPECT_EQ(store->VisibleStamp(), after_place);  // reads write nothing

  ASSERT_TRUE(apply(placed, 1));  // a duplicate: only the offset moves
  const uint64_t after_duplicate = store->VisibleStamp();
  EXPECT_NE(after_duplicate, after_place);
  ASSERT_TRUE(*store->GetOrderRecord("o-1", &bytes));
  EXPECT_EQ(bytes, placed_bytes);

  ASSERT_TRUE(apply(LifecycleEvent("o-1", 1, domain::PaymentAuthorized{"p", 2900}), 2));
  EXPECT_NE(store->VisibleStamp(), after_duplicate);
  ASSERT_TRUE(*store->GetOrderRecord("o-1", &bytes));
  EXPECT_NE(bytes, placed_bytes);
  EXPECT_EQ(DecodeOrderRecord(bytes)->status, domain::OrderStatus::kPaymentAuthorized);
  store.reset();

  // A bulk load may ingest files that advance no sequence number: no stamp.
  StoreOptions bulk;
  bulk.bulk_load = true;
  auto loading = OpenStore(dir.path(), bulk);
  ASSERT_TRUE(loading);
  EXPECT_EQ(loading->VisibleStamp(), 0u);
}

TEST(ProjectionStoreTest, RecordsBelowTheStoredOffsetAreSkipped) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  std::vector<eventstore::Record> b1, b2;
  b1.push_back(ToRecord(PlacedEvent("o-1"), 0, 0));
  b1.push_back(ToRecord(PlacedEvent("o-2"), 0, 1));
  ASSERT_TRUE(store->ApplyBatch(b1).ok());
  b2.push_back(ToRecord(PlacedEvent("o-2"), 0, 1));  // re-delivered after a restart
  b2.push_back(ToRecord(PlacedEvent("o-3"), 0, 2));
  auto stats = store->ApplyBatch(b2);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->applied, 1u);
  EXPECT_EQ(stats->duplicates, 0u);
  EXPECT_EQ(OffsetOf(*store->GetOffsets(), 0), 3);
}

TEST(ProjectionStoreTest, GarbageRecordsAreKeptAsRejectedAndTheRestApplied) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  std::vector<eventstore::Record> b;
  b.push_back(ToRecord(PlacedEvent("o-1"), 0, 0));
  b.push_back(eventstore::Record::Make("orders.events", 0, 1, "o-x", "\x01\x02garbage"));
  domain::Event mismatched = PlacedEvent("o-2");
  b.push_back(eventstore::Record::Make("orders.events", 0, 2, "not-o-2", eventstore::EncodeEvent(mismatched)));
  b.push_back(ToRecord(PlacedEvent("o-3"), 0, 3));
  auto stats = store->ApplyBatch(b);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->applied, 2u);
  EXPECT_EQ(stats->rejected, 2u);
  auto rejected = store->GetRejected(10);
  ASSERT_TRUE(rejected.ok());
  ASSERT_EQ(rejected->size(), 2u);
  EXPECT_EQ((*rejected)[0].offset, 1);
  EXPECT_NE((*rejected)[0].error.find("corruption"), std::string::npos);
  EXPECT_NE((*rejected)[1].error.find("does not match"), std::string::npos);
  EXPECT_TRUE(store->GetOrder("o-3")->has_value());
  EXPECT_EQ(OffsetOf(*store->GetOffsets(), 0), 4);
}

// The digest depends on the state only: batch boundaries don't change it, a
// different event does.
TEST(ProjectionStoreTest, DigestIsIndependentOfBatchingAndSensitiveToContent) {
  std::vector<domain::Event> events;
  for (int i = 0; i < 50; ++i) {
    std::string id = "o-" + std::to_string(i);
    events.push_back(PlacedEvent(id, "c" + std::to_string(i % 7)));
    if (i % 3 == 0) events.push_back(LifecycleEvent(id, 1, domain::PaymentAuthorized{"p", 2900}));
    if (i % 6 == 0) events.push_back(LifecycleEvent(id, 2, domain::OrderCancelled{"x", domain::CancelSource::kSystem}));
  }
  auto digest_with_batch = [&](size_t batch_size, bool tweak) {
    TempDir dir;
    auto store = OpenStore(dir.path());
    std::vector<eventstore::Record> batch;
    bool tweaked = false;
    for (size_t i = 0; i < events.size(); ++i) {
      domain::Event e = events[i];
      if (tweak && !tweaked && i >= 10 && std::holds_alternative<domain::OrderPlaced>(e.payload)) {
        std::get<domain::OrderPlaced>(e.payload).customer_id = "mallory";
        tweaked = true;
      }
      batch.push_back(ToRecord(e, 0, static_cast<int64_t>(i)));
      if (batch.size() == batch_size) {
        EXPECT_TRUE(store->ApplyBatch(batch).ok());
        batch.clear();
      }
    }
    EXPECT_TRUE(store->ApplyBatch(batch).ok());
    return *store->Digest();
  };
  const std::string one = digest_with_batch(1000, false);
  EXPECT_EQ(one.size(), 64u);
  EXPECT_EQ(digest_with_batch(1, false), one);
  EXPECT_EQ(digest_with_batch(7, false), one);
  EXPECT_NE(digest_with_batch(1000, true), one);
}

// The digest the store keeps as it writes is the one its entries give when
// read: with batches prepared while another is in flight, orders rewritten,
// status index entries deleted, analytics counters overwritten, rejected
// records and re-deliveries; and after reopening.
TEST(ProjectionStoreTest, KeptDigestEqualsTheDigestOfTheEntriesRead) {
  TempDir dir;
  std::vector<eventstore::Record> log;
  int64_t offsets[2] = {0, 0};
  auto add = [&](int32_t p, const domain::Event& e) { log.push_back(ToRecord(e, p, offsets[p]++)); };
  for (int i = 0; i < 60; ++i) {
    const std::string id = "o-" + std::to_string(i % 20);
    add(i % 2, PlacedEvent(id, "c" + std::to_string(i % 3)));  // ids repeat: re-placed orders
    if (i % 2 == 0) add(i % 2, LifecycleEvent(id, 1, domain::PaymentAuthorized{"p", 2900}));
    if (i % 4 == 0) add(i % 2, LifecycleEvent(id, 2, domain::OrderCancelled{"x", domain::CancelSource::kSystem}));
    if (i % 8 == 0) add(i % 2, LifecycleEvent(id, 3, domain::PaymentRefunded{"r", 2900}));
  }
  log.push_back(eventstore::Record::Make("orders.events", 1, offsets[1]++, "o-x", "\x01\x02garbage"));
  {
    auto store = OpenStore(dir.path());
    ASSERT_NE(store, nullptr);
    const std::string empty = *store->Digest();
    EXPECT_EQ(empty, *store->DigestByReading());
    std::optional<PreparedBatch> in_flight;
    for (size_t i = 0; i < log.size(); i += 9) {
      std::vector<eventstore::Record> batch = CopyRecords(log, i, i + 9);
      if (i % 27 == 0 && i > 0) batch.push_back(ToRecord(PlacedEvent("o-1"), 0, 0));  // re-delivered
      auto prepared = store->Prepare(batch, in_flight ? &*in_flight : nullptr);
      ASSERT_TRUE(prepared.ok()) << prepared.status().ToString();
      if (in_flight) {
        ASSERT_TRUE(store->Commit(*in_flight).ok());
      }
      in_flight = std::move(prepared).value();
      if (i % 18 == 0) {
        ASSERT_TRUE(store->Commit(*in_flight).ok());
        in_flight.reset();
        EXPECT_EQ(*store->Digest(), *store->DigestByReading()) << "after record " << i;
      }
    }
    if (in_flight) {
      ASSERT_TRUE(store->Commit(*in_flight).ok());
    }
    EXPECT_NE(*store->Digest(), empty);
    EXPECT_EQ(*store->Digest(), *store->DigestByReading());
    EXPECT_EQ(store->GetRejected(10)->size(), 1u);
  }
  auto reopened = OpenStore(dir.path());
  EXPECT_EQ(*reopened->Digest(), *reopened->DigestByReading());
  reopened.reset();
  auto reader = OpenStore(dir.path(), {.read_only = true});
  EXPECT_EQ(*reader->Digest(), *reader->DigestByReading());
}

// Orders that committed batches handed back (KeepCommitted) are taken by the
// next Prepare instead of being read: the store is the same as one that reads
// every order, with batches in flight, orders evicted from a small cache, and
// a prepared batch that never commits (what it took is read again).
TEST(ProjectionStoreTest, OrdersKeptFromCommittedBatchesBuildTheSameStoreAsReadingThem) {
  std::vector<eventstore::Record> log;
  for (int i = 0; i < 40; ++i) {
    const std::string id = "o-" + std::to_string(i % 10);
    const int64_t at = static_cast<int64_t>(log.size());
    if (i < 10) {
      log.push_back(ToRecord(PlacedEvent(id, "c" + std::to_string(i % 3)), 0, at));
    } else if (i < 20) {
      log.push_back(ToRecord(LifecycleEvent(id, 1, domain::PaymentAuthorized{"p", 2900}), 0, at));
    } else if (i < 30) {
      log.push_back(ToRecord(LifecycleEvent(id, 2, domain::OrderCancelled{"x", domain::CancelSource::kSystem}), 0, at));
    } else {
      log.push_back(ToRecord(LifecycleEvent(id, 3, domain::PaymentRefunded{"r", 2900}), 0, at));
    }
  }
  auto build = [&](size_t cache, size_t* kept) {
    TempDir dir;
    auto store = OpenStore(dir.path(), {.order_cache = cache});
    EXPECT_NE(store, nullptr);
    std::optional<PreparedBatch> in_flight;
    for (size_t i = 0; i < log.size(); i += 3) {
      const std::vector<eventstore::Record> batch = CopyRecords(log, i, i + 3);
      if (i == 21) {  // prepared (taking what it finds kept) and dropped: never committed
        auto dropped = store->Prepare(batch, in_flight ? &*in_flight : nullptr);
        EXPECT_TRUE(dropped.ok());
      }
      auto prepared = store->Prepare(batch, in_flight ? &*in_flight : nullptr);
      EXPECT_TRUE(prepared.ok()) << prepared.status().ToString();
      *kept += prepared->stats().kept_orders;
      if (in_flight) {
        EXPECT_TRUE(store->Commit(*in_flight).ok());
        store->KeepCommitted(std::move(*in_flight));
      }
      in_flight = std::move(prepared).value();
    }
    EXPECT_TRUE(store->Commit(*in_flight).ok());
    std::map<std::string, std::string> records;
    for (int i = 0; i < 10; ++i) {
      std::string record;
      EXPECT_TRUE(*store->GetOrderRecord("o-" + std::to_string(i), &record));
      records["o-" + std::to_string(i)] = record;
    }
    EXPECT_EQ(*store->Digest(), *store->DigestByReading());
    return std::make_pair(*store->Digest(), records);
  };
  size_t kept_without = 0, kept_small = 0, kept = 0;
  const auto read = build(0, &kept_without);
  EXPECT_EQ(kept_without, 0u);
  EXPECT_EQ(build(2, &kept_small), read);  // most orders evicted before they come again
  EXPECT_EQ(build(100, &kept), read);
  EXPECT_GT(kept, 10u) << "the later batches took their orders from the committed ones";
}

// A store written before the digest was kept (no state_digest in meta): read
// only, its digest is computed by reading; the first open for writing reads it
// once and keeps it.
TEST(ProjectionStoreTest, AStoreWithoutAKeptDigestGetsOneWhenOpenedForWriting) {
  TempDir dir;
  std::string digest;
  {
    auto store = OpenStore(dir.path());
    std::vector<eventstore::Record> batch;
    batch.push_back(ToRecord(PlacedEvent("o-1"), 0, 0));
    batch.push_back(ToRecord(LifecycleEvent("o-1", 1, domain::PaymentAuthorized{"p", 2900}), 0, 1));
    batch.push_back(ToRecord(PlacedEvent("o-2"), 0, 2));
    ASSERT_TRUE(store->ApplyBatch(batch).ok());
    digest = *store->Digest();
  }
  {
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir.path(), &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const auto& name : names) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir.path(), families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    bool deleted = false;
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] != "meta") continue;
      std::string value;
      ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), handles[i], "state_digest", &value).ok());
      ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), handles[i], "state_digest").ok());
      deleted = true;
    }
    EXPECT_TRUE(deleted);
    for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  }
  {
    auto reader = OpenStore(dir.path(), {.read_only = true});
    EXPECT_EQ(*reader->Digest(), digest);  // read from the entries
  }
  auto store = OpenStore(dir.path());
  EXPECT_EQ(*store->Digest(), digest);
  std::vector<eventstore::Record> more;
  more.push_back(ToRecord(LifecycleEvent("o-2", 1, domain::PaymentAuthorized{"p", 2900}), 0, 3));
  ASSERT_TRUE(store->ApplyBatch(more).ok());
  EXPECT_NE(*store->Digest(), digest);
  EXPECT_EQ(*store->Digest(), *store->DigestByReading());
}

TEST(ProjectionStoreTest, ReadOnlyOpenWorksWhileAWriterHoldsTheStore) {
  TempDir dir;
  auto writer = OpenStore(dir.path());
  std::vector<eventstore::Record> b;
  b.push_back(ToRecord(PlacedEvent("o-1"), 0, 0));
  ASSERT_TRUE(writer->ApplyBatch(b).ok());
  ASSERT_TRUE(writer->Flush().ok());
  auto second_writer = ProjectionStore::Open(dir.path(), {});
  ASSERT_FALSE(second_writer.ok());
  EXPECT_EQ(second_writer.status().code(), StatusCode::kInUse) << second_writer.status().ToString();
  EXPECT_NE(second_writer.status().message().find("in use by this process"), std::string::npos);
  auto reader = OpenStore(dir.path(), {.read_only = true});
  ASSERT_NE(reader, nullptr);
  EXPECT_TRUE(reader->GetOrder("o-1")->has_value());
  EXPECT_EQ(*reader->Digest(), *writer->Digest());
}

TEST(ProjectionStoreTest, ReadOnlyOpenOfMissingStoreSaysWhatToDo) {
  TempDir dir;
  auto store = ProjectionStore::Open(dir.Sub("nothing-here"), {.read_only = true});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kNotFound);
  EXPECT_NE(store.status().message().find("orderflow up"), std::string::npos);
}

// One flipped byte in a table file: the open fails as corrupt, naming the
// store and the command that rebuilds it from the log.
TEST(ProjectionStoreTest, ACorruptStoreNamesTheCommandThatRebuildsIt) {
  TempDir dir;
  {
    auto store = OpenStore(dir.path());
    std::vector<eventstore::Record> b;
    for (int i = 0; i < 50; ++i) b.push_back(ToRecord(PlacedEvent("o-" + std::to_string(i)), 0, i));
    ASSERT_TRUE(store->ApplyBatch(b).ok());
    ASSERT_TRUE(store->Flush().ok());
  }
  int flipped = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    if (entry.path().extension() != ".sst") continue;
    // Inside the index block, just before the footer: read when the table opens.
    testing::FlipByte(entry.path(), static_cast<std::streamoff>(std::filesystem::file_size(entry.path())) - 80);
    ++flipped;
  }
  ASSERT_GT(flipped, 0);
  auto store = ProjectionStore::Open(dir.path(), {});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kCorruption) << store.status().ToString();
  EXPECT_NE(store.status().message().find(dir.path()), std::string::npos) << store.status().ToString();
  EXPECT_NE(store.status().message().find("orderflow replay --data-dir " + dir.path() + " --force"), std::string::npos)
      << store.status().ToString();
}

// SIGKILL a process that applies batches as fast as it can, at random moments:
// after every kill the store holds exactly the events below its offsets —
// each consumed record applied once, nothing applied past the stored offset.
// The kill comes after the child has reported `round + 1` more committed
// batches through a pipe (plus up to 20 ms), so every round kills a child
// that is applying batches, however slow the machine.
TEST(ProjectionStoreTest, StateAndOffsetsCommitTogetherUnderSigkill) {
  TempDir dir;
  const int kPerBatch = 50;
  int64_t last_offset = 0;
  std::mt19937 random(std::random_device{}());
  for (int round = 0; round < 6; ++round) {
    int committed[2];
    ASSERT_EQ(pipe(committed), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(committed[0]);
      auto store = ProjectionStore::Open(dir.path(), {});
      if (!store.ok()) _exit(3);
      int64_t next = OffsetOf(*(*store)->GetOffsets(), 0);
      for (;; next += kPerBatch) {
        std::vector<eventstore::Record> batch;
        for (int i = 0; i < kPerBatch; ++i) {
          int64_t offset = next + i;
          std::string id = "o-" + std::to_string(offset / 3);  // three events per order
          domain::Event e = offset % 3 == 0 ? PlacedEvent(id)
                                            : LifecycleEvent(id, static_cast<uint32_t>(offset % 3),
                                                             domain::NotificationSent{"n", "t", "c"});
          batch.push_back(ToRecord(e, 0, offset));
        }
        if (!(*store)->ApplyBatch(batch).ok()) _exit(4);
        const char one = 1;
        (void)!write(committed[1], &one, 1);
      }
    }
    close(committed[1]);
    int seen = 0;
    char one;
    while (seen < round + 1) {
      pollfd ready{committed[0], POLLIN, 0};
      if (poll(&ready, 1, 120'000) != 1 || read(committed[0], &one, 1) != 1) break;
      ++seen;
    }
    usleep(std::uniform_int_distribution<int>(0, 20'000)(random));
    kill(child, SIGKILL);
    close(committed[0]);
    EXPECT_EQ(seen, round + 1) << "round " << round << ": the child stopped committing batches";
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);

    auto store = OpenStore(dir.path());
    int64_t offset = OffsetOf(*store->GetOffsets(), 0);
    EXPECT_EQ(offset % kPerBatch, 0) << "a partial batch was committed";
    // Every order below the offset has exactly its events; none beyond.
    uint64_t events = 0;
    for (int64_t o = 0; o <= offset / 3; ++o) {
      auto history = store->GetHistory("o-" + std::to_string(o));
      ASSERT_TRUE(history.ok());
      events += history->size();
    }
    EXPECT_EQ(static_cast<int64_t>(events), offset) << "round " << round;
    EXPECT_GE(offset, last_offset) << "committed offsets went backwards";
    last_offset = offset;
  }
  EXPECT_GT(last_offset, 0) << "the child never committed a batch: the test proved nothing";
}

}  // namespace
}  // namespace orderflow::projections

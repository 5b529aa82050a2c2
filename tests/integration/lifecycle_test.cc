// The whole lifecycle as separate processes: one `orderflow broker`, every
// service as its own `orderflow service` process (two instances of payment and
// of inventory), scarce stock. Checks the invariants the issue names, then the
// same again while service processes are SIGKILLed and restarted.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "domain/catalog.h"
#include "domain/clock.h"
#include "eventstore/codec.h"
#include "eventstore/kafka.h"
#include "eventstore/topics.h"
#include "projections/store.h"
#include "replay/replay.h"
#include "services/lifecycle/check.h"
#include "services/lifecycle/lifecycle.h"
#include "services/orders/order_service.h"
#include "cli/app/simulator.h"
#include "tests/util/broker.h"
#include "tests/util/process.h"
#include "tests/util/scale.h"
#include "tests/util/temp_dir.h"

namespace orderflow {
namespace {

using namespace std::chrono_literals;
using orderflow::testing::Cat;
using orderflow::testing::ChildProcess;
using orderflow::testing::OrderflowBinary;
using orderflow::testing::TempDir;

constexpr char kScarceCatalog[] =
    "sku,name,price_minor,stock\n"
    "SKU-ESPRESSO,Espresso beans,2490,900\n"
    "SKU-GRINDER,Burr grinder,12900,300\n"
    "SKU-KETTLE,Gooseneck kettle,5990,700\n"
    "SKU-MUG,Stoneware mug,1450,1500\n"
    "SKU-FILTER,Paper filters,690,1500\n"
    "SKU-SCALE,Brewing scale,3990,800\n"
    "SKU-DRIPPER,Ceramic dripper,2790,900\n"
    "SKU-TAMPER,Steel tamper,3490,600\n";

class Fleet {
 public:
  // `exactly_once`: every service appends its outputs in Kafka transactions.
  explicit Fleet(const TempDir& dir, bool exactly_once = false) : dir_(dir), exactly_once_(exactly_once) {
    catalog_path_ = dir.Sub("catalog.csv");
    std::ofstream(catalog_path_) << kScarceCatalog;
    log_ = dir.Sub("services.log");
    broker_ = testing::StartBroker(4);
    if (broker_) kafka_ = broker_->config();
  }

  const eventstore::KafkaConfig& brokers() const { return kafka_; }
  const std::string& log() const { return log_; }
  std::string DataDir(const std::string& key) const { return dir_.Sub(key); }

  // Starts (or restarts) service `name` instance `instance`, with `extra` arguments.
  void Start(const std::string& name, const std::string& instance = "1", const std::vector<std::string>& extra = {}) {
    const std::string key = name + "-" + instance;
    procs_[key] = std::make_unique<ChildProcess>(
        Cat(Cat(Cat({OrderflowBinary(), "service", name, "--instance", instance, "--data-dir", DataDir(key),
                     "--catalog", catalog_path_, "--transit-ms", "0", "--batch-size", "500"},
                    exactly_once_ && name != "projector" ? std::vector<std::string>{"--exactly-once"}
                                                         : std::vector<std::string>{}),
                extra),
            broker_->CliArgs()),
        log_);
  }
  void Kill(const std::string& key) {
    procs_.at(key)->Kill(SIGKILL);
    procs_.at(key)->Wait(5s);
  }
  // SIGTERM: the instance finishes its batch, commits and leaves its groups. Returns its exit status.
  // SIGTERM, then the exit code; a non-zero one prints the log's tail.
  int Stop(const std::string& key) {
    const auto t0 = SystemClock().Now();
    procs_.at(key)->Kill(SIGTERM);
    const int code = procs_.at(key)->Wait(40s);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(SystemClock().Now() - t0);
    if (took > 5s || code != 0) {
      // What this instance logged last ("notification 3: ..."), then the log's tail.
      std::string who = key;
      who[who.rfind('-')] = ' ';
      std::ifstream in(log_);
      std::deque<std::string> mine, tail;
      for (std::string line; std::getline(in, line);) {
        if (line.find(who) != std::string::npos) mine.push_back(line);
        tail.push_back(line);
        if (mine.size() > 15) mine.pop_front();
        if (tail.size() > 25) tail.pop_front();
      }
      std::cerr << key << " exited " << code << " " << took.count() << " ms after SIGTERM; its last lines:\n";
      for (const auto& line : mine) std::cerr << "  " << line << "\n";
      std::cerr << "the log ends:\n";
      for (const auto& line : tail) std::cerr << "  " << line << "\n";
    }
    return code;
  }
  // Every notification instance's outbox (an instance that sent nothing has none).
  std::vector<std::string> Outboxes() const {
    std::vector<std::string> paths;
    for (const auto& [key, p] : procs_) {
      const std::string path = DataDir(key) + "/outbox.log";
      if (key.rfind("notification-", 0) == 0 && std::filesystem::exists(path)) paths.push_back(path);
    }
    return paths;
  }
  std::vector<std::string> Keys() const {
    std::vector<std::string> keys;
    for (const auto& [k, p] : procs_) keys.push_back(k);
    return keys;
  }
  void StartAll() {
    Start("projector");
    Start("payment", "1");
    Start("payment", "2");
    Start("inventory", "1");
    Start("inventory", "2");
    Start("shipping");
    Start("delivery");
    Start("notification");
  }
  domain::Catalog catalog() const { return *domain::Catalog::Parse(kScarceCatalog); }

 private:
  const TempDir& dir_;
  bool exactly_once_ = false;
  std::string catalog_path_;
  std::string log_;
  std::unique_ptr<testing::TestBroker> broker_;
  eventstore::KafkaConfig kafka_;
  std::map<std::string, std::unique_ptr<ChildProcess>> procs_;
};

// Places `n` simulated orders at about `per_second`, from this process.
std::vector<std::string> PlaceOrders(const eventstore::KafkaConfig& brokers, const domain::Catalog& catalog, int n,
                                     int per_second) {
  std::vector<std::string> ids;
  auto producer = eventstore::Producer::Create(brokers, "test-orders");
  EXPECT_TRUE(producer.ok());
  if (!producer.ok()) return ids;
  services::OrderService orders(**producer, catalog);
  services::OrderSimulator simulator(catalog, 2024);
  const auto start = SystemClock().Now();
  for (int i = 0; i < n; ++i) {
    std::string id = services::NewOrderId();
    auto placed = orders.Place(simulator.Next(), id, services::NowMs());
    EXPECT_TRUE(placed.ok()) << placed.status().ToString();
    ids.push_back(id);
    std::this_thread::sleep_until(start + std::chrono::microseconds(1'000'000LL * (i + 1) / per_second));
  }
  EXPECT_TRUE((*producer)->Flush(30s).ok());
  return ids;
}

struct Counts {
  uint64_t terminal = 0;
  uint64_t total = 0;
};

Counts CountTerminal(const std::string& projector_dir) {
  Counts c;
  auto store = projections::ProjectionStore::Open(projector_dir, {.read_only = true});
  if (!store.ok()) return c;
  auto counts = (*store)->CountByStatus();
  if (!counts.ok()) return c;
  for (const auto& [status, n] : *counts) {
    c.total += n;
    if (status == "delivered" || status == "cancelled") c.terminal += n;
  }
  return c;
}

// Waits until every order is terminal and orders.events stopped growing with
// the projector at its end.
bool WaitSettled(const eventstore::KafkaConfig& brokers, const std::string& projector_dir, uint64_t orders,
                 std::chrono::seconds timeout) {
  auto reader = eventstore::Reader::Create(brokers, "test-watch");
  if (!reader.ok()) return false;
  auto end_of_log = [&]() {
    int64_t total = 0;
    for (int p = 0; p < 4; ++p) {
      auto w = (*reader)->QueryWatermarks({eventstore::kOrdersTopic, p}, 5s);
      if (w.ok()) total += w->high;
    }
    return total;
  };
  const auto deadline = SystemClock().Now() + timeout;
  while (SystemClock().Now() < deadline) {
    Counts c = CountTerminal(projector_dir);
    if (c.total >= orders && c.terminal == c.total) {
      int64_t end = end_of_log();
      SystemClock().SleepFor(1500ms);
      auto store = projections::ProjectionStore::Open(projector_dir, {.read_only = true});
      int64_t applied = 0;
      if (store.ok()) {
        auto offsets = (*store)->GetOffsets();
        if (offsets.ok()) {
          for (const auto& [tp, off] : *offsets) applied += off;
        }
      }
      if (end_of_log() != end || applied != end) continue;
      // Quiet is not enough: a service whose partitions are in a rebalance
      // (a SIGKILLed member holds them until its session times out) appends
      // nothing for seconds. Settled means every service group has consumed
      // all of its inputs.
      // (The projector's own offsets were compared above.)
      auto groups = services::ConsumerGroups();
      std::erase_if(groups, [](const auto& g) { return g.first == "orderflow-projector"; });
      auto lag = eventstore::GroupLag(brokers, groups, 5s);
      int64_t behind = 0;
      if (lag.ok()) {
        *lag = eventstore::GroupsInUse(std::move(lag).value());  // fulfillment, or the four it hosts
        for (const auto& row : *lag) behind += row.lag();
        if (behind != 0 && SystemClock().Now() + 10s > deadline) {
          for (const auto& row : *lag) {
            if (row.lag() != 0) std::cout << "behind: " << row.group << " " << row.tp.topic << "/" << row.tp.partition << " committed " << row.committed << " end " << row.end << std::endl;
          }
        }
      } else {
        std::cout << "lag: " << lag.status().ToString() << std::endl;
      }
      if (lag.ok() && behind == 0 && end_of_log() == end) return true;
    } else {
      SystemClock().SleepFor(500ms);
    }
  }
  return false;
}

// The invariants: stock never oversold, every order terminal, exactly one
// refund for every paid order that was cancelled, none for delivered ones,
// every notification id sent exactly once.
void CheckInvariants(const std::string& projector_dir, const std::vector<std::string>& ids,
                     const domain::Catalog& catalog, const std::vector<std::string>& outboxes) {
  auto store = projections::ProjectionStore::Open(projector_dir, {.read_only = true});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::map<std::string, int64_t> shipped_units;
  uint64_t delivered = 0, cancelled = 0, refunded_orders = 0;
  std::set<std::string> notification_ids_in_log;
  for (const auto& id : ids) {
    auto order = (*store)->GetOrder(id);
    ASSERT_TRUE(order.ok() && order->has_value()) << id;
    const domain::OrderState& o = **order;
    ASSERT_TRUE(domain::IsTerminal(o.status)) << id << " is " << domain::OrderStatusName(o.status);
    auto history = (*store)->GetHistory(id);
    ASSERT_TRUE(history.ok());
    int refunds = 0;
    for (const auto& h : *history) {
      ASSERT_TRUE(h.event.has_value());
      if (std::holds_alternative<domain::PaymentRefunded>(h.event->payload)) ++refunds;
      if (const auto* n = std::get_if<domain::NotificationSent>(&h.event->payload)) {
        EXPECT_TRUE(notification_ids_in_log.insert(n->notification_id).second) << "NotificationSent twice";
      }
    }
    if (o.status == domain::OrderStatus::kDelivered) {
      ++delivered;
      EXPECT_EQ(refunds, 0) << id;
      for (const auto& l : o.lines) shipped_units[l.sku] += l.quantity;
    } else {
      ++cancelled;
      if (o.paid_minor > 0) {
        EXPECT_EQ(refunds, 1) << "paid and cancelled order " << id;
        EXPECT_EQ(o.refunded_minor, o.paid_minor) << id;
        ++refunded_orders;
      } else {
        EXPECT_EQ(refunds, 0) << id;
      }
    }
  }
  EXPECT_GT(delivered, 0u);
  EXPECT_GT(cancelled, 0u);
  EXPECT_GT(refunded_orders, 0u) << "no order went through the inventory-rejected compensation";
  for (const auto& [sku, units] : shipped_units) {
    EXPECT_LE(units, catalog.Find(sku)->initial_stock) << sku << " oversold";
  }
  std::map<std::string, int> sent;
  for (const auto& path : outboxes) {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) sent[line.substr(line.rfind('\t') + 1)] += 1;
  }
  EXPECT_FALSE(sent.empty());
  for (const auto& [id, times] : sent) EXPECT_EQ(times, 1) << "notification " << id << " sent " << times << " times";
  EXPECT_EQ(sent.size(), notification_ids_in_log.size());
}

// The live projection (of projector instance `projector`) equals a clean replay of the log.
void ExpectSameDigestAsReplay(const Fleet& fleet, const TempDir& dir, const std::string& projector = "projector-1") {
  replay::ReplayOptions options;
  options.kafka = fleet.brokers();
  options.data_dir = dir.Sub("replayed-" + projector);
  auto replayed = replay::Replay(options);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  // The live projector may still be applying what services appended late (an
  // instance that came back last): compare once it has reached the replay's end.
  for (int i = 0; i < 300; ++i) {
    auto live = projections::ProjectionStore::Open(fleet.DataDir(projector), {.read_only = true});
    ASSERT_TRUE(live.ok());
    auto offsets = (*live)->GetOffsets();
    ASSERT_TRUE(offsets.ok());
    bool reached = true;
    for (const auto& [tp, end] : replayed->end) reached = reached && offsets->count(tp) && offsets->at(tp) >= end;
    if (reached || i == 299) {
      for (const auto& [tp, end] : replayed->end) {
        EXPECT_EQ(offsets->count(tp) ? offsets->at(tp) : 0, end) << tp.topic << "/" << tp.partition;
      }
      EXPECT_EQ(*(*live)->Digest(), replayed->digest) << projector;
      return;
    }
    SystemClock().SleepFor(100ms);
  }
}

TEST(LifecycleTest, EveryServiceItsOwnProcessScarceStockInvariantsHold) {
  TempDir dir;
  Fleet fleet(dir);
  ASSERT_FALSE(fleet.brokers().brokers.empty());
  fleet.StartAll();
  auto ids = PlaceOrders(fleet.brokers(), fleet.catalog(), testing::Scaled(5000), testing::Scaled(1000));
  ASSERT_TRUE(WaitSettled(fleet.brokers(), fleet.DataDir("projector-1"), ids.size(), 180s))
      << "orders did not all finish; see " << fleet.log();
  CheckInvariants(fleet.DataDir("projector-1"), ids, fleet.catalog(), {fleet.DataDir("notification-1") + "/outbox.log"});
}

TEST(LifecycleTest, RandomSigkillsLoseNothingAndDigestMatchesReplay) {
  TempDir dir;
  Fleet fleet(dir);
  ASSERT_FALSE(fleet.brokers().brokers.empty());
  fleet.StartAll();
  std::vector<std::string> ids;
  const int orders = testing::Scaled(5000);
  std::thread placer([&] { ids = PlaceOrders(fleet.brokers(), fleet.catalog(), orders, testing::Scaled(700)); });
  std::mt19937 rng(777);
  auto keys = fleet.Keys();
  int kills = 0;
  for (int i = 0; i < 6; ++i) {
    SystemClock().SleepFor(std::chrono::milliseconds(800 + rng() % 700));
    const std::string key = keys[rng() % keys.size()];
    std::cout << "SIGKILL " << key << std::endl;
    fleet.Kill(key);
    ++kills;
    auto dash = key.rfind('-');
    fleet.Start(key.substr(0, dash), key.substr(dash + 1));
  }
  placer.join();
  EXPECT_EQ(kills, 6);
  ASSERT_EQ(ids.size(), static_cast<size_t>(orders));
  ASSERT_TRUE(WaitSettled(fleet.brokers(), fleet.DataDir("projector-1"), ids.size(), 240s))
      << "orders did not all finish; see " << fleet.log();
  CheckInvariants(fleet.DataDir("projector-1"), ids, fleet.catalog(), {fleet.DataDir("notification-1") + "/outbox.log"});
  ExpectSameDigestAsReplay(fleet, dir);
}

// ---- Clean stop ---------------------------------------------------------------

// Joins a thread when the test returns early (a failed ASSERT), instead of std::terminate.
struct Joiner {
  std::thread& thread;
  ~Joiner() {
    if (thread.joinable()) thread.join();
  }
};

// How many times each kind is stopped: 20, or $ORDERFLOW_SIGTERM_ROUNDS
// (scripts/sanitize.sh runs 5 under AddressSanitizer).
int SigtermRounds() {
  const char* env = std::getenv("ORDERFLOW_SIGTERM_ROUNDS");
  return env != nullptr && std::atoi(env) > 0 ? std::atoi(env) : 20;
}

// Every service kind that runs as its own process, stopped with SIGTERM at a
// random moment of its life, again and again, while orders flow and after:
// while starting, catching up, joining a group (a rebalance with instance 1),
// mid-batch, idle. Each stop must be clean: exit 0 within the grace period,
// no crash (a signal would show as 128+N), every thread joined (main
// returns). Nothing is lost: every order finishes, the invariants hold, and
// both projectors (the one never stopped and the one stopped every time)
// equal a clean replay.
TEST(CleanStopTest, EveryServiceKindExitsZeroOnSigtermAtAnyMomentAndLosesNothing) {
  TempDir dir;
  Fleet fleet(dir);
  ASSERT_FALSE(fleet.brokers().brokers.empty());
  const int rounds = SigtermRounds();
  fleet.StartAll();
  std::vector<std::string> kinds = {"projector"};
  for (const std::string& name : services::LifecycleServiceNames()) kinds.push_back(name);
  for (const std::string& kind : kinds) fleet.Start(kind, "9");  // every key exists before the threads start
  std::vector<std::string> ids;
  // Orders flow for about as long as the stops go on (~60 s at 20 rounds).
  const int orders = testing::Scaled(2000);
  std::thread placer([&] { ids = PlaceOrders(fleet.brokers(), fleet.catalog(), orders, std::max(1, orders / (3 * rounds))); });
  Joiner joiner{placer};
  std::vector<std::vector<int>> codes(kinds.size());
  // One kind at a time, round-robin: each instance 9 runs for a random while
  // (its neighbours' stops landing in its starting, catching-up, rebalancing,
  // idle and busy moments) before its own stop. Stopping every kind at once
  // churned six consumer groups together, which librdkafka 2.0.2's mock
  // coordinator (the embedded broker) does not survive: it aborts on a
  // member's JoinGroup while that member's previous response is still held
  // (rdkafka_mock_cgrp.c: `!member->resp`).
  std::mt19937 rng(1000);
  for (int round = 0; round < rounds; ++round) {
    for (size_t k = 0; k < kinds.size(); ++k) {
      SystemClock().SleepFor(std::chrono::milliseconds(100 + rng() % 400));
      codes[k].push_back(fleet.Stop(kinds[k] + "-9"));
      fleet.Start(kinds[k], "9");
      if (rng() % 4 == 0) {  // and one stop in four more while the new process is still starting
        SystemClock().SleepFor(std::chrono::milliseconds(rng() % 100));
        codes[k].push_back(fleet.Stop(kinds[k] + "-9"));
        fleet.Start(kinds[k], "9");
      }
    }
  }
  placer.join();
  for (size_t k = 0; k < kinds.size(); ++k) {
    ASSERT_GE(codes[k].size(), static_cast<size_t>(rounds));
    for (size_t stop = 0; stop < codes[k].size(); ++stop) {
      EXPECT_EQ(codes[k][stop], 0) << kinds[k] << "-9, stop " << stop + 1 << " of " << codes[k].size() << "; see "
                                   << fleet.log();
    }
  }
  ASSERT_EQ(ids.size(), static_cast<size_t>(orders));
  ASSERT_TRUE(WaitSettled(fleet.brokers(), fleet.DataDir("projector-1"), ids.size(), 240s))
      << "orders did not all finish; see " << fleet.log();
  CheckInvariants(fleet.DataDir("projector-1"), ids, fleet.catalog(), fleet.Outboxes());
  ExpectSameDigestAsReplay(fleet, dir, "projector-1");
  ExpectSameDigestAsReplay(fleet, dir, "projector-9");
  for (const std::string& kind : kinds) EXPECT_EQ(fleet.Stop(kind + "-9"), 0) << kind << "-9, the last stop";
}

// ---- Effectively once across instances ------------------------------------
//
// Several instances of each service share its consumer groups; partitions move
// between them. Each instance indexes its service's outputs already in the log
// before it handles a partition it did not hold, so an input another instance
// handled emits nothing and writes no outbox line again.


std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

services::CheckReport Check(const Fleet& fleet, const std::vector<std::string>& extra_outboxes = {}) {
  services::CheckOptions options;
  options.kafka = fleet.brokers();
  options.outboxes = fleet.Outboxes();
  options.outboxes.insert(options.outboxes.end(), extra_outboxes.begin(), extra_outboxes.end());
  auto report = services::CheckLog(options, fleet.catalog());
  EXPECT_TRUE(report.ok()) << report.status().ToString();
  return report.ok() ? *report : services::CheckReport{};
}

// Every outbox line has its NotificationSent in the log. On a mismatch, says
// what a second read a few seconds later finds: a short first read (or a late
// append) shows as a different count, records missing from the log as the same.
void ExpectEveryOutboxLineInTheLog(const Fleet& fleet, const services::CheckReport& report) {
  if (report.outbox_lines == report.notifications_sent_in_log.size()) return;
  ADD_FAILURE() << report.outbox_lines << " outbox lines, " << report.notifications_sent_in_log.size()
                << " NotificationSent in the log (" << report.orders << " orders, " << report.events
                << " events read)";
  auto lag = eventstore::GroupLag(fleet.brokers(), services::ConsumerGroups(), 5s);
  if (lag.ok()) {
    for (const auto& row : *lag) {
      std::cout << "group " << row.group << " " << row.tp.topic << "/" << row.tp.partition << " committed "
                << row.committed << " end " << row.end << std::endl;
    }
  } else {
    std::cout << "lag: " << lag.status().ToString() << std::endl;
  }
  SystemClock().SleepFor(3s);
  const auto again = Check(fleet);
  std::cout << "read again 3 s later: " << again.outbox_lines << " outbox lines, "
            << again.notifications_sent_in_log.size() << " NotificationSent, " << again.orders << " orders, "
            << again.events << " events" << std::endl;
}

void StartEveryServiceThreeTimes(Fleet& fleet) {
  fleet.Start("projector");
  for (const std::string& name : services::LifecycleServiceNames()) {
    for (const char* instance : {"1", "2", "3"}) fleet.Start(name, instance);
  }
}


// Until notification-1's outbox has a sixth of the orders (up to a minute).
void WaitUntilMidRun(const Fleet& fleet) {
  for (int i = 0; i < 600 && ReadLines(fleet.DataDir("notification-1") + "/outbox.log").size() <
                                 static_cast<size_t>(testing::Scaled(500));
       ++i) {
    SystemClock().SleepFor(100ms);
  }
}

// (a) The payment and notification instances lose their stores mid-run and
// start again from nothing: they index the outputs already in the log and
// append no PaymentAuthorized, PaymentRefunded or NotificationSent again, and
// no notification is written twice (old outbox + new).
TEST(EffectivelyOnceTest, InstancesThatLostTheirStoresRepeatNothing) {
  TempDir dir;
  Fleet fleet(dir);
  ASSERT_FALSE(fleet.brokers().brokers.empty());
  fleet.StartAll();
  std::vector<std::string> ids;
  const int orders = testing::Scaled(3000);
  std::thread placer([&] { ids = PlaceOrders(fleet.brokers(), fleet.catalog(), orders, testing::Scaled(500)); });
  Joiner joiner{placer};
  // Mid-run: payment and notification have handled some orders, not all.
  WaitUntilMidRun(fleet);
  const std::string old_outbox = dir.Sub("notification-1-lost-outbox.log");
  for (const std::string key : {"payment-1", "notification-1"}) {
    const int stopped = fleet.Stop(key);
    ASSERT_EQ(stopped, 0) << key << " did not stop cleanly; see " << fleet.log();
    if (key == "notification-1") std::filesystem::copy_file(fleet.DataDir(key) + "/outbox.log", old_outbox);
    std::filesystem::remove_all(fleet.DataDir(key));
    std::cout << "lost the store of " << key << std::endl;
    fleet.Start(key.substr(0, key.find('-')), "1");
  }
  placer.join();
  ASSERT_EQ(ids.size(), static_cast<size_t>(orders));
  ASSERT_TRUE(WaitSettled(fleet.brokers(), fleet.DataDir("projector-1"), ids.size(), 240s))
      << "orders did not all finish; see " << fleet.log();
  ASSERT_FALSE(ReadLines(old_outbox).empty()) << "the lost outbox had sent nothing yet";
  const auto report = Check(fleet, {old_outbox});
  EXPECT_EQ(report.orders, ids.size()) << "the check did not read every order placed";
  for (const char* type : {"PaymentAuthorized", "PaymentRefunded", "NotificationSent"}) {
    EXPECT_EQ(report.duplicates_by_type.count(type) ? report.duplicates_by_type.at(type) : 0u, 0u)
        << type << " appended again for an order already handled";
  }
  EXPECT_TRUE(report.notifications_repeated.empty())
      << report.notifications_repeated.size() << " notifications written twice (old and new outbox)";
  EXPECT_TRUE(report.ok()) << "not terminal " << report.not_terminal.size() << ", refunded twice "
                           << report.refunded_twice.size() << ", oversold " << report.oversold.size();
}

// (a') The same for fulfillment, which hosts payment, inventory, shipping and
// delivery in one runner: an instance that lost its store indexes the outputs
// of all four in the log (each under its own producer name) and appends none
// of them again; its hosted reactors' states come back from the log.
TEST(EffectivelyOnceTest, AFulfillmentInstanceThatLostItsStoreRepeatsNothing) {
  TempDir dir;
  Fleet fleet(dir);
  ASSERT_FALSE(fleet.brokers().brokers.empty());
  fleet.Start("projector");
  fleet.Start(services::kFulfillment, "1");
  fleet.Start(services::kFulfillment, "2");
  fleet.Start("notification", "1", {"--send-only"});  // fulfillment routes the notifications
  std::vector<std::string> ids;
  const int orders = testing::Scaled(3000);
  std::thread placer([&] { ids = PlaceOrders(fleet.brokers(), fleet.catalog(), orders, testing::Scaled(500)); });
  Joiner joiner{placer};
  // Mid-run: fulfillment has handled some orders, not all.
  WaitUntilMidRun(fleet);
  const std::string key = std::string(services::kFulfillment) + "-1";
  ASSERT_EQ(fleet.Stop(key), 0) << key << " did not stop cleanly; see " << fleet.log();
  ASSERT_TRUE(std::filesystem::exists(fleet.DataDir(key)));
  std::filesystem::remove_all(fleet.DataDir(key));
  std::cout << "lost the store of " << key << std::endl;
  fleet.Start(services::kFulfillment, "1");
  placer.join();
  ASSERT_EQ(ids.size(), static_cast<size_t>(orders));
  ASSERT_TRUE(WaitSettled(fleet.brokers(), fleet.DataDir("projector-1"), ids.size(), 240s))
      << "orders did not all finish; see " << fleet.log();
  const auto report = Check(fleet);
  EXPECT_EQ(report.orders, ids.size()) << "the check did not read every order placed";
  for (const char* type : {"PaymentAuthorized", "PaymentDeclined", "PaymentRefunded", "InventoryReserved",
                           "InventoryRejected", "OrderShipped", "OrderDelivered", "NotificationSent"}) {
    EXPECT_EQ(report.duplicates_by_type.count(type) ? report.duplicates_by_type.at(type) : 0u, 0u)
        << type << " appended again for an order already handled";
  }
  EXPECT_TRUE(report.ok()) << "not terminal " << report.not_terminal.size() << ", refunded twice "
                           << report.refunded_twice.size() << ", oversold " << report.oversold.size();
  EXPECT_TRUE(report.notifications_repeated.empty()) << report.notifications_repeated.size() << " sent twice";
  ExpectEveryOutboxLineInTheLog(fleet, report);
  ExpectSameDigestAsReplay(fleet, dir);
}

// (b) Clean churn: three instances of every service; instances leave with
// SIGTERM and come back while orders flow, moving partitions every time.
// A clean hand-over repeats nothing at all.
TEST(EffectivelyOnceTest, CleanChurnOfThreeInstancesPerServiceRepeatsNothing) {
  TempDir dir;
  Fleet fleet(dir);
  ASSERT_FALSE(fleet.brokers().brokers.empty());
  StartEveryServiceThreeTimes(fleet);
  std::vector<std::string> ids;
  const int orders = testing::Scaled(5000);
  std::thread placer([&] { ids = PlaceOrders(fleet.brokers(), fleet.catalog(), orders, testing::Scaled(400)); });
  Joiner joiner{placer};
  std::mt19937 rng(2027);
  const auto& names = services::LifecycleServiceNames();
  int churns = 0;
  for (int i = 0; i < 10; ++i) {
    SystemClock().SleepFor(std::chrono::milliseconds(700 + rng() % 600));
    const std::string name = names[rng() % names.size()];
    const std::string instance = std::to_string(1 + rng() % 3);
    std::cout << "SIGTERM " << name << "-" << instance << std::endl;
    EXPECT_EQ(fleet.Stop(name + "-" + instance), 0);
    SystemClock().SleepFor(std::chrono::milliseconds(300 + rng() % 500));
    fleet.Start(name, instance);
    ++churns;
  }
  placer.join();
  ASSERT_EQ(ids.size(), static_cast<size_t>(orders));
  ASSERT_TRUE(WaitSettled(fleet.brokers(), fleet.DataDir("projector-1"), ids.size(), 240s))
      << "orders did not all finish; see " << fleet.log();
  const auto report = Check(fleet);
  EXPECT_EQ(report.orders, ids.size()) << "the check did not read every order placed";
  std::cout << churns << " clean leaves; " << report.orders << " orders, " << report.outbox_lines << " outbox lines, "
            << report.notifications_repeated.size() << " repeated; " << report.duplicate_events
            << " duplicate records in the log" << std::endl;
  EXPECT_TRUE(report.notifications_repeated.empty()) << "a notification in two outboxes after a clean hand-over";
  EXPECT_TRUE(report.ok()) << "not terminal " << report.not_terminal.size() << ", refunded twice "
                           << report.refunded_twice.size() << ", oversold " << report.oversold.size();
  ExpectEveryOutboxLineInTheLog(fleet, report);
  EXPECT_EQ(report.notifications_missing_from_outboxes, 0u) << "recorded as sent but in no outbox";
  ExpectSameDigestAsReplay(fleet, dir);
}

// (c) Chaos: the same with random SIGKILLs. A notification written to the
// outbox just before a SIGKILL, whose NotificationSent had not reached the log,
// is written again by the next owner: at most one notification batch
// (services::kSideEffectBatch) per kill. Every other invariant holds.
TEST(EffectivelyOnceTest, RandomSigkillsRepeatAtMostOneSideEffectBatchPerKill) {
  TempDir dir;
  Fleet fleet(dir);
  ASSERT_FALSE(fleet.brokers().brokers.empty());
  StartEveryServiceThreeTimes(fleet);
  std::vector<std::string> ids;
  const int orders = testing::Scaled(5000);
  std::thread placer([&] { ids = PlaceOrders(fleet.brokers(), fleet.catalog(), orders, testing::Scaled(125)); });  // ~40 s
  Joiner joiner{placer};
  std::mt19937 rng(31337);
  const auto& names = services::LifecycleServiceNames();
  int kills = 0;
  for (int i = 0; i < 16; ++i) {
    SystemClock().SleepFor(std::chrono::milliseconds(1800 + rng() % 1000));
    const std::string name = names[rng() % names.size()];
    const std::string instance = std::to_string(1 + rng() % 3);
    std::cout << "SIGKILL " << name << "-" << instance << std::endl;
    fleet.Kill(name + "-" + instance);
    ++kills;
    fleet.Start(name, instance);
  }
  placer.join();
  ASSERT_EQ(ids.size(), static_cast<size_t>(orders));
  ASSERT_TRUE(WaitSettled(fleet.brokers(), fleet.DataDir("projector-1"), ids.size(), 240s))
      << "orders did not all finish; see " << fleet.log();
  const auto report = Check(fleet);
  EXPECT_EQ(report.orders, ids.size()) << "the check did not read every order placed";
  uint64_t repeated_lines = 0;
  for (const auto& [id, times] : report.notifications_repeated) repeated_lines += times - 1;
  std::cout << kills << " SIGKILLs; " << report.outbox_lines << " outbox lines, " << repeated_lines
            << " of them repeats; " << report.duplicate_events << " duplicate records in the log" << std::endl;
  EXPECT_LE(repeated_lines, services::kSideEffectBatch * static_cast<uint64_t>(kills));
  EXPECT_EQ(report.notifications_missing_from_outboxes, 0u) << "recorded as sent but in no outbox";
  EXPECT_TRUE(report.not_terminal.empty()) << report.not_terminal.size() << " orders not terminal";
  EXPECT_TRUE(report.refunded_twice.empty());
  EXPECT_TRUE(report.paid_cancelled_unrefunded.empty());
  EXPECT_TRUE(report.refunded_delivered.empty());
  EXPECT_TRUE(report.oversold.empty());
  ExpectSameDigestAsReplay(fleet, dir);
}

// Reads orders.events from offset zero to its end as a read_committed
// consumer and returns how often each event id occurs.
std::map<std::string, int> CommittedEventIds(const eventstore::KafkaConfig& kafka) {
  std::map<std::string, int> seen;
  eventstore::KafkaConfig committed = kafka;
  committed.overrides.push_back({"isolation.level", "read_committed"});
  auto reader = eventstore::Reader::Create(committed, "test-committed");
  EXPECT_TRUE(reader.ok());
  auto partitions = (*reader)->PartitionCount(eventstore::kOrdersTopic, 10s);
  EXPECT_TRUE(partitions.ok());
  std::vector<std::pair<eventstore::TopicPartition, int64_t>> positions;
  std::vector<eventstore::TopicPartition> all;
  std::map<eventstore::TopicPartition, int64_t> ends;
  for (int32_t p = 0; p < *partitions; ++p) {
    eventstore::TopicPartition tp{eventstore::kOrdersTopic, p};
    positions.emplace_back(tp, 0);
    all.push_back(tp);
    ends[tp] = (*reader)->QueryWatermarks(tp, 10s)->high;
  }
  EXPECT_TRUE((*reader)->Assign(positions).ok());
  const auto deadline = SystemClock().Now() + 120s;
  while (SystemClock().Now() < deadline) {
    auto records = (*reader)->Poll(5000, 200ms);
    EXPECT_TRUE(records.ok());
    for (const auto& r : *records) {
      auto event = eventstore::DecodeEvent(r.value());
      EXPECT_TRUE(event.ok()) << r.topic() << "[" << r.partition() << "]@" << r.offset();
      if (event.ok()) seen[domain::UuidToString(event->id)] += 1;
    }
    if (records->empty()) {
      bool done = true;
      for (const auto& [tp, position] : (*reader)->Positions(all)) done = done && position >= ends[tp];
      if (done) break;
    }
  }
  return seen;
}

// Exactly-once v2 on a broker that implements it: services append their
// outputs in Kafka transactions while they are SIGKILLed and restarted; a
// read_committed consumer finds every event id once, and every invariant of
// the at-least-once mode holds as well.
TEST(RealKafkaTest, ExactlyOnceUnderSigkillsLeavesNoDuplicateEventInTheCommittedLog) {
  TempDir dir;
  Fleet fleet(dir, /*exactly_once=*/true);
  ASSERT_FALSE(fleet.brokers().brokers.empty());
  fleet.StartAll();
  std::vector<std::string> ids;
  const int orders = testing::Scaled(5000);
  std::thread placer([&] { ids = PlaceOrders(fleet.brokers(), fleet.catalog(), orders, testing::Scaled(700)); });
  std::mt19937 rng(4242);
  auto keys = fleet.Keys();
  for (int i = 0; i < 8; ++i) {
    SystemClock().SleepFor(std::chrono::milliseconds(600 + rng() % 500));
    const std::string key = keys[rng() % keys.size()];
    std::cout << "SIGKILL " << key << std::endl;
    fleet.Kill(key);
    auto dash = key.rfind('-');
    fleet.Start(key.substr(0, dash), key.substr(dash + 1));
  }
  placer.join();
  ASSERT_EQ(ids.size(), static_cast<size_t>(orders));
  ASSERT_TRUE(WaitSettled(fleet.brokers(), fleet.DataDir("projector-1"), ids.size(), 240s))
      << "orders did not all finish; see " << fleet.log();
  CheckInvariants(fleet.DataDir("projector-1"), ids, fleet.catalog(), {fleet.DataDir("notification-1") + "/outbox.log"});

  const auto seen = CommittedEventIds(fleet.brokers());
  EXPECT_GE(seen.size(), static_cast<size_t>(orders) * 5);
  int duplicated = 0;
  for (const auto& [id, times] : seen) {
    if (times > 1 && ++duplicated <= 5) ADD_FAILURE() << "event " << id << " is in the committed log " << times << " times";
  }
  EXPECT_EQ(duplicated, 0);

  replay::ReplayOptions options;
  options.kafka = fleet.brokers();
  options.data_dir = dir.Sub("replayed");
  auto replayed = replay::Replay(options);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  EXPECT_EQ(replayed->duplicates, 0u) << "the projector dropped duplicate events: the log has some";
  auto live = projections::ProjectionStore::Open(fleet.DataDir("projector-1"), {.read_only = true});
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(*(*live)->Digest(), replayed->digest);
}

}  // namespace
}  // namespace orderflow

#include "eventstore/embedded_broker.h"
#include "services/lifecycle/lifecycle.h"
#include "cli/app/projector_service.h"

namespace orderflow {
namespace {

// Runs the named lifecycle services and a projector in this process until destroyed.
class InProcessServices {
 public:
  InProcessServices(const eventstore::KafkaConfig& kafka, const TempDir& dir, const domain::Catalog& catalog,
                    const std::vector<std::string>& names) {
    auto projector = services::ProjectorService::Start({.kafka = kafka, .data_dir = dir.Sub("projector"),
                                                        .instance = "test", .batch_size = 100});
    EXPECT_TRUE(projector.ok()) << projector.status().ToString();
    projector_ = std::move(projector).value();
    for (const auto& name : names) {
      services::ServiceOptions so;
      so.name = name;
      so.kafka = kafka;
      so.data_dir = dir.Sub(name);
      auto runner = services::MakeLifecycleService(so, catalog, {});
      EXPECT_TRUE(runner.ok()) << runner.status().ToString();
      runners_.push_back(std::move(runner).value());
    }
    for (auto& r : runners_) threads_.emplace_back([this, r = r.get()] { EXPECT_TRUE(r->Run(stop_.get_token()).ok()); });
    threads_.emplace_back([this] { EXPECT_TRUE(projector_->Run(stop_.get_token()).ok()); });
  }
  ~InProcessServices() {
    stop_.request_stop();
    for (auto& t : threads_) t.join();
  }
  // Waits until `pred(order)` holds for order `id`.
  bool WaitFor(const std::string& id, const std::function<bool(const domain::OrderState&)>& pred) {
    for (int i = 0; i < 600; ++i) {
      auto o = store().GetOrder(id);
      if (o.ok() && o->has_value() && pred(**o)) return true;
      SystemClock().SleepFor(50ms);
    }
    return false;
  }
  projections::ProjectionStore& store() { return projector_->store(); }

 private:
  std::stop_source stop_;
  std::unique_ptr<services::ProjectorService> projector_;
  std::vector<std::unique_ptr<services::ServiceRunner>> runners_;
  std::vector<std::thread> threads_;
};

// Customer cancel before shipping: refund and stock release, as events.
// (Shipping is not running, so the order waits reserved until the cancel.)
TEST(LifecycleTest, CustomerCancelBeforeShippingRefundsAndReleasesStock) {
  auto broker = testing::StartBroker(2);
  ASSERT_NE(broker, nullptr);
  const eventstore::KafkaConfig kafka = broker->config();
  TempDir dir;
  const auto catalog = domain::Catalog::Demo();
  InProcessServices services(kafka, dir, catalog, {"payment", "inventory", "notification"});

  auto producer = eventstore::Producer::Create(kafka, "test");
  ASSERT_TRUE(producer.ok());
  services::OrderService orders(**producer, catalog);
  const std::string id = services::NewOrderId();
  ASSERT_TRUE(orders.Place({"alice", {{"SKU-MUG", 2}, {"SKU-KETTLE", 1}}}, id, services::NowMs()).ok());
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  ASSERT_TRUE(services.WaitFor(id, [](const auto& o) { return o.status == domain::OrderStatus::kInventoryReserved; }));

  auto reserved = *services.store().GetOrder(id);
  ASSERT_EQ(reserved->reserved_skus.size(), 2u);
  ASSERT_TRUE(orders.Execute(*reserved, domain::CancelOrder{"changed my mind", domain::CancelSource::kCustomer},
                             services::NowMs())
                  .ok());
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  ASSERT_TRUE(services.WaitFor(id, [](const auto& o) {
    return o.status == domain::OrderStatus::kCancelled && o.refunded_minor == o.paid_minor && o.reserved_skus.empty();
  })) << "no refund or no release after the customer's cancel";
  SystemClock().SleepFor(500ms);  // anything further would be a duplicate
  auto history = services.store().GetHistory(id);
  ASSERT_TRUE(history.ok());
  int refunds = 0, releases = 0;
  for (const auto& h : *history) {
    if (std::holds_alternative<domain::PaymentRefunded>(h.event->payload)) ++refunds;
    if (std::holds_alternative<domain::InventoryLineReleased>(h.event->payload)) ++releases;
  }
  EXPECT_EQ(refunds, 1);
  EXPECT_EQ(releases, 2);

  // After cancelling, cancelling again is refused: nothing appended.
  auto cancelled = *services.store().GetOrder(id);
  auto again = orders.Execute(*cancelled, domain::CancelOrder{"again", domain::CancelSource::kCustomer}, 1);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace orderflow

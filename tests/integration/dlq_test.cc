// Poison records and failing handlers: parked on orders.dlq with the right
// headers while everything around them is processed; redrive applies a fixed
// record exactly once.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "domain/clock.h"
#include "eventstore/codec.h"
#include "eventstore/dead_letter.h"
#include "eventstore/topics.h"
#include "projections/store.h"
#include "services/lifecycle/check.h"
#include "services/lifecycle/lifecycle.h"
#include "services/orders/order_service.h"
#include "services/lifecycle/runner.h"
#include "cli/app/up.h"
#include "tests/util/broker.h"
#include "tests/util/events.h"
#include "tests/util/future_event.h"
#include "tests/util/temp_dir.h"

namespace orderflow {
namespace {

// Stops `thread` (requests `stop`) and joins it when the test leaves, however it leaves.
struct StopAndJoin {
  std::stop_source& stop;
  std::thread& thread;
  ~StopAndJoin() {
    stop.request_stop();
    if (thread.joinable()) thread.join();
  }
};

using namespace std::chrono_literals;
using testing::TempDir;

struct Poison {
  const char* kind;
  std::string key;
  std::string value;
  std::string error;  // part of the dlq-error header ("" = any)
  eventstore::Position position;
};

// Appends `p` to orders.events and waits for its position.
void Append(eventstore::Producer& producer, Poison& p) {
  ASSERT_TRUE(producer
                  .Append(eventstore::kOrdersTopic, p.key, p.value, {},
                          [&p](const Status& s, eventstore::Position pos) {
                            EXPECT_TRUE(s.ok()) << s.ToString();
                            p.position = pos;
                          })
                  .ok());
  ASSERT_TRUE(producer.Flush(10s).ok());
}

TEST(DeadLetterTest, PoisonRecordsOfEachKindAreParkedWhileEveryValidOrderCompletes) {
  auto broker = testing::StartBroker(3);
  ASSERT_TRUE(broker);
  const auto kafka = testing::ConfigFor(*broker);
  TempDir dir;
  std::vector<Poison> poisons = {
      {"garbage bytes", "k-garbage", std::string("\xde\xad\xbe\xef not an envelope"), ""},
      {"unknown event type", "order-future", testing::EncodeFutureEnvelope("order-future", 2, true),
       "unknown event type"},
      {"newer schema version", "order-v99", testing::EncodeFutureEnvelope("order-v99", 99, false),
       "newer than this build"},
      {"key not the order id", "order-b", eventstore::EncodeEvent(testing::PlacedEvent("order-a")),
       "does not match the event's order id 'order-a'"},
  };

  services::UpOptions options;
  options.kafka = kafka;
  options.data_dir = dir.Sub("up");
  options.partitions = 3;
  options.simulate = 150;
  options.exit_when_done = true;
  options.transit_delay = 0ms;
  std::stop_source stop;
  const auto catalog = domain::Catalog::Demo();
  size_t placed_before = 0;
  auto summary = services::RunUp(options, catalog, stop.get_token(), [&](const services::UpEndpoints& e) {
    // Valid orders, then the poison, then RunUp's 150 simulated orders.
    eventstore::KafkaConfig appender = kafka;
    appender.brokers = e.brokers;
    auto producer = eventstore::Producer::Create(appender, "dlq-test");
    ASSERT_TRUE(producer.ok());
    services::OrderService orders(**producer, catalog);
    for (int i = 0; i < 20; ++i, ++placed_before) {
      ASSERT_TRUE(orders.Place({"cust-before", {{"SKU-MUG", 1}}}, services::NewOrderId(), services::NowMs()).ok());
    }
    for (Poison& p : poisons) Append(**producer, p);
  });
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(placed_before, 20u);
  // Every valid order went its whole way.
  EXPECT_EQ(summary->delivered + summary->cancelled, 170u);
  EXPECT_EQ(summary->records_rejected, poisons.size());

  auto letters = eventstore::ReadDeadLetters(kafka, 30s);
  ASSERT_TRUE(letters.ok()) << letters.status().ToString();
  // Every consumer of orders.events in up: the projector and fulfillment (its
  // notification service sends only, from notifications.high/low).
  const std::set<std::string> consumers = {"projector", services::kFulfillment};
  for (const Poison& p : poisons) {
    std::set<std::string> parked_by;
    for (const auto& d : *letters) {
      if (d.source_topic != eventstore::kOrdersTopic || d.source_partition != p.position.partition ||
          d.source_offset != p.position.offset) {
        continue;
      }
      parked_by.insert(d.service);
      EXPECT_EQ(d.key, p.key) << p.kind;
      EXPECT_EQ(d.value, p.value) << p.kind;
      EXPECT_EQ(d.attempts, 1) << p.kind;
      EXPECT_GT(d.failed_at_ms, 0) << p.kind;
      EXPECT_FALSE(d.error.empty()) << p.kind;
      EXPECT_NE(d.error.find(p.error), std::string::npos) << p.kind << ": " << d.error;
      EXPECT_FALSE(d.redriven_at_ms) << p.kind;
    }
    EXPECT_EQ(parked_by, consumers) << p.kind;
  }
  EXPECT_EQ(letters->size(), poisons.size() * consumers.size());
}

// A service whose handler fails for one order until it is "fixed". Its
// handled counts are committed with the batch (FlushSideEffects runs only for
// a batch that is written), like a real side effect.
class FlakyReactor final : public services::Reactor {
 public:
  void Load(const std::map<std::string, std::string>&) override {
    std::lock_guard lock(mu);
    pending.clear();  // an abandoned batch
  }
  Status OnOrderEvent(const domain::Event& event, domain::OrderStatus, const domain::OrderState& after,
                      services::BatchContext&) override {
    if (!std::holds_alternative<domain::OrderPlaced>(event.payload)) return Status::Ok();
    std::lock_guard lock(mu);
    ++attempts[after.order_id];
    if (broken.count(after.order_id)) return Status::FailedPrecondition("card format not supported");
    ++pending[after.order_id];
    return Status::Ok();
  }
  Status FlushSideEffects() override {
    std::lock_guard lock(mu);
    for (const auto& [id, n] : pending) handled[id] += n;
    pending.clear();
    return Status::Ok();
  }
  std::mutex mu;
  std::set<std::string> broken;
  std::map<std::string, int> attempts;
  std::map<std::string, int> pending;
  std::map<std::string, int> handled;
};

TEST(DeadLetterTest, AHandlerThatKeepsFailingIsParkedAfterRetriesAndARedriveAppliesItOnce) {
  auto broker = testing::StartBroker(2);
  ASSERT_TRUE(broker);
  const auto kafka = testing::ConfigFor(*broker);
  TempDir dir;
  auto reactor_owned = std::make_unique<FlakyReactor>();
  FlakyReactor& reactor = *reactor_owned;
  reactor.broken.insert("order-poisoned");
  services::ServiceOptions so;
  so.name = "flaky";
  so.kafka = kafka;
  so.data_dir = dir.Sub("flaky");
  so.inputs = {{eventstore::kOrdersTopic}};
  auto runner = services::ServiceRunner::Create(so, std::move(reactor_owned));
  ASSERT_TRUE(runner.ok()) << runner.status().ToString();
  std::stop_source stop;
  Status run_status;
  std::thread thread([&] { run_status = (*runner)->Run(stop.get_token()); });
  StopAndJoin joiner{stop, thread};

  auto producer = eventstore::Producer::Create(kafka, "dlq-test");
  ASSERT_TRUE(producer.ok());
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) ids.push_back("order-" + std::to_string(i));
  ids.insert(ids.begin() + 5, "order-poisoned");
  for (const auto& id : ids) ASSERT_TRUE((*producer)->AppendEvent(eventstore::kOrdersTopic, testing::PlacedEvent(id)).ok());
  ASSERT_TRUE((*producer)->Flush(10s).ok());

  auto wait_for = [&](auto done, std::chrono::seconds limit) {
    const auto deadline = SystemClock().Now() + limit;
    while (!done() && SystemClock().Now() < deadline) SystemClock().SleepFor(50ms);
    return done();
  };
  auto handled = [&](const std::string& id) {
    std::lock_guard lock(reactor.mu);
    return reactor.handled.count(id) ? reactor.handled[id] : 0;
  };
  // Every other order is handled once; the poisoned one was tried 3 times, then parked.
  ASSERT_TRUE(wait_for([&] { return handled("order-9") == 1 && (*runner)->stats().dead_letters.load() == 1; }, 90s));
  for (const auto& id : ids) EXPECT_EQ(handled(id), id == "order-poisoned" ? 0 : 1) << id;
  {
    std::lock_guard lock(reactor.mu);
    EXPECT_EQ(reactor.attempts["order-poisoned"], 3);
  }
  auto letters = eventstore::ReadDeadLetters(kafka, 30s);
  ASSERT_TRUE(letters.ok()) << letters.status().ToString();
  ASSERT_EQ(letters->size(), 1u);
  const eventstore::DeadLetter& d = letters->front();
  EXPECT_EQ(d.service, "flaky");
  EXPECT_EQ(d.attempts, 3);
  EXPECT_EQ(d.key, "order-poisoned");
  EXPECT_NE(d.error.find("card format not supported"), std::string::npos) << d.error;
  EXPECT_EQ(d.source_topic, eventstore::kOrdersTopic);
  EXPECT_EQ((*runner)->stats().dead_letters.load(), 1u);

  // Fixed: the redrive is handled exactly once.
  {
    std::lock_guard lock(reactor.mu);
    reactor.broken.clear();
  }
  auto redriven = eventstore::Redrive(kafka, {d.id}, false, 30s);
  ASSERT_TRUE(redriven.ok()) << redriven.status().ToString();
  EXPECT_EQ(redriven->appended, 1u);
  ASSERT_TRUE(wait_for([&] { return handled("order-poisoned") == 1; }, 30s));
  // A second redrive is refused, a forced one is dropped by event id.
  auto again = eventstore::Redrive(kafka, {d.id}, false, 30s);
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
  const uint64_t events_before = (*runner)->stats().events.load();
  auto forced = eventstore::Redrive(kafka, {d.id}, true, 30s);
  ASSERT_TRUE(forced.ok());
  ASSERT_TRUE(wait_for([&] { return (*runner)->stats().events.load() > events_before; }, 30s));
  SystemClock().SleepFor(200ms);
  EXPECT_EQ(handled("order-poisoned"), 1);
  auto after = eventstore::ReadDeadLetters(kafka, 30s);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_TRUE(after->front().redriven_at_ms.has_value());

  stop.request_stop();
  thread.join();
  EXPECT_TRUE(run_status.ok()) << run_status.ToString();
}


// A realistic poison that can be fixed: stock for a SKU the inventory
// service's catalog lacks. The inventory service fails it 3 times and parks it
// while every order keeps completing; run with a catalog that has the SKU, it
// applies the redriven record once, and a forced second redrive changes nothing.
TEST(DeadLetterTest, StockForASkuNotInTheCatalogIsParkedAndRedrivenOnceTheCatalogHasIt) {
  auto broker = testing::StartBroker(3);
  ASSERT_TRUE(broker);
  const auto kafka = testing::ConfigFor(*broker);
  TempDir dir;
  const auto catalog = domain::Catalog::Demo();
  constexpr uint64_t kOrders = 60;
  auto wait_for = [](auto done, std::chrono::seconds limit) {
    const auto deadline = SystemClock().Now() + limit;
    while (!done() && SystemClock().Now() < deadline) SystemClock().SleepFor(100ms);
    return done();
  };

  services::UpOptions options;
  options.kafka = kafka;
  options.data_dir = dir.Sub("up");
  options.partitions = 3;
  options.simulate = kOrders;
  options.transit_delay = 0ms;
  const domain::Event added = testing::LifecycleEvent("SKU-TEAPOT", 1, domain::StockAdded{"SKU-TEAPOT", 5});
  std::stop_source stop;
  std::optional<Result<services::UpSummary>> summary;
  // The stock addition goes in before the simulated orders.
  std::thread up([&] {
    summary.emplace(services::RunUp(options, catalog, stop.get_token(), [&](const services::UpEndpoints&) {
      auto producer = eventstore::Producer::Create(kafka, "dlq-test");
      ASSERT_TRUE(producer.ok()) << producer.status().ToString();
      ASSERT_TRUE((*producer)->AppendEvent(eventstore::kInventoryTopic, added).ok());
      ASSERT_TRUE((*producer)->Flush(10s).ok());
    }));
  });
  StopAndJoin up_joiner{stop, up};

  std::vector<eventstore::DeadLetter> letters;
  ASSERT_TRUE(wait_for(
      [&] {
        auto read = eventstore::ReadDeadLetters(kafka, 10s);
        if (read.ok()) letters = std::move(read).value();
        return !letters.empty();
      },
      120s))
      << "the stock addition was not dead-lettered";
  services::CheckReport report;
  ASSERT_TRUE(wait_for(
      [&] {
        auto checked = services::CheckLog({kafka, {}, 30s}, catalog);
        if (checked.ok()) report = std::move(checked).value();
        return report.orders == kOrders && report.not_terminal.empty();
      },
      120s))
      << report.orders << " orders in the log, " << report.not_terminal.size() << " not terminal";
  EXPECT_TRUE(report.ok());
  EXPECT_GT(report.by_status["delivered"], 0u);
  stop.request_stop();
  up.join();
  ASSERT_TRUE(summary.has_value());
  ASSERT_TRUE(summary->ok()) << summary->status().ToString();

  ASSERT_EQ(letters.size(), 1u);
  const eventstore::DeadLetter d = letters.front();
  EXPECT_EQ(d.service, "inventory");
  EXPECT_EQ(d.source_topic, eventstore::kInventoryTopic);
  EXPECT_EQ(d.key, "SKU-TEAPOT");
  EXPECT_EQ(d.attempts, 3);
  EXPECT_EQ(d.error,
            "handler failed: StockAdded for SKU-TEAPOT, which is not in the catalog: add it to the catalog file "
            "(--catalog) and restart, then redrive this dead letter");
  EXPECT_FALSE(d.redriven_at_ms);
  auto after_up = eventstore::ReadDeadLetters(kafka, 10s);
  ASSERT_TRUE(after_up.ok());
  EXPECT_EQ(after_up->size(), 1u) << "parked by the inventory service only, once";

  // The fix: up's inventory again (hosted by fulfillment), on its own store, with the SKU in its catalog.
  std::vector<domain::CatalogItem> items = catalog.items();
  items.push_back({"SKU-TEAPOT", "Cast iron teapot", 4590, 0});
  const domain::Catalog bigger(catalog.currency(), items);
  services::ServiceOptions so;
  so.name = services::kFulfillment;
  so.kafka = kafka;
  so.data_dir = options.data_dir + "/services/" + services::kFulfillment;
  ASSERT_TRUE(std::filesystem::exists(so.data_dir));
  auto runner = services::MakeLifecycleService(so, bigger, {});
  ASSERT_TRUE(runner.ok()) << runner.status().ToString();
  std::stop_source stop_inventory;
  Status run_status;
  std::thread inventory([&] { run_status = (*runner)->Run(stop_inventory.get_token()); });
  StopAndJoin inventory_joiner{stop_inventory, inventory};
  auto stock = [&]() -> std::string {
    auto v = (*runner)->ReadState("inventory/stock/SKU-TEAPOT");  // fulfillment keeps inventory's state under its name
    return v.ok() && *v ? **v : "none";
  };
  ASSERT_TRUE(wait_for([&] { return (*runner)->ready(); }, 60s));
  EXPECT_EQ(stock(), "none") << "the parked record stays parked until it is redriven";

  auto redriven = eventstore::Redrive(kafka, {d.id}, false, 30s);
  ASSERT_TRUE(redriven.ok()) << redriven.status().ToString();
  EXPECT_EQ(redriven->appended, 1u);
  ASSERT_TRUE(wait_for([&] { return stock() == "5"; }, 60s)) << "stock is " << stock();
  // A forced second redrive is the same event: dropped by its id.
  // It is the only input now, so the next committed batch holds it.
  const uint64_t batches_before = (*runner)->stats().batches.load();
  auto forced = eventstore::Redrive(kafka, {d.id}, true, 30s);
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  EXPECT_EQ(forced->appended, 1u);
  ASSERT_TRUE(wait_for([&] { return (*runner)->stats().batches.load() > batches_before; }, 60s));
  EXPECT_EQ(stock(), "5");
  EXPECT_EQ((*runner)->stats().dead_letters.load(), 0u);
  auto after = eventstore::ReadDeadLetters(kafka, 10s);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_TRUE(after->front().redriven_at_ms.has_value());

  stop_inventory.request_stop();
  inventory.join();
  EXPECT_TRUE(run_status.ok()) << run_status.ToString();
}

}  // namespace
}  // namespace orderflow

// The lifecycle reactors' decisions, driven directly with a fake batch
// context: no broker, no RocksDB.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <utility>

#include "domain/catalog.h"
#include "eventstore/topics.h"
#include "services/lifecycle/host_reactor.h"
#include "services/lifecycle/lifecycle.h"
#include "tests/util/events.h"
#include "tests/util/temp_dir.h"

namespace orderflow::services {
namespace {

using orderflow::testing::LifecycleEvent;
using orderflow::testing::PlacedEvent;
using orderflow::testing::TempDir;

class FakeContext final : public BatchContext {
 public:
  bool Emit(const std::string& topic, const domain::Event& cause, const std::string& aggregate_id,
            const std::string& tag, domain::EventPayload payload) override {
    domain::Event e;
    e.id = domain::DeriveEventId(cause.id, tag);
    if (in_log.count(tag) || in_log_ids.count(e.id)) return false;  // as the runner's outputs index says
    e.order_id = aggregate_id;
    e.payload = std::move(payload);
    e.producer = producer_;
    outputs.emplace_back(topic, e);
    return true;
  }
  bool EmitAs(const std::string& producer, const std::string& topic, const domain::Event& cause,
              const std::string& aggregate_id, const std::string& tag, domain::EventPayload payload) override {
    producer_ = producer;
    const bool emitted = Emit(topic, cause, aggregate_id, producer + "/" + tag, std::move(payload));
    producer_.clear();
    return emitted;
  }
  std::optional<std::string> Get(const std::string& key) override {
    auto it = kv.find(key);
    return it == kv.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  void Put(const std::string& key, std::string value) override { kv[key] = std::move(value); }
  void Delete(const std::string& key) override { kv.erase(key); }
  int64_t now_ms() const override { return 1000; }

  template <typename T>
  int Count() const {
    int n = 0;
    for (const auto& [topic, e] : outputs) n += std::holds_alternative<T>(e.payload) ? 1 : 0;
    return n;
  }
  std::vector<std::pair<std::string, domain::Event>> outputs;
  std::map<std::string, std::string> kv;
  std::set<std::string> in_log;  // tags whose output Emit reports as already in the log
  std::set<domain::EventId> in_log_ids;  // outputs Emit reports as already in the log

 private:
  std::string producer_;  // set while EmitAs emits
};

// Feeds `event` to `reactor` as the runner would: apply, then react.
void Feed(Reactor& reactor, domain::OrderState& state, const domain::Event& event, FakeContext& ctx) {
  const domain::OrderStatus before = state.status;
  domain::Apply(state, event);
  EXPECT_TRUE(reactor.OnOrderEvent(event, before, state, ctx).ok());
}

TEST(PaymentReactorTest, AuthorizesOrDeclinesByTheGatewayRules) {
  auto payment = MakePaymentReactor({.max_amount_minor = 5000, .blocked_customers = {"mallory"}});
  FakeContext ctx;
  domain::OrderState ok, blocked, big;
  Feed(*payment, ok, PlacedEvent("o-ok", "alice"), ctx);  // 29.00 EUR
  Feed(*payment, blocked, PlacedEvent("o-blocked", "mallory"), ctx);
  domain::Event expensive = PlacedEvent("o-big", "bob");
  std::get<domain::OrderPlaced>(expensive.payload).total_minor = 9999;
  Feed(*payment, big, expensive, ctx);
  EXPECT_EQ(ctx.Count<domain::PaymentAuthorized>(), 1);
  EXPECT_EQ(ctx.Count<domain::PaymentDeclined>(), 2);
  EXPECT_EQ(ctx.Count<domain::OrderCancelled>(), 2);
}

// Two orders placed in the same millisecond (their UUIDv7 ids share the first
// 15 characters) get payment ids of their own.
TEST(PaymentReactorTest, OrdersPlacedTogetherGetDifferentPaymentIds) {
  auto payment = MakePaymentReactor({});
  FakeContext ctx;
  domain::OrderState a, b;
  Feed(*payment, a, PlacedEvent("019af1c2-3d4e-7a01-8b2c-0d1e2f3a4b5c", "alice"), ctx);
  Feed(*payment, b, PlacedEvent("019af1c2-3d4e-7f77-9c8d-7e6f5a4b3c2d", "alice"), ctx);
  ASSERT_EQ(ctx.Count<domain::PaymentAuthorized>(), 2);
  std::set<std::string> ids;
  for (const auto& [topic, e] : ctx.outputs) {
    if (const auto* paid = std::get_if<domain::PaymentAuthorized>(&e.payload)) ids.insert(paid->payment_id);
  }
  EXPECT_EQ(ids, (std::set<std::string>{"pay-2f3a4b5c", "pay-5a4b3c2d"}));
}

// A customer cancel that lands before the authorization in the log: the
// authorization arrives for a cancelled order and is refunded, once.
TEST(PaymentReactorTest, AuthorizationArrivingAfterACancelIsRefundedOnce) {
  auto payment = MakePaymentReactor({});
  FakeContext ctx;
  domain::OrderState order;
  Feed(*payment, order, PlacedEvent("o-1"), ctx);
  ASSERT_EQ(ctx.Count<domain::PaymentAuthorized>(), 1);
  Feed(*payment, order, LifecycleEvent("o-1", 1, domain::OrderCancelled{"nope", domain::CancelSource::kCustomer}),
       ctx);
  EXPECT_EQ(ctx.Count<domain::PaymentRefunded>(), 0) << "nothing was paid yet";
  Feed(*payment, order, LifecycleEvent("o-1", 2, domain::PaymentAuthorized{"pay-1", 2900}), ctx);
  EXPECT_EQ(ctx.Count<domain::PaymentRefunded>(), 1);
  // Any later path to a refund finds it done.
  Feed(*payment, order, LifecycleEvent("o-1", 3, domain::OrderCancelled{"again", domain::CancelSource::kSystem}),
       ctx);
  EXPECT_EQ(ctx.Count<domain::PaymentRefunded>(), 1);
}

TEST(InventoryReactorTest, SkuOwnerNeverGoesBelowZeroAndReleasesOnce) {
  auto catalog = *domain::Catalog::Parse("SKU-A,A,100,3\n");
  auto inventory = MakeInventoryReactor(catalog);
  FakeContext ctx;
  auto request = [&](const std::string& order, int qty, uint32_t n) {
    EXPECT_TRUE(inventory
                    ->OnEvent(eventstore::kInventoryTopic,
                              LifecycleEvent("SKU-A", n, domain::StockReservationRequested{"SKU-A", order, qty}), ctx)
                    .ok());
  };
  request("o-1", 2, 1);
  request("o-2", 2, 2);  // only 1 left
  request("o-1", 2, 3);  // the same request again: decided already
  EXPECT_EQ(ctx.Count<domain::InventoryLineReserved>(), 1);
  EXPECT_EQ(ctx.Count<domain::InventoryLineRejected>(), 1);
  EXPECT_EQ(ctx.kv["stock/SKU-A"], "1");

  auto release = [&](const std::string& order, uint32_t n) {
    EXPECT_TRUE(inventory
                    ->OnEvent(eventstore::kInventoryTopic,
                              LifecycleEvent("SKU-A", n, domain::StockReleaseRequested{"SKU-A", order, 2}), ctx)
                    .ok());
  };
  release("o-1", 4);
  release("o-1", 5);  // twice: released once
  release("o-2", 6);  // never reserved: nothing
  EXPECT_EQ(ctx.Count<domain::InventoryLineReleased>(), 1);
  EXPECT_EQ(ctx.kv["stock/SKU-A"], "3");

  domain::Event added = LifecycleEvent("SKU-A", 7, domain::StockAdded{"SKU-A", 10});
  EXPECT_TRUE(inventory->OnEvent(eventstore::kInventoryTopic, added, ctx).ok());
  EXPECT_TRUE(inventory->OnEvent(eventstore::kInventoryTopic, added, ctx).ok());  // re-delivered
  EXPECT_EQ(ctx.kv["stock/SKU-A"], "13");
}

// Stock for a SKU nobody can order fails the record (the runner parks it),
// with a message that says how to fix it; a reservation for such a SKU is
// just rejected.
TEST(InventoryReactorTest, StockAddedForASkuNotInTheCatalogFailsAndChangesNothing) {
  auto catalog = *domain::Catalog::Parse("SKU-A,A,100,3\n");
  auto inventory = MakeInventoryReactor(catalog);
  FakeContext ctx;
  const Status failed = inventory->OnEvent(
      eventstore::kInventoryTopic, LifecycleEvent("SKU-TEAPOT", 1, domain::StockAdded{"SKU-TEAPOT", 5}), ctx);
  ASSERT_FALSE(failed.ok()) << "StockAdded for an unknown SKU was accepted";
  EXPECT_EQ(failed.message(),
            "StockAdded for SKU-TEAPOT, which is not in the catalog: add it to the catalog file (--catalog) and "
            "restart, then redrive this dead letter");
  EXPECT_TRUE(ctx.kv.empty());
  EXPECT_TRUE(ctx.outputs.empty());

  EXPECT_TRUE(inventory
                  ->OnEvent(eventstore::kInventoryTopic,
                            LifecycleEvent("SKU-TEAPOT", 2, domain::StockReservationRequested{"SKU-TEAPOT", "o-1", 1}),
                            ctx)
                  .ok());
  EXPECT_EQ(ctx.Count<domain::InventoryLineRejected>(), 1);

  // With the SKU in the catalog, the same event adds its stock.
  auto fixed_catalog = *domain::Catalog::Parse("SKU-A,A,100,3\nSKU-TEAPOT,Teapot,4590,0\n");
  auto fixed = MakeInventoryReactor(fixed_catalog);
  EXPECT_TRUE(
      fixed->OnEvent(eventstore::kInventoryTopic, LifecycleEvent("SKU-TEAPOT", 1, domain::StockAdded{"SKU-TEAPOT", 5}), ctx)
          .ok());
  EXPECT_EQ(ctx.kv["stock/SKU-TEAPOT"], "5");
}

TEST(InventoryReactorTest, OrderSideReservesAllLinesOrRejectsAndReleases) {
  auto inventory = MakeInventoryReactor(domain::Catalog::Demo());
  FakeContext ctx;
  domain::OrderState order;
  domain::Event placed = PlacedEvent("o-1");
  std::get<domain::OrderPlaced>(placed.payload).lines = {{"SKU-MUG", 2, 1450}, {"SKU-KETTLE", 1, 5990}};
  Feed(*inventory, order, placed, ctx);
  Feed(*inventory, order, LifecycleEvent("o-1", 1, domain::PaymentAuthorized{"p", 8890}), ctx);
  EXPECT_EQ(ctx.Count<domain::StockReservationRequested>(), 2);
  Feed(*inventory, order, LifecycleEvent("o-1", 2, domain::InventoryLineReserved{"SKU-MUG", 2}), ctx);
  Feed(*inventory, order, LifecycleEvent("o-1", 3, domain::InventoryLineRejected{"SKU-KETTLE", 1, 0}), ctx);
  EXPECT_EQ(ctx.Count<domain::InventoryReserved>(), 0);
  EXPECT_EQ(ctx.Count<domain::InventoryRejected>(), 1);
  EXPECT_EQ(ctx.Count<domain::StockReleaseRequested>(), 1) << "the reserved mug goes back";
}

// A notification whose NotificationSent another instance already put in the
// log is not written to this instance's outbox; one that is not is written once.
TEST(NotificationReactorTest, ARequestAlreadySentByAnyInstanceIsNotWrittenAgain) {
  TempDir dir;
  const std::string outbox = dir.Sub("outbox.log");
  auto notification = MakeNotificationReactor(outbox);
  notification->Load({});
  FakeContext ctx;
  auto request = [](const std::string& order, int seq) {
    return LifecycleEvent(order, seq,
                          domain::NotificationRequested{"n-" + order, "order.placed", "alice", domain::NotificationPriority::kLow});
  };
  ctx.in_log = {"sent"};  // the log already holds this request's NotificationSent
  EXPECT_TRUE(notification->OnEvent(eventstore::kNotificationsLowTopic, request("o-1", 1), ctx).ok());
  ASSERT_TRUE(notification->FlushSideEffects().ok());
  EXPECT_EQ(ctx.Count<domain::NotificationSent>(), 0);
  ctx.in_log.clear();
  EXPECT_TRUE(notification->OnEvent(eventstore::kNotificationsLowTopic, request("o-2", 1), ctx).ok());
  EXPECT_TRUE(notification->OnEvent(eventstore::kNotificationsLowTopic, request("o-2", 1), ctx).ok());  // re-delivered
  ASSERT_TRUE(notification->FlushSideEffects().ok());
  EXPECT_EQ(ctx.Count<domain::NotificationSent>(), 2) << "recorded again: the log drops the duplicate";
  std::ifstream in(outbox);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("n-o-2"), std::string::npos);
}

// The outbox stands in for the log only for batches not stored yet: once a
// batch is stored the outputs index holds its NotificationSent records. A
// (re)start reads the outbox only past where it ended when the last batch was
// stored, and a line of a batch that was not stored is never written again,
// however many notifications of the other class are sent and however many
// restarts happen before its request comes back.
TEST(NotificationReactorTest, ReadsOnlyTheLinesOfBatchesNotStoredAndForgetsStoredOnes) {
  TempDir dir;
  const std::string outbox = dir.Sub("outbox.log");
  const std::string old_line = "alice\torder.placed\to-old\tn-o-old\n";
  {
    std::ofstream out(outbox, std::ios::binary);
    out << old_line << "alice\torder.placed\to-tail\tn-o-tail\n";  // o-tail's batch was not stored
  }
  auto request = [](const std::string& order, domain::NotificationPriority priority) {
    return LifecycleEvent(order, 1, domain::NotificationRequested{"n-" + order, "order.placed", "alice", priority});
  };
  auto lines = [&] {
    std::ifstream in(outbox);
    std::vector<std::string> all;
    for (std::string line; std::getline(in, line);) all.push_back(line);
    return all;
  };
  FakeContext ctx;
  // What the runner does with a batch: side effects flushed, then stored
  // (its outputs into the outputs index).
  auto flush = [&](Reactor& r) {
    r.OnTick(ctx);
    ASSERT_TRUE(r.FlushSideEffects().ok());
  };
  auto store = [&](Reactor& r, size_t outputs) {
    ASSERT_LE(outputs, ctx.outputs.size());
    for (size_t i = 0; i < outputs; ++i) ctx.in_log_ids.insert(ctx.outputs[i].second.id);
    ctx.outputs.erase(ctx.outputs.begin(), ctx.outputs.begin() + static_cast<ptrdiff_t>(outputs));
    r.Stored();
  };

  auto notification = MakeNotificationReactor(outbox);
  notification->Load({{"outbox_end", std::to_string(old_line.size())}});
  constexpr int kHigh = 2000;
  for (int batch = 0; batch < kHigh / 100; ++batch) {
    for (int i = 0; i < 100; ++i) {
      const std::string order = "h-" + std::to_string(batch * 100 + i);
      ASSERT_TRUE(notification->OnEvent(eventstore::kNotificationsHighTopic,
                                        request(order, domain::NotificationPriority::kHigh), ctx).ok());
    }
    flush(*notification);
    store(*notification, 100);
  }
  EXPECT_EQ(ctx.kv["outbox_end"], std::to_string(std::filesystem::file_size(outbox)));
  ASSERT_EQ(lines().size(), 2u + kHigh);
  EXPECT_EQ(ctx.kv.count("carried/n-o-tail"), 1u) << "the stored end is past o-tail's line";
  // Restarted again before o-tail's request comes back: the stored end is
  // past its line now, and the state carries its id.
  notification = MakeNotificationReactor(outbox);
  notification->Load(ctx.kv);
  ASSERT_TRUE(notification->OnEvent(eventstore::kNotificationsLowTopic,
                                    request("o-tail", domain::NotificationPriority::kLow), ctx).ok());
  EXPECT_EQ(ctx.kv.count("carried/n-o-tail"), 0u) << "confirmed with this batch";
  ASSERT_TRUE(notification->OnEvent(eventstore::kNotificationsLowTopic,
                                    request("o-new", domain::NotificationPriority::kLow), ctx).ok());
  flush(*notification);
  // Handled again while its batch is not stored: not written again.
  ASSERT_TRUE(notification->OnEvent(eventstore::kNotificationsLowTopic,
                                    request("o-new", domain::NotificationPriority::kLow), ctx).ok());
  flush(*notification);
  ASSERT_EQ(lines().size(), 3u + kHigh);
  EXPECT_EQ(lines().back(), "alice\torder.placed\to-new\tn-o-new");
  store(*notification, 2);  // the first batch: o-tail's and o-new's NotificationSent
  store(*notification, 1);
  // Both stored: the reactor keeps nothing of them, the outputs index answers
  // (here it is made to forget o-new, to show that memory does not).
  ctx.in_log_ids.clear();
  ASSERT_TRUE(notification->OnEvent(eventstore::kNotificationsLowTopic,
                                    request("o-new", domain::NotificationPriority::kLow), ctx).ok());
  flush(*notification);
  store(*notification, 1);
  ASSERT_EQ(lines().size(), 4u + kHigh);

  // A restart with the state of the last stored batch and one more flushed
  // but not stored: only that batch's line is read.
  const auto stored_state = ctx.kv;
  ASSERT_TRUE(notification->OnEvent(eventstore::kNotificationsLowTopic,
                                    request("o-crash", domain::NotificationPriority::kLow), ctx).ok());
  flush(*notification);
  ASSERT_EQ(lines().size(), 5u + kHigh);
  auto restarted = MakeNotificationReactor(outbox);
  restarted->Load(stored_state);
  FakeContext after;
  for (const std::string order : {"o-crash", "o-old"}) {
    ASSERT_TRUE(restarted->OnEvent(eventstore::kNotificationsLowTopic,
                                   request(order, domain::NotificationPriority::kLow), after).ok());
  }
  ASSERT_TRUE(restarted->FlushSideEffects().ok());
  // o-old's line is before the stored end: its NotificationSent is in the
  // log, which this fake context does not know, so it is written again here.
  // That it is shows the line was not read.
  ASSERT_EQ(lines().size(), 6u + kHigh);
  EXPECT_EQ(lines().back(), "alice\torder.placed\to-old\tn-o-old");
}

// A default payload of the event type with index `index`.
template <size_t... I>
domain::EventPayload PayloadAt(size_t index, std::index_sequence<I...>) {
  domain::EventPayload payload;
  ((index == I ? (payload = domain::EventPayload(std::in_place_index<I>), 0) : 0), ...);
  return payload;
}

// A reactor's copy of an order lacks the events it skips (Reactor::Skips),
// so it may skip only events that move no order from any status; and the
// fields it reads must come from events it keeps: payment keeps
// PaymentRefunded (what is left to refund), inventory its per-line answers.
TEST(ReactorSkipsTest, OnlyEventsThatMoveNoStatusAreSkippedAndEachKeepsWhatItReads) {
  std::vector<std::pair<std::string, std::unique_ptr<Reactor>>> reactors;
  reactors.emplace_back("payment", MakePaymentReactor({}));
  reactors.emplace_back("inventory", MakeInventoryReactor(domain::Catalog::Demo()));
  reactors.emplace_back("shipping", MakeShippingReactor());
  reactors.emplace_back("delivery", MakeDeliveryReactor(std::chrono::milliseconds(0)));
  TempDir dir;
  reactors.emplace_back("notification", MakeNotificationReactor(dir.Sub("outbox.log")));
  std::map<std::string, std::set<std::string>> skipped;
  for (const auto& [name, reactor] : reactors) {
    for (size_t i = 0; i < domain::kEventTypeCount; ++i) {
      const std::string type(domain::EventTypeNameAt(i));
      if (!reactor->Skips(type)) continue;
      skipped[name].insert(type);
      for (int from = 0; from <= static_cast<int>(domain::OrderStatus::kCancelled); ++from) {
        domain::OrderState state;
        state.order_id = "o-1";
        state.status = static_cast<domain::OrderStatus>(from);
        domain::Event event = LifecycleEvent("o-1", 7, PayloadAt(i, std::make_index_sequence<domain::kEventTypeCount>()));
        domain::Apply(state, event);
        EXPECT_EQ(static_cast<int>(state.status), from) << name << " skips " << type << ", which moves an order from "
                                                        << domain::OrderStatusName(static_cast<domain::OrderStatus>(from));
      }
    }
  }
  EXPECT_FALSE(skipped["payment"].count("PaymentRefunded"));
  EXPECT_FALSE(skipped["inventory"].count("InventoryLineReserved"));
  EXPECT_FALSE(skipped["inventory"].count("InventoryLineRejected"));
  EXPECT_FALSE(skipped["inventory"].count("InventoryLineReleased"));
  // Each skips something: the point of it (NotificationSent is on orders.events for every order).
  for (const auto& [name, reactor] : reactors) EXPECT_TRUE(skipped[name].count("NotificationSent")) << name;
}

// Fulfillment hosts the notification router: it asks for exactly what the
// notification service asks for (same topics, same tags: the same ids), and
// sends nothing itself.
TEST(NotificationReactorTest, TheRouterAloneAsksForWhatTheServiceAsksForAndSendsNothing) {
  TempDir dir;
  auto full = MakeNotificationReactor(dir.Sub("outbox.log"));
  auto router = MakeNotificationRouter();
  FakeContext full_ctx, router_ctx;
  domain::OrderState a, b;
  const std::vector<domain::Event> events = {
      PlacedEvent("o-1"), LifecycleEvent("o-1", 1, domain::PaymentAuthorized{"p", 2900}),
      LifecycleEvent("o-1", 2, domain::InventoryReserved{"r", {}}), LifecycleEvent("o-1", 3, domain::OrderShipped{"DHL", "T"}),
      LifecycleEvent("o-1", 4, domain::OrderDelivered{"alice"})};
  for (const auto& e : events) {
    Feed(*full, a, e, full_ctx);
    Feed(*router, b, e, router_ctx);
  }
  ASSERT_EQ(full_ctx.Count<domain::NotificationRequested>(), 3);  // placed, shipped, delivered
  ASSERT_EQ(router_ctx.outputs.size(), full_ctx.outputs.size());
  for (size_t i = 0; i < full_ctx.outputs.size(); ++i) {
    EXPECT_EQ(router_ctx.outputs[i].first, full_ctx.outputs[i].first);
    EXPECT_EQ(router_ctx.outputs[i].second.id, full_ctx.outputs[i].second.id);
  }
  // A request reaching the router is not sent.
  const domain::Event request = router_ctx.outputs.front().second;
  EXPECT_TRUE(router->OnEvent(eventstore::kNotificationsLowTopic, request, router_ctx).ok());
  EXPECT_TRUE(router->FlushSideEffects().ok());
  EXPECT_EQ(router_ctx.Count<domain::NotificationSent>(), 0);
  EXPECT_TRUE(full->OnEvent(eventstore::kNotificationsLowTopic, request, full_ctx).ok());
  EXPECT_EQ(full_ctx.Count<domain::NotificationSent>(), 1) << "the service sends it";
}

// Fulfillment's host: each hosted reactor emits under its own name, with the
// ids it has as a service of its own, keeps its state under its name, reads
// only its own topics, and a failure is its own (Reactor::FailedIn).
TEST(HostReactorTest, EachHostedReactorEmitsAsItselfAndKeepsItsStateApart) {
  auto catalog = *domain::Catalog::Parse("SKU-MUG,Mug,1450,100\n");
  std::vector<HostedReactor> hosted;
  hosted.push_back({"payment", MakePaymentReactor({}), {}});
  hosted.push_back({"inventory", MakeInventoryReactor(catalog), {eventstore::kInventoryTopic}});
  hosted.push_back({"shipping", MakeShippingReactor(), {}});
  hosted.push_back({"delivery", MakeDeliveryReactor(std::chrono::milliseconds(0)), {}});
  hosted.push_back({"notification", MakeNotificationRouter(), {}});  // as fulfillment hosts it
  auto host = MakeHostReactor(std::move(hosted));
  FakeContext ctx;
  domain::OrderState order;
  const domain::Event placed = PlacedEvent("o-1");
  Feed(*host, order, placed, ctx);
  ASSERT_EQ(ctx.outputs.size(), 2u);  // the authorization, the "order placed" notification request
  ASSERT_EQ(ctx.Count<domain::NotificationRequested>(), 1);
  const domain::Event& asked = ctx.outputs[1].second;
  EXPECT_EQ(asked.producer, "notification");
  EXPECT_EQ(asked.id, domain::DeriveEventId(placed.id, "notification/request/order.placed"))
      << "not the id the notification service gives it";
  const domain::Event& paid = ctx.outputs[0].second;
  EXPECT_TRUE(std::holds_alternative<domain::PaymentAuthorized>(paid.payload));
  EXPECT_EQ(paid.producer, "payment");
  EXPECT_EQ(paid.id, domain::DeriveEventId(placed.id, "payment/authorize")) << "not the id payment has on its own";
  EXPECT_EQ(ctx.kv.count("payment/charge/o-1"), 1u) << "payment's state is not under payment/";

  // The authorization reaches inventory only; its request, on inventory's
  // own topic, goes to inventory only.
  Feed(*host, order, paid, ctx);
  ASSERT_EQ(ctx.Count<domain::StockReservationRequested>(), 1);
  const domain::Event request = ctx.outputs.back().second;
  EXPECT_EQ(request.producer, "inventory");
  ASSERT_TRUE(host->OnEvent(eventstore::kInventoryTopic, request, ctx).ok());
  EXPECT_EQ(ctx.Count<domain::InventoryLineReserved>(), 1);
  EXPECT_EQ(ctx.kv["inventory/stock/SKU-MUG"], "98");
  EXPECT_TRUE(host->OnEvent(eventstore::kNotificationsHighTopic, request, ctx).ok());  // nobody's topic
  EXPECT_EQ(ctx.Count<domain::InventoryLineReserved>(), 1);

  // Skipped undecoded only when every hosted reactor skips it.
  EXPECT_TRUE(host->Skips(domain::EventTypeName(domain::NotificationSent{})));
  EXPECT_FALSE(host->Skips(domain::EventTypeName(domain::PaymentRefunded{}))) << "payment reads refunds";
  EXPECT_FALSE(host->Skips(domain::EventTypeName(domain::InventoryLineReserved{}))) << "inventory reads its lines";

  // Inventory reads its stock under inventory/: a stock of 1 cannot cover two mugs.
  ctx.kv["inventory/stock/SKU-MUG"] = "1";
  ctx.kv["stock/SKU-MUG"] = "100";  // nobody's
  ASSERT_TRUE(host->OnEvent(eventstore::kInventoryTopic,
                            LifecycleEvent("SKU-MUG", 9, domain::StockReservationRequested{"SKU-MUG", "o-2", 2}), ctx)
                  .ok());
  EXPECT_EQ(ctx.Count<domain::InventoryLineRejected>(), 1);

  // Load hands each its own keys, without the prefix: delivery's due
  // delivery comes back and is delivered on the next tick, as delivery.
  const domain::Event shipped = LifecycleEvent("o-3", 4, domain::OrderShipped{"DHL", "T-1"});
  const std::string due = "0|" + domain::UuidToString(shipped.id) + "|" + domain::UuidToString(shipped.id) + "|bob";
  host->Load({{"delivery/due/o-3", due}, {"shipping/due/o-4", due}, {"payment/charge/o-2", "authorized"}});
  host->OnTick(ctx);
  ASSERT_EQ(ctx.Count<domain::OrderDelivered>(), 1) << "shipping's key reached delivery, or delivery's did not";
  EXPECT_EQ(ctx.outputs.back().second.producer, "delivery");
  EXPECT_EQ(ctx.outputs.back().second.order_id, "o-3");
  EXPECT_EQ(ctx.outputs.back().second.id, domain::DeriveEventId(shipped.id, "delivery/deliver"));

  const Status failed =
      host->OnEvent(eventstore::kInventoryTopic, LifecycleEvent("SKU-X", 1, domain::StockAdded{"SKU-X", 5}), ctx);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(host->FailedIn(), "inventory") << "the dead letter is parked in the failing reactor's name";
}

}  // namespace
}  // namespace orderflow::services

#include "domain/order.h"

#include <gtest/gtest.h>

#include <random>

namespace orderflow::domain {
namespace {

const Catalog& TestCatalog() {
  static const Catalog catalog = Catalog::Demo();
  return catalog;
}

EventId IdOf(uint8_t n) {
  EventId id{};
  id[15] = n;
  return id;
}

// Decides a command, applies its events, and returns the decision.
Decision DecideAndApply(OrderState& state, const Command& command) {
  Decision d = Decide(state, command, TestCatalog());
  for (auto& payload : d.events) {
    Event e;
    e.id = IdOf(static_cast<uint8_t>(state.version + 1));
    e.order_id = state.order_id.empty() ? "o-1" : state.order_id;
    e.occurred_at_ms = 1000 * (state.version + 1);
    e.payload = payload;
    Apply(state, e);
  }
  return d;
}

OrderState Placed() {
  OrderState s;
  s.order_id = "o-1";
  EXPECT_TRUE(DecideAndApply(s, PlaceOrder{"alice", {{"SKU-MUG", 2}, {"SKU-KETTLE", 1}}}).accepted());
  return s;
}

TEST(OrderDecideTest, PlaceOrderPricesLinesFromCatalog) {
  OrderState s;
  s.order_id = "o-1";
  Decision d = Decide(s, PlaceOrder{"alice", {{"SKU-MUG", 2}, {"SKU-KETTLE", 1}}}, TestCatalog());
  ASSERT_TRUE(d.accepted());
  ASSERT_EQ(d.events.size(), 1u);
  const auto& placed = std::get<OrderPlaced>(d.events[0]);
  EXPECT_EQ(placed.customer_id, "alice");
  EXPECT_EQ(placed.currency, "EUR");
  ASSERT_EQ(placed.lines.size(), 2u);
  EXPECT_EQ(placed.lines[0].unit_price_minor, 1450);
  EXPECT_EQ(placed.total_minor, 2 * 1450 + 5990);
}

struct InvalidPlace {
  const char* name;
  PlaceOrder command;
  RejectReason reason;
};

TEST(OrderDecideTest, InvalidPlaceOrdersAreRejectedWithTheirReason) {
  std::vector<RequestedLine> too_many;
  for (size_t i = 0; i <= kMaxLinesPerOrder; ++i) too_many.push_back({"SKU-MUG", 1});
  const InvalidPlace cases[] = {
      {"missing customer", {"", {{"SKU-MUG", 1}}}, RejectReason::kMissingCustomer},
      {"empty order", {"alice", {}}, RejectReason::kEmptyOrder},
      {"zero quantity", {"alice", {{"SKU-MUG", 0}}}, RejectReason::kNonPositiveQuantity},
      {"negative quantity", {"alice", {{"SKU-MUG", -3}}}, RejectReason::kNonPositiveQuantity},
      {"huge quantity", {"alice", {{"SKU-MUG", kMaxQuantityPerLine + 1}}}, RejectReason::kQuantityTooLarge},
      {"unknown sku", {"alice", {{"SKU-NOPE", 1}}}, RejectReason::kUnknownSku},
      {"unknown sku after valid line", {"alice", {{"SKU-MUG", 1}, {"SKU-NOPE", 1}}}, RejectReason::kUnknownSku},
      {"duplicate sku", {"alice", {{"SKU-MUG", 1}, {"SKU-MUG", 2}}}, RejectReason::kDuplicateSku},
      {"too many lines", {"alice", too_many}, RejectReason::kTooManyLines},
  };
  for (const auto& c : cases) {
    OrderState s;
    s.order_id = "o-1";
    Decision d = Decide(s, c.command, TestCatalog());
    ASSERT_FALSE(d.accepted()) << c.name;
    EXPECT_EQ(d.rejection->reason, c.reason) << c.name << ": " << d.rejection->message;
    EXPECT_TRUE(d.events.empty()) << c.name;
    EXPECT_FALSE(d.rejection->message.empty()) << c.name;
  }
}

TEST(OrderDecideTest, PlacingAnExistingOrderIsRejected) {
  OrderState s = Placed();
  Decision d = Decide(s, PlaceOrder{"alice", {{"SKU-MUG", 1}}}, TestCatalog());
  ASSERT_FALSE(d.accepted());
  EXPECT_EQ(d.rejection->reason, RejectReason::kOrderAlreadyExists);
}

TEST(OrderDecideTest, CommandsOnUnknownOrderAreRejected) {
  const Command commands[] = {CancelOrder{"x"},  AuthorizePayment{"p"}, DeclinePayment{"x"},
                              ReserveInventory{"r"}, RefundPayment{"x"}, ShipOrder{"c", "t"},
                              DeliverOrder{""},  RecordNotification{"n", "t", "r"}};
  for (const auto& c : commands) {
    OrderState s;
    s.order_id = "o-404";
    Decision d = Decide(s, c, TestCatalog());
    ASSERT_FALSE(d.accepted());
    EXPECT_EQ(d.rejection->reason, RejectReason::kOrderNotFound);
  }
}

// The happy path, one transition per row: command, status after.
TEST(OrderLifecycleTest, HappyPathMovesThroughEveryStatus) {
  OrderState s = Placed();
  EXPECT_EQ(s.status, OrderStatus::kPlaced);
  struct Step {
    Command command;
    OrderStatus after;
  };
  const Step steps[] = {
      {AuthorizePayment{"pay-1"}, OrderStatus::kPaymentAuthorized},
      {ReserveInventory{"res-1"}, OrderStatus::kInventoryReserved},
      {ShipOrder{"DHL", "TRK1"}, OrderStatus::kShipped},
      {DeliverOrder{"alice"}, OrderStatus::kDelivered},
  };
  for (const auto& step : steps) {
    Decision d = DecideAndApply(s, step.command);
    ASSERT_TRUE(d.accepted()) << d.rejection->message;
    EXPECT_EQ(s.status, step.after);
  }
  EXPECT_EQ(s.paid_minor, s.total_minor);
  EXPECT_EQ(s.carrier, "DHL");
  EXPECT_EQ(s.version, 5u);
  EXPECT_TRUE(IsTerminal(s.status));
  EXPECT_EQ(s.delivered_at_ms, 5000);
}

struct InvalidTransition {
  const char* name;
  std::vector<Command> setup;
  Command command;
  RejectReason reason;
};

TEST(OrderLifecycleTest, InvalidTransitionsAreRejected) {
  const InvalidTransition cases[] = {
      {"ship before reserve", {}, ShipOrder{"DHL", "T"}, RejectReason::kInvalidTransition},
      {"deliver before ship", {AuthorizePayment{"p"}}, DeliverOrder{""}, RejectReason::kInvalidTransition},
      {"reserve before payment", {}, ReserveInventory{"r"}, RejectReason::kInvalidTransition},
      {"authorize twice", {AuthorizePayment{"p"}}, AuthorizePayment{"p2"}, RejectReason::kInvalidTransition},
      {"decline after authorize", {AuthorizePayment{"p"}}, DeclinePayment{"x"}, RejectReason::kInvalidTransition},
      {"refund unpaid order", {}, RefundPayment{"x"}, RejectReason::kNothingToRefund},
      {"cancel after shipping",
       {AuthorizePayment{"p"}, ReserveInventory{"r"}, ShipOrder{"DHL", "T"}},
       CancelOrder{"too late"},
       RejectReason::kCannotCancelAfterShipping},
      {"cancel after delivery",
       {AuthorizePayment{"p"}, ReserveInventory{"r"}, ShipOrder{"DHL", "T"}, DeliverOrder{""}},
       CancelOrder{"too late"},
       RejectReason::kCannotCancelAfterShipping},
      {"cancel twice", {CancelOrder{"first"}}, CancelOrder{"second"}, RejectReason::kAlreadyCancelled},
      {"ship without carrier",
       {AuthorizePayment{"p"}, ReserveInventory{"r"}},
       ShipOrder{"", ""},
       RejectReason::kMissingField},
      {"notification without id", {}, RecordNotification{"", "t", "r"}, RejectReason::kMissingField},
  };
  for (const auto& c : cases) {
    OrderState s = Placed();
    for (const auto& setup : c.setup) ASSERT_TRUE(DecideAndApply(s, setup).accepted()) << c.name;
    const OrderState before = s;
    Decision d = Decide(s, c.command, TestCatalog());
    ASSERT_FALSE(d.accepted()) << c.name;
    EXPECT_EQ(d.rejection->reason, c.reason) << c.name << ": " << d.rejection->message;
    EXPECT_TRUE(d.events.empty()) << c.name;
    EXPECT_EQ(s, before) << c.name;
  }
}

TEST(OrderLifecycleTest, CancelBeforeShippingAndRefundWhatWasPaid) {
  OrderState s = Placed();
  ASSERT_TRUE(DecideAndApply(s, AuthorizePayment{"pay-1"}).accepted());
  ASSERT_TRUE(DecideAndApply(s, CancelOrder{"changed my mind"}).accepted());
  EXPECT_EQ(s.status, OrderStatus::kCancelled);
  EXPECT_EQ(s.cancel_reason, "changed my mind");
  Decision refund = DecideAndApply(s, RefundPayment{"cancelled"});
  ASSERT_TRUE(refund.accepted());
  EXPECT_EQ(std::get<PaymentRefunded>(refund.events[0]).amount_minor, s.total_minor);
  EXPECT_EQ(s.refunded_minor, s.paid_minor);
  // Refunding again finds nothing left.
  EXPECT_EQ(Decide(s, RefundPayment{"again"}, TestCatalog()).rejection->reason, RejectReason::kNothingToRefund);
}

TEST(OrderApplyTest, OutOfOrderEventsNeverMoveStatusBackwards) {
  OrderState s = Placed();
  ASSERT_TRUE(DecideAndApply(s, CancelOrder{"x"}).accepted());
  Event shipped{IdOf(50), "o-1", 9000, kCurrentSchemaVersion, {}, {}, "test", OrderShipped{"DHL", "T"}};
  Apply(s, shipped);
  EXPECT_EQ(s.status, OrderStatus::kCancelled);
  EXPECT_EQ(s.version, 3u);  // still counted
  EXPECT_TRUE(s.HasApplied(IdOf(50)));
  EXPECT_TRUE(s.carrier.empty());
}

// Apply is total and deterministic: any sequence of events, in any order,
// gives the same state on every run.
TEST(OrderApplyTest, RandomEventSequencesAreDeterministic) {
  const std::vector<EventPayload> payloads = {
      OrderPlaced{"c", {{"SKU-MUG", 1, 1450}}, 1450, "EUR"},
      PaymentAuthorized{"p", 1450},
      PaymentDeclined{"no", 1450},
      InventoryReserved{"r", {}},
      InventoryRejected{"SKU-MUG", 1, 0, "none"},
      PaymentRefunded{"p", 1450, "r"},
      OrderShipped{"DHL", "T"},
      OrderDelivered{"c"},
      OrderCancelled{"x", CancelSource::kSystem},
      NotificationSent{"n", "t", "c", NotificationPriority::kHigh},
  };
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<Event> events;
    int n = std::uniform_int_distribution<int>(0, 12)(rng);
    for (int i = 0; i < n; ++i) {
      Event e;
      e.id = IdOf(static_cast<uint8_t>(i));
      e.order_id = "o-r";
      e.occurred_at_ms = i;
      e.payload = payloads[std::uniform_int_distribution<size_t>(0, payloads.size() - 1)(rng)];
      events.push_back(e);
    }
    OrderState a, b, moved;
    for (const auto& e : events) Apply(a, e);
    for (const auto& e : events) Apply(b, e);
    for (Event e : events) Apply(moved, std::move(e));  // the rebuild's and the projector's way
    EXPECT_EQ(a, b);
    EXPECT_EQ(a, moved);
    EXPECT_EQ(a.version, static_cast<uint32_t>(n));
  }
}

TEST(EventIdTest, DerivedIdsAreUuidV5AndStable) {
  EventId dns;  // RFC 4122 DNS namespace: 6ba7b810-9dad-11d1-80b4-00c04fd430c8
  ASSERT_TRUE(UuidFromString("6ba7b810-9dad-11d1-80b4-00c04fd430c8", &dns));
  // Python: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org") == 886313e1-3b8a-5372-9b90-0c9aee199e5d
  EXPECT_EQ(UuidToString(DeriveEventId(dns, "python.org")), "886313e1-3b8a-5372-9b90-0c9aee199e5d");
  EXPECT_EQ(DeriveEventId(dns, "a"), DeriveEventId(dns, "a"));
  EXPECT_NE(DeriveEventId(dns, "a"), DeriveEventId(dns, "b"));
}

TEST(EventIdTest, UuidParsingRejectsMalformedText) {
  EventId out;
  EXPECT_FALSE(UuidFromString("", &out));
  EXPECT_FALSE(UuidFromString("6ba7b810-9dad-11d1-80b4-00c04fd430c", &out));
  EXPECT_FALSE(UuidFromString("6ba7b810x9dad-11d1-80b4-00c04fd430c8", &out));
  EXPECT_FALSE(UuidFromString("zba7b810-9dad-11d1-80b4-00c04fd430c8", &out));
}

TEST(EventSummaryTest, EveryEventTypeHasANameAndSummary) {
  const std::vector<std::pair<EventPayload, std::string>> cases = {
      {OrderPlaced{"c", {{"SKU-MUG", 2, 1450}}, 2900, "EUR"}, "OrderPlaced"},
      {PaymentAuthorized{"p", 100}, "PaymentAuthorized"},
      {PaymentDeclined{"limit", 100}, "PaymentDeclined"},
      {InventoryReserved{"r", {}}, "InventoryReserved"},
      {InventoryRejected{"SKU", 2, 1, "short"}, "InventoryRejected"},
      {PaymentRefunded{"p", 100, "why"}, "PaymentRefunded"},
      {OrderShipped{"DHL", "T1"}, "OrderShipped"},
      {OrderDelivered{"bob"}, "OrderDelivered"},
      {OrderCancelled{"x", CancelSource::kPayment}, "OrderCancelled"},
      {NotificationSent{"n", "tmpl", "c", NotificationPriority::kLow}, "NotificationSent"},
  };
  for (const auto& [payload, name] : cases) {
    EXPECT_EQ(EventTypeName(payload), name);
    EXPECT_FALSE(Summarize(payload).empty());
  }
  EXPECT_EQ(Summarize(cases[0].first), "customer c, 1 line(s), 2 unit(s), total 29.00 EUR");
}

}  // namespace
}  // namespace orderflow::domain

namespace orderflow {
namespace {

// Reading the value of a Result that holds an error is a bug: it stops the
// process naming the error, instead of reading an empty optional.
TEST(ResultDeathTest, ValueOfAnErrorAbortsNamingTheError) {
  Result<int> failed = Status::NotFound("order 42");
  EXPECT_DEATH({ (void)failed.value(); }, "holds an error \\(not found: order 42\\)");
  EXPECT_DEATH({ (void)*failed; }, "not found: order 42");
}

TEST(ResultTest, ValueOfASuccessIsTheValue) {
  Result<std::string> fine = std::string("kept");
  EXPECT_EQ(fine.value(), "kept");
  EXPECT_EQ(fine->size(), 4u);
}

}  // namespace
}  // namespace orderflow

// The order aggregate: commands are decided against the current state into
// events, and events are applied to state. Pure code: no I/O, no clocks, no
// randomness; ids and times come in with the command.
//
// `Apply` is total and deterministic: any event in any state yields a state,
// the same one every time, so replaying a log always rebuilds the same bytes.
// `Decide` never changes state; a rejected command yields a typed Rejection
// and no events.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "domain/catalog.h"
#include "domain/events.h"

namespace orderflow::domain {

enum class OrderStatus {
  kNone,  // no OrderPlaced seen yet
  kPlaced,
  kPaymentAuthorized,
  kPaymentDeclined,
  kInventoryReserved,
  kInventoryRejected,
  kShipped,
  kDelivered,
  kCancelled,
};

// "placed", "payment_authorized", ...; stable names used in JSON and indexes.
std::string_view OrderStatusName(OrderStatus status);
bool IsTerminal(OrderStatus status);

struct OrderState {
  std::string order_id;
  std::string customer_id;
  OrderStatus status = OrderStatus::kNone;
  std::vector<LineItem> lines;
  int64_t total_minor = 0;
  std::string currency;
  int64_t paid_minor = 0;
  int64_t refunded_minor = 0;
  int64_t placed_at_ms = 0;
  int64_t updated_at_ms = 0;
  int64_t delivered_at_ms = 0;
  std::string payment_id;
  std::string carrier;
  std::string tracking_number;
  std::string cancel_reason;
  uint32_t version = 0;  // events applied
  std::vector<EventId> applied_event_ids;
  uint32_t notifications_sent = 0;
  std::vector<std::string> reserved_skus;  // lines the SKU owners reserved and have not released
  bool inventory_line_rejected = false;
  std::string shipping_address;
  std::string payment_method;

  // True when every line of the order is reserved.
  bool AllLinesReserved() const { return !lines.empty() && reserved_skus.size() == lines.size(); }
  bool HasApplied(const EventId& id) const;
  bool operator==(const OrderState&) const = default;
};

// Applies one event. Events whose id was already applied must be filtered by the
// caller with HasApplied (the projection engine does); Apply itself records the id.
void Apply(OrderState& state, const Event& event);
// The same, taking the order id and an OrderPlaced's strings and lines instead
// of copying them: `event` keeps its id, type and stamps, not those fields.
void Apply(OrderState& state, Event&& event);

// ---- Commands ---------------------------------------------------------------

inline constexpr int32_t kMaxQuantityPerLine = 1000;
inline constexpr size_t kMaxLinesPerOrder = 50;

struct RequestedLine {
  std::string sku;
  int32_t quantity = 0;
};

struct PlaceOrder {
  std::string customer_id;
  std::vector<RequestedLine> lines;
  std::string shipping_address;
};
struct CancelOrder {
  std::string reason;
  CancelSource source = CancelSource::kCustomer;
};
struct AuthorizePayment {
  std::string payment_id;
  std::string method = "card";
};
struct DeclinePayment {
  std::string reason;
};
struct ReserveInventory {
  std::string reservation_id;
};
struct RejectInventory {
  std::string sku;
  int32_t requested = 0;
  int32_t available = 0;
};
struct RefundPayment {
  std::string reason;
};
struct ShipOrder {
  std::string carrier;
  std::string tracking_number;
};
struct DeliverOrder {
  std::string received_by;
};
struct RecordNotification {
  std::string notification_id;
  std::string template_name;
  std::string recipient;
  NotificationPriority priority = NotificationPriority::kLow;
};

using Command = std::variant<PlaceOrder, CancelOrder, AuthorizePayment, DeclinePayment, ReserveInventory,
                             RejectInventory, RefundPayment, ShipOrder, DeliverOrder, RecordNotification>;

enum class RejectReason {
  kMissingCustomer,
  kEmptyOrder,
  kTooManyLines,
  kNonPositiveQuantity,
  kQuantityTooLarge,
  kUnknownSku,
  kDuplicateSku,
  kOrderAlreadyExists,
  kOrderNotFound,
  kAlreadyCancelled,
  kCannotCancelAfterShipping,
  kInvalidTransition,
  kNothingToRefund,
  kMissingField,
};

std::string_view RejectReasonName(RejectReason reason);

struct Rejection {
  RejectReason reason;
  std::string message;  // one line a person can act on
};

struct Decision {
  std::vector<EventPayload> events;  // empty when rejected
  std::optional<Rejection> rejection;
  bool accepted() const { return !rejection.has_value(); }
};

// Decides `command` against `state`. The catalog prices PlaceOrder lines.
Decision Decide(const OrderState& state, const Command& command, const Catalog& catalog);

}  // namespace orderflow::domain

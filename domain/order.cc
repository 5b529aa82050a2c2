#include "domain/order.h"

#include <algorithm>
#include <set>

#include "domain/overloaded.h"

namespace orderflow::domain {
namespace {

Decision Reject(RejectReason reason, std::string message) {
  return Decision{{}, Rejection{reason, std::move(message)}};
}

Decision Accept(EventPayload event) {
  Decision d;
  d.events.push_back(std::move(event));
  return d;
}

bool CanCancel(OrderStatus s) {
  return s == OrderStatus::kPlaced || s == OrderStatus::kPaymentAuthorized ||
         s == OrderStatus::kPaymentDeclined || s == OrderStatus::kInventoryReserved ||
         s == OrderStatus::kInventoryRejected;
}

Decision InvalidTransition(const OrderState& state, std::string_view what) {
  return Reject(RejectReason::kInvalidTransition, "cannot " + std::string(what) + " order " + state.order_id +
                                                      " in status " + std::string(OrderStatusName(state.status)));
}

Decision DecidePlace(const OrderState& state, const PlaceOrder& cmd, const Catalog& catalog) {
  if (state.status != OrderStatus::kNone) {
    return Reject(RejectReason::kOrderAlreadyExists, "order " + state.order_id + " already exists");
  }
  if (cmd.customer_id.empty()) return Reject(RejectReason::kMissingCustomer, "an order needs a customer id");
  if (cmd.lines.empty()) return Reject(RejectReason::kEmptyOrder, "an order needs at least one line");
  if (cmd.lines.size() > kMaxLinesPerOrder) {
    return Reject(RejectReason::kTooManyLines,
                  "an order has at most " + std::to_string(kMaxLinesPerOrder) + " lines");
  }
  OrderPlaced placed;
  placed.customer_id = cmd.customer_id;
  placed.currency = catalog.currency();
  placed.shipping_address = cmd.shipping_address;
  std::set<std::string_view> seen;
  for (const RequestedLine& line : cmd.lines) {
    if (line.quantity <= 0) {
      return Reject(RejectReason::kNonPositiveQuantity,
                    "quantity of " + line.sku + " must be at least 1, got " + std::to_string(line.quantity));
    }
    if (line.quantity > kMaxQuantityPerLine) {
      return Reject(RejectReason::kQuantityTooLarge, "quantity of " + line.sku + " must be at most " +
                                                         std::to_string(kMaxQuantityPerLine));
    }
    const CatalogItem* item = catalog.Find(line.sku);
    if (item == nullptr) {
      return Reject(RejectReason::kUnknownSku, "unknown SKU '" + line.sku + "' (see `orderflow catalog`)");
    }
    if (!seen.insert(line.sku).second) {
      return Reject(RejectReason::kDuplicateSku, "SKU " + line.sku + " appears twice; merge the lines");
    }
    placed.lines.push_back({item->sku, line.quantity, item->price_minor});
    // Bounded by kMaxLinesPerOrder * kMaxQuantityPerLine * price: no overflow for sane prices.
    placed.total_minor += item->price_minor * line.quantity;
  }
  return Accept(std::move(placed));
}

}  // namespace

std::string_view OrderStatusName(OrderStatus status) {
  switch (status) {
    case OrderStatus::kNone: return "none";
    case OrderStatus::kPlaced: return "placed";
    case OrderStatus::kPaymentAuthorized: return "payment_authorized";
    case OrderStatus::kPaymentDeclined: return "payment_declined";
    case OrderStatus::kInventoryReserved: return "inventory_reserved";
    case OrderStatus::kInventoryRejected: return "inventory_rejected";
    case OrderStatus::kShipped: return "shipped";
    case OrderStatus::kDelivered: return "delivered";
    case OrderStatus::kCancelled: return "cancelled";
  }
  return "unknown";
}

bool IsTerminal(OrderStatus status) {
  return status == OrderStatus::kDelivered || status == OrderStatus::kCancelled;
}

std::string_view RejectReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::kMissingCustomer: return "missing_customer";
    case RejectReason::kEmptyOrder: return "empty_order";
    case RejectReason::kTooManyLines: return "too_many_lines";
    case RejectReason::kNonPositiveQuantity: return "non_positive_quantity";
    case RejectReason::kQuantityTooLarge: return "quantity_too_large";
    case RejectReason::kUnknownSku: return "unknown_sku";
    case RejectReason::kDuplicateSku: return "duplicate_sku";
    case RejectReason::kOrderAlreadyExists: return "order_already_exists";
    case RejectReason::kOrderNotFound: return "order_not_found";
    case RejectReason::kAlreadyCancelled: return "already_cancelled";
    case RejectReason::kCannotCancelAfterShipping: return "cannot_cancel_after_shipping";
    case RejectReason::kInvalidTransition: return "invalid_transition";
    case RejectReason::kNothingToRefund: return "nothing_to_refund";
    case RejectReason::kMissingField: return "missing_field";
  }
  return "unknown";
}

bool OrderState::HasApplied(const EventId& id) const {
  return std::find(applied_event_ids.begin(), applied_event_ids.end(), id) != applied_event_ids.end();
}

namespace {

// What every event does to an order, whatever its type.
void ApplyCommon(OrderState& s, const Event& event) {
  if (s.order_id.empty()) s.order_id = event.order_id;
  s.version += 1;
  s.updated_at_ms = std::max(s.updated_at_ms, event.occurred_at_ms);
  s.applied_event_ids.push_back(event.id);
}

// An order placed: its fields from the event, copied or (from an rvalue) moved.
template <typename Placed>
void SetPlaced(OrderState& s, Placed&& e, int64_t at_ms) {
  s.status = OrderStatus::kPlaced;
  s.customer_id = std::forward<Placed>(e).customer_id;
  s.lines = std::forward<Placed>(e).lines;
  s.total_minor = e.total_minor;
  s.currency = std::forward<Placed>(e).currency;
  s.shipping_address = std::forward<Placed>(e).shipping_address;
  s.placed_at_ms = at_ms;
}

}  // namespace

void Apply(OrderState& s, Event&& event) {
  auto* placed = std::get_if<OrderPlaced>(&event.payload);
  if (placed == nullptr || s.status != OrderStatus::kNone) return Apply(s, static_cast<const Event&>(event));
  if (s.order_id.empty()) s.order_id = std::move(event.order_id);
  ApplyCommon(s, event);
  SetPlaced(s, std::move(*placed), event.occurred_at_ms);
}

void Apply(OrderState& s, const Event& event) {
  ApplyCommon(s, event);

  // Status moves only along the lifecycle; an out-of-order event still counts
  // (version, history) but cannot move an order backwards or out of a terminal state.
  auto move_to = [&s](OrderStatus to, std::initializer_list<OrderStatus> from) {
    if (std::find(from.begin(), from.end(), s.status) != from.end()) s.status = to;
  };
  using S = OrderStatus;
  std::visit(Overloaded{
                 [&](const OrderPlaced& e) {
                   if (s.status == S::kNone) SetPlaced(s, e, event.occurred_at_ms);
                 },
                 [&](const PaymentAuthorized& e) {
                   s.paid_minor += e.amount_minor;
                   s.payment_id = e.payment_id;
                   s.payment_method = e.method;
                   move_to(S::kPaymentAuthorized, {S::kPlaced});
                 },
                 [&](const PaymentDeclined&) { move_to(S::kPaymentDeclined, {S::kPlaced}); },
                 [&](const InventoryReserved&) {
                   move_to(S::kInventoryReserved, {S::kPlaced, S::kPaymentAuthorized});
                 },
                 [&](const InventoryRejected&) {
                   move_to(S::kInventoryRejected, {S::kPlaced, S::kPaymentAuthorized});
                 },
                 [&](const PaymentRefunded& e) { s.refunded_minor += e.amount_minor; },
                 [&](const OrderShipped& e) {
                   if (s.status != S::kInventoryReserved) return;
                   s.status = S::kShipped;
                   s.carrier = e.carrier;
                   s.tracking_number = e.tracking_number;
                 },
                 [&](const OrderDelivered&) {
                   if (s.status != S::kShipped) return;
                   s.status = S::kDelivered;
                   s.delivered_at_ms = event.occurred_at_ms;
                 },
                 [&](const OrderCancelled& e) {
                   if (!CanCancel(s.status)) return;
                   s.status = S::kCancelled;
                   s.cancel_reason = e.reason;
                 },
                 [&](const NotificationSent&) { s.notifications_sent += 1; },
                 [&](const InventoryLineReserved& e) {
                   if (std::find(s.reserved_skus.begin(), s.reserved_skus.end(), e.sku) == s.reserved_skus.end()) {
                     s.reserved_skus.push_back(e.sku);
                   }
                 },
                 [&](const InventoryLineRejected&) { s.inventory_line_rejected = true; },
                 [&](const InventoryLineReleased& e) {
                   s.reserved_skus.erase(std::remove(s.reserved_skus.begin(), s.reserved_skus.end(), e.sku),
                                         s.reserved_skus.end());
                 },
                 // Not order events (they live on other topics): counted, nothing else.
                 [&](const StockAdded&) {},
                 [&](const StockReservationRequested&) {},
                 [&](const StockReleaseRequested&) {},
                 [&](const NotificationRequested&) {},
             },
             event.payload);
}

Decision Decide(const OrderState& state, const Command& command, const Catalog& catalog) {
  using S = OrderStatus;
  if (!std::holds_alternative<PlaceOrder>(command) && state.status == S::kNone) {
    return Reject(RejectReason::kOrderNotFound,
                  "order " + (state.order_id.empty() ? std::string("(no id)") : state.order_id) + " not found");
  }
  return std::visit(
      Overloaded{
          [&](const PlaceOrder& c) { return DecidePlace(state, c, catalog); },
          [&](const CancelOrder& c) {
            if (state.status == S::kCancelled) {
              return Reject(RejectReason::kAlreadyCancelled, "order " + state.order_id + " is already cancelled");
            }
            if (state.status == S::kShipped || state.status == S::kDelivered) {
              return Reject(RejectReason::kCannotCancelAfterShipping,
                            "order " + state.order_id + " has already shipped; it can no longer be cancelled");
            }
            return Accept(OrderCancelled{c.reason, c.source});
          },
          [&](const AuthorizePayment& c) {
            if (state.status != S::kPlaced) return InvalidTransition(state, "authorize payment for");
            if (c.payment_id.empty()) return Reject(RejectReason::kMissingField, "payment id is required");
            return Accept(PaymentAuthorized{c.payment_id, state.total_minor, c.method});
          },
          [&](const DeclinePayment& c) {
            if (state.status != S::kPlaced) return InvalidTransition(state, "decline payment for");
            return Accept(PaymentDeclined{c.reason, state.total_minor});
          },
          [&](const ReserveInventory& c) {
            if (state.status != S::kPaymentAuthorized) return InvalidTransition(state, "reserve inventory for");
            return Accept(InventoryReserved{c.reservation_id, state.lines});
          },
          [&](const RejectInventory& c) {
            if (state.status != S::kPaymentAuthorized) return InvalidTransition(state, "reject inventory for");
            return Accept(InventoryRejected{c.sku, c.requested, c.available, "insufficient stock"});
          },
          [&](const RefundPayment& c) {
            int64_t due = state.paid_minor - state.refunded_minor;
            if (due <= 0) {
              return Reject(RejectReason::kNothingToRefund, "order " + state.order_id + " has nothing to refund");
            }
            return Accept(PaymentRefunded{state.payment_id, due, c.reason});
          },
          [&](const ShipOrder& c) {
            if (state.status != S::kInventoryReserved) return InvalidTransition(state, "ship");
            if (c.carrier.empty() || c.tracking_number.empty()) {
              return Reject(RejectReason::kMissingField, "carrier and tracking number are required");
            }
            return Accept(OrderShipped{c.carrier, c.tracking_number});
          },
          [&](const DeliverOrder& c) {
            if (state.status != S::kShipped) return InvalidTransition(state, "deliver");
            return Accept(OrderDelivered{c.received_by});
          },
          [&](const RecordNotification& c) {
            if (c.notification_id.empty()) {
              return Reject(RejectReason::kMissingField, "notification id is required");
            }
            return Accept(NotificationSent{c.notification_id, c.template_name, c.recipient, c.priority});
          },
      },
      command);
}

}  // namespace orderflow::domain

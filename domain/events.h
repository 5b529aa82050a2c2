// Domain events of the order lifecycle, as plain C++ values.
//
// These mirror schemas/events.capnp but carry no serialization code: the codec
// in eventstore/ converts between the two. Money is always integer minor units.
// All types are regular values: copyable, comparable, thread-compatible.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace orderflow::domain {

// A 16-byte UUID. Event ids, causation and correlation ids use it.
using EventId = std::array<uint8_t, 16>;

// Canonical 8-4-4-4-12 lowercase hex form.
std::string UuidToString(const EventId& id);
// Parses the canonical form; returns false on anything else.
bool UuidFromString(std::string_view text, EventId* out);
// UUIDv5 (SHA-1, RFC 4122) of `name` in the namespace `ns`. Deterministic: a
// re-delivered input yields the same derived event id, so consumers can dedupe.
EventId DeriveEventId(const EventId& ns, std::string_view name);

// The schema version this code writes. Readers accept this and every older one.
inline constexpr uint16_t kCurrentSchemaVersion = 2;

struct LineItem {
  std::string sku;
  int32_t quantity = 0;
  int64_t unit_price_minor = 0;
  bool operator==(const LineItem&) const = default;
};

struct OrderPlaced {
  std::string customer_id;
  std::vector<LineItem> lines;
  int64_t total_minor = 0;
  std::string currency;
  std::string shipping_address;  // v2
  bool operator==(const OrderPlaced&) const = default;
};

struct PaymentAuthorized {
  std::string payment_id;
  int64_t amount_minor = 0;
  std::string method;  // v2
  bool operator==(const PaymentAuthorized&) const = default;
};

struct PaymentDeclined {
  std::string reason;
  int64_t amount_minor = 0;
  bool operator==(const PaymentDeclined&) const = default;
};

struct InventoryReserved {
  std::string reservation_id;
  std::vector<LineItem> lines;
  bool operator==(const InventoryReserved&) const = default;
};

struct InventoryRejected {
  std::string sku;
  int32_t requested = 0;
  int32_t available = 0;
  std::string reason;
  bool operator==(const InventoryRejected&) const = default;
};

struct PaymentRefunded {
  std::string payment_id;
  int64_t amount_minor = 0;
  std::string reason;
  bool operator==(const PaymentRefunded&) const = default;
};

struct OrderShipped {
  std::string carrier;
  std::string tracking_number;
  bool operator==(const OrderShipped&) const = default;
};

struct OrderDelivered {
  std::string received_by;
  bool operator==(const OrderDelivered&) const = default;
};

enum class CancelSource { kCustomer, kPayment, kInventory, kSystem };

struct OrderCancelled {
  std::string reason;
  CancelSource source = CancelSource::kCustomer;
  bool operator==(const OrderCancelled&) const = default;
};

enum class NotificationPriority { kLow, kHigh };

struct NotificationSent {
  std::string notification_id;
  std::string template_name;
  std::string recipient;
  NotificationPriority priority = NotificationPriority::kLow;
  bool operator==(const NotificationSent&) const = default;
};

// Per-line outcomes from the SKU's owner, on orders.events.
struct InventoryLineReserved {
  std::string sku;
  int32_t quantity = 0;
  bool operator==(const InventoryLineReserved&) const = default;
};
struct InventoryLineRejected {
  std::string sku;
  int32_t requested = 0;
  int32_t available = 0;
  bool operator==(const InventoryLineRejected&) const = default;
};
struct InventoryLineReleased {
  std::string sku;
  int32_t quantity = 0;
  bool operator==(const InventoryLineReleased&) const = default;
};

// The stock aggregate's inputs, on inventory.events (aggregate id = SKU).
struct StockAdded {
  std::string sku;
  int32_t quantity = 0;
  bool operator==(const StockAdded&) const = default;
};
struct StockReservationRequested {
  std::string sku;
  std::string order_id;
  int32_t quantity = 0;
  bool operator==(const StockReservationRequested&) const = default;
};
struct StockReleaseRequested {
  std::string sku;
  std::string order_id;
  int32_t quantity = 0;
  bool operator==(const StockReleaseRequested&) const = default;
};

// A notification to send, on notifications.high / notifications.low.
struct NotificationRequested {
  std::string notification_id;
  std::string template_name;
  std::string recipient;
  NotificationPriority priority = NotificationPriority::kLow;
  bool operator==(const NotificationRequested&) const = default;
};

using EventPayload =
    std::variant<OrderPlaced, PaymentAuthorized, PaymentDeclined, InventoryReserved,
                 InventoryRejected, PaymentRefunded, OrderShipped, OrderDelivered,
                 OrderCancelled, NotificationSent, InventoryLineReserved, InventoryLineRejected,
                 InventoryLineReleased, StockAdded, StockReservationRequested, StockReleaseRequested,
                 NotificationRequested>;

// The type name used in the `event-type` Kafka header and in history output,
// e.g. "OrderPlaced".
std::string_view EventTypeName(const EventPayload& payload);
inline constexpr size_t kEventTypeCount = std::variant_size_v<EventPayload>;
// EventTypeName of the payload alternative with this index (< kEventTypeCount).
std::string_view EventTypeNameAt(size_t index);
// One human-readable line describing the payload, for `orderflow history`.
std::string Summarize(const EventPayload& payload);

struct Event {
  EventId id{};
  std::string order_id;        // aggregate id (the SKU on inventory.events); Kafka record key
  int64_t occurred_at_ms = 0;  // Unix epoch milliseconds
  uint16_t schema_version = kCurrentSchemaVersion;
  EventId causation_id{};      // all zero when caused by a command
  EventId correlation_id{};
  std::string producer;        // service that wrote it, e.g. "order"
  EventPayload payload;
  bool operator==(const Event&) const = default;
};

}  // namespace orderflow::domain

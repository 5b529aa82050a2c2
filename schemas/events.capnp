# orderflow events, schema version 2 (version 1 is frozen in frozen/v1/).
#
# v1 -> v2: OrderPlaced.shippingAddress and PaymentAuthorized.method added;
# notification template names changed from "order_placed" to "order.placed"
# (same meaning, new spelling; the upcaster rewrites v1 names on read, and
# fills PaymentAuthorized.method with "card", the only method v1 knew).
#
# Evolution rules (checked by the compatibility test once a version is frozen):
# add fields and union members with new ordinals only; never renumber, retype or
# remove. A change of meaning bumps Envelope.schemaVersion and adds an upcaster.
@0xc518233fd074fc22;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("orderflow::schema");

struct LineItem {
  sku @0 :Text;
  quantity @1 :Int32;
  unitPriceMinor @2 :Int64;   # price of one unit in minor units (cents)
}

struct OrderPlaced {
  customerId @0 :Text;
  lines @1 :List(LineItem);
  totalMinor @2 :Int64;
  currency @3 :Text;          # ISO 4217, e.g. "EUR"
  shippingAddress @4 :Text;   # v2
}

struct PaymentAuthorized {
  paymentId @0 :Text;
  amountMinor @1 :Int64;
  method @2 :Text;            # v2: "card", "paypal", ...
}

struct PaymentDeclined {
  reason @0 :Text;
  amountMinor @1 :Int64;
}

struct InventoryReserved {
  reservationId @0 :Text;
  lines @1 :List(LineItem);
}

struct InventoryRejected {
  sku @0 :Text;               # the first line that could not be reserved
  requested @1 :Int32;
  available @2 :Int32;
  reason @3 :Text;
}

struct PaymentRefunded {
  paymentId @0 :Text;
  amountMinor @1 :Int64;
  reason @2 :Text;
}

struct OrderShipped {
  carrier @0 :Text;
  trackingNumber @1 :Text;
}

struct OrderDelivered {
  receivedBy @0 :Text;
}

enum CancelSource {
  customer @0;
  payment @1;
  inventory @2;
  system @3;
}

struct OrderCancelled {
  reason @0 :Text;
  source @1 :CancelSource;
}

enum NotificationPriority {
  low @0;
  high @1;
}

struct NotificationSent {
  notificationId @0 :Text;
  template @1 :Text;
  recipient @2 :Text;
  priority @3 :NotificationPriority;
}

# Per-line inventory outcomes, appended to orders.events (key = order id) by
# the owner of the SKU.
struct InventoryLine {
  sku @0 :Text;
  quantity @1 :Int32;
}

struct InventoryLineRejected {
  sku @0 :Text;
  requested @1 :Int32;
  available @2 :Int32;
}

# inventory.events (key = SKU): the stock aggregate's inputs.
struct StockAdded {
  sku @0 :Text;
  quantity @1 :Int32;
}

struct StockRequest {
  sku @0 :Text;
  orderId @1 :Text;
  quantity @2 :Int32;
}

# notifications.high / notifications.low (key = order id): work items.
struct NotificationRequested {
  notificationId @0 :Text;
  template @1 :Text;
  recipient @2 :Text;
  priority @3 :NotificationPriority;
}

struct Envelope {
  eventId @0 :Data;           # 16 bytes (UUID)
  aggregateId @1 :Text;       # order id (SKU on inventory.events); key of the Kafka record
  occurredAtMs @2 :Int64;     # Unix epoch milliseconds
  schemaVersion @3 :UInt16;
  causationId @4 :Data;       # event that caused this one; empty for commands
  correlationId @5 :Data;     # first event of the chain
  producer @6 :Text;          # service name that wrote the event

  payload :union {
    orderPlaced @7 :OrderPlaced;
    paymentAuthorized @8 :PaymentAuthorized;
    paymentDeclined @9 :PaymentDeclined;
    inventoryReserved @10 :InventoryReserved;
    inventoryRejected @11 :InventoryRejected;
    paymentRefunded @12 :PaymentRefunded;
    orderShipped @13 :OrderShipped;
    orderDelivered @14 :OrderDelivered;
    orderCancelled @15 :OrderCancelled;
    notificationSent @16 :NotificationSent;
    inventoryLineReserved @17 :InventoryLine;
    inventoryLineRejected @18 :InventoryLineRejected;
    inventoryLineReleased @19 :InventoryLine;
    stockAdded @20 :StockAdded;
    stockReservationRequested @21 :StockRequest;
    stockReleaseRequested @22 :StockRequest;
    notificationRequested @23 :NotificationRequested;
  }
}

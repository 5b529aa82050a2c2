# Records stored in the projections' RocksDB column families, version 1.
@0xb40f4648002044ad;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("orderflow::schema");

using Events = import "events.capnp";

enum OrderStatus {
  none @0;
  placed @1;
  paymentAuthorized @2;
  paymentDeclined @3;
  inventoryReserved @4;
  inventoryRejected @5;
  shipped @6;
  delivered @7;
  cancelled @8;
}

# orders: order id -> OrderRecord
struct OrderRecord {
  orderId @0 :Text;
  customerId @1 :Text;
  status @2 :OrderStatus;
  lines @3 :List(Events.LineItem);
  totalMinor @4 :Int64;
  currency @5 :Text;
  paidMinor @6 :Int64;
  refundedMinor @7 :Int64;
  placedAtMs @8 :Int64;
  updatedAtMs @9 :Int64;
  deliveredAtMs @10 :Int64;
  paymentId @11 :Text;
  carrier @12 :Text;
  trackingNumber @13 :Text;
  cancelReason @14 :Text;
  version @15 :UInt32;                 # events applied so far
  appliedEventIds @16 :List(Data);     # dedupe: ids of every applied event
  notificationsSent @17 :UInt32;
  reservedSkus @18 :List(Text);
  inventoryLineRejected @19 :Bool;
  shippingAddress @20 :Text;
  paymentMethod @21 :Text;
}

# history: order id + sequence -> HistoryRecord
struct HistoryRecord {
  topic @0 :Text;
  partition @1 :Int32;
  offset @2 :Int64;
  recordTimestampMs @3 :Int64;
  eventType @4 :Text;
  schemaVersion @5 :UInt16;
  envelope @6 :Data;                   # the record's value, as written to the log
}

# rejected: topic/partition/offset -> RejectedRecord (records that did not decode)
struct RejectedRecord {
  topic @0 :Text;
  partition @1 :Int32;
  offset @2 :Int64;
  error @3 :Text;
  key @4 :Data;
  value @5 :Data;
}

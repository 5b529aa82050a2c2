// The store's layout: its column families, the encoding of every key, the
// analytics counters an event adds, and why a record is rejected. Shared by
// the batch path (store_writes.cc), the queries, the bulk loader and the
// digest, so all of them write and read the same bytes. Internal to
// projections/. Pure functions and constants: safe from any thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>

#include "domain/order.h"
#include "domain/status.h"
#include "eventstore/big_endian.h"
#include "eventstore/kafka.h"
#include "eventstore/state_db.h"

namespace orderflow::projections {

enum Family { kOrders = 0, kHistory, kByStatus, kByCustomer, kRejected, kMeta, kAnalytics, kByTime, kFamilyCount };
// Index = Family. "default" is opened too (RocksDB requires it) but unused.
const char* const kFamilyNames[kFamilyCount] = {"orders", "history",   "by_status", "by_customer",
                                                 "rejected", "meta", "analytics", "by_time"};
// Families that make up the projected state (and so the digest).
constexpr Family kStateFamilies[] = {kOrders, kHistory, kByStatus, kByCustomer, kRejected, kAnalytics, kByTime};

// analytics family keys (values are be64 signed counters)
constexpr char kGrossKey[] = "revenue/gross";
constexpr char kRefundedKey[] = "revenue/refunded";
constexpr char kDeliveredCountKey[] = "delivery/count";
constexpr char kDeliveredMsKey[] = "delivery/placed_to_delivered_ms";
constexpr char kHourPrefix[] = "hour/";     // + be64 hour since epoch -> orders placed
constexpr char kRevenueHourPrefix[] = "revenue_hour/";  // + be64 hour -> authorized minus refunded, by event time
constexpr char kSkuUnitsPrefix[] = "sku_units/";
constexpr char kSkuRevenuePrefix[] = "sku_revenue/";

// An analytics counter's stored value.
inline std::string CounterValue(int64_t v) {
  std::string value;
  eventstore::PutBE64(&value, static_cast<uint64_t>(v));
  return value;
}

inline std::string RevenueHourKey(int64_t at_ms) {
  std::string key = kRevenueHourPrefix;
  eventstore::PutBE64(&key, static_cast<uint64_t>(at_ms / 3'600'000));
  return key;
}

// Adds one event's contribution to the analytics counters.
inline void CountAnalytics(const domain::Event& e, const domain::OrderState& after, std::map<std::string, int64_t>& delta) {
  if (const auto* placed = std::get_if<domain::OrderPlaced>(&e.payload)) {
    std::string key = kHourPrefix;
    eventstore::PutBE64(&key, static_cast<uint64_t>(e.occurred_at_ms / 3'600'000));
    delta[key] += 1;
    (void)placed;
  } else if (const auto* paid = std::get_if<domain::PaymentAuthorized>(&e.payload)) {
    delta[kGrossKey] += paid->amount_minor;
    delta[RevenueHourKey(e.occurred_at_ms)] += paid->amount_minor;
    for (const auto& line : after.lines) {
      // Wrapping arithmetic: the values come from the log, and a forged event
      // must not be undefined behaviour (the counters of honest events never wrap).
      auto& units = delta[kSkuUnitsPrefix + line.sku];
      units = static_cast<int64_t>(static_cast<uint64_t>(units) + static_cast<uint64_t>(line.quantity));
      auto& revenue = delta[kSkuRevenuePrefix + line.sku];
      revenue = static_cast<int64_t>(static_cast<uint64_t>(revenue) +
                                     static_cast<uint64_t>(line.quantity) * static_cast<uint64_t>(line.unit_price_minor));
    }
  } else if (const auto* refund = std::get_if<domain::PaymentRefunded>(&e.payload)) {
    delta[kRefundedKey] += refund->amount_minor;
    delta[RevenueHourKey(e.occurred_at_ms)] -= refund->amount_minor;
  } else if (std::holds_alternative<domain::OrderDelivered>(e.payload) && after.delivered_at_ms == e.occurred_at_ms &&
             after.status == domain::OrderStatus::kDelivered && after.placed_at_ms > 0) {
    delta[kDeliveredCountKey] += 1;
    delta[kDeliveredMsKey] += after.delivered_at_ms - after.placed_at_ms;
  }
}

constexpr char kOffsetPrefix[] = "offset/";
constexpr char kProjectionVersionKey[] = "projection_version";
// The store's StateDigest (counts and sums), written with every change of state.
constexpr char kDigestKey[] = "state_digest";

using eventstore::GetBE;
using eventstore::PutBE32;
using eventstore::PutBE64;

inline std::string OffsetKey(const eventstore::TopicPartition& tp) { return eventstore::PartitionKey(kOffsetPrefix, tp); }

// The keys' layouts, each appended to `out` (the bulk loader builds them in
// one reused buffer) and returned as a string.
inline void AppendHistoryKey(std::string* out, std::string_view order_id, uint32_t seq) {
  out->append(order_id);
  out->push_back('\0');
  PutBE32(out, seq);
}
inline void AppendIndexKey(std::string* out, std::string_view a, std::string_view b) {
  out->append(a);
  out->push_back('\0');
  out->append(b);
}
// by_time: newest first. be64 of the complement of the order's placed time
// (0 if it was not placed when first seen), then the id.
inline void AppendTimeKey(std::string* out, int64_t placed_at_ms, std::string_view id) {
  PutBE64(out, ~static_cast<uint64_t>(std::max<int64_t>(placed_at_ms, 0)));
  out->append(id);
}

inline std::string HistoryPrefix(const std::string& order_id) { return order_id + '\0'; }
inline std::string HistoryKey(const std::string& order_id, uint32_t seq) {
  std::string key;
  AppendHistoryKey(&key, order_id, seq);
  return key;
}
inline std::string IndexKey(std::string_view a, std::string_view b) {
  std::string key;
  AppendIndexKey(&key, a, b);
  return key;
}
inline std::string TimeKey(int64_t placed_at_ms, std::string_view id) {
  std::string key;
  AppendTimeKey(&key, placed_at_ms, id);
  return key;
}
inline std::string RejectedKey(const eventstore::Record& r) {
  std::string key(r.topic());
  key.push_back('\0');
  PutBE32(&key, static_cast<uint32_t>(r.partition()));
  PutBE64(&key, static_cast<uint64_t>(r.offset()));
  return key;
}

// Why `record` cannot be projected ("" when it can): its value did not decode
// into `event`, or its key is not the event's order id.
inline std::string RejectionOf(const eventstore::Record& record, const Result<domain::Event>& event) {
  if (!event.ok()) return event.status().ToString();
  if (event->order_id != record.key()) {
    return "record key '" + std::string(record.key()) + "' does not match the event's order id '" + event->order_id +
           "'";
  }
  return std::string();
}

}  // namespace orderflow::projections

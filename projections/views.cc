#include "projections/views.h"

#include <cstdio>
#include <ctime>

namespace orderflow::projections {

std::string FormatTime(int64_t epoch_ms) {
  std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(epoch_ms % 1000));
  return buf;
}

std::optional<domain::OrderStatus> OrderStatusFromName(std::string_view name) {
  for (int s = static_cast<int>(domain::OrderStatus::kPlaced); s <= static_cast<int>(domain::OrderStatus::kCancelled);
       ++s) {
    const auto status = static_cast<domain::OrderStatus>(s);
    if (domain::OrderStatusName(status) == name) return status;
  }
  return std::nullopt;
}

std::string OrderStatusNames() {
  std::string out;
  for (int s = static_cast<int>(domain::OrderStatus::kPlaced); s <= static_cast<int>(domain::OrderStatus::kCancelled);
       ++s) {
    out += std::string(out.empty() ? "" : ", ") + std::string(domain::OrderStatusName(static_cast<domain::OrderStatus>(s)));
  }
  return out;
}

nlohmann::json OrderJson(const domain::OrderState& o) {
  nlohmann::json lines = nlohmann::json::array();
  for (const auto& l : o.lines) {
    lines.push_back({{"sku", l.sku}, {"quantity", l.quantity}, {"unit_price_minor", l.unit_price_minor}});
  }
  return {{"order_id", o.order_id},
          {"customer_id", o.customer_id},
          {"status", domain::OrderStatusName(o.status)},
          {"lines", lines},
          {"total_minor", o.total_minor},
          {"currency", o.currency},
          {"paid_minor", o.paid_minor},
          {"refunded_minor", o.refunded_minor},
          {"placed_at", o.placed_at_ms ? FormatTime(o.placed_at_ms) : ""},
          {"updated_at", o.updated_at_ms ? FormatTime(o.updated_at_ms) : ""},
          {"delivered_at", o.delivered_at_ms ? FormatTime(o.delivered_at_ms) : ""},
          {"payment_id", o.payment_id},
          {"payment_method", o.payment_method},
          {"shipping_address", o.shipping_address},
          {"carrier", o.carrier},
          {"tracking_number", o.tracking_number},
          {"cancel_reason", o.cancel_reason},
          {"version", o.version},
          {"notifications_sent", o.notifications_sent}};
}

nlohmann::json HistoryJson(const projections::HistoryEntry& e) {
  nlohmann::json j = {{"sequence", e.sequence},
                      {"topic", e.topic},
                      {"partition", e.partition},
                      {"offset", e.offset},
                      {"record_time", FormatTime(e.record_timestamp_ms)},
                      {"type", e.event_type},
                      {"schema_version", e.schema_version}};
  if (e.event) {
    j["event_id"] = domain::UuidToString(e.event->id);
    j["time"] = FormatTime(e.event->occurred_at_ms);
    j["producer"] = e.event->producer;
    j["summary"] = domain::Summarize(e.event->payload);
    j["payload"] = PayloadJson(e.event->payload);
  } else {
    j["error"] = e.decode_error;
  }
  return j;
}

namespace {

nlohmann::json LinesJson(const std::vector<domain::LineItem>& lines) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& l : lines) out.push_back({{"sku", l.sku}, {"quantity", l.quantity}, {"unit_price_minor", l.unit_price_minor}});
  return out;
}

std::string_view CancelSourceName(domain::CancelSource s) {
  switch (s) {
    case domain::CancelSource::kCustomer: return "customer";
    case domain::CancelSource::kPayment: return "payment";
    case domain::CancelSource::kInventory: return "inventory";
    case domain::CancelSource::kSystem: return "system";
  }
  return "unknown";
}

std::string_view PriorityName(domain::NotificationPriority p) {
  return p == domain::NotificationPriority::kHigh ? "high" : "low";
}

// One overload per payload type: the fields of schemas/events.capnp.
struct PayloadFields {
  nlohmann::json operator()(const domain::OrderPlaced& e) const {
    return {{"customer_id", e.customer_id}, {"lines", LinesJson(e.lines)}, {"total_minor", e.total_minor},
            {"currency", e.currency}, {"shipping_address", e.shipping_address}};
  }
  nlohmann::json operator()(const domain::PaymentAuthorized& e) const {
    return {{"payment_id", e.payment_id}, {"amount_minor", e.amount_minor}, {"method", e.method}};
  }
  nlohmann::json operator()(const domain::PaymentDeclined& e) const {
    return {{"reason", e.reason}, {"amount_minor", e.amount_minor}};
  }
  nlohmann::json operator()(const domain::InventoryReserved& e) const {
    return {{"reservation_id", e.reservation_id}, {"lines", LinesJson(e.lines)}};
  }
  nlohmann::json operator()(const domain::InventoryRejected& e) const {
    return {{"sku", e.sku}, {"requested", e.requested}, {"available", e.available}, {"reason", e.reason}};
  }
  nlohmann::json operator()(const domain::PaymentRefunded& e) const {
    return {{"payment_id", e.payment_id}, {"amount_minor", e.amount_minor}, {"reason", e.reason}};
  }
  nlohmann::json operator()(const domain::OrderShipped& e) const {
    return {{"carrier", e.carrier}, {"tracking_number", e.tracking_number}};
  }
  nlohmann::json operator()(const domain::OrderDelivered& e) const { return {{"received_by", e.received_by}}; }
  nlohmann::json operator()(const domain::OrderCancelled& e) const {
    return {{"reason", e.reason}, {"source", CancelSourceName(e.source)}};
  }
  nlohmann::json operator()(const domain::NotificationSent& e) const {
    return {{"notification_id", e.notification_id}, {"template_name", e.template_name}, {"recipient", e.recipient},
            {"priority", PriorityName(e.priority)}};
  }
  nlohmann::json operator()(const domain::InventoryLineReserved& e) const {
    return {{"sku", e.sku}, {"quantity", e.quantity}};
  }
  nlohmann::json operator()(const domain::InventoryLineRejected& e) const {
    return {{"sku", e.sku}, {"requested", e.requested}, {"available", e.available}};
  }
  nlohmann::json operator()(const domain::InventoryLineReleased& e) const {
    return {{"sku", e.sku}, {"quantity", e.quantity}};
  }
  nlohmann::json operator()(const domain::StockAdded& e) const { return {{"sku", e.sku}, {"quantity", e.quantity}}; }
  nlohmann::json operator()(const domain::StockReservationRequested& e) const {
    return {{"sku", e.sku}, {"order_id", e.order_id}, {"quantity", e.quantity}};
  }
  nlohmann::json operator()(const domain::StockReleaseRequested& e) const {
    return {{"sku", e.sku}, {"order_id", e.order_id}, {"quantity", e.quantity}};
  }
  nlohmann::json operator()(const domain::NotificationRequested& e) const {
    return {{"notification_id", e.notification_id}, {"template_name", e.template_name}, {"recipient", e.recipient},
            {"priority", PriorityName(e.priority)}};
  }
};

}  // namespace

nlohmann::json PayloadJson(const domain::EventPayload& payload) { return std::visit(PayloadFields{}, payload); }

nlohmann::json CatalogJson(const domain::Catalog& catalog) {
  nlohmann::json items = nlohmann::json::array();
  for (const auto& i : catalog.items()) {
    items.push_back({{"sku", i.sku}, {"name", i.name}, {"price_minor", i.price_minor}, {"currency", catalog.currency()}});
  }
  return items;
}

nlohmann::json AnalyticsJson(const projections::Analytics& a) {
  auto skus = [](const std::vector<projections::SkuSales>& v) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : v) out.push_back({{"sku", s.sku}, {"units", s.units}, {"revenue_minor", s.revenue_minor}});
    return out;
  };
  // One row per hour that saw orders or revenue, oldest first.
  std::map<int64_t, std::pair<int64_t, int64_t>> hours;
  for (const auto& [hour, n] : a.orders_per_hour) hours[hour].first = n;
  for (const auto& [hour, minor] : a.revenue_per_hour) hours[hour].second = minor;
  nlohmann::json per_hour = nlohmann::json::array();
  for (const auto& [hour, v] : hours) {
    per_hour.push_back({{"hour", FormatTime(hour)}, {"orders", v.first}, {"revenue_minor", v.second}});
  }
  return {{"revenue", {{"gross_minor", a.gross_minor}, {"refunded_minor", a.refunded_minor}, {"net_minor", a.net_minor}}},
          {"orders_by_status", a.orders_by_status},
          {"top_skus_by_units", skus(a.top_by_units)},
          {"top_skus_by_revenue", skus(a.top_by_revenue)},
          {"orders_per_hour", per_hour},
          {"delivered", a.delivered},
          {"average_placed_to_delivered_ms", a.average_placed_to_delivered_ms}};
}

}  // namespace orderflow::projections

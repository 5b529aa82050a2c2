#include "cli/output.h"

#include <cstdio>
#include <ctime>

namespace orderflow::cli {

std::string FormatMoney(int64_t minor, const std::string& currency) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s%lld.%02lld %s", minor < 0 ? "-" : "", std::llabs(minor) / 100LL,
                std::llabs(minor) % 100LL, currency.c_str());
  return buf;
}

std::string FormatTime(int64_t epoch_ms) {
  std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(epoch_ms % 1000));
  return buf;
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

std::string OrderText(const domain::OrderState& o) {
  std::string out;
  out += "order     " + o.order_id + "\n";
  out += "customer  " + o.customer_id + "\n";
  out += "status    " + std::string(domain::OrderStatusName(o.status)) + "\n";
  out += "total     " + FormatMoney(o.total_minor, o.currency) + "\n";
  if (o.paid_minor) out += "paid      " + FormatMoney(o.paid_minor, o.currency) + "\n";
  if (o.refunded_minor) out += "refunded  " + FormatMoney(o.refunded_minor, o.currency) + "\n";
  if (o.placed_at_ms) out += "placed    " + FormatTime(o.placed_at_ms) + "\n";
  out += "updated   " + FormatTime(o.updated_at_ms) + "\n";
  if (!o.shipping_address.empty()) out += "ship to   " + o.shipping_address + "\n";
  if (!o.carrier.empty()) out += "shipping  " + o.carrier + " " + o.tracking_number + "\n";
  if (!o.cancel_reason.empty()) out += "cancelled " + o.cancel_reason + "\n";
  out += "events    " + std::to_string(o.version) + "\n";
  out += "lines\n";
  for (const auto& l : o.lines) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "  %-14s x%-4d %s\n", l.sku.c_str(), l.quantity,
                  FormatMoney(l.unit_price_minor, o.currency).c_str());
    out += buf;
  }
  return out;
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
  } else {
    j["error"] = e.decode_error;
  }
  return j;
}

std::string HistoryLine(const projections::HistoryEntry& e) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%-8lld %-24s %-22s v%-3u ", static_cast<long long>(e.offset),
                FormatTime(e.event ? e.event->occurred_at_ms : e.record_timestamp_ms).c_str(), e.event_type.c_str(),
                static_cast<unsigned>(e.schema_version));
  return buf + (e.event ? domain::Summarize(e.event->payload) : "(undecodable: " + e.decode_error + ")");
}

nlohmann::json CatalogJson(const domain::Catalog& catalog) {
  nlohmann::json items = nlohmann::json::array();
  for (const auto& i : catalog.items()) {
    items.push_back({{"sku", i.sku}, {"name", i.name}, {"price_minor", i.price_minor}, {"currency", catalog.currency()}});
  }
  return items;
}

std::string CatalogText(const domain::Catalog& catalog) {
  std::string out;
  char buf[160];
  std::snprintf(buf, sizeof buf, "%-14s %-26s %12s\n", "SKU", "NAME", "PRICE");
  out += buf;
  for (const auto& i : catalog.items()) {
    std::snprintf(buf, sizeof buf, "%-14s %-26s %12s\n", i.sku.c_str(), i.name.c_str(),
                  FormatMoney(i.price_minor, catalog.currency()).c_str());
    out += buf;
  }
  return out;
}

}  // namespace orderflow::cli

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

std::string OrderText(const domain::OrderState& o) {
  std::string out;
  out += "order     " + o.order_id + "\n";
  out += "customer  " + o.customer_id + "\n";
  out += "status    " + std::string(domain::OrderStatusName(o.status)) + "\n";
  out += "total     " + FormatMoney(o.total_minor, o.currency) + "\n";
  if (o.paid_minor) out += "paid      " + FormatMoney(o.paid_minor, o.currency) + "\n";
  if (o.refunded_minor) out += "refunded  " + FormatMoney(o.refunded_minor, o.currency) + "\n";
  if (o.placed_at_ms) out += "placed    " + projections::FormatTime(o.placed_at_ms) + "\n";
  out += "updated   " + projections::FormatTime(o.updated_at_ms) + "\n";
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

std::string HistoryLine(const projections::HistoryEntry& e) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%-8lld %-24s %-22s v%-3u ", static_cast<long long>(e.offset),
                projections::FormatTime(e.event ? e.event->occurred_at_ms : e.record_timestamp_ms).c_str(), e.event_type.c_str(),
                static_cast<unsigned>(e.schema_version));
  return buf + (e.event ? domain::Summarize(e.event->payload) : "(undecodable: " + e.decode_error + ")");
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

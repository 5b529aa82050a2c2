#include "domain/events.h"

#include <boost/uuid/name_generator_sha1.hpp>
#include <utility>
#include <boost/uuid/uuid.hpp>
#include <cstdio>

#include "domain/hex.h"
#include "domain/overloaded.h"

namespace orderflow::domain {
namespace {

std::string Money(int64_t minor) {
  char buf[32];
  const char* sign = minor < 0 ? "-" : "";
  uint64_t abs = minor < 0 ? static_cast<uint64_t>(-(minor + 1)) + 1 : static_cast<uint64_t>(minor);
  std::snprintf(buf, sizeof buf, "%s%llu.%02llu", sign, static_cast<unsigned long long>(abs / 100),
                static_cast<unsigned long long>(abs % 100));
  return buf;
}

}  // namespace

std::string UuidToString(const EventId& id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[id[i] >> 4]);
    out.push_back(kHex[id[i] & 0xf]);
  }
  return out;
}

bool UuidFromString(std::string_view text, EventId* out) {
  if (text.size() != 36) return false;
  size_t byte = 0;
  for (size_t i = 0; i < text.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return false;
      ++i;
      continue;
    }
    int hi = HexDigit(text[i]);
    int lo = HexDigit(text[i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[byte++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return byte == 16;
}

EventId DeriveEventId(const EventId& ns, std::string_view name) {
  boost::uuids::uuid ns_uuid;
  std::copy(ns.begin(), ns.end(), ns_uuid.begin());
  boost::uuids::name_generator_sha1 generator(ns_uuid);
  boost::uuids::uuid derived = generator(name.data(), name.size());
  EventId out;
  std::copy(derived.begin(), derived.end(), out.begin());
  return out;
}

namespace {
template <size_t... I>
std::string_view NameAt(size_t index, std::index_sequence<I...>) {
  std::string_view name;
  ((index == I ? (name = EventTypeName(EventPayload(std::in_place_index<I>)), 0) : 0), ...);
  return name;
}
}  // namespace

std::string_view EventTypeNameAt(size_t index) { return NameAt(index, std::make_index_sequence<kEventTypeCount>()); }

std::string_view EventTypeName(const EventPayload& payload) {
  return std::visit(
      Overloaded{
          [](const OrderPlaced&) { return std::string_view("OrderPlaced"); },
          [](const PaymentAuthorized&) { return std::string_view("PaymentAuthorized"); },
          [](const PaymentDeclined&) { return std::string_view("PaymentDeclined"); },
          [](const InventoryReserved&) { return std::string_view("InventoryReserved"); },
          [](const InventoryRejected&) { return std::string_view("InventoryRejected"); },
          [](const PaymentRefunded&) { return std::string_view("PaymentRefunded"); },
          [](const OrderShipped&) { return std::string_view("OrderShipped"); },
          [](const OrderDelivered&) { return std::string_view("OrderDelivered"); },
          [](const OrderCancelled&) { return std::string_view("OrderCancelled"); },
          [](const NotificationSent&) { return std::string_view("NotificationSent"); },
          [](const InventoryLineReserved&) { return std::string_view("InventoryLineReserved"); },
          [](const InventoryLineRejected&) { return std::string_view("InventoryLineRejected"); },
          [](const InventoryLineReleased&) { return std::string_view("InventoryLineReleased"); },
          [](const StockAdded&) { return std::string_view("StockAdded"); },
          [](const StockReservationRequested&) { return std::string_view("StockReservationRequested"); },
          [](const StockReleaseRequested&) { return std::string_view("StockReleaseRequested"); },
          [](const NotificationRequested&) { return std::string_view("NotificationRequested"); },
      },
      payload);
}

std::string Summarize(const EventPayload& payload) {
  return std::visit(
      Overloaded{
          [](const OrderPlaced& e) {
            int64_t units = 0;  // int64: quantities come from the log, any int32 each
            for (const auto& l : e.lines) units += l.quantity;
            return "customer " + e.customer_id + ", " + std::to_string(e.lines.size()) + " line(s), " +
                   std::to_string(units) + " unit(s), total " + Money(e.total_minor) + " " + e.currency;
          },
          [](const PaymentAuthorized& e) {
            return "payment " + e.payment_id + " authorized for " + Money(e.amount_minor);
          },
          [](const PaymentDeclined& e) { return "payment of " + Money(e.amount_minor) + " declined: " + e.reason; },
          [](const InventoryReserved& e) {
            return "reserved " + std::to_string(e.lines.size()) + " line(s), reservation " + e.reservation_id;
          },
          [](const InventoryRejected& e) {
            return "sku " + e.sku + ": requested " + std::to_string(e.requested) + ", available " +
                   std::to_string(e.available) + (e.reason.empty() ? "" : " (" + e.reason + ")");
          },
          [](const PaymentRefunded& e) {
            return "refunded " + Money(e.amount_minor) + " of payment " + e.payment_id + ": " + e.reason;
          },
          [](const OrderShipped& e) { return "shipped with " + e.carrier + ", tracking " + e.tracking_number; },
          [](const OrderDelivered& e) {
            return std::string("delivered") + (e.received_by.empty() ? "" : ", received by " + e.received_by);
          },
          [](const OrderCancelled& e) {
            static constexpr const char* kSources[] = {"customer", "payment", "inventory", "system"};
            return std::string("cancelled by ") + kSources[static_cast<int>(e.source)] + ": " + e.reason;
          },
          [](const NotificationSent& e) {
            return std::string(e.priority == NotificationPriority::kHigh ? "high" : "low") + " priority '" +
                   e.template_name + "' to " + e.recipient;
          },
          [](const InventoryLineReserved& e) { return "reserved " + std::to_string(e.quantity) + " x " + e.sku; },
          [](const InventoryLineRejected& e) {
            return "sku " + e.sku + ": requested " + std::to_string(e.requested) + ", available " +
                   std::to_string(e.available);
          },
          [](const InventoryLineReleased& e) { return "released " + std::to_string(e.quantity) + " x " + e.sku; },
          [](const StockAdded& e) { return "added " + std::to_string(e.quantity) + " x " + e.sku; },
          [](const StockReservationRequested& e) {
            return "reserve " + std::to_string(e.quantity) + " x " + e.sku + " for order " + e.order_id;
          },
          [](const StockReleaseRequested& e) {
            return "release " + std::to_string(e.quantity) + " x " + e.sku + " of order " + e.order_id;
          },
          [](const NotificationRequested& e) { return "send '" + e.template_name + "' to " + e.recipient; },
      },
      payload);
}

}  // namespace orderflow::domain

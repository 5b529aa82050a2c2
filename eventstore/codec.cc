#include "eventstore/codec.h"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <kj/debug.h>
#include <kj/exception.h>
#include <kj/io.h>

#include <algorithm>

#include "domain/overloaded.h"
#include "eventstore/capnp_util.h"
#include "schemas/events.capnp.h"

namespace orderflow::eventstore {
namespace {

namespace s = orderflow::schema;


capnp::Data::Reader IdData(const domain::EventId& id) { return capnp::Data::Reader(id.data(), id.size()); }

void WriteLines(capnp::List<s::LineItem>::Builder out, const std::vector<domain::LineItem>& lines) {
  for (size_t i = 0; i < lines.size(); ++i) {
    out[i].setSku(lines[i].sku);
    out[i].setQuantity(lines[i].quantity);
    out[i].setUnitPriceMinor(lines[i].unit_price_minor);
  }
}

// More lines than any order may have: a list of empty structs packs to a few
// bytes yet would re-encode past the reader's limits (found by the fuzzer).
constexpr unsigned kMaxEventLines = 1000;

std::vector<domain::LineItem> ReadLines(capnp::List<s::LineItem>::Reader in) {
  // Throws kj::Exception, which DecodeEvent reports as kCorruption.
  KJ_REQUIRE(in.size() <= kMaxEventLines, "an event lists more lines than any order may have", in.size());
  std::vector<domain::LineItem> lines;
  lines.reserve(in.size());
  for (auto l : in) lines.push_back({ToString(l.getSku()), l.getQuantity(), l.getUnitPriceMinor()});
  return lines;
}

Status ReadId(capnp::Data::Reader data, bool required, const char* field, domain::EventId* out) {
  if (data.size() == 0 && !required) {
    *out = {};
    return Status::Ok();
  }
  if (data.size() != out->size()) {
    return Status::Corruption(std::string(field) + " must be 16 bytes, got " + std::to_string(data.size()));
  }
  std::copy(data.begin(), data.end(), out->begin());
  return Status::Ok();
}

Result<domain::EventPayload> ReadPayload(s::Envelope::Payload::Reader p) {
  switch (p.which()) {
    case s::Envelope::Payload::ORDER_PLACED: {
      auto e = p.getOrderPlaced();
      return domain::EventPayload(domain::OrderPlaced{ToString(e.getCustomerId()), ReadLines(e.getLines()),
                                                      e.getTotalMinor(), ToString(e.getCurrency()),
                                                      ToString(e.getShippingAddress())});
    }
    case s::Envelope::Payload::PAYMENT_AUTHORIZED: {
      auto e = p.getPaymentAuthorized();
      return domain::EventPayload(
          domain::PaymentAuthorized{ToString(e.getPaymentId()), e.getAmountMinor(), ToString(e.getMethod())});
    }
    case s::Envelope::Payload::PAYMENT_DECLINED: {
      auto e = p.getPaymentDeclined();
      return domain::EventPayload(domain::PaymentDeclined{ToString(e.getReason()), e.getAmountMinor()});
    }
    case s::Envelope::Payload::INVENTORY_RESERVED: {
      auto e = p.getInventoryReserved();
      return domain::EventPayload(
          domain::InventoryReserved{ToString(e.getReservationId()), ReadLines(e.getLines())});
    }
    case s::Envelope::Payload::INVENTORY_REJECTED: {
      auto e = p.getInventoryRejected();
      return domain::EventPayload(domain::InventoryRejected{ToString(e.getSku()), e.getRequested(),
                                                            e.getAvailable(), ToString(e.getReason())});
    }
    case s::Envelope::Payload::PAYMENT_REFUNDED: {
      auto e = p.getPaymentRefunded();
      return domain::EventPayload(
          domain::PaymentRefunded{ToString(e.getPaymentId()), e.getAmountMinor(), ToString(e.getReason())});
    }
    case s::Envelope::Payload::ORDER_SHIPPED: {
      auto e = p.getOrderShipped();
      return domain::EventPayload(domain::OrderShipped{ToString(e.getCarrier()), ToString(e.getTrackingNumber())});
    }
    case s::Envelope::Payload::ORDER_DELIVERED: {
      auto e = p.getOrderDelivered();
      return domain::EventPayload(domain::OrderDelivered{ToString(e.getReceivedBy())});
    }
    case s::Envelope::Payload::ORDER_CANCELLED: {
      auto e = p.getOrderCancelled();
      auto source = static_cast<uint16_t>(e.getSource());
      if (source > static_cast<uint16_t>(s::CancelSource::SYSTEM)) {
        return Status::Corruption("unknown cancel source " + std::to_string(source));
      }
      return domain::EventPayload(
          domain::OrderCancelled{ToString(e.getReason()), static_cast<domain::CancelSource>(source)});
    }
    case s::Envelope::Payload::NOTIFICATION_SENT: {
      auto e = p.getNotificationSent();
      auto priority = static_cast<uint16_t>(e.getPriority());
      if (priority > static_cast<uint16_t>(s::NotificationPriority::HIGH)) {
        return Status::Corruption("unknown notification priority " + std::to_string(priority));
      }
      return domain::EventPayload(domain::NotificationSent{ToString(e.getNotificationId()),
                                                           ToString(e.getTemplate()), ToString(e.getRecipient()),
                                                           static_cast<domain::NotificationPriority>(priority)});
    }
    case s::Envelope::Payload::INVENTORY_LINE_RESERVED: {
      auto e = p.getInventoryLineReserved();
      return domain::EventPayload(domain::InventoryLineReserved{ToString(e.getSku()), e.getQuantity()});
    }
    case s::Envelope::Payload::INVENTORY_LINE_REJECTED: {
      auto e = p.getInventoryLineRejected();
      return domain::EventPayload(
          domain::InventoryLineRejected{ToString(e.getSku()), e.getRequested(), e.getAvailable()});
    }
    case s::Envelope::Payload::INVENTORY_LINE_RELEASED: {
      auto e = p.getInventoryLineReleased();
      return domain::EventPayload(domain::InventoryLineReleased{ToString(e.getSku()), e.getQuantity()});
    }
    case s::Envelope::Payload::STOCK_ADDED: {
      auto e = p.getStockAdded();
      return domain::EventPayload(domain::StockAdded{ToString(e.getSku()), e.getQuantity()});
    }
    case s::Envelope::Payload::STOCK_RESERVATION_REQUESTED: {
      auto e = p.getStockReservationRequested();
      return domain::EventPayload(
          domain::StockReservationRequested{ToString(e.getSku()), ToString(e.getOrderId()), e.getQuantity()});
    }
    case s::Envelope::Payload::STOCK_RELEASE_REQUESTED: {
      auto e = p.getStockReleaseRequested();
      return domain::EventPayload(
          domain::StockReleaseRequested{ToString(e.getSku()), ToString(e.getOrderId()), e.getQuantity()});
    }
    case s::Envelope::Payload::NOTIFICATION_REQUESTED: {
      auto e = p.getNotificationRequested();
      auto priority = static_cast<uint16_t>(e.getPriority());
      if (priority > static_cast<uint16_t>(s::NotificationPriority::HIGH)) {
        return Status::Corruption("unknown notification priority " + std::to_string(priority));
      }
      return domain::EventPayload(domain::NotificationRequested{ToString(e.getNotificationId()),
                                                                ToString(e.getTemplate()), ToString(e.getRecipient()),
                                                                static_cast<domain::NotificationPriority>(priority)});
    }
  }
  return Status::Corruption("unknown event type (union discriminant " +
                            std::to_string(static_cast<int>(p.which())) + ")");
}

Result<domain::Event> ReadEnvelope(s::Envelope::Reader env) {
  domain::Event event;
  event.schema_version = env.getSchemaVersion();
  if (event.schema_version == 0) return Status::Corruption("schema version 0 is not a valid version");
  if (event.schema_version > domain::kCurrentSchemaVersion) {
    return Status::FailedPrecondition("event has schema version " + std::to_string(event.schema_version) +
                                      ", newer than this build's " +
                                      std::to_string(domain::kCurrentSchemaVersion) + "; upgrade orderflow");
  }
  ORDERFLOW_RETURN_IF_ERROR(ReadId(env.getEventId(), true, "event id", &event.id));
  ORDERFLOW_RETURN_IF_ERROR(ReadId(env.getCausationId(), false, "causation id", &event.causation_id));
  ORDERFLOW_RETURN_IF_ERROR(ReadId(env.getCorrelationId(), false, "correlation id", &event.correlation_id));
  event.order_id = ToString(env.getAggregateId());
  if (event.order_id.empty()) return Status::Corruption("aggregate id is empty");
  event.occurred_at_ms = env.getOccurredAtMs();
  event.producer = ToString(env.getProducer());
  auto payload = ReadPayload(env.getPayload());
  if (!payload.ok()) return payload.status();
  event.payload = std::move(payload).value();
  return event;
}

}  // namespace

std::string EncodeEvent(const domain::Event& event) {
  capnp::MallocMessageBuilder message(256);
  auto env = message.initRoot<s::Envelope>();
  env.setEventId(IdData(event.id));
  env.setAggregateId(event.order_id);
  env.setOccurredAtMs(event.occurred_at_ms);
  env.setSchemaVersion(event.schema_version);
  if (event.causation_id != domain::EventId{}) env.setCausationId(IdData(event.causation_id));
  if (event.correlation_id != domain::EventId{}) env.setCorrelationId(IdData(event.correlation_id));
  env.setProducer(event.producer);
  auto p = env.initPayload();
  std::visit(Overloaded{
                 [&](const domain::OrderPlaced& e) {
                   auto b = p.initOrderPlaced();
                   b.setCustomerId(e.customer_id);
                   WriteLines(b.initLines(e.lines.size()), e.lines);
                   b.setTotalMinor(e.total_minor);
                   b.setCurrency(e.currency);
                   if (!e.shipping_address.empty()) b.setShippingAddress(e.shipping_address);
                 },
                 [&](const domain::PaymentAuthorized& e) {
                   auto b = p.initPaymentAuthorized();
                   b.setPaymentId(e.payment_id);
                   b.setAmountMinor(e.amount_minor);
                   if (!e.method.empty()) b.setMethod(e.method);
                 },
                 [&](const domain::PaymentDeclined& e) {
                   auto b = p.initPaymentDeclined();
                   b.setReason(e.reason);
                   b.setAmountMinor(e.amount_minor);
                 },
                 [&](const domain::InventoryReserved& e) {
                   auto b = p.initInventoryReserved();
                   b.setReservationId(e.reservation_id);
                   WriteLines(b.initLines(e.lines.size()), e.lines);
                 },
                 [&](const domain::InventoryRejected& e) {
                   auto b = p.initInventoryRejected();
                   b.setSku(e.sku);
                   b.setRequested(e.requested);
                   b.setAvailable(e.available);
                   b.setReason(e.reason);
                 },
                 [&](const domain::PaymentRefunded& e) {
                   auto b = p.initPaymentRefunded();
                   b.setPaymentId(e.payment_id);
                   b.setAmountMinor(e.amount_minor);
                   b.setReason(e.reason);
                 },
                 [&](const domain::OrderShipped& e) {
                   auto b = p.initOrderShipped();
                   b.setCarrier(e.carrier);
                   b.setTrackingNumber(e.tracking_number);
                 },
                 [&](const domain::OrderDelivered& e) { p.initOrderDelivered().setReceivedBy(e.received_by); },
                 [&](const domain::OrderCancelled& e) {
                   auto b = p.initOrderCancelled();
                   b.setReason(e.reason);
                   b.setSource(static_cast<s::CancelSource>(e.source));
                 },
                 [&](const domain::NotificationSent& e) {
                   auto b = p.initNotificationSent();
                   b.setNotificationId(e.notification_id);
                   b.setTemplate(e.template_name);
                   b.setRecipient(e.recipient);
                   b.setPriority(static_cast<s::NotificationPriority>(e.priority));
                 },
                 [&](const domain::InventoryLineReserved& e) {
                   auto b = p.initInventoryLineReserved();
                   b.setSku(e.sku);
                   b.setQuantity(e.quantity);
                 },
                 [&](const domain::InventoryLineRejected& e) {
                   auto b = p.initInventoryLineRejected();
                   b.setSku(e.sku);
                   b.setRequested(e.requested);
                   b.setAvailable(e.available);
                 },
                 [&](const domain::InventoryLineReleased& e) {
                   auto b = p.initInventoryLineReleased();
                   b.setSku(e.sku);
                   b.setQuantity(e.quantity);
                 },
                 [&](const domain::StockAdded& e) {
                   auto b = p.initStockAdded();
                   b.setSku(e.sku);
                   b.setQuantity(e.quantity);
                 },
                 [&](const domain::StockReservationRequested& e) {
                   auto b = p.initStockReservationRequested();
                   b.setSku(e.sku);
                   b.setOrderId(e.order_id);
                   b.setQuantity(e.quantity);
                 },
                 [&](const domain::StockReleaseRequested& e) {
                   auto b = p.initStockReleaseRequested();
                   b.setSku(e.sku);
                   b.setOrderId(e.order_id);
                   b.setQuantity(e.quantity);
                 },
                 [&](const domain::NotificationRequested& e) {
                   auto b = p.initNotificationRequested();
                   b.setNotificationId(e.notification_id);
                   b.setTemplate(e.template_name);
                   b.setRecipient(e.recipient);
                   b.setPriority(static_cast<s::NotificationPriority>(e.priority));
                 },
             },
             event.payload);
  return WritePacked(message);
}

Result<domain::Event> DecodeEvent(std::string_view bytes) {
  auto event = ReadPackedRoot<s::Envelope, domain::Event>(bytes, "event",
                                                          [](s::Envelope::Reader r) { return ReadEnvelope(r); });
  if (event.ok()) UpcastToCurrent(*event);
  return event;
}

void UpcastToCurrent(domain::Event& event) {
  if (event.schema_version < 2) {
    // v1 -> v2: template names "order_placed" became "order.placed"; v1 only
    // knew card payments, so its authorizations were all by card.
    auto rename = [](std::string& name) { std::replace(name.begin(), name.end(), '_', '.'); };
    if (auto* sent = std::get_if<domain::NotificationSent>(&event.payload)) rename(sent->template_name);
    if (auto* req = std::get_if<domain::NotificationRequested>(&event.payload)) rename(req->template_name);
    if (auto* paid = std::get_if<domain::PaymentAuthorized>(&event.payload)) {
      if (paid->method.empty()) paid->method = "card";
    }
  }
}

}  // namespace orderflow::eventstore

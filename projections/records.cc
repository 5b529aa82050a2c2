#include <cstring>
#include <optional>

#include "eventstore/capnp_util.h"
#include "projections/order_record.h"
#include "projections/records_internal.h"
#include "schemas/projections.capnp.h"

namespace orderflow::projections::internal {
namespace {

namespace s = orderflow::schema;
using eventstore::AppendFlat;
using eventstore::ReadPackedRoot;
using eventstore::ToString;
using eventstore::WritePacked;

constexpr uint16_t kMaxStatus = static_cast<uint16_t>(s::OrderStatus::CANCELLED);

// Text of a string that holds no NUL byte (an order's strings come from
// decoded events and records, which never do): no strlen.
capnp::Text::Reader TextOf(const std::string& text) { return capnp::Text::Reader(text.data(), text.size()); }

// A first segment for the messages of one kind this thread builds: zeroed
// once, and zeroed again by each builder when it is done with it
// (MallocMessageBuilder clears what it used of a segment it was given).
template <size_t kWords, typename Kind>
kj::ArrayPtr<capnp::word> Scratch() {
  thread_local kj::Array<capnp::word> words = [] {
    auto a = kj::heapArray<capnp::word>(kWords);
    std::memset(a.begin(), 0, a.asBytes().size());
    return a;
  }();
  return words;
}

}  // namespace

std::string EncodeOrder(const domain::OrderState& o) {
  capnp::MallocMessageBuilder message(Scratch<256, s::OrderRecord>());
  auto r = message.initRoot<s::OrderRecord>();
  r.setOrderId(TextOf(o.order_id));
  r.setCustomerId(TextOf(o.customer_id));
  r.setStatus(static_cast<s::OrderStatus>(o.status));
  auto lines = r.initLines(o.lines.size());
  for (size_t i = 0; i < o.lines.size(); ++i) {
    lines[i].setSku(TextOf(o.lines[i].sku));
    lines[i].setQuantity(o.lines[i].quantity);
    lines[i].setUnitPriceMinor(o.lines[i].unit_price_minor);
  }
  r.setTotalMinor(o.total_minor);
  r.setCurrency(TextOf(o.currency));
  r.setPaidMinor(o.paid_minor);
  r.setRefundedMinor(o.refunded_minor);
  r.setPlacedAtMs(o.placed_at_ms);
  r.setUpdatedAtMs(o.updated_at_ms);
  r.setDeliveredAtMs(o.delivered_at_ms);
  r.setPaymentId(TextOf(o.payment_id));
  r.setCarrier(TextOf(o.carrier));
  r.setTrackingNumber(TextOf(o.tracking_number));
  r.setCancelReason(TextOf(o.cancel_reason));
  r.setVersion(o.version);
  auto ids = r.initAppliedEventIds(o.applied_event_ids.size());
  for (size_t i = 0; i < o.applied_event_ids.size(); ++i) {
    ids.set(i, capnp::Data::Reader(o.applied_event_ids[i].data(), o.applied_event_ids[i].size()));
  }
  r.setNotificationsSent(o.notifications_sent);
  auto skus = r.initReservedSkus(o.reserved_skus.size());
  for (size_t i = 0; i < o.reserved_skus.size(); ++i) skus.set(i, TextOf(o.reserved_skus[i]));
  r.setInventoryLineRejected(o.inventory_line_rejected);
  r.setShippingAddress(TextOf(o.shipping_address));
  r.setPaymentMethod(TextOf(o.payment_method));
  return WritePacked(message);
}

Result<domain::OrderState> DecodeOrder(std::string_view bytes) {
  return ReadPackedRoot<s::OrderRecord, domain::OrderState>(
      bytes, "order", [](s::OrderRecord::Reader r) -> Result<domain::OrderState> {
        domain::OrderState o;
        o.order_id = ToString(r.getOrderId());
        o.customer_id = ToString(r.getCustomerId());
        auto status = static_cast<uint16_t>(r.getStatus());
        if (status > kMaxStatus) return Status::Corruption("unknown order status " + std::to_string(status));
        o.status = static_cast<domain::OrderStatus>(status);
        for (auto l : r.getLines()) o.lines.push_back({ToString(l.getSku()), l.getQuantity(), l.getUnitPriceMinor()});
        o.total_minor = r.getTotalMinor();
        o.currency = ToString(r.getCurrency());
        o.paid_minor = r.getPaidMinor();
        o.refunded_minor = r.getRefundedMinor();
        o.placed_at_ms = r.getPlacedAtMs();
        o.updated_at_ms = r.getUpdatedAtMs();
        o.delivered_at_ms = r.getDeliveredAtMs();
        o.payment_id = ToString(r.getPaymentId());
        o.carrier = ToString(r.getCarrier());
        o.tracking_number = ToString(r.getTrackingNumber());
        o.cancel_reason = ToString(r.getCancelReason());
        o.version = r.getVersion();
        for (auto id : r.getAppliedEventIds()) {
          if (id.size() != 16) return Status::Corruption("stored event id is not 16 bytes");
          domain::EventId e;
          std::copy(id.begin(), id.end(), e.begin());
          o.applied_event_ids.push_back(e);
        }
        o.notifications_sent = r.getNotificationsSent();
        for (auto sku : r.getReservedSkus()) o.reserved_skus.push_back(ToString(sku));
        o.inventory_line_rejected = r.getInventoryLineRejected();
        o.shipping_address = ToString(r.getShippingAddress());
        o.payment_method = ToString(r.getPaymentMethod());
        return o;
      });
}

std::string EncodeHistory(const eventstore::Record& record, std::string_view event_type, uint16_t schema_version) {
  std::string out;
  AppendHistory(&out, record, event_type, schema_version);
  return out;
}

void AppendHistory(std::string* out, const eventstore::Record& record, std::string_view event_type,
                   uint16_t schema_version) {
  // One segment of 64 words past the envelope holds the record (a topic name
  // is at most 249 bytes): from this thread's zeroed scratch when it fits, so
  // the bytes are the same either way.
  constexpr size_t kScratchWords = 1024;
  const size_t words = 64 + record.value().size() / sizeof(capnp::word);
  std::optional<capnp::MallocMessageBuilder> storage;
  if (words + 1 <= kScratchWords) {
    storage.emplace(Scratch<kScratchWords, s::HistoryRecord>());
  } else {
    storage.emplace(words);
  }
  capnp::MallocMessageBuilder& message = *storage;
  auto r = message.initRoot<s::HistoryRecord>();
  r.setTopic(capnp::Text::Reader(record.topic().data(), record.topic().size()));
  r.setPartition(record.partition());
  r.setOffset(record.offset());
  r.setRecordTimestampMs(record.timestamp_ms());
  r.setEventType(capnp::Text::Reader(event_type.data(), event_type.size()));
  r.setSchemaVersion(schema_version);
  r.setEnvelope(
      capnp::Data::Reader(reinterpret_cast<const kj::byte*>(record.value().data()), record.value().size()));
  AppendFlat(message, out);  // the envelope is packed already
}

Result<StoredHistory> DecodeHistory(std::string_view bytes) {
  return eventstore::ReadFlatRoot<s::HistoryRecord, StoredHistory>(
      bytes, "history", [](s::HistoryRecord::Reader r) -> Result<StoredHistory> {
        StoredHistory h;
        h.topic = ToString(r.getTopic());
        h.partition = r.getPartition();
        h.offset = r.getOffset();
        h.record_timestamp_ms = r.getRecordTimestampMs();
        h.event_type = ToString(r.getEventType());
        h.schema_version = r.getSchemaVersion();
        auto env = r.getEnvelope();
        h.envelope.assign(reinterpret_cast<const char*>(env.begin()), env.size());
        return h;
      });
}

std::string EncodeRejected(const eventstore::Record& record, const std::string& error) {
  capnp::MallocMessageBuilder message(128);
  auto r = message.initRoot<s::RejectedRecord>();
  r.setTopic(capnp::Text::Reader(record.topic().data(), record.topic().size()));
  r.setPartition(record.partition());
  r.setOffset(record.offset());
  r.setError(error);
  r.setKey(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(record.key().data()), record.key().size()));
  r.setValue(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(record.value().data()), record.value().size()));
  return WritePacked(message);
}

Result<RejectedEntry> DecodeRejected(std::string_view bytes) {
  return ReadPackedRoot<s::RejectedRecord, RejectedEntry>(
      bytes, "rejected", [](s::RejectedRecord::Reader r) -> Result<RejectedEntry> {
        return RejectedEntry{ToString(r.getTopic()), r.getPartition(), r.getOffset(), ToString(r.getError())};
      });
}

}  // namespace orderflow::projections::internal

namespace orderflow::projections {
std::string EncodeOrderRecord(const domain::OrderState& state) { return internal::EncodeOrder(state); }
Result<domain::OrderState> DecodeOrderRecord(std::string_view bytes) { return internal::DecodeOrder(bytes); }
}  // namespace orderflow::projections

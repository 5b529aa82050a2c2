// Builders for events and records used across tests.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "domain/events.h"
#include "eventstore/codec.h"
#include "eventstore/kafka.h"

namespace orderflow::testing {

inline domain::EventId TestEventId(const std::string& order_id, uint32_t n) {
  domain::EventId ns{};
  ns[0] = 0x42;
  return domain::DeriveEventId(ns, order_id + "#" + std::to_string(n));
}

inline domain::Event PlacedEvent(const std::string& order_id, const std::string& customer = "alice") {
  domain::Event e;
  e.id = TestEventId(order_id, 0);
  e.order_id = order_id;
  e.occurred_at_ms = 1'700'000'000'000;
  e.producer = "test";
  e.payload = domain::OrderPlaced{customer, {{"SKU-MUG", 2, 1450}}, 2900, "EUR"};
  return e;
}

inline domain::Event LifecycleEvent(const std::string& order_id, uint32_t n, domain::EventPayload payload) {
  domain::Event e;
  e.id = TestEventId(order_id, n);
  e.order_id = order_id;
  e.occurred_at_ms = 1'700'000'000'000 + n;
  e.producer = "test";
  e.payload = std::move(payload);
  return e;
}

inline eventstore::Record ToRecord(const domain::Event& e, int32_t partition, int64_t offset,
                                   const std::string& topic = "orders.events") {
  return eventstore::Record::Make(topic, partition, offset, e.order_id, eventstore::EncodeEvent(e), {},
                                  1'700'000'000'000 + offset);
}

// Records [from, to) of `log` (to past the end: up to it), copied (a Record
// cannot be): topic, partition, offset, key and value.
inline std::vector<eventstore::Record> CopyRecords(const std::vector<eventstore::Record>& log, size_t from,
                                                   size_t to) {
  std::vector<eventstore::Record> out;
  for (size_t j = from; j < std::min(log.size(), to); ++j) {
    out.push_back(eventstore::Record::Make(std::string(log[j].topic()), log[j].partition(), log[j].offset(),
                                           std::string(log[j].key()), std::string(log[j].value())));
  }
  return out;
}

}  // namespace orderflow::testing

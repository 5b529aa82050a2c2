// The stock aggregate's command side: stock put on inventory.events by hand
// (`orderflow stock add`), next to what the inventory service appends itself.
//
// Thread-safe if the Producer is (it is).
#pragma once

#include <cstdint>
#include <string>

#include "domain/catalog.h"
#include "domain/events.h"
#include "domain/status.h"
#include "eventstore/kafka.h"

namespace orderflow::services {

// Appends StockAdded{sku, qty} to inventory.events (keyed by the SKU, event
// producer "cli", a new random event id) and flushes `producer`, waiting up to
// 30 s. Returns the event's id once the broker acknowledged it.
// Errors: kInvalidArgument when `sku` is not in `catalog` or `qty` <= 0
// (nothing appended); otherwise the producer's append or flush error. Not
// idempotent: each call is a new event, so retrying after a flush timeout may
// add the stock twice.
Result<domain::EventId> AddStock(eventstore::Producer& producer, const domain::Catalog& catalog,
                                 const std::string& sku, int32_t qty);

}  // namespace orderflow::services

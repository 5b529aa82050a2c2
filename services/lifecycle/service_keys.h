#pragma once

#include <string>

#include "domain/events.h"
#include "eventstore/big_endian.h"
#include "eventstore/kafka.h"
#include "eventstore/state_db.h"

namespace orderflow::services::store_keys {

// The service store's key layout (one column family), shared by the runner,
// its batch context and its outputs index:
//   o/<order id>                      order aggregate (OrderRecord)
//   k/<key>                           the reactor's key-value state
//   m/offset/<topic>/<partition be32> next input offset (be64)
//   x/<event id, 16 bytes>            an output of this service that is in the log
//   m/outidx/<topic>/<partition be32> where the outputs index stopped reading (be64)
constexpr char kOrderPrefix[] = "o/";
constexpr char kStatePrefix[] = "k/";
constexpr char kOffsetPrefix[] = "m/offset/";
constexpr char kOutputPrefix[] = "x/";
constexpr char kOutputIndexPrefix[] = "m/outidx/";

inline std::string OutputKey(const domain::EventId& id) {
  return kOutputPrefix + std::string(reinterpret_cast<const char*>(id.data()), id.size());
}

inline std::string OffsetKey(const eventstore::TopicPartition& tp) { return eventstore::PartitionKey(kOffsetPrefix, tp); }

}  // namespace orderflow::services::store_keys

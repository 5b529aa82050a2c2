#pragma once

#include <string>
#include <string_view>

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
//   y/<aggregate id><event id, 16 bytes>  an output of this service that is in the log
//   x/<event id, 16 bytes>            the same, as versions before y/ wrote it (read, never written)
//   m/outidx/<topic>/<partition be32> where the outputs index stopped reading (be64)
constexpr char kOrderPrefix[] = "o/";
constexpr char kStatePrefix[] = "k/";
constexpr char kOffsetPrefix[] = "m/offset/";
constexpr char kOutputPrefix[] = "y/";
constexpr char kLegacyOutputPrefix[] = "x/";
constexpr char kOutputIndexPrefix[] = "m/outidx/";

// An output's entry in the outputs index, under its aggregate (the record's
// key: an order id, or a SKU): order ids are time-ordered, so a batch's
// entries land together at the end of the index and the memtable inserts
// each next to the one before (the event ids alone are hashes, spread over
// the whole index: every insert was a search from the top). The event id
// has a fixed size at the end, so no two (aggregate, id) pairs share a key.
inline std::string OutputKey(std::string_view aggregate_id, const domain::EventId& id) {
  std::string key;
  key.reserve(sizeof(kOutputPrefix) - 1 + aggregate_id.size() + id.size());
  key.append(kOutputPrefix).append(aggregate_id).append(reinterpret_cast<const char*>(id.data()), id.size());
  return key;
}
inline std::string LegacyOutputKey(const domain::EventId& id) {
  return kLegacyOutputPrefix + std::string(reinterpret_cast<const char*>(id.data()), id.size());
}

inline std::string OffsetKey(const eventstore::TopicPartition& tp) { return eventstore::PartitionKey(kOffsetPrefix, tp); }

}  // namespace orderflow::services::store_keys

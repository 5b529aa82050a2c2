// Cap'n Proto encodings of the records stored in the projection column families.
#pragma once

#include <string>
#include <string_view>

#include "domain/order.h"
#include "domain/status.h"
#include "projections/store.h"

namespace orderflow::projections::internal {

std::string EncodeOrder(const domain::OrderState& state);
Result<domain::OrderState> DecodeOrder(std::string_view bytes);

struct StoredHistory {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t record_timestamp_ms = 0;
  std::string event_type;
  uint16_t schema_version = 0;
  std::string envelope;
};
// Encodes the history entry of `record` (whose value is the event as logged).
std::string EncodeHistory(const eventstore::Record& record, std::string_view event_type, uint16_t schema_version);
// The same bytes appended to *out (the bulk loader lays a chunk's entries end
// to end), about kHistoryOverhead more than the record's value.
void AppendHistory(std::string* out, const eventstore::Record& record, std::string_view event_type,
                   uint16_t schema_version);
inline constexpr size_t kHistoryOverhead = 192;  // ~120 B for orders.events; a topic prefix adds its length
Result<StoredHistory> DecodeHistory(std::string_view bytes);

std::string EncodeRejected(const eventstore::Record& record, const std::string& error);
Result<RejectedEntry> DecodeRejected(std::string_view bytes);

}  // namespace orderflow::projections::internal

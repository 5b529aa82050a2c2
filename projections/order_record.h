// The stored form of an order aggregate (schemas/projections.capnp OrderRecord),
// shared by the projections and the services' local stores.
#pragma once

#include <string>
#include <string_view>

#include "domain/order.h"
#include "domain/status.h"

namespace orderflow::projections {

std::string EncodeOrderRecord(const domain::OrderState& state);
// kCorruption for bytes that are not an OrderRecord.
Result<domain::OrderState> DecodeOrderRecord(std::string_view bytes);

}  // namespace orderflow::projections

// Validation of the HTTP API's request bodies, apart from the server so it can
// be tested and fuzzed alone: JSON only, strict (unknown fields are refused),
// with a message that says what to change. It refuses with kUnsupportedFormat (not
// JSON), kMalformed (not the request's shape), kInvalidArgument (well-formed
// but not acceptable: an unknown SKU); the API maps them to 415, 400, 422.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "domain/catalog.h"
#include "domain/order.h"
#include "domain/status.h"

namespace orderflow::services {

// The domain's limits (domain/order.h) by default; a test may narrow them.
struct RequestLimits {
  int32_t max_quantity = domain::kMaxQuantityPerLine;
  size_t max_lines = domain::kMaxLinesPerOrder;
};

// Each returns the parsed request or the Status that refuses it, as a value:
// no input, not even JSON that nlohmann::json rejects, makes it throw.

// POST /orders: {"customer_id", "lines": [{"sku", "quantity"}], "shipping_address"?}.
[[nodiscard]] Result<domain::PlaceOrder> ParsePlaceOrder(std::string_view body, std::string_view content_type,
                                                         const domain::Catalog& catalog, const RequestLimits& limits);

// POST /orders/{id}/cancel: an empty body or {"reason"?}.
[[nodiscard]] Result<std::string> ParseCancelReason(std::string_view body, std::string_view content_type);

}  // namespace orderflow::services

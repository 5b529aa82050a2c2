// Validation of the HTTP API's request bodies, apart from the server so it can
// be tested and fuzzed alone: JSON only, strict (unknown fields are refused),
// with an HTTP status and a message that says what to change.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "domain/catalog.h"
#include "domain/order.h"

namespace orderflow::services {

struct RequestError {
  int status;  // 400 malformed, 415 not JSON, 422 well-formed but not acceptable (unknown SKU)
  std::string message;
};

// The domain's limits (domain/order.h) by default; a test may narrow them.
struct RequestLimits {
  int32_t max_quantity = domain::kMaxQuantityPerLine;
  size_t max_lines = domain::kMaxLinesPerOrder;
};

// Each returns the parsed request or the RequestError that refuses it, as a
// value: no input, not even JSON that nlohmann::json rejects, makes it throw.

// POST /orders: {"customer_id", "lines": [{"sku", "quantity"}], "shipping_address"?}.
[[nodiscard]] std::variant<domain::PlaceOrder, RequestError> ParsePlaceOrder(std::string_view body,
                                                                             std::string_view content_type,
                                                                             const domain::Catalog& catalog,
                                                                             const RequestLimits& limits);

// POST /orders/{id}/cancel: an empty body or {"reason"?}.
[[nodiscard]] std::variant<std::string, RequestError> ParseCancelReason(std::string_view body,
                                                                        std::string_view content_type);

}  // namespace orderflow::services

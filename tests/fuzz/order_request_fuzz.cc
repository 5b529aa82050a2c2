// libFuzzer target: the HTTP API's JSON request parser (POST /orders and
// POST /orders/{id}/cancel bodies). It must never crash; a request it accepts
// must satisfy every rule it promises to enforce.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string_view>

#include "domain/catalog.h"
#include "services/api/order_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace orderflow;
  static const domain::Catalog catalog = domain::Catalog::Demo();
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const services::RequestLimits limits;
  // A refusal is the client's to fix (400, 415 or 422 in the API) and says why.
  auto refused_as_input = [](const Status& s) {
    return !s.message().empty() && (s.code() == StatusCode::kMalformed || s.code() == StatusCode::kUnsupportedFormat ||
                                    s.code() == StatusCode::kInvalidArgument);
  };
  auto parsed = services::ParsePlaceOrder(body, "application/json", catalog, limits);
  if (!parsed.ok()) {
    if (!refused_as_input(parsed.status())) std::abort();
  } else {
    const auto& order = parsed.value();
    if (order.customer_id.empty() || order.lines.empty() || order.lines.size() > limits.max_lines) std::abort();
    std::set<std::string> skus;
    for (const auto& line : order.lines) {
      if (line.quantity < 1 || line.quantity > limits.max_quantity) std::abort();
      if (catalog.Find(line.sku) == nullptr || !skus.insert(line.sku).second) std::abort();
    }
  }
  auto reason = services::ParseCancelReason(body, "application/json");
  if (!reason.ok() && !refused_as_input(reason.status())) std::abort();
  return 0;
}

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
  auto parsed = services::ParsePlaceOrder(body, "application/json", catalog, limits);
  if (auto* e = std::get_if<services::RequestError>(&parsed)) {
    if (e->status < 400 || e->status > 499 || e->message.empty()) std::abort();
  } else {
    const auto& order = std::get<domain::PlaceOrder>(parsed);
    if (order.customer_id.empty() || order.lines.empty() || order.lines.size() > limits.max_lines) std::abort();
    std::set<std::string> skus;
    for (const auto& line : order.lines) {
      if (line.quantity < 1 || line.quantity > limits.max_quantity) std::abort();
      if (catalog.Find(line.sku) == nullptr || !skus.insert(line.sku).second) std::abort();
    }
  }
  auto reason = services::ParseCancelReason(body, "application/json");
  if (auto* e = std::get_if<services::RequestError>(&reason); e && (e->status < 400 || e->status > 499)) std::abort();
  return 0;
}

// What the API's routes share: refusals, JSON replies, query-parameter checks.
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "domain/status.h"
#include "services/api/http_server.h"
#include "services/api/order_request.h"

namespace orderflow::services::api {

// A request the API refuses: status code and the message for {"error": ...}.
// HTTP's own (401, 403, 413, 422 ...), so not a Status; FromStatus converts one.
// The same type as a body's refusal (order_request.h), so one passes as the other.
using ApiError = RequestError;

// What a handler, or a check on its way, returns: nullopt when it served the
// request (or the check passed), else the ApiError that refuses the request.
// Nothing here throws to refuse.
using Refusal = std::optional<ApiError>;

// Returns the refusal `expr` yields, if any, from the enclosing handler.
#define ORDERFLOW_RETURN_IF_REFUSED(expr)                             \
  do {                                                                \
    if (Refusal of_refusal_ = (expr)) return std::move(*of_refusal_); \
  } while (0)

void SendJson(http::Response& res, int status, const nlohmann::json& body);
void SendError(http::Response& res, const ApiError& e);
http::Response ErrorResponse(int status, const std::string& message);

// HTTP status for a failed store read, append or operations query.
ApiError FromStatus(const Status& s);

// Query parameters are checked like bodies: a name given twice, or a name or
// value that is not UTF-8, is refused before any endpoint reads them.
[[nodiscard]] Refusal CheckParamsWellFormed(const http::Request& req);
// Refuses any query parameter other than `known`.
[[nodiscard]] Refusal CheckParams(const http::Request& req, std::initializer_list<const char*> known);

// Moves the parsed request to *out, or refuses with its RequestError.
template <typename T>
[[nodiscard]] Refusal Unwrap(std::variant<T, RequestError>&& parsed, T* out) {
  if (auto* e = std::get_if<RequestError>(&parsed)) return std::move(*e);
  *out = std::move(std::get<T>(parsed));
  return std::nullopt;
}

}  // namespace orderflow::services::api

// What the API's routes share: refusals, JSON replies, query-parameter checks.
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>

#include "domain/status.h"
#include "services/api/http_server.h"

namespace orderflow::services::api {

// A handler, or a check on its way, returns a Status: OK when it served the
// request (or the check passed), else the refusal, whose code HttpStatus maps
// to the response's status in one table. Nothing here throws to refuse.

void SendJson(http::Response& res, int status, const nlohmann::json& body);
// The HTTP status of a refusal: kMalformed 400, kUnauthenticated 401,
// kPermissionDenied 403, kNotFound 404, kFailedPrecondition, kInUse and
// kAlreadyExists 409, kUnsupportedFormat 415, kInvalidArgument 422 (well-formed
// but not acceptable: an unknown SKU, a quantity over the limit),
// kUnavailable 503 (its message then says to retry), anything else 500.
int HttpStatus(StatusCode code);
// {"error": message} with HttpStatus(s.code()).
void SendError(http::Response& res, const Status& s);
// For answers that are not a handler's refusal (the router's 404 and 405, the
// server's own 400, 413, 503).
http::Response ErrorResponse(int status, const std::string& message);

// Query parameters are checked like bodies: a name given twice, or a name or
// value that is not UTF-8, is refused before any endpoint reads them.
[[nodiscard]] Status CheckParamsWellFormed(const http::Request& req);
// Refuses any query parameter other than `known`.
[[nodiscard]] Status CheckParams(const http::Request& req, std::initializer_list<const char*> known);

}  // namespace orderflow::services::api

#include "services/api/reply.h"

#include "domain/utf8.h"

namespace orderflow::services::api {

void SendJson(http::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.content_type = "application/json";
  res.body = body.dump();
}

void SendError(http::Response& res, const ApiError& e) { SendJson(res, e.status, {{"error", e.message}}); }

http::Response ErrorResponse(int status, const std::string& message) {
  http::Response res;
  SendJson(res, status, {{"error", message}});
  return res;
}

ApiError FromStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kNotFound: return {404, s.message()};
    case StatusCode::kInvalidArgument: return {422, s.message()};
    case StatusCode::kFailedPrecondition:
    case StatusCode::kInUse:
    case StatusCode::kAlreadyExists: return {409, s.message()};
    case StatusCode::kUnavailable: return {503, s.message() + "; retry"};
    default: return {500, s.ToString()};
  }
}

Refusal CheckParamsWellFormed(const http::Request& req) {
  for (size_t i = 0; i < req.params.size(); ++i) {
    const auto& [name, value] = req.params[i];
    if (!domain::IsValidUtf8(name)) return ApiError{400, "a query parameter's name is not valid UTF-8"};
    if (!domain::IsValidUtf8(value)) return ApiError{400, "query parameter '" + name + "' is not valid UTF-8"};
    for (size_t j = 0; j < i; ++j) {
      if (req.params[j].first == name) return ApiError{400, "query parameter '" + name + "' is given twice"};
    }
  }
  return std::nullopt;
}

Refusal CheckParams(const http::Request& req, std::initializer_list<const char*> known) {
  for (const auto& [name, value] : req.params) {
    bool ok = false;
    for (const char* k : known) ok = ok || name == k;
    if (!ok) {
      std::string list;
      for (const char* k : known) list += std::string(list.empty() ? "" : ", ") + k;
      return ApiError{400, "unknown query parameter '" + name + "'" +
                               (list.empty() ? std::string(" (this endpoint takes none)") : " (known: " + list + ")")};
    }
  }
  return std::nullopt;
}

}  // namespace orderflow::services::api

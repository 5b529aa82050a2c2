#include "services/api/reply.h"

#include "domain/utf8.h"

namespace orderflow::services::api {

void SendJson(http::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.content_type = "application/json";
  res.body = body.dump();
}

int HttpStatus(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kMalformed: return 400;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kInUse:
    case StatusCode::kAlreadyExists: return 409;
    case StatusCode::kUnsupportedFormat: return 415;
    case StatusCode::kInvalidArgument: return 422;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kOutOfRange:
    case StatusCode::kCorruption:
    case StatusCode::kInternal: return 500;
  }
  return 500;
}

void SendError(http::Response& res, const Status& s) {
  const int status = HttpStatus(s.code());
  // A 503 says to retry; the API's own messages already say how ("retry
  // later", "retry with the same Idempotency-Key"), a store's do not.
  std::string message = s.message();
  if (status == 503 && message.find("retry") == std::string::npos) message += "; retry";
  if (status == 500) message = s.ToString();
  SendJson(res, status, {{"error", std::move(message)}});
}

http::Response ErrorResponse(int status, const std::string& message) {
  http::Response res;
  SendJson(res, status, {{"error", message}});
  return res;
}

Status CheckParamsWellFormed(const http::Request& req) {
  for (size_t i = 0; i < req.params.size(); ++i) {
    const auto& [name, value] = req.params[i];
    if (!domain::IsValidUtf8(name)) return Status::Malformed("a query parameter's name is not valid UTF-8");
    if (!domain::IsValidUtf8(value)) return Status::Malformed("query parameter '" + name + "' is not valid UTF-8");
    for (size_t j = 0; j < i; ++j) {
      if (req.params[j].first == name) return Status::Malformed("query parameter '" + name + "' is given twice");
    }
  }
  return Status::Ok();
}

Status CheckParams(const http::Request& req, std::initializer_list<const char*> known) {
  for (const auto& [name, value] : req.params) {
    bool ok = false;
    for (const char* k : known) ok = ok || name == k;
    if (!ok) {
      std::string list;
      for (const char* k : known) list += std::string(list.empty() ? "" : ", ") + k;
      return Status::Malformed("unknown query parameter '" + name + "'" +
                               (list.empty() ? std::string(" (this endpoint takes none)") : " (known: " + list + ")"));
    }
  }
  return Status::Ok();
}

}  // namespace orderflow::services::api

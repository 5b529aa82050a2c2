#include "services/api/auth.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <nlohmann/json.hpp>

#include "domain/hex.h"

namespace orderflow::services::api {
namespace {

using nlohmann::json;

constexpr char kSessionCookie[] = "orderflow_session";
constexpr auto kSessionLifetime = std::chrono::hours(12);
constexpr size_t kMaxSessions = 10'000;

bool SameSecret(const std::string& given, const std::string& secret) {
  return !secret.empty() && given.size() == secret.size() &&
         CRYPTO_memcmp(given.data(), secret.data(), given.size()) == 0;
}

// What follows the session cookie's value, up to its Max-Age's number:
// Secure over HTTPS, so the browser never sends it over plain HTTP.
std::string CookieAttributes(const http::Request& req) {
  return std::string("; Path=/; HttpOnly; SameSite=Strict") + (req.secure ? "; Secure" : "") + "; Max-Age=";
}

std::string CookieValue(const std::string& header, std::string_view name) {
  size_t pos = 0;
  while (pos < header.size()) {
    const size_t end = std::min(header.find(';', pos), header.size());
    std::string_view part(header.data() + pos, end - pos);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > name.size() && part.substr(0, name.size()) == name && part[name.size()] == '=') {
      return std::string(part.substr(name.size() + 1));
    }
    pos = end + 1;
  }
  return {};
}

}  // namespace

Auth::Auth(std::string api_token, std::string api_read_token, const Clock& clock)
    : api_token_(std::move(api_token)), api_read_token_(std::move(api_read_token)), clock_(clock) {}

void Auth::Register(Router& router) {
  router.Add("POST", "/session", Access::kOpen, true,
             [this](const http::Request& req, const std::string&, http::Response& res) { return OpenSession(req, res); });
  router.Add("DELETE", "/session", Access::kOpen, true,
             [this](const http::Request& req, const std::string&, http::Response& res) { return CloseSession(req, res); });
}

Status Auth::Granted(const http::Request& req, Access* granted) {
  *granted = Access::kOpen;
  const std::string header = req.Header("Authorization");
  if (!header.empty()) {
    const std::string token = header.starts_with("Bearer ") ? header.substr(7) : std::string();
    if (SameSecret(token, api_token_)) {
      *granted = Access::kWrite;
    } else if (SameSecret(token, api_read_token_)) {
      *granted = Access::kRead;
    } else {
      return Status::Unauthenticated("the bearer token is not valid");
    }
    return Status::Ok();
  }
  const std::string id = CookieValue(req.Header("Cookie"), kSessionCookie);
  if (!id.empty()) {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(id);
    if (it != sessions_.end() && it->second.expires > clock_.Now()) *granted = it->second.access;
  }
  return Status::Ok();
}

Status Auth::Authorize(const http::Request& req, Access need) {
  if (need == Access::kOpen || (api_token_.empty() && api_read_token_.empty())) return Status::Ok();
  Access granted = Access::kOpen;
  ORDERFLOW_RETURN_IF_ERROR(Granted(req, &granted));
  if (granted == Access::kOpen) {
    return Status::Unauthenticated("this endpoint needs an 'Authorization: Bearer <token>' header (or a session from POST "
                         "/session)");
  }
  if (need == Access::kWrite && granted != Access::kWrite) {
    return Status::PermissionDenied("the read-only token cannot place or cancel orders; use the API token");
  }
  return Status::Ok();
}

Status Auth::OpenSession(const http::Request& req, http::Response& res) {
  ORDERFLOW_RETURN_IF_ERROR(CheckParams(req, {}));
  // The boundary with nlohmann::json here: asked not to throw, it returns a
  // discarded value (not an object) for text that is not JSON.
  const json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  const auto field = body.find("token");
  if (!body.is_object() || field == body.end() || !field->is_string()) {
    return Status::Malformed("send {\"token\": \"<API token>\"} as JSON");
  }
  const std::string& token = field->get_ref<const std::string&>();
  Access access = Access::kOpen;
  if (SameSecret(token, api_token_)) {
    access = Access::kWrite;
  } else if (SameSecret(token, api_read_token_)) {
    access = Access::kRead;
  } else if (api_token_.empty() && api_read_token_.empty()) {
    access = Access::kWrite;  // no token configured: everything is open anyway
  } else {
    return Status::Unauthenticated("the token is not valid");
  }
  unsigned char random[24];
  if (RAND_bytes(random, sizeof random) != 1) return Status::Unavailable("no randomness for a session id; retry");
  const std::string id = domain::HexEncode(std::string_view(reinterpret_cast<const char*>(random), sizeof random));
  {
    std::lock_guard lock(mu_);
    const auto now = clock_.Now();
    std::erase_if(sessions_, [&](const auto& s) { return s.second.expires <= now; });
    if (sessions_.size() >= kMaxSessions) return Status::Unavailable("too many open sessions; retry later");
    sessions_[id] = {access, now + kSessionLifetime};
  }
  res.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) + "=" + id + CookieAttributes(req) +
                                             std::to_string(std::chrono::seconds(kSessionLifetime).count()));
  SendJson(res, 200, {{"access", access == Access::kWrite ? "write" : "read"}});
  return Status::Ok();
}

Status Auth::CloseSession(const http::Request& req, http::Response& res) {
  ORDERFLOW_RETURN_IF_ERROR(CheckParams(req, {}));
  const std::string id = CookieValue(req.Header("Cookie"), kSessionCookie);
  {
    std::lock_guard lock(mu_);
    sessions_.erase(id);
  }
  res.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) + "=" + CookieAttributes(req) + "0");
  SendJson(res, 200, {{"access", nullptr}});
  return Status::Ok();
}

}  // namespace orderflow::services::api

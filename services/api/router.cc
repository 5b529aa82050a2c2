#include "services/api/router.h"

#include <algorithm>
#include <cstdlib>

namespace orderflow::services::api {
namespace {

const std::vector<Route>& Routes() {
  static const std::vector<Route> routes = {
      {"/orders", "GET, POST"},
      {"/orders/{id}", "GET"},
      {"/orders/{id}/history", "GET"},
      {"/orders/{id}/events", "GET"},
      {"/orders/{id}/cancel", "POST"},
      {"/analytics", "GET"},
      {"/catalog", "GET"},
      {"/healthz", "GET"},
      {"/readyz", "GET"},
      {"/metrics", "GET"},
      {"/session", "POST, DELETE"},
      {"/stock", "GET"},
      {"/lag", "GET"},
      {"/throughput", "GET"},
      {"/dlq", "GET"},
      {"/dlq/{id}/redrive", "POST"},
  };
  return routes;
}

const Route* RouteNamed(const char* label) {
  for (const Route& r : Routes()) {
    if (std::string_view(r.label) == label) return &r;
  }
  std::abort();  // a route added in code but not in the table: a bug found by the first test
}

}  // namespace

// Segment by segment: cheaper than a regular expression per route per request.
const Route* MatchRoute(std::string_view path, std::string* id) {
  for (const Route& r : Routes()) {
    std::string_view pattern = r.label, rest = path;
    std::string_view matched_id;
    bool ok = true;
    while (ok && !pattern.empty()) {
      const size_t brace = pattern.find("{id}");
      if (brace == std::string_view::npos) {
        ok = rest == pattern;
        pattern = rest = {};
        break;
      }
      ok = rest.substr(0, brace) == pattern.substr(0, brace);
      if (!ok) break;
      rest.remove_prefix(brace);
      pattern.remove_prefix(brace + 4);
      const size_t end = std::min(rest.find('/'), rest.size());
      matched_id = rest.substr(0, end);
      ok = !matched_id.empty();
      rest.remove_prefix(end);
    }
    if (ok && rest.empty()) {
      if (id != nullptr) *id = std::string(matched_id);
      return &r;
    }
  }
  return nullptr;
}

std::string RouteLabel(std::string_view path) {
  if (const Route* r = MatchRoute(path)) return r->label;
  return path == "/" || path.starts_with("/web/") || path.find('.') != std::string::npos ? "static" : "unknown";
}

void Router::Put(Endpoint e) {
  std::erase_if(endpoints_, [&](const Endpoint& x) { return x.route == e.route && x.method == e.method; });
  endpoints_.push_back(std::move(e));
}

void Router::Add(std::string method, const char* label, Access access, bool quick, Handler handler) {
  Put({.method = std::move(method), .route = RouteNamed(label), .handler = std::move(handler), .access = access,
       .quick = quick});
}

void Router::AddStream(const char* label, Access access, StreamOpener opener) {
  Put({.method = "GET", .route = RouteNamed(label), .stream = std::move(opener), .access = access, .quick = true});
}

const Endpoint* Router::Find(const std::string& method, std::string_view path, std::string* id,
                             const Route** route) const {
  *route = MatchRoute(path, id);
  if (*route == nullptr) return nullptr;
  for (const Endpoint& e : endpoints_) {
    if (e.route == *route && e.method == method) return &e;
  }
  return nullptr;
}

}  // namespace orderflow::services::api

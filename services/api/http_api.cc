#include "services/api/http_api.h"

#include <sys/stat.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <charconv>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <sstream>
#include <thread>
#include <tuple>

#include "domain/hex.h"
#include "domain/utf8.h"
#include "projections/order_record.h"
#include "services/api/http_server.h"
#include "services/api/order_request.h"
#include "projections/views.h"

namespace orderflow::services {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

bool ParsePosition(const std::string& text, int32_t* partition, int64_t* offset) {
  const auto colon = text.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) return false;
  const char* end = text.data() + text.size();
  auto [p1, e1] = std::from_chars(text.data(), text.data() + colon, *partition);
  auto [p2, e2] = std::from_chars(text.data() + colon + 1, end, *offset);
  return e1 == std::errc() && p1 == text.data() + colon && e2 == std::errc() && p2 == end && *partition >= 0 &&
         *offset >= 0;
}

namespace {

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

void SendJson(http::Response& res, int status, const json& body) {
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

// HTTP status for a failed store read or append.
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

// The route a path belongs to (the label of its metrics), and the methods it allows.
struct Route {
  const char* label;  // also the pattern: "{id}" matches one path segment
  const char* allow;
};

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

// The route `path` belongs to, with the {id} segment in *id (nullptr: none).
// Segment by segment: cheaper than a regular expression per route per request.
const Route* MatchRoute(std::string_view path, std::string* id = nullptr) {
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

// Query parameters are checked like bodies: a name given twice, or a name or
// value that is not UTF-8, is refused before any endpoint reads them.
[[nodiscard]] Refusal CheckParamsWellFormed(const http::Request& req) {
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

// Reads the query parameters a route knows; any other name is refused.
[[nodiscard]] Refusal CheckParams(const http::Request& req, std::initializer_list<const char*> known) {
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

class Metrics {
 public:
  Metrics()
      : registry_(std::make_shared<prometheus::Registry>()),
        requests_(prometheus::BuildCounter()
                      .Name("orderflow_http_requests_total")
                      .Help("HTTP requests served, by method, route and status code")
                      .Register(*registry_)),
        latency_(prometheus::BuildHistogram()
                     .Name("orderflow_http_request_duration_seconds")
                     .Help("Time from the request read to the response written, by route")
                     .Register(*registry_)) {}

  // The label maps are built once per (method, route, code), not per request;
  // a request only looks its series up (without allocating).
  void Observe(std::string_view method, std::string_view route, int status, double seconds) {
    static const prometheus::Histogram::BucketBoundaries kBuckets = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025,
                                                                      0.05,   0.1,   0.25,  0.5,   1,    2.5};
    prometheus::Counter* counter = nullptr;
    prometheus::Histogram* histogram = nullptr;
    {
      std::lock_guard lock(mu_);
      auto c = counters_.find(std::tuple(method, route, status));
      if (c == counters_.end()) {
        prometheus::Counter* added = &requests_.Add(
            {{"method", std::string(method)}, {"route", std::string(route)}, {"code", std::to_string(status)}});
        c = counters_.emplace(std::tuple(std::string(method), std::string(route), status), added).first;
      }
      auto h = histograms_.find(route);
      if (h == histograms_.end()) {
        h = histograms_.emplace(std::string(route), &latency_.Add({{"route", std::string(route)}}, kBuckets)).first;
      }
      counter = c->second;
      histogram = h->second;
    }
    counter->Increment();
    histogram->Observe(seconds);
  }

  std::vector<prometheus::MetricFamily> Collect() const { return registry_->Collect(); }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  std::mutex mu_;
  // (method, route, code) compared as string_views, so a lookup allocates
  // nothing (clang's std::less<> cannot compare a tuple of strings with one of views).
  struct SeriesLess {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return View(a) < View(b);
    }
    template <typename T>
    static std::tuple<std::string_view, std::string_view, int> View(const T& t) {
      return {std::get<0>(t), std::get<1>(t), std::get<2>(t)};
    }
  };
  // Ordered maps with transparent comparison: looked up by string_views.
  std::map<std::tuple<std::string, std::string, int>, prometheus::Counter*, SeriesLess> counters_;
  std::map<std::string, prometheus::Histogram*, std::less<>> histograms_;
};

// Moves the parsed request to *out, or refuses with its RequestError.
template <typename T>
[[nodiscard]] Refusal Unwrap(std::variant<T, RequestError>&& parsed, T* out) {
  if (auto* e = std::get_if<RequestError>(&parsed)) return std::move(*e);
  *out = std::move(std::get<T>(parsed));
  return std::nullopt;
}

// The JSON of GET /orders/{id}, kept per order so that reading an unchanged
// order skips the Cap'n Proto decode and the JSON rendering (about half of
// such a request's CPU). An entry holds the stored record it was rendered
// from and the store's VisibleStamp() taken before that record was read. It
// is served as it is only while the stamp is unchanged, which proves no write
// became visible since (so the record read then is the record now); once the
// stamp moved, the order's record is read again and the entry is served only
// if its bytes are equal, else the order is rendered anew. So an answer is
// never older than a read of the store at the time of the request: a request
// whose ?min_position was reached sees that write, as without the cache.
// Thread safety: all methods may be called concurrently.
class OrderBodyCache {
 public:
  explicit OrderBodyCache(size_t capacity) : per_shard_((capacity + kShards - 1) / kShards) {}

  // How an answer was found, for /metrics.
  enum Outcome { kFresh, kRevalidated, kRendered, kOutcomeCount };

  // Puts the JSON of order `id` as the store holds it now in *body; refuses
  // with 404 for an unknown order and the store's error for a failed read.
  [[nodiscard]] Refusal Render(const projections::ProjectionStore& store, const std::string& id, std::string* body) {
    const uint64_t stamp = store.VisibleStamp();  // before the read it vouches for
    Shard& shard = shards_[std::hash<std::string>()(id) % kShards];
    if (stamp != 0 && per_shard_ > 0) {
      std::lock_guard lock(shard.mu);
      auto it = shard.entries.find(id);
      if (it != shard.entries.end() && it->second.stamp == stamp) {
        *body = it->second.body;
        return Count(kFresh);
      }
    }
    thread_local std::string record;  // scratch: keeps its capacity across requests
    auto found = store.GetOrderRecord(id, &record);
    if (!found.ok()) return FromStatus(found.status());
    if (!*found) return ApiError{404, "order " + id + " not found"};
    if (per_shard_ > 0) {
      std::lock_guard lock(shard.mu);
      auto it = shard.entries.find(id);
      if (it != shard.entries.end() && it->second.record == record) {
        it->second.stamp = std::max(it->second.stamp, stamp);
        *body = it->second.body;
        return Count(kRevalidated);
      }
    }
    auto order = projections::DecodeOrderRecord(record);
    if (!order.ok()) return FromStatus(order.status());
    *body = projections::OrderJson(*order).dump();
    if (per_shard_ > 0) {
      std::lock_guard lock(shard.mu);
      auto it = shard.entries.find(id);
      if (it == shard.entries.end()) {
        if (shard.entries.size() >= per_shard_) shard.entries.erase(shard.entries.begin());
        it = shard.entries.emplace(id, Entry{}).first;
      }
      it->second = {stamp, record, *body};
    }
    return Count(kRendered);
  }

  uint64_t count(Outcome o) const { return counts_[o].load(std::memory_order_relaxed); }

 private:
  static constexpr size_t kShards = 16;  // two I/O threads rarely meet on one lock
  struct Entry {
    uint64_t stamp = 0;
    std::string record;
    std::string body;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Entry> entries;
  };

  Refusal Count(Outcome o) {
    counts_[o].fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }

  const size_t per_shard_;
  std::array<Shard, kShards> shards_;
  std::array<std::atomic<uint64_t>, kOutcomeCount> counts_{};
};

}  // namespace

struct HttpServer::Impl {
  HttpOptions options;
  HttpBackend backend;
  std::unique_ptr<http::Server> server;
  std::thread watcher;  // wakes ?min_position waits and event streams after each commit
  std::thread poller;   // serves the producer's delivery reports
  std::atomic<bool> stopping{false};
  Metrics metrics;
  std::unique_ptr<OrderBodyCache> order_bodies;  // GET /orders/{id}

  // Requests parked until the projection reaches their ?min_position: no
  // thread waits for them; the watcher resumes each on the worker pool.
  struct Waiter {
    eventstore::TopicPartition tp;
    int64_t offset;
    Clock::time_point deadline;
    std::function<void()> resume;
  };
  std::mutex waiters_mu;
  std::vector<Waiter> waiters;

  // Fills the response, or returns the refusal Serve answers with instead.
  using Handler = Refusal (Impl::*)(const http::Request&, const std::string& id, http::Response&);
  // What a request's credentials must grant (when a token is configured).
  enum class Access { kOpen, kRead, kWrite };
  struct Endpoint {
    const char* method;
    const Route* route;
    Handler handler;
    Access access;
    // Answers from local state at once: served on the I/O thread. The others
    // (writes waiting for the log, the broker's answers) go to the worker pool.
    bool quick = false;
  };
  std::vector<Endpoint> endpoints;

  void Install();
  void Dispatch(http::Request req, http::Responder responder);
  void Serve(const http::Request& req, const std::string& id, const Endpoint& endpoint, Clock::time_point start,
             const http::Responder& responder);
  void ServeStatic(const http::Request& req, http::Response& res) const;
  void Watch();
  // True when `offsets` (the projection's, as GetOffsets returned them) hold
  // `offset` of `tp`; an error counts as reached (the handler reports it).
  static bool Reached(const Result<projections::Offsets>& offsets, const eventstore::TopicPartition& tp,
                      int64_t offset);

  // Refuses with 401 (no or a wrong credential) or 403 (a read-only one for a
  // write) unless the request's bearer token or session cookie grants `need`.
  [[nodiscard]] Refusal Authorize(const http::Request& req, Access need);
  // What the request's credentials grant, in *granted; 401 for a wrong bearer token.
  [[nodiscard]] Refusal Granted(const http::Request& req, Access* granted);
  // Sessions from POST /session, for the web page: EventSource cannot send an
  // Authorization header, so the page trades its token for a cookie.
  struct WebSession {
    Access access;
    Clock::time_point expires;
  };
  std::mutex sessions_mu;
  std::map<std::string, WebSession> sessions;
  Refusal OpenSession(const http::Request& req, const std::string& id, http::Response& res);
  Refusal GetStock(const http::Request& req, const std::string& id, http::Response& res);
  Refusal GetLag(const http::Request& req, const std::string& id, http::Response& res);
  Refusal GetThroughput(const http::Request& req, const std::string& id, http::Response& res);
  Refusal ListDeadLetters(const http::Request& req, const std::string& id, http::Response& res);
  Refusal RedriveDeadLetter(const http::Request& req, const std::string& id, http::Response& res);
  // Events applied so far, sampled once a second by Watch for /throughput
  // (the last 10 minutes).
  std::mutex samples_mu;
  std::deque<std::pair<int64_t, uint64_t>> samples;  // (unix ms, events applied)
  void Sample();
  Refusal CloseSession(const http::Request& req, const std::string& id, http::Response& res);
  // Refuses (503) a request whose ?min_position the projection has not reached:
  // Dispatch parks such requests until it has or max_wait passes, so here it is
  // only the final word. 400 for a malformed position.
  [[nodiscard]] Refusal CheckPosition(const http::Request& req) const;
  // The order in *order; 404 when there is none.
  [[nodiscard]] Refusal LoadOrder(const std::string& id, domain::OrderState* order) const;
  // Appends through `append` (which reports delivery to the callback) and
  // waits for the log's acknowledgement; *last is where the last event landed.
  // `append` returns how many events it appended. Runs on a worker thread.
  [[nodiscard]] Refusal AppendAndWait(const std::function<Result<size_t>(eventstore::DeliveryCallback)>& append,
                                      eventstore::Position* last) const;

  Refusal PlaceOrder(const http::Request& req, const std::string& id, http::Response& res);
  Refusal GetOrder(const http::Request& req, const std::string& id, http::Response& res);
  Refusal GetHistory(const http::Request& req, const std::string& id, http::Response& res);
  Refusal CancelOrder(const http::Request& req, const std::string& id, http::Response& res);
  Refusal ListOrders(const http::Request& req, const std::string& id, http::Response& res);
  Refusal GetMetrics(const http::Request& req, const std::string& id, http::Response& res);
  Refusal GetAnalytics(const http::Request& req, const std::string& id, http::Response& res);
  Refusal GetCatalog(const http::Request& req, const std::string& id, http::Response& res);
  Refusal GetHealth(const http::Request& req, const std::string& id, http::Response& res);
  Refusal GetReady(const http::Request& req, const std::string& id, http::Response& res);
  // Validates, and puts in *source the OrderEvents source the connection is
  // handed to (no response of its own).
  [[nodiscard]] Refusal OpenStream(const http::Request& req, const std::string& id,
                                   std::shared_ptr<http::EventSource>* source);
};

namespace {

// One order's lifecycle events as server-sent events, from the projection.
class OrderEvents : public http::EventSource {
 public:
  OrderEvents(const projections::ProjectionStore& store, std::string id, int64_t next_sequence)
      : store_(store), id_(std::move(id)), next_sequence_(next_sequence) {}

  std::string Next(bool* end) override {
    std::string frames;
    if (first_) {
      first_ = false;
      frames = "retry: 1000\n\n";
    }
    auto order = store_.GetOrder(id_);
    if (!order.ok()) {
      *end = true;
      return frames;
    }
    if (order->has_value() && (*order)->version != version_sent_) {
      auto history = store_.GetHistory(id_);
      if (!history.ok()) {
        *end = true;
        return frames;
      }
      for (const auto& e : *history) {
        if (e.sequence < next_sequence_) continue;
        frames += "id: " + std::to_string(e.sequence) + "\nevent: " + e.event_type + "\ndata: " + projections::HistoryJson(e).dump() +
                  "\n\n";
        next_sequence_ = e.sequence + 1;
      }
      version_sent_ = (*order)->version;
    }
    return frames;
  }

 private:
  const projections::ProjectionStore& store_;
  const std::string id_;
  int64_t next_sequence_;
  uint32_t version_sent_ = 0;  // order version whose events were sent
  bool first_ = true;
};

const char* ContentTypeOf(const std::string& path) {
  static const std::pair<const char*, const char*> kTypes[] = {
      {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},   {".json", "application/json"},
      {".svg", "image/svg+xml"},             {".png", "image/png"},
      {".ico", "image/x-icon"},              {".txt", "text/plain; charset=utf-8"}};
  for (const auto& [ext, type] : kTypes) {
    if (path.ends_with(ext)) return type;
  }
  return "application/octet-stream";
}

}  // namespace

namespace {

constexpr char kSessionCookie[] = "orderflow_session";
constexpr auto kSessionLifetime = std::chrono::hours(12);
constexpr size_t kMaxSessions = 10'000;

bool SameSecret(const std::string& given, const std::string& secret) {
  return !secret.empty() && given.size() == secret.size() &&
         CRYPTO_memcmp(given.data(), secret.data(), given.size()) == 0;
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

Refusal HttpServer::Impl::Granted(const http::Request& req, Access* granted) {
  *granted = Access::kOpen;
  const std::string header = req.Header("Authorization");
  if (!header.empty()) {
    const std::string token = header.starts_with("Bearer ") ? header.substr(7) : std::string();
    if (SameSecret(token, options.api_token)) {
      *granted = Access::kWrite;
    } else if (SameSecret(token, options.api_read_token)) {
      *granted = Access::kRead;
    } else {
      return ApiError{401, "the bearer token is not valid"};
    }
    return std::nullopt;
  }
  const std::string id = CookieValue(req.Header("Cookie"), kSessionCookie);
  if (!id.empty()) {
    std::lock_guard lock(sessions_mu);
    auto it = sessions.find(id);
    if (it != sessions.end() && it->second.expires > Clock::now()) *granted = it->second.access;
  }
  return std::nullopt;
}

Refusal HttpServer::Impl::Authorize(const http::Request& req, Access need) {
  if (need == Access::kOpen || (options.api_token.empty() && options.api_read_token.empty())) return std::nullopt;
  Access granted = Access::kOpen;
  ORDERFLOW_RETURN_IF_REFUSED(Granted(req, &granted));
  if (granted == Access::kOpen) {
    return ApiError{401, "this endpoint needs an 'Authorization: Bearer <token>' header (or a session from POST "
                         "/session)"};
  }
  if (need == Access::kWrite && granted != Access::kWrite) {
    return ApiError{403, "the read-only token cannot place or cancel orders; use the API token"};
  }
  return std::nullopt;
}

Refusal HttpServer::Impl::OpenSession(const http::Request& req, const std::string&, http::Response& res) {
  ORDERFLOW_RETURN_IF_REFUSED(CheckParams(req, {}));
  // The boundary with nlohmann::json here: asked not to throw, it returns a
  // discarded value (not an object) for text that is not JSON.
  const json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  const auto field = body.find("token");
  if (!body.is_object() || field == body.end() || !field->is_string()) {
    return ApiError{400, "send {\"token\": \"<API token>\"} as JSON"};
  }
  const std::string& token = field->get_ref<const std::string&>();
  Access access = Access::kOpen;
  if (SameSecret(token, options.api_token)) {
    access = Access::kWrite;
  } else if (SameSecret(token, options.api_read_token)) {
    access = Access::kRead;
  } else if (options.api_token.empty() && options.api_read_token.empty()) {
    access = Access::kWrite;  // no token configured: everything is open anyway
  } else {
    return ApiError{401, "the token is not valid"};
  }
  unsigned char random[24];
  if (RAND_bytes(random, sizeof random) != 1) return ApiError{503, "no randomness for a session id; retry"};
  const std::string id = domain::HexEncode(std::string_view(reinterpret_cast<const char*>(random), sizeof random));
  {
    std::lock_guard lock(sessions_mu);
    const auto now = Clock::now();
    std::erase_if(sessions, [&](const auto& s) { return s.second.expires <= now; });
    if (sessions.size() >= kMaxSessions) return ApiError{503, "too many open sessions; retry later"};
    sessions[id] = {access, now + kSessionLifetime};
  }
  res.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) + "=" + id +
                                             "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" +
                                             std::to_string(std::chrono::seconds(kSessionLifetime).count()));
  SendJson(res, 200, {{"access", access == Access::kWrite ? "write" : "read"}});
  return std::nullopt;
}

Refusal HttpServer::Impl::CloseSession(const http::Request& req, const std::string&, http::Response& res) {
  ORDERFLOW_RETURN_IF_REFUSED(CheckParams(req, {}));
  const std::string id = CookieValue(req.Header("Cookie"), kSessionCookie);
  {
    std::lock_guard lock(sessions_mu);
    sessions.erase(id);
  }
  res.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) + "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
  SendJson(res, 200, {{"access", nullptr}});
  return std::nullopt;
}

bool HttpServer::Impl::Reached(const Result<projections::Offsets>& offsets, const eventstore::TopicPartition& tp,
                               int64_t offset) {
  if (!offsets.ok()) return true;
  auto it = offsets->find(tp);
  return it != offsets->end() && it->second > offset;
}

Refusal HttpServer::Impl::CheckPosition(const http::Request& req) const {
  if (!req.HasParam("min_position")) return std::nullopt;
  const std::string text = req.Param("min_position");
  int32_t partition = 0;
  int64_t offset = 0;
  if (!ParsePosition(text, &partition, &offset)) {
    return ApiError{400, "min_position must be PARTITION:OFFSET as returned by a write, got '" + text + "'"};
  }
  const eventstore::TopicPartition tp{backend.orders_topic, partition};
  auto offsets = backend.store->GetOffsets();
  if (!offsets.ok()) return FromStatus(offsets.status());
  const int64_t have = offsets->count(tp) ? offsets->at(tp) : 0;
  if (have > offset) return std::nullopt;
  return ApiError{503, "the projection has not reached position " + text + " yet (partition " +
                           std::to_string(partition) + " is at offset " + std::to_string(have) + "); retry"};
}

Refusal HttpServer::Impl::LoadOrder(const std::string& id, domain::OrderState* order) const {
  auto found = backend.store->GetOrder(id);
  if (!found.ok()) return FromStatus(found.status());
  if (!found->has_value()) return ApiError{404, "order " + id + " not found"};
  *order = std::move(**found);
  return std::nullopt;
}

Refusal HttpServer::Impl::AppendAndWait(const std::function<Result<size_t>(eventstore::DeliveryCallback)>& append,
                                        eventstore::Position* last) const {
  struct Acks {
    std::mutex mu;
    size_t acked = 0;
    size_t expected = SIZE_MAX;  // known once `append` returns
    Status error;
    eventstore::Position last;
    std::promise<void> done;
  };
  auto acks = std::make_shared<Acks>();
  auto future = acks->done.get_future();
  auto appended = append([acks](const Status& s, eventstore::Position pos) {
    std::lock_guard lock(acks->mu);
    if (!s.ok() && acks->error.ok()) acks->error = s;
    if (pos.offset > acks->last.offset) acks->last = pos;
    if (++acks->acked == acks->expected) acks->done.set_value();
  });
  if (!appended.ok()) return FromStatus(appended.status());
  {
    std::lock_guard lock(acks->mu);
    acks->expected = *appended;
    if (acks->acked == acks->expected) acks->done.set_value();
  }
  if (future.wait_for(options.append_timeout) != std::future_status::ready) {
    return ApiError{503, "the log did not acknowledge the write within " +
                             std::to_string(options.append_timeout.count()) +
                             " ms; it may still land: retry with the same Idempotency-Key"};
  }
  {
    std::lock_guard lock(acks->mu);
    if (!acks->error.ok()) return FromStatus(acks->error);
    *last = acks->last;
  }
  if (backend.wait_durable) {
    Status durable = backend.wait_durable({{{backend.orders_topic, last->partition}, last->offset + 1}});
    if (!durable.ok()) return ApiError{503, durable.message() + "; retry with the same Idempotency-Key"};
  }
  return std::nullopt;
}

Refusal HttpServer::Impl::PlaceOrder(const http::Request& req, const std::string&, http::Response& res) {
  ORDERFLOW_RETURN_IF_REFUSED(CheckParams(req, {}));
  domain::PlaceOrder command;
  ORDERFLOW_RETURN_IF_REFUSED(
      Unwrap(ParsePlaceOrder(req.body, req.Header("Content-Type"), *backend.catalog, RequestLimits{}), &command));
  // With an Idempotency-Key the order id is derived from it: a retried request
  // names the same order, and the order service's event id dedupes it.
  std::string order_id;
  const std::string key = req.Header("Idempotency-Key");
  if (!key.empty()) {
    if (key.size() > 200) return ApiError{400, "Idempotency-Key is longer than 200 characters"};
    order_id = domain::UuidToString(domain::DeriveEventId(kOrderServiceNamespace, command.customer_id + "\n" + key));
  } else {
    order_id = NewOrderId();
  }
  domain::Event placed;
  eventstore::Position pos;
  ORDERFLOW_RETURN_IF_REFUSED(AppendAndWait(
      [&](eventstore::DeliveryCallback cb) -> Result<size_t> {
        auto event = backend.orders->Place(command, order_id, NowMs(), std::move(cb));
        if (!event.ok()) return event.status();
        placed = std::move(event).value();
        return size_t{1};
      },
      &pos));
  const std::string position = std::to_string(pos.partition) + ":" + std::to_string(pos.offset);
  res.headers.emplace_back("Location", "/orders/" + order_id);
  SendJson(res, 202,
           {{"order_id", order_id},
            {"event_id", domain::UuidToString(placed.id)},
            {"position", position},
            {"partition", pos.partition},
            {"offset", pos.offset},
            {"status_url", "/orders/" + order_id + "?min_position=" + position}});
  return std::nullopt;
}

Refusal HttpServer::Impl::GetOrder(const http::Request& req, const std::string& id, http::Response& res) {
  ORDERFLOW_RETURN_IF_REFUSED(CheckParams(req, {"min_position"}));
  ORDERFLOW_RETURN_IF_REFUSED(CheckPosition(req));
  ORDERFLOW_RETURN_IF_REFUSED(order_bodies->Render(*backend.store, id, &res.body));
  res.status = 200;
  res.content_type = "application/json";
  return std::nullopt;
}

Refusal HttpServer::Impl::GetHistory(const http::Request& req, const std::string& id, http::Response& res) {
  ORDERFLOW_RETURN_IF_REFUSED(CheckParams(req, {"min_position"}));
  ORDERFLOW_RETURN_IF_REFUSED(CheckPosition(req));
  auto history = backend.store->GetHistory(id);
  if (!history.ok()) return FromStatus(history.status());
  if (history->empty()) return ApiError{404, "order " + id + " not found"};
  json events = json::array();
  for (const auto& e : *history) events.push_back(projections::HistoryJson(e));
  SendJson(res, 200, {{"order_id", id}, {"events", events}});
  return std::nullopt;
}

Refusal HttpServer::Impl::OpenStream(const http::Request& req, const std::string& id,
                                     std::shared_ptr<http::EventSource>* source) {
  ORDERFLOW_RETURN_IF_REFUSED(CheckParams(req, {"after", "min_position"}));
  // Resume after the last event the client saw: the Last-Event-ID header (an
  // EventSource reconnecting) or ?after=SEQUENCE.
  std::string after_text = req.Header("Last-Event-ID");
  if (req.HasParam("after")) after_text = req.Param("after");
  int64_t next_sequence = 0;
  if (!after_text.empty()) {
    int64_t after = 0;
    auto [p, ec] = std::from_chars(after_text.data(), after_text.data() + after_text.size(), after);
    if (ec != std::errc() || p != after_text.data() + after_text.size() || after < 0) {
      return ApiError{400, "after / Last-Event-ID must be an event sequence number, got '" + after_text + "'"};
    }
    next_sequence = after + 1;
  }
  ORDERFLOW_RETURN_IF_REFUSED(CheckPosition(req));
  domain::OrderState order;
  ORDERFLOW_RETURN_IF_REFUSED(LoadOrder(id, &order));  // 404 before the stream starts
  *source = std::make_shared<OrderEvents>(*backend.store, id, next_sequence);
  return std::nullopt;
}

Refusal HttpServer::Impl::CancelOrder(const http::Request& req, const std::string& id, http::Response& res) {
  ORDERFLOW_RETURN_IF_REFUSED(CheckParams(req, {"min_position"}));
  std::string reason;
  ORDERFLOW_RETURN_IF_REFUSED(Unwrap(ParseCancelReason(req.body, req.Header("Content-Type")), &reason));
  ORDERFLOW_RETURN_IF_REFUSED(CheckPosition(req));
  domain::OrderState order;
  ORDERFLOW_RETURN_IF_REFUSED(LoadOrder(id, &order));
  // Decide first (appends nothing on a rejection), then append and wait.
  eventstore::Position pos;
  ORDERFLOW_RETURN_IF_REFUSED(AppendAndWait(
      [&](eventstore::DeliveryCallback cb) -> Result<size_t> {
        auto events = backend.orders->Execute(order, domain::CancelOrder{reason, domain::CancelSource::kCustomer},
                                              NowMs(), std::move(cb));
        if (!events.ok()) return events.status();
        return events->size();
      },
      &pos));
  const std::string position = std::to_string(pos.partition) + ":" + std::to_string(pos.offset);
  SendJson(res, 202,
           {{"order_id", id},
            {"position", position},
            {"partition", pos.partition},
            {"offset", pos.offset},
            {"status_url", "/orders/" + id + "?min_position=" + position}});
  return std::nullopt;
}

Refusal HttpServer::Impl::ListOrders(const http::Request& req, const std::string&, http::Response& res) {
  ORDERFLOW_RETURN_IF_REFUSED(CheckParams(req, {"status", "customer", "limit", "after", "sort"}));
  projections::OrderQuery query;
  if (req.HasParam("sort")) {
    const std::string sort = req.Param("sort");
    if (sort != "newest" && sort != "id") return ApiError{400, "sort must be 'newest' or 'id', got '" + sort + "'"};
    query.newest_first = sort == "newest";
  }
  if (req.HasParam("status")) {
    const std::string name = req.Param("status");
    query.status = projections::OrderStatusFromName(name);
    if (!query.status) return ApiError{400, "unknown status '" + name + "' (known: " + projections::OrderStatusNames() + ")"};
  }
  query.customer = req.Param("customer");
  query.after = req.Param("after");
  if (req.HasParam("limit")) {
    const std::string text = req.Param("limit");
    size_t limit = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
    if (ec != std::errc() || p != text.data() + text.size() || limit == 0 || limit > options.max_page) {
      return ApiError{400, "limit must be a whole number from 1 to " + std::to_string(options.max_page) + ", got '" +
                               text + "'"};
    }
    query.limit = limit;
  }
  auto page = backend.store->ListOrders(query);
  // The only argument ListOrders can refuse is the cursor: a bad query parameter.
  if (!page.ok() && page.status().code() == StatusCode::kInvalidArgument) return ApiError{400, page.status().message()};
  if (!page.ok()) return FromStatus(page.status());
  json orders = json::array();
  for (const auto& o : page->orders) orders.push_back(projections::OrderJson(o));
  SendJson(res, 200, {{"orders", orders}, {"next", page->next.empty() ? json(nullptr) : json(page->next)}});
  return std::nullopt;
}

Refusal HttpServer::Impl::GetAnalytics(const http::Request& req, const std::string&, http::Response& res) {
  ORDERFLOW_RETURN_IF_REFUSED(CheckParams(req, {"top"}));
  size_t top = 5;
  if (req.HasParam("top")) {
    const std::string t = req.Param("top");
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), top);
    if (ec != std::errc() || p != t.data() + t.size() || top == 0 || top > 100) {
      return ApiError{400, "top must be a whole number from 1 to 100, got '" + t + "'"};
    }
  }
  auto a = backend.store->GetAnalytics(top);
  if (!a.ok()) return FromStatus(a.status());
  SendJson(res, 200, projections::AnalyticsJson(*a));
  return std::nullopt;
}

Refusal HttpServer::Impl::GetCatalog(const http::Request& req, const std::string&, http::Response& res) {
  ORDERFLOW_RETURN_IF_REFUSED(CheckParams(req, {}));
  SendJson(res, 200, {{"currency", backend.catalog->currency()}, {"items", projections::CatalogJson(*backend.catalog)}});
  return std::nullopt;
}

Refusal HttpServer::Impl::GetHealth(const http::Request&, const std::string&, http::Response& res) {
  SendJson(res, 200, {{"status", "ok"}});
  return std::nullopt;
}

Refusal HttpServer::Impl::GetReady(const http::Request&, const std::string&, http::Response& res) {
  const std::string reason = backend.not_ready_reason ? backend.not_ready_reason() : "";
  if (reason.empty()) {
    SendJson(res, 200, {{"ready", true}});
  } else {
    SendJson(res, 503, {{"ready", false}, {"reason", reason}});  // an answer, not a refusal: it says why
  }
  return std::nullopt;
}

Refusal HttpServer::Impl::GetMetrics(const http::Request& req, const std::string&, http::Response& res) {
  ORDERFLOW_RETURN_IF_REFUSED(CheckParams(req, {}));
  std::vector<prometheus::MetricFamily> families = metrics.Collect();
  auto family = [&](const char* name, const char* help, prometheus::MetricType type) -> prometheus::MetricFamily& {
    families.push_back({name, help, type, {}});
    return families.back();
  };
  if (backend.projector_counters != nullptr) {
    auto& applied = family("orderflow_events_applied_total", "Events the projector applied, by event type",
                           prometheus::MetricType::Counter);
    for (size_t i = 0; i < domain::kEventTypeCount; ++i) {
      prometheus::ClientMetric m;
      m.label = {{"type", std::string(domain::EventTypeNameAt(i))}};
      m.counter.value = static_cast<double>(backend.projector_counters->applied_by_type[i].load());
      applied.metric.push_back(std::move(m));
    }
    auto& dups = family("orderflow_events_duplicate_total", "Re-delivered events the projector dropped by event id",
                        prometheus::MetricType::Counter);
    dups.metric.emplace_back().counter.value = static_cast<double>(backend.projector_counters->duplicates.load());
  }
  if (backend.lag) {
    auto& lag = family("orderflow_consumer_lag", "Records in the log not yet applied, per consumer and partition",
                       prometheus::MetricType::Gauge);
    for (const auto& l : backend.lag()) {
      prometheus::ClientMetric m;
      m.label = {{"consumer", l.consumer}, {"topic", l.partition.topic}, {"partition", std::to_string(l.partition.partition)}};
      m.gauge.value = static_cast<double>(l.lag);
      lag.metric.push_back(std::move(m));
    }
  }
  if (backend.dead_letters) {
    auto& dlq = family("orderflow_dlq_records", "Records this process's consumers parked on orders.dlq, by service",
                       prometheus::MetricType::Counter);
    for (const auto& [service, n] : backend.dead_letters()) {
      prometheus::ClientMetric m;
      m.label = {{"service", service}};
      m.counter.value = static_cast<double>(n);
      dlq.metric.push_back(std::move(m));
    }
  }
  if (auto counts = backend.store->CountByStatus(); counts.ok()) {
    auto& orders = family("orderflow_orders", "Orders in the projection, by status", prometheus::MetricType::Gauge);
    for (const auto& [status, n] : *counts) {
      prometheus::ClientMetric m;
      m.label = {{"status", status}};
      m.gauge.value = static_cast<double>(n);
      orders.metric.push_back(std::move(m));
    }
  }
  auto& cached = family("orderflow_http_order_cache_total",
                        "GET /orders/{id} answers: fresh (the store unchanged since rendered), revalidated (the "
                        "order's record unchanged), rendered",
                        prometheus::MetricType::Counter);
  for (auto [outcome, name] : {std::pair{OrderBodyCache::kFresh, "fresh"},
                               std::pair{OrderBodyCache::kRevalidated, "revalidated"},
                               std::pair{OrderBodyCache::kRendered, "rendered"}}) {
    prometheus::ClientMetric m;
    m.label = {{"result", name}};
    m.counter.value = static_cast<double>(order_bodies->count(outcome));
    cached.metric.push_back(std::move(m));
  }
  auto& ready = family("orderflow_ready", "1 once the projections caught up and the services run",
                       prometheus::MetricType::Gauge);
  ready.metric.emplace_back().gauge.value = backend.not_ready_reason && !backend.not_ready_reason().empty() ? 0 : 1;
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  res.status = 200;
  res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  res.body = out.str();
  return std::nullopt;
}

Refusal HttpServer::Impl::GetStock(const http::Request& req, const std::string&, http::Response& res) {
  ORDERFLOW_RETURN_IF_REFUSED(CheckParams(req, {}));
  if (!backend.stock) return ApiError{404, "this process runs no inventory service; ask the one that does"};
  auto levels = backend.stock();
  if (!levels.ok()) return FromStatus(levels.status());
  json items = json::array();
  for (const auto& l : *levels) items.push_back({{"sku", l.sku}, {"name", l.name}, {"available", l.available}});
  SendJson(res, 200, {{"stock", items}});
  return std::nullopt;
}

Refusal HttpServer::Impl::GetLag(const http::Request& req, const std::string&, http::Response& res) {
  ORDERFLOW_RETURN_IF_REFUSED(CheckParams(req, {}));
  json consumers = json::array();
  int64_t total = 0;
  if (backend.lag) {
    for (const auto& l : backend.lag()) {
      consumers.push_back({{"consumer", l.consumer},
                           {"topic", l.partition.topic},
                           {"partition", l.partition.partition},
                           {"committed", l.committed < 0 ? json(nullptr) : json(l.committed)},
                           {"end", l.end < 0 ? json(nullptr) : json(l.end)},
                           {"lag", l.lag}});
      total += l.lag;
    }
  }
  json services = json::array();
  if (backend.health) {
    for (const auto& h : backend.health()) {
      services.push_back({{"service", h.service}, {"running", h.running}, {"detail", h.detail}});
    }
  }
  SendJson(res, 200, {{"consumers", consumers}, {"total_lag", total}, {"services", services}});
  return std::nullopt;
}

void HttpServer::Impl::Sample() {
  if (backend.projector_counters == nullptr) return;
  const int64_t now = NowMs();
  std::lock_guard lock(samples_mu);
  if (!samples.empty() && now - samples.back().first < 1000) return;
  uint64_t applied = 0;
  for (size_t i = 0; i < domain::kEventTypeCount; ++i) applied += backend.projector_counters->applied_by_type[i].load();
  samples.emplace_back(now, applied);
  while (samples.size() > 601) samples.pop_front();
}

Refusal HttpServer::Impl::GetThroughput(const http::Request& req, const std::string&, http::Response& res) {
  ORDERFLOW_RETURN_IF_REFUSED(CheckParams(req, {}));
  // One point per 10 s: the events applied in it, per second.
  json points = json::array();
  {
    std::lock_guard lock(samples_mu);
    for (size_t i = 10; i < samples.size(); i += 10) {
      const auto& [t0, n0] = samples[i - 10];
      const auto& [t1, n1] = samples[i];
      const double seconds = std::max<int64_t>(1, t1 - t0) / 1000.0;
      points.push_back({{"time_ms", t1}, {"events_per_second", static_cast<double>(n1 - n0) / seconds}});
    }
  }
  SendJson(res, 200, {{"interval_seconds", 10}, {"points", points}});
  return std::nullopt;
}

Refusal HttpServer::Impl::ListDeadLetters(const http::Request& req, const std::string&, http::Response& res) {
  ORDERFLOW_RETURN_IF_REFUSED(CheckParams(req, {}));
  if (!backend.list_dead_letters) return ApiError{404, "dead letters are not served by this process"};
  auto letters = backend.list_dead_letters();
  if (!letters.ok()) return FromStatus(letters.status());
  json out = json::array();
  for (const auto& d : *letters) {
    out.push_back({{"id", d.id},
                   {"service", d.service},
                   {"error", d.error},
                   {"source", {{"topic", d.source_topic}, {"partition", d.source_partition}, {"offset", d.source_offset}}},
                   {"attempts", d.attempts},
                   {"failed_at_ms", d.failed_at_ms},
                   {"key", d.key},
                   {"redriven_at_ms", d.redriven_at_ms ? json(*d.redriven_at_ms) : json(nullptr)}});
  }
  SendJson(res, 200, {{"dead_letters", out}});
  return std::nullopt;
}

Refusal HttpServer::Impl::RedriveDeadLetter(const http::Request& req, const std::string& id, http::Response& res) {
  ORDERFLOW_RETURN_IF_REFUSED(CheckParams(req, {}));
  if (!backend.redrive) return ApiError{404, "dead letters are not served by this process"};
  int64_t n = -1;
  auto [p, ec] = std::from_chars(id.data(), id.data() + id.size(), n);
  if (ec != std::errc() || p != id.data() + id.size() || n < 0) {
    return ApiError{400, "a dead letter id is a whole number (its offset in orders.dlq), got '" + id + "'"};
  }
  auto result = backend.redrive(n);
  if (!result.ok()) return FromStatus(result.status());
  SendJson(res, 202, {{"redriven", result->redriven}, {"appended", result->appended}});
  return std::nullopt;
}

void HttpServer::Impl::Install() {
  auto route = [](const char* label) -> const Route* {
    for (const Route& r : Routes()) {
      if (std::string_view(r.label) == label) return &r;
    }
    return nullptr;
  };
  // With a token configured, only health, readiness and the login are open
  // (and /metrics with --metrics-public); everything that shows orders,
  // customers, stock or dead letters needs a credential.
  using enum Access;
  endpoints = {
      {"POST", route("/orders"), &Impl::PlaceOrder, kWrite},
      {"GET", route("/orders"), &Impl::ListOrders, kRead, true},
      {"GET", route("/orders/{id}"), &Impl::GetOrder, kRead, true},
      {"GET", route("/orders/{id}/history"), &Impl::GetHistory, kRead, true},
      {"GET", route("/orders/{id}/events"), nullptr, kRead, true},  // an event stream: OpenStream
      {"POST", route("/orders/{id}/cancel"), &Impl::CancelOrder, kWrite},
      {"GET", route("/analytics"), &Impl::GetAnalytics, kRead, true},
      {"GET", route("/catalog"), &Impl::GetCatalog, kRead, true},
      {"GET", route("/healthz"), &Impl::GetHealth, kOpen, true},
      {"GET", route("/readyz"), &Impl::GetReady, kOpen, true},
      {"GET", route("/metrics"), &Impl::GetMetrics, options.metrics_public ? kOpen : kRead},
      {"POST", route("/session"), &Impl::OpenSession, kOpen, true},
      {"GET", route("/stock"), &Impl::GetStock, kRead, true},
      {"GET", route("/lag"), &Impl::GetLag, kRead},
      {"GET", route("/throughput"), &Impl::GetThroughput, kRead},
      {"GET", route("/dlq"), &Impl::ListDeadLetters, kRead},
      {"POST", route("/dlq/{id}/redrive"), &Impl::RedriveDeadLetter, kWrite},
      {"DELETE", route("/session"), &Impl::CloseSession, kOpen, true},
  };
}

// On an I/O thread: finds the endpoint, parks the request while its
// ?min_position is ahead of the projection, and runs the handler on the
// worker pool (handlers read RocksDB and wait for the log).
void HttpServer::Impl::Dispatch(http::Request req, http::Responder responder) {
  const auto start = Clock::now();
  std::string id;
  const Endpoint* endpoint = nullptr;
  const Route* matched = nullptr;
  if ((matched = MatchRoute(req.path, &id)) != nullptr) {
    for (const Endpoint& e : endpoints) {
      if (e.route == matched && req.method == e.method) endpoint = &e;
    }
  }
  if (endpoint == nullptr) {
    const std::string method = req.method;
    server->Run([this, req = std::move(req), matched, start, responder, method] {
      http::Response res;
      if (matched != nullptr) {
        res.headers.emplace_back("Allow", matched->allow);
        SendError(res, {405, "method " + method + " is not allowed on " + matched->label + " (allowed: " +
                                 matched->allow + ")"});
      } else if (!options.web_dir.empty() && (method == "GET" || method == "HEAD")) {
        ServeStatic(req, res);
      } else {
        SendError(res, {404, "no such endpoint: " + method + " " + req.path});
      }
      metrics.Observe(method, matched ? matched->label : RouteLabel(req.path), res.status,
                      std::chrono::duration<double>(Clock::now() - start).count());
      responder.Send(std::move(res));
    });
    return;
  }
  Refusal refused = Authorize(req, endpoint->access);  // before a ?min_position wait, not after
  if (!refused) refused = CheckParamsWellFormed(req);
  if (refused) {
    http::Response res;
    SendError(res, *refused);
    metrics.Observe(req.method, endpoint->route->label, res.status,
                    std::chrono::duration<double>(Clock::now() - start).count());
    responder.Send(std::move(res));
    return;
  }
  const bool waits = req.HasParam("min_position");
  if (endpoint->quick && !waits) return Serve(req, id, *endpoint, start, responder);
  auto shared = std::make_shared<http::Request>(std::move(req));
  auto run = [this, shared, id, endpoint, start, responder] {
    Serve(*shared, id, *endpoint, start, responder);
  };
  int32_t partition = 0;
  int64_t offset = 0;
  const std::string position = shared->Param("min_position");
  if (!position.empty() && ParsePosition(position, &partition, &offset)) {
    const eventstore::TopicPartition tp{backend.orders_topic, partition};
    std::lock_guard lock(waiters_mu);
    if (!Reached(backend.store->GetOffsets(), tp, offset) && !stopping.load()) {
      waiters.push_back({tp, offset, Clock::now() + options.max_wait, [this, run = std::move(run)] { server->Run(run); }});
      return;
    }
  }
  server->Run(std::move(run));
}

void HttpServer::Impl::Serve(const http::Request& req, const std::string& id, const Endpoint& endpoint,
                             Clock::time_point start, const http::Responder& responder) {
  const Handler handler = endpoint.handler;
  const char* const label = endpoint.route->label;
  http::Response res;
  Refusal refused;
  // The one boundary for exceptions: handlers refuse by returning, so what is
  // caught here was thrown by a library (an allocation, a JSON dump) or is a
  // bug, and becomes a 500 instead of a dropped connection.
  try {
    if (handler == nullptr) {
      std::shared_ptr<http::EventSource> source;
      refused = OpenStream(req, id, &source);
      if (!refused) {
        metrics.Observe(req.method, label, 200, std::chrono::duration<double>(Clock::now() - start).count());
        responder.Stream(std::move(source));
        return;
      }
    } else {
      refused = (this->*handler)(req, id, res);
    }
  } catch (const std::exception& e) {
    spdlog::error("http: {} {}: {}", req.method, req.path, e.what());
    res = {};
    SendError(res, {500, std::string("internal error: ") + e.what()});
  }
  if (refused) {
    res = {};
    SendError(res, *refused);
  }
  metrics.Observe(req.method, label, res.status, std::chrono::duration<double>(Clock::now() - start).count());
  responder.Send(std::move(res));
}

void HttpServer::Impl::ServeStatic(const http::Request& req, http::Response& res) const {
  std::string path = req.path == "/" ? "/index.html" : req.path;
  // Only plain names below web_dir: no "..", no hidden files, no NUL.
  if (path.find("..") != std::string::npos || path.find("/.") != std::string::npos ||
      path.find('\0') != std::string::npos) {
    return SendError(res, {404, "no such endpoint: " + req.method + " " + req.path});
  }
  const std::string file = options.web_dir + path;
  struct stat st {};
  std::ifstream in(file, std::ios::binary);
  if (stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || !in) {
    return SendError(res, {404, "no such endpoint: " + req.method + " " + req.path});
  }
  res.status = 200;
  res.content_type = ContentTypeOf(path);
  res.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  res.headers.emplace_back("Cache-Control", "no-cache");
}

// One thread for every parked request and event stream: after each commit it
// resumes the requests whose position the projection reached (or whose wait
// ran out) and tells the streams to look for new events.
void HttpServer::Impl::Watch() {
  uint64_t seen = backend.store->CommitCount();
  while (!stopping.load()) {
    Sample();
    const uint64_t now_seen = backend.store->WaitForCommit(seen, Clock::now() + std::chrono::milliseconds(50));
    if (now_seen != seen) {
      seen = now_seen;
      server->NotifyStreams();
    }
    std::vector<std::function<void()>> ready;
    {
      std::lock_guard lock(waiters_mu);
      if (waiters.empty()) continue;
      const auto now = Clock::now();
      const auto offsets = backend.store->GetOffsets();  // once for every waiter
      std::erase_if(waiters, [&](Waiter& w) {
        if (!stopping.load() && now < w.deadline && !Reached(offsets, w.tp, w.offset)) return false;
        ready.push_back(std::move(w.resume));
        return true;
      });
    }
    for (auto& resume : ready) resume();
  }
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

const std::string& HttpServer::address() const { return impl_->server->address(); }

void HttpServer::Stop() {
  if (impl_->stopping.exchange(true)) return;
  impl_->backend.store->WakeAll();
  if (impl_->watcher.joinable()) impl_->watcher.join();
  {
    // Parked requests get their answer (503: not reached) before the server drains.
    std::vector<std::function<void()>> parked;
    std::lock_guard lock(impl_->waiters_mu);
    for (auto& w : impl_->waiters) parked.push_back(std::move(w.resume));
    impl_->waiters.clear();
    for (auto& resume : parked) resume();
  }
  impl_->server->Stop();
  if (impl_->poller.joinable()) impl_->poller.join();
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpOptions& options, HttpBackend backend) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->backend = std::move(backend);
  if (!options.web_dir.empty() && !std::filesystem::is_directory(options.web_dir)) {
    return Status::NotFound("web directory " + options.web_dir + " does not exist; pass --web-dir DIR");
  }
  impl->order_bodies = std::make_unique<OrderBodyCache>(options.order_cache_entries);
  impl->Install();
  http::ServerOptions server;
  server.listen = options.listen;
  server.max_connections = options.max_connections;
  server.max_streams = options.max_streams;
  server.max_body_bytes = options.max_body_bytes;
  server.header_timeout = options.header_timeout;
  server.body_timeout = options.header_timeout;
  server.idle_timeout = options.idle_timeout;
  server.worker_threads = options.threads;
  Impl* raw = impl.get();
  auto started = http::Server::Start(
      server, [raw](http::Request req, http::Responder responder) { raw->Dispatch(std::move(req), std::move(responder)); },
      [raw](int status, const std::string& message) {
        raw->metrics.Observe("-", "refused", status, 0);
        return ErrorResponse(status, message);
      });
  if (!started.ok()) return started.status();
  impl->server = std::move(started).value();
  impl->watcher = std::thread([raw] { raw->Watch(); });
  if (raw->backend.producer != nullptr) {
    impl->poller = std::thread([raw] {
      while (!raw->stopping.load()) raw->backend.producer->Poll(std::chrono::milliseconds(50));
    });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

}  // namespace orderflow::services

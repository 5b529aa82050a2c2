#include "services/http_api.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <charconv>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "services/order_request.h"
#include "services/views.h"

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
struct ApiError {
  int status;
  std::string message;
};

void SendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void SendError(httplib::Response& res, const ApiError& e) { SendJson(res, e.status, {{"error", e.message}}); }

// HTTP status for a failed store read or append.
ApiError FromStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kNotFound: return {404, s.message()};
    case StatusCode::kInvalidArgument: return {422, s.message()};
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAlreadyExists: return {409, s.message()};
    case StatusCode::kUnavailable: return {503, s.message() + "; retry"};
    default: return {500, s.ToString()};
  }
}

// The route a path belongs to (the label of its metrics), and the methods it allows.
struct Route {
  const char* label;
  std::regex pattern;
  const char* allow;
};

const std::vector<Route>& Routes() {
  static const std::vector<Route> routes = {
      {"/orders", std::regex("/orders"), "GET, POST"},
      {"/orders/{id}", std::regex("/orders/([^/]+)"), "GET"},
      {"/orders/{id}/history", std::regex("/orders/([^/]+)/history"), "GET"},
      {"/orders/{id}/events", std::regex("/orders/([^/]+)/events"), "GET"},
      {"/orders/{id}/cancel", std::regex("/orders/([^/]+)/cancel"), "POST"},
      {"/analytics", std::regex("/analytics"), "GET"},
      {"/catalog", std::regex("/catalog"), "GET"},
      {"/healthz", std::regex("/healthz"), "GET"},
      {"/readyz", std::regex("/readyz"), "GET"},
      {"/metrics", std::regex("/metrics"), "GET"},
  };
  return routes;
}

const Route* MatchRoute(const std::string& path) {
  for (const Route& r : Routes()) {
    if (std::regex_match(path, r.pattern)) return &r;
  }
  return nullptr;
}

std::string RouteLabel(const std::string& path) {
  if (const Route* r = MatchRoute(path)) return r->label;
  return path == "/" || path.starts_with("/web/") || path.find('.') != std::string::npos ? "static" : "unknown";
}

// Reads the query parameters a route knows; any other name is an error.
void CheckParams(const httplib::Request& req, std::initializer_list<const char*> known) {
  for (const auto& [name, value] : req.params) {
    bool ok = false;
    for (const char* k : known) ok = ok || name == k;
    if (!ok) {
      std::string list;
      for (const char* k : known) list += std::string(list.empty() ? "" : ", ") + k;
      throw ApiError{400, "unknown query parameter '" + name + "'" +
                              (list.empty() ? std::string(" (this endpoint takes none)") : " (known: " + list + ")")};
    }
  }
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

  void Observe(const std::string& method, const std::string& route, int status, double seconds) {
    requests_.Add({{"method", method}, {"route", route}, {"code", std::to_string(status)}}).Increment();
    static const prometheus::Histogram::BucketBoundaries kBuckets = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025,
                                                                      0.05,   0.1,   0.25,  0.5,   1,    2.5};
    latency_.Add({{"route", route}}, kBuckets).Observe(seconds);
  }

  std::vector<prometheus::MetricFamily> Collect() const { return registry_->Collect(); }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
};

thread_local Clock::time_point t_request_start;

// The parsed request, or the ApiError its RequestError becomes.
template <typename T>
T Unwrap(std::variant<T, RequestError>&& parsed) {
  if (auto* e = std::get_if<RequestError>(&parsed)) throw ApiError{e->status, std::move(e->message)};
  return std::move(std::get<T>(parsed));
}

}  // namespace

struct HttpServer::Impl {
  HttpOptions options;
  HttpBackend backend;
  httplib::Server server;
  std::string address;
  std::thread listener;
  std::thread poller;  // serves the producer's delivery reports
  std::atomic<bool> stopping{false};
  std::atomic<int> streams{0};
  Metrics metrics;

  void Install();
  RequestLimits Limits() const { return {options.max_quantity, options.max_lines}; }
  void RequireToken(const httplib::Request& req) const;
  // Waits until the projection passed `position` ("P:O" of orders_topic);
  // throws 400 for a malformed one, 503 when it is not reached in time.
  void WaitForPosition(const httplib::Request& req) const;
  domain::OrderState LoadOrder(const std::string& id) const;
  // Appends through `append` (which reports delivery to the callback) and
  // waits for the log's acknowledgement; returns where the last event landed.
  // `append` returns how many events it appended.
  eventstore::Position AppendAndWait(
      const std::function<Result<size_t>(eventstore::DeliveryCallback)>& append) const;

  void PlaceOrder(const httplib::Request& req, httplib::Response& res);
  void GetOrder(const httplib::Request& req, httplib::Response& res);
  void GetHistory(const httplib::Request& req, httplib::Response& res);
  void StreamEvents(const httplib::Request& req, httplib::Response& res);
  void CancelOrder(const httplib::Request& req, httplib::Response& res);
  void ListOrders(const httplib::Request& req, httplib::Response& res);
  void GetMetrics(const httplib::Request& req, httplib::Response& res);
};

void HttpServer::Impl::RequireToken(const httplib::Request& req) const {
  if (options.api_token.empty()) return;
  const std::string header = req.get_header_value("Authorization");
  const std::string expected = "Bearer " + options.api_token;
  if (header.size() != expected.size() || CRYPTO_memcmp(header.data(), expected.data(), header.size()) != 0) {
    throw ApiError{401, header.empty() ? "this endpoint needs an 'Authorization: Bearer <token>' header"
                                       : "the bearer token is not valid"};
  }
}

void HttpServer::Impl::WaitForPosition(const httplib::Request& req) const {
  if (!req.has_param("min_position")) return;
  const std::string text = req.get_param_value("min_position");
  int32_t partition = 0;
  int64_t offset = 0;
  if (!ParsePosition(text, &partition, &offset)) {
    throw ApiError{400, "min_position must be PARTITION:OFFSET as returned by a write, got '" + text + "'"};
  }
  const eventstore::TopicPartition tp{backend.orders_topic, partition};
  const auto deadline = Clock::now() + options.max_wait;
  int64_t have = 0;
  while (true) {
    const uint64_t seen = backend.store->CommitCount();
    auto offsets = backend.store->GetOffsets();
    if (!offsets.ok()) throw FromStatus(offsets.status());
    have = offsets->count(tp) ? offsets->at(tp) : 0;
    if (have > offset) return;
    if (Clock::now() >= deadline || stopping.load()) break;
    backend.store->WaitForCommit(seen, deadline);
  }
  throw ApiError{503, "the projection has not reached position " + text + " yet (partition " +
                          std::to_string(partition) + " is at offset " + std::to_string(have) + "); retry"};
}

domain::OrderState HttpServer::Impl::LoadOrder(const std::string& id) const {
  auto order = backend.store->GetOrder(id);
  if (!order.ok()) throw FromStatus(order.status());
  if (!order->has_value()) throw ApiError{404, "order " + id + " not found"};
  return std::move(**order);
}

eventstore::Position HttpServer::Impl::AppendAndWait(
    const std::function<Result<size_t>(eventstore::DeliveryCallback)>& append) const {
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
  if (!appended.ok()) throw FromStatus(appended.status());
  {
    std::lock_guard lock(acks->mu);
    acks->expected = *appended;
    if (acks->acked == acks->expected) acks->done.set_value();
  }
  if (future.wait_for(options.append_timeout) != std::future_status::ready) {
    throw ApiError{503, "the log did not acknowledge the write within " +
                            std::to_string(options.append_timeout.count()) +
                            " ms; it may still land: retry with the same Idempotency-Key"};
  }
  eventstore::Position last;
  {
    std::lock_guard lock(acks->mu);
    if (!acks->error.ok()) throw FromStatus(acks->error);
    last = acks->last;
  }
  if (backend.wait_durable) {
    Status durable = backend.wait_durable({{{backend.orders_topic, last.partition}, last.offset + 1}});
    if (!durable.ok()) throw ApiError{503, durable.message() + "; retry with the same Idempotency-Key"};
  }
  return last;
}

void HttpServer::Impl::PlaceOrder(const httplib::Request& req, httplib::Response& res) {
  RequireToken(req);
  CheckParams(req, {});
  const domain::PlaceOrder command =
      Unwrap(ParsePlaceOrder(req.body, req.get_header_value("Content-Type"), *backend.catalog, Limits()));
  // With an Idempotency-Key the order id is derived from it: a retried request
  // names the same order, and the order service's event id dedupes it.
  std::string order_id;
  const std::string key = req.get_header_value("Idempotency-Key");
  if (!key.empty()) {
    if (key.size() > 200) throw ApiError{400, "Idempotency-Key is longer than 200 characters"};
    order_id = domain::UuidToString(domain::DeriveEventId(kOrderServiceNamespace, command.customer_id + "\n" + key));
  } else {
    order_id = NewOrderId();
  }
  domain::Event placed;
  const eventstore::Position pos = AppendAndWait([&](eventstore::DeliveryCallback cb) -> Result<size_t> {
    auto event = backend.orders->Place(command, order_id, NowMs(), std::move(cb));
    if (!event.ok()) return event.status();
    placed = std::move(event).value();
    return size_t{1};
  });
  const std::string position = std::to_string(pos.partition) + ":" + std::to_string(pos.offset);
  res.set_header("Location", "/orders/" + order_id);
  SendJson(res, 202,
           {{"order_id", order_id},
            {"event_id", domain::UuidToString(placed.id)},
            {"position", position},
            {"partition", pos.partition},
            {"offset", pos.offset},
            {"status_url", "/orders/" + order_id + "?min_position=" + position}});
}

void HttpServer::Impl::GetOrder(const httplib::Request& req, httplib::Response& res) {
  CheckParams(req, {"min_position"});
  WaitForPosition(req);
  SendJson(res, 200, OrderJson(LoadOrder(req.matches[1])));
}

void HttpServer::Impl::GetHistory(const httplib::Request& req, httplib::Response& res) {
  CheckParams(req, {"min_position"});
  WaitForPosition(req);
  const std::string id = req.matches[1];
  auto history = backend.store->GetHistory(id);
  if (!history.ok()) throw FromStatus(history.status());
  if (history->empty()) throw ApiError{404, "order " + id + " not found"};
  json events = json::array();
  for (const auto& e : *history) events.push_back(HistoryJson(e));
  SendJson(res, 200, {{"order_id", id}, {"events", events}});
}

void HttpServer::Impl::StreamEvents(const httplib::Request& req, httplib::Response& res) {
  CheckParams(req, {"after", "min_position"});
  const std::string id = req.matches[1];
  // Resume after the last event the client saw: the Last-Event-ID header (an
  // EventSource reconnecting) or ?after=SEQUENCE.
  std::string after_text = req.get_header_value("Last-Event-ID");
  if (req.has_param("after")) after_text = req.get_param_value("after");
  int64_t next_sequence = 0;
  if (!after_text.empty()) {
    int64_t after = 0;
    auto [p, ec] = std::from_chars(after_text.data(), after_text.data() + after_text.size(), after);
    if (ec != std::errc() || p != after_text.data() + after_text.size() || after < 0) {
      throw ApiError{400, "after / Last-Event-ID must be an event sequence number, got '" + after_text + "'"};
    }
    next_sequence = after + 1;
  }
  WaitForPosition(req);
  LoadOrder(id);  // 404 before the stream starts
  const int max_streams = std::max(1, options.threads / 2);
  if (streams.fetch_add(1) >= max_streams) {
    streams.fetch_sub(1);
    throw ApiError{503, "too many open event streams (" + std::to_string(max_streams) + "); retry later"};
  }
  struct StreamState {
    std::string id;
    int64_t next_sequence;
    uint32_t version_sent = 0;  // order version whose events were sent
    bool first = true;
  };
  auto state = std::make_shared<StreamState>(StreamState{id, next_sequence});
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, state](size_t, httplib::DataSink& sink) {
        const uint64_t seen = backend.store->CommitCount();
        if (state->first) {
          state->first = false;
          if (!sink.write("retry: 1000\n\n", 13)) return false;
        }
        auto order = backend.store->GetOrder(state->id);
        if (order.ok() && order->has_value() && (*order)->version != state->version_sent) {
          auto history = backend.store->GetHistory(state->id);
          if (!history.ok()) return false;
          for (const auto& e : *history) {
            if (e.sequence < state->next_sequence) continue;
            std::string frame = "id: " + std::to_string(e.sequence) + "\nevent: " + e.event_type +
                                "\ndata: " + HistoryJson(e).dump() + "\n\n";
            if (!sink.write(frame.data(), frame.size())) return false;
            state->next_sequence = e.sequence + 1;
          }
          state->version_sent = (*order)->version;
        }
        if (stopping.load()) {
          sink.done();
          return true;
        }
        // Sleep until the next commit; a comment line every 15 s keeps
        // proxies from closing an idle stream and notices a gone client.
        if (backend.store->WaitForCommit(seen, Clock::now() + std::chrono::seconds(15)) == seen) {
          if (!sink.write(": keep-alive\n\n", 14)) return false;
        }
        if (stopping.load()) sink.done();
        return true;
      },
      [this](bool) { streams.fetch_sub(1); });
}

void HttpServer::Impl::CancelOrder(const httplib::Request& req, httplib::Response& res) {
  RequireToken(req);
  CheckParams(req, {"min_position"});
  const std::string reason = Unwrap(ParseCancelReason(req.body, req.get_header_value("Content-Type")));
  WaitForPosition(req);
  const std::string id = req.matches[1];
  const domain::OrderState order = LoadOrder(id);
  // Decide first (appends nothing on a rejection), then append and wait.
  const eventstore::Position pos = AppendAndWait([&](eventstore::DeliveryCallback cb) -> Result<size_t> {
    auto events = backend.orders->Execute(order, domain::CancelOrder{reason, domain::CancelSource::kCustomer},
                                          NowMs(), std::move(cb));
    if (!events.ok()) return events.status();
    return events->size();
  });
  const std::string position = std::to_string(pos.partition) + ":" + std::to_string(pos.offset);
  SendJson(res, 202,
           {{"order_id", id},
            {"position", position},
            {"partition", pos.partition},
            {"offset", pos.offset},
            {"status_url", "/orders/" + id + "?min_position=" + position}});
}

void HttpServer::Impl::ListOrders(const httplib::Request& req, httplib::Response& res) {
  CheckParams(req, {"status", "customer", "limit", "after"});
  projections::OrderQuery query;
  if (req.has_param("status")) {
    const std::string name = req.get_param_value("status");
    query.status = OrderStatusFromName(name);
    if (!query.status) throw ApiError{400, "unknown status '" + name + "' (known: " + OrderStatusNames() + ")"};
  }
  query.customer = req.get_param_value("customer");
  query.after = req.get_param_value("after");
  if (req.has_param("limit")) {
    const std::string text = req.get_param_value("limit");
    size_t limit = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
    if (ec != std::errc() || p != text.data() + text.size() || limit == 0 || limit > options.max_page) {
      throw ApiError{400, "limit must be a whole number from 1 to " + std::to_string(options.max_page) + ", got '" +
                              text + "'"};
    }
    query.limit = limit;
  }
  auto page = backend.store->ListOrders(query);
  if (!page.ok()) throw FromStatus(page.status());
  json orders = json::array();
  for (const auto& o : page->orders) orders.push_back(OrderJson(o));
  SendJson(res, 200, {{"orders", orders}, {"next", page->next.empty() ? json(nullptr) : json(page->next)}});
}

void HttpServer::Impl::GetMetrics(const httplib::Request& req, httplib::Response& res) {
  CheckParams(req, {});
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
  auto& ready = family("orderflow_ready", "1 once the projections caught up and the services run",
                       prometheus::MetricType::Gauge);
  ready.metric.emplace_back().gauge.value = backend.not_ready_reason && !backend.not_ready_reason().empty() ? 0 : 1;
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  res.status = 200;
  res.set_content(out.str(), "text/plain; version=0.0.4; charset=utf-8");
}

void HttpServer::Impl::Install() {
  using Handler = void (Impl::*)(const httplib::Request&, httplib::Response&);
  auto wrap = [this](Handler h) {
    return [this, h](const httplib::Request& req, httplib::Response& res) {
      try {
        (this->*h)(req, res);
      } catch (const ApiError& e) {
        SendError(res, e);
      } catch (const std::exception& e) {
        spdlog::error("http: {} {}: {}", req.method, req.path, e.what());
        SendError(res, {500, std::string("internal error: ") + e.what()});
      }
    };
  };
  server.Post("/orders", wrap(&Impl::PlaceOrder));
  server.Get("/orders", wrap(&Impl::ListOrders));
  server.Get("/orders/([^/]+)", wrap(&Impl::GetOrder));
  server.Get("/orders/([^/]+)/history", wrap(&Impl::GetHistory));
  server.Get("/orders/([^/]+)/events", wrap(&Impl::StreamEvents));
  server.Post("/orders/([^/]+)/cancel", wrap(&Impl::CancelOrder));
  server.Get("/metrics", wrap(&Impl::GetMetrics));
  server.Get("/analytics", [this](const httplib::Request& req, httplib::Response& res) {
    try {
      CheckParams(req, {"top"});
      size_t top = 5;
      if (req.has_param("top")) {
        const std::string t = req.get_param_value("top");
        auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), top);
        if (ec != std::errc() || p != t.data() + t.size() || top == 0 || top > 100) {
          throw ApiError{400, "top must be a whole number from 1 to 100, got '" + t + "'"};
        }
      }
      auto a = backend.store->GetAnalytics(top);
      if (!a.ok()) throw FromStatus(a.status());
      SendJson(res, 200, AnalyticsJson(*a));
    } catch (const ApiError& e) {
      SendError(res, e);
    }
  });
  server.Get("/catalog", [this](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, {{"currency", backend.catalog->currency()}, {"items", CatalogJson(*backend.catalog)}});
  });
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { SendJson(res, 200, {{"status", "ok"}}); });
  server.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    const std::string reason = backend.not_ready_reason ? backend.not_ready_reason() : "";
    if (reason.empty()) {
      SendJson(res, 200, {{"ready", true}});
    } else {
      SendJson(res, 503, {{"ready", false}, {"reason", reason}});
    }
  });
  // Anything else: 405 with Allow for a known path, else 404.
  auto fallback = [](const httplib::Request& req, httplib::Response& res) {
    if (const Route* r = MatchRoute(req.path)) {
      res.set_header("Allow", r->allow);
      SendError(res, {405, "method " + req.method + " is not allowed on " + r->label + " (allowed: " + r->allow + ")"});
    } else {
      SendError(res, {404, "no such endpoint: " + req.method + " " + req.path});
    }
  };
  server.Get(".*", fallback);
  server.Post(".*", fallback);
  server.Put(".*", fallback);
  server.Patch(".*", fallback);
  server.Delete(".*", fallback);
  server.Options(".*", fallback);

  // Errors cpp-httplib answers itself (body too large, bad request line) get a JSON body too.
  server.set_error_handler([this](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = "request refused (HTTP " + std::to_string(res.status) + ")";
    if (res.status == 400) message = "malformed HTTP request";
    if (res.status == 413) message = "request body exceeds " + std::to_string(options.max_body_bytes) + " bytes";
    if (res.status == 414) message = "request URI too long";
    SendError(res, {res.status, message});
  });
  server.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    t_request_start = Clock::now();
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    const double seconds = std::chrono::duration<double>(Clock::now() - t_request_start).count();
    metrics.Observe(req.method, RouteLabel(req.path), res.status, seconds);
  });
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

const std::string& HttpServer::address() const { return impl_->address; }

void HttpServer::Stop() {
  if (impl_->stopping.exchange(true)) return;
  impl_->backend.store->WakeAll();  // event streams see `stopping`
  impl_->server.stop();
  if (impl_->listener.joinable()) impl_->listener.join();
  if (impl_->poller.joinable()) impl_->poller.join();
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpOptions& options, HttpBackend backend) {
  const auto colon = options.listen.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    const std::string p = options.listen.substr(colon + 1);
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (ec != std::errc() || ptr != p.data() + p.size() || port < 0 || port > 65535) port = -1;
  }
  if (colon == std::string::npos || colon == 0 || port < 0) {
    return Status::InvalidArgument("--http expects HOST:PORT (port 0 picks a free one), got '" + options.listen + "'");
  }
  const std::string host = options.listen.substr(0, colon);
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->backend = std::move(backend);
  httplib::Server& server = impl->server;
  const int threads = options.threads;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(1'000'000);
  server.set_keep_alive_timeout(30);
  server.set_read_timeout(10, 0);
  server.set_write_timeout(10, 0);
  server.set_payload_max_length(options.max_body_bytes);
  if (!options.web_dir.empty() && !server.set_mount_point("/", options.web_dir)) {
    return Status::NotFound("web directory " + options.web_dir + " does not exist; pass --web-dir DIR");
  }
  impl->Install();
  const int bound = port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
  if (bound < 0) {
    return Status::Unavailable("cannot listen on " + options.listen +
                               " (in use, or not an address of this machine); pass --http HOST:PORT or --http off");
  }
  impl->address = host + ":" + std::to_string(bound);
  Impl* raw = impl.get();
  impl->listener = std::thread([raw] { raw->server.listen_after_bind(); });
  if (raw->backend.producer != nullptr) {
    impl->poller = std::thread([raw] {
      while (!raw->stopping.load()) raw->backend.producer->Poll(std::chrono::milliseconds(50));
    });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

}  // namespace orderflow::services

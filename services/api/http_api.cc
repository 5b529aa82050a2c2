#include "services/api/http_api.h"

#include <sys/stat.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "services/api/auth.h"
#include "services/api/http_server.h"
#include "services/api/metrics.h"
#include "services/api/ops_routes.h"
#include "services/api/order_cache.h"
#include "services/api/order_routes.h"
#include "services/api/reply.h"
#include "services/api/router.h"

namespace orderflow::services {

using namespace api;  // this file composes the API's areas
using TimePoint = std::chrono::steady_clock::time_point;

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

// The server: the transport (http::Server) dispatching to the endpoints the
// areas registered, after authorization; requests with a ?min_position ahead
// of the projection are parked until it is reached.
struct HttpServer::Impl {
  HttpOptions options;
  ApiSources sources;
  std::unique_ptr<http::Server> server;
  std::thread watcher;  // wakes ?min_position waits and event streams after each commit
  std::thread poller;   // serves the producer's delivery reports
  std::atomic<bool> stopping{false};
  RequestMetrics metrics;
  std::unique_ptr<OrderBodyCache> order_bodies;  // GET /orders/{id}
  std::unique_ptr<Auth> auth;
  std::unique_ptr<OrderRoutes> order_routes;
  std::unique_ptr<OpsRoutes> ops_routes;
  Router router;

  // Requests parked until the projection reaches their ?min_position: no
  // thread waits for them; the watcher resumes each on the worker pool.
  struct Waiter {
    eventstore::TopicPartition tp;
    int64_t offset;
    TimePoint deadline;
    std::function<void()> resume;
  };
  std::mutex waiters_mu;
  std::vector<Waiter> waiters;

  void Dispatch(http::Request req, http::Responder responder);
  void Serve(const http::Request& req, const std::string& id, const Endpoint& endpoint, TimePoint start,
             const http::Responder& responder);
  void ServeStatic(const http::Request& req, http::Response& res) const;
  void Watch();
  // True when `offsets` (the projection's, as GetOffsets returned them) hold
  // `offset` of `tp`; an error counts as reached (the handler reports it).
  static bool Reached(const Result<projections::Offsets>& offsets, const eventstore::TopicPartition& tp,
                      int64_t offset);
};

bool HttpServer::Impl::Reached(const Result<projections::Offsets>& offsets, const eventstore::TopicPartition& tp,
                               int64_t offset) {
  if (!offsets.ok()) return true;
  auto it = offsets->find(tp);
  return it != offsets->end() && it->second > offset;
}

// On an I/O thread: finds the endpoint and authorizes; parks the request
// while its ?min_position is ahead of the projection; serves quick endpoints
// (local reads) right here and hands the others (writes waiting for the log,
// broker queries) and resumed requests to the worker pool.
void HttpServer::Impl::Dispatch(http::Request req, http::Responder responder) {
  const auto start = options.clock->Now();
  std::string id;
  const Route* matched = nullptr;
  const Endpoint* endpoint = router.Find(req.method, req.path, &id, &matched);
  if (endpoint == nullptr) {
    const std::string method = req.method;
    server->Run([this, req = std::move(req), matched, start, responder, method] {
      http::Response res;
      if (matched != nullptr) {
        res = ErrorResponse(405, "method " + method + " is not allowed on " + matched->label + " (allowed: " +
                                     matched->allow + ")");
        res.headers.emplace_back("Allow", matched->allow);
      } else if (!options.web_dir.empty() && (method == "GET" || method == "HEAD")) {
        ServeStatic(req, res);
      } else {
        res = ErrorResponse(404, "no such endpoint: " + method + " " + req.path);
      }
      metrics.Observe(method, matched ? matched->label : RouteLabel(req.path), res.status,
                      std::chrono::duration<double>(options.clock->Now() - start).count());
      responder.Send(std::move(res));
    });
    return;
  }
  Status refused = auth->Authorize(req, endpoint->access);  // before a ?min_position wait, not after
  if (refused.ok()) refused = CheckParamsWellFormed(req);
  if (!refused.ok()) {
    http::Response res;
    SendError(res, refused);
    metrics.Observe(req.method, endpoint->route->label, res.status,
                    std::chrono::duration<double>(options.clock->Now() - start).count());
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
    const eventstore::TopicPartition tp{sources.orders_topic, partition};
    std::lock_guard lock(waiters_mu);
    if (!Reached(sources.store->GetOffsets(), tp, offset) && !stopping.load()) {
      waiters.push_back(
          {tp, offset, options.clock->Now() + options.max_wait, [this, run = std::move(run)] { server->Run(run); }});
      if (sources.hurry_projection) sources.hurry_projection();
      return;
    }
  }
  server->Run(std::move(run));
}

void HttpServer::Impl::Serve(const http::Request& req, const std::string& id, const Endpoint& endpoint,
                             TimePoint start, const http::Responder& responder) {
  const char* const label = endpoint.route->label;
  http::Response res;
  Status refused;
  // The one boundary for exceptions: handlers refuse by returning, so what is
  // caught here was thrown by a library (an allocation, a JSON dump) or is a
  // bug, and becomes a 500 instead of a dropped connection.
  try {
    if (endpoint.stream) {
      std::shared_ptr<http::EventSource> source;
      refused = endpoint.stream(req, id, &source);
      if (refused.ok()) {
        metrics.Observe(req.method, label, 200, std::chrono::duration<double>(options.clock->Now() - start).count());
        responder.Stream(std::move(source));
        return;
      }
    } else {
      refused = endpoint.handler(req, id, res);
    }
  } catch (const std::exception& e) {
    spdlog::error("http: {} {}: {}", req.method, req.path, e.what());
    res = {};
    res = ErrorResponse(500, std::string("internal error: ") + e.what());
  }
  if (!refused.ok()) {
    res = {};
    SendError(res, refused);
  }
  metrics.Observe(req.method, label, res.status, std::chrono::duration<double>(options.clock->Now() - start).count());
  responder.Send(std::move(res));
}

void HttpServer::Impl::ServeStatic(const http::Request& req, http::Response& res) const {
  std::string path = req.path == "/" ? "/index.html" : req.path;
  // Only plain names below web_dir: no "..", no hidden files, no NUL.
  if (path.find("..") != std::string::npos || path.find("/.") != std::string::npos ||
      path.find('\0') != std::string::npos) {
    res = ErrorResponse(404, "no such endpoint: " + req.method + " " + req.path);
    return;
  }
  const std::string file = options.web_dir + path;
  struct stat st {};
  std::ifstream in(file, std::ios::binary);
  if (stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || !in) {
    res = ErrorResponse(404, "no such endpoint: " + req.method + " " + req.path);
    return;
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
  uint64_t seen = sources.store->CommitCount();
  while (!stopping.load()) {
    ops_routes->Sample();
    const uint64_t now_seen = sources.store->WaitForCommit(seen, options.clock->Now() + std::chrono::milliseconds(50));
    const bool committed = now_seen != seen;
    if (committed) {
      seen = now_seen;
      server->NotifyStreams();
    }
    std::vector<std::function<void()>> ready;
    {
      std::lock_guard lock(waiters_mu);
      if (waiters.empty()) continue;
      const auto now = options.clock->Now();
      const auto offsets = sources.store->GetOffsets();  // once for every waiter
      std::erase_if(waiters, [&](Waiter& w) {
        if (!stopping.load() && now < w.deadline && !Reached(offsets, w.tp, w.offset)) return false;
        ready.push_back(std::move(w.resume));
        return true;
      });
      // Requests still wait after a commit: the projector's next step, too,
      // starts at once. So while a request is parked (at most max_wait) the
      // projector steps as its fetches return, without its interval.
      if (committed && !waiters.empty() && sources.hurry_projection) sources.hurry_projection();
    }
    for (auto& resume : ready) resume();
  }
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

const std::string& HttpServer::address() const { return impl_->server->address(); }

void HttpServer::Stop() {
  if (impl_->stopping.exchange(true)) return;
  impl_->sources.store->WakeAll();
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

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpOptions& options, ApiSources sources) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->sources = std::move(sources);
  if (!options.web_dir.empty() && !std::filesystem::is_directory(options.web_dir)) {
    return Status::NotFound("web directory " + options.web_dir + " does not exist; pass --web-dir DIR");
  }
  impl->order_bodies = std::make_unique<OrderBodyCache>(options.order_cache_entries);
  impl->auth = std::make_unique<Auth>(options.api_token, options.api_read_token, *options.clock);
  impl->order_routes = std::make_unique<OrderRoutes>(impl->options, impl->sources, *impl->order_bodies);
  impl->ops_routes = std::make_unique<OpsRoutes>(impl->options, impl->sources, *impl->order_bodies, impl->metrics);
  impl->order_routes->Register(impl->router);
  impl->ops_routes->Register(impl->router);
  impl->auth->Register(impl->router);
  http::ServerOptions server;
  server.listen = options.listen;
  server.max_connections = options.max_connections;
  server.max_streams = options.max_streams;
  server.max_body_bytes = options.max_body_bytes;
  server.header_timeout = options.header_timeout;
  server.body_timeout = options.header_timeout;
  server.idle_timeout = options.idle_timeout;
  server.handshake_timeout = options.header_timeout;
  server.tls_cert_file = options.tls_cert_file;
  server.tls_key_file = options.tls_key_file;
  server.worker_threads = options.threads;
  server.clock = options.clock;
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
  if (raw->sources.producer != nullptr) {
    impl->poller = std::thread([raw] {
      while (!raw->stopping.load()) raw->sources.producer->Poll(std::chrono::milliseconds(50));
    });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

}  // namespace orderflow::services

// The order service's HTTP API: JSON over HTTP/1.1, answered from the local
// projection; writes go to the log through OrderService. Served by
// services/api/http_server.h (Boost.Beast): idle connections, event streams and
// requests waiting for ?min_position hold no thread.
//
//   POST /orders                    place (202 with the order id and log position)
//   GET  /orders/{id}               current state; ?min_position=P:O waits for the projection
//   GET  /orders/{id}/history       the order's events
//   GET  /orders/{id}/events        server-sent events, one per lifecycle event (also ?min_position)
//   POST /orders/{id}/cancel        cancel (202 with the log position)
//   GET  /orders?status=&customer=&limit=&after=   one page of orders
//   GET  /analytics, /catalog, /healthz, /readyz, /metrics (Prometheus text)
//   GET  /stock                     units available per SKU
//   GET  /lag                       consumer lag per service and partition, and each service's health
//   GET  /throughput                events applied per second over the last 10 minutes
//   GET  /dlq                       dead letters; POST /dlq/{id}/redrive appends one to its topic again
//   POST /session {"token"}         a session cookie for the web page (EventSource sends no headers)
//   DELETE /session                 ends it
//   GET  /                          the web page (static files), if a web dir is set
//
// Every error is a 4xx/5xx with {"error": "..."} saying what to change; a
// rejected request appends nothing to the log.
//
// Inside, one area per file, each registering its endpoints with the Router
// (router.h): order_routes.h (orders, analytics, catalog), ops_routes.h (the
// operations routes over OpsQueries, ops_queries.h), auth.h (tokens and
// sessions), order_cache.h, metrics.h; http_api.cc composes them, authorizes
// and dispatches, and parks ?min_position requests.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "domain/catalog.h"
#include "domain/clock.h"
#include "domain/status.h"
#include "projections/projector.h"
#include "projections/store.h"
#include "services/api/ops_queries.h"
#include "services/orders/order_service.h"

namespace orderflow::services {

struct HttpOptions {
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 picks a free one
  // If set, every endpoint but /healthz and /readyz needs "Authorization:
  // Bearer <token>" (or a session cookie from POST /session); writes need
  // api_token, reads accept either.
  std::string api_token;
  std::string api_read_token;
  bool metrics_public = false;  // /metrics without a token
  std::string web_dir;                    // static files served at /; empty: none
  size_t max_body_bytes = 64 * 1024;
  size_t max_connections = 10'000;  // beyond it a new connection gets 503 and is closed
  size_t max_streams = 1'000;       // open event streams
  std::chrono::milliseconds header_timeout{10'000};  // a request's header (and body) must arrive within it
  std::chrono::milliseconds idle_timeout{60'000};    // a connection with no request for this long is closed
  // HTTPS with this PEM certificate chain and key (both or neither); session
  // cookies are then marked Secure.
  std::string tls_cert_file;
  std::string tls_key_file;
  int threads = 16;  // workers for handlers that wait (writes, broker queries, parked reads); not per connection
  std::chrono::milliseconds max_wait{10000};  // cap on ?min_position waits
  std::chrono::milliseconds append_timeout{10000};  // how long a write waits for the log's acknowledgement
  size_t max_page = 500;
  // GET /orders/{id} keeps the JSON of up to this many orders and serves it
  // while the order's stored record is unchanged (never stale); 0: none.
  size_t order_cache_entries = 20'000;
  const Clock* clock = &SystemClock();  // request timings, ?min_position deadlines, session expiry
};

// What the API serves from and appends through; everything must outlive the server.
struct ApiSources {
  projections::ProjectionStore* store = nullptr;
  OrderService* orders = nullptr;
  eventstore::Producer* producer = nullptr;  // OrderService's; the server serves its delivery reports
  const domain::Catalog* catalog = nullptr;
  // The topic the projection of `store` follows (positions name its partitions).
  std::string orders_topic;
  // For /metrics and /throughput; may be null.
  const projections::ProjectorCounters* projector_counters = nullptr;
  // If set, a write is acknowledged only once this returns for its position
  // (the log is durable there: the embedded broker's archive).
  std::function<Status(const projections::Offsets&)> wait_durable;
  OpsQueries* ops = nullptr;  // the operations routes' answers
  // If set, called while requests wait for a ?min_position: the projector
  // then steps at once instead of at its interval (Projector::Hurry).
  std::function<void()> hurry_projection;
};

class HttpServer {
 public:
  // Binds `options.listen` and starts serving on background threads.
  // Errors: kInvalidArgument for a malformed address, kUnavailable when the
  // address cannot be bound.
  static Result<std::unique_ptr<HttpServer>> Start(const HttpOptions& options, ApiSources sources);
  ~HttpServer();  // Stop()

  // Ends open event streams and stops serving; idempotent.
  void Stop();

  // "HOST:PORT" actually bound.
  const std::string& address() const;

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "P:O" -> (partition, offset); false on anything else.
bool ParsePosition(const std::string& text, int32_t* partition, int64_t* offset);

}  // namespace orderflow::services

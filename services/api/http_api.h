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
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "domain/catalog.h"
#include "domain/status.h"
#include "eventstore/dead_letter.h"
#include "projections/projector.h"
#include "projections/store.h"
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
  int threads = 16;  // workers that run handlers (reads, and writes waiting for the log); not per connection
  std::chrono::milliseconds max_wait{10000};  // cap on ?min_position waits
  std::chrono::milliseconds append_timeout{10000};  // how long a write waits for the log's acknowledgement
  size_t max_page = 500;
  // GET /orders/{id} keeps the JSON of up to this many orders and serves it
  // while the order's stored record is unchanged (never stale); 0: none.
  size_t order_cache_entries = 20'000;
};

struct PartitionLag {
  std::string consumer;
  eventstore::TopicPartition partition;
  int64_t lag = 0;
  int64_t committed = -1;  // the consumer's next offset, -1 when unknown
  int64_t end = -1;        // the partition's log end, -1 when unknown
};

struct StockLevel {
  std::string sku;
  std::string name;
  int64_t available = 0;
};

struct ServiceHealth {
  std::string service;
  bool running = false;
  std::string detail;  // what it is doing when not running ("starting", "catching up")
};

// What the API serves from and appends through; everything must outlive the server.
struct HttpBackend {
  projections::ProjectionStore* store = nullptr;
  OrderService* orders = nullptr;
  eventstore::Producer* producer = nullptr;  // OrderService's; the server serves its delivery reports
  const domain::Catalog* catalog = nullptr;
  // The topic the projection of `store` follows (positions name its partitions).
  std::string orders_topic;
  // Why the service is not ready yet (empty: ready).
  std::function<std::string()> not_ready_reason;
  // For /metrics; each may be empty.
  const projections::ProjectorCounters* projector_counters = nullptr;
  std::function<std::vector<PartitionLag>()> lag;
  // If set, a write is acknowledged only once this returns for its position
  // (the log is durable there: the embedded broker's archive).
  std::function<Status(const std::map<eventstore::TopicPartition, int64_t>&)> wait_durable;
  // Records each consumer of this process parked on orders.dlq (service -> count).
  std::function<std::map<std::string, uint64_t>()> dead_letters;
  // The operator console's endpoints; each may be empty (then 404 saying so).
  // They run on the server's worker threads and may ask the broker.
  std::function<Result<std::vector<StockLevel>>()> stock;                      // GET /stock
  std::function<Result<std::vector<eventstore::DeadLetter>>()> list_dead_letters;  // GET /dlq
  std::function<Result<eventstore::RedriveResult>(int64_t id)> redrive;         // POST /dlq/{id}/redrive
  std::function<std::vector<ServiceHealth>()> health;                          // GET /lag
};

class HttpServer {
 public:
  // Binds `options.listen` and starts serving on background threads.
  // Errors: kInvalidArgument for a malformed address, kUnavailable when the
  // address cannot be bound.
  static Result<std::unique_ptr<HttpServer>> Start(const HttpOptions& options, HttpBackend backend);
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

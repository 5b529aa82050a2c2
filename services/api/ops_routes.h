// The operations routes: /healthz, /readyz, /metrics, /stock, /lag,
// /throughput, /dlq and POST /dlq/{id}/redrive, answered from OpsQueries, the
// projection and the API's own counters.
// Thread safety: handlers run concurrently on the server's threads; Sample on
// one thread (the server's watcher).
#pragma once

#include <deque>
#include <mutex>
#include <utility>

#include "services/api/http_api.h"
#include "services/api/metrics.h"
#include "services/api/order_cache.h"
#include "services/api/router.h"

namespace orderflow::services::api {

class OpsRoutes {
 public:
  // Everything must outlive the routes.
  OpsRoutes(const HttpOptions& options, const ApiSources& sources, const OrderBodyCache& cache,
            const RequestMetrics& metrics)
      : options_(options), sources_(sources), cache_(cache), metrics_(metrics) {}

  void Register(Router& router);

  // Records the events applied so far, at most once a second, for /throughput
  // (the last 10 minutes).
  void Sample();

 private:
  Status GetReady(http::Response& res);
  Status GetMetrics(const http::Request& req, http::Response& res);
  Status GetStock(const http::Request& req, http::Response& res);
  Status GetLag(const http::Request& req, http::Response& res);
  Status GetThroughput(const http::Request& req, http::Response& res);
  Status ListDeadLetters(const http::Request& req, http::Response& res);
  Status RedriveDeadLetter(const http::Request& req, const std::string& id, http::Response& res);

  const HttpOptions& options_;
  const ApiSources& sources_;
  const OrderBodyCache& cache_;
  const RequestMetrics& metrics_;
  std::mutex samples_mu_;
  std::deque<std::pair<int64_t, uint64_t>> samples_;  // (unix ms, events applied)
};

}  // namespace orderflow::services::api

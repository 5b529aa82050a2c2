// The order routes: place, read, list, follow and cancel orders, analytics
// and the catalog. Reads come from the local projection (GET /orders/{id}
// through the order cache); writes go to the log through the order service
// and are answered once the log acknowledged them. A ?min_position the
// projection has not reached is refused with 503 (the server parks such
// requests first, so that is the final word after max_wait).
// Thread safety: handlers run concurrently on the server's threads.
#pragma once

#include "services/api/http_api.h"
#include "services/api/order_cache.h"
#include "services/api/router.h"

namespace orderflow::services::api {

class OrderRoutes {
 public:
  // Everything must outlive the routes.
  OrderRoutes(const HttpOptions& options, const ApiSources& sources, OrderBodyCache& cache)
      : options_(options), sources_(sources), cache_(cache) {}

  void Register(Router& router);

 private:
  Status PlaceOrder(const http::Request& req, http::Response& res);
  Status GetOrder(const http::Request& req, const std::string& id, http::Response& res);
  Status GetHistory(const http::Request& req, const std::string& id, http::Response& res);
  Status OpenStream(const http::Request& req, const std::string& id, std::shared_ptr<http::EventSource>* source);
  Status CancelOrder(const http::Request& req, const std::string& id, http::Response& res);
  Status ListOrders(const http::Request& req, http::Response& res);
  Status GetAnalytics(const http::Request& req, http::Response& res);
  Status GetCatalog(const http::Request& req, http::Response& res);

  // 503 for a ?min_position the projection has not reached; 400 for a malformed one.
  [[nodiscard]] Status CheckPosition(const http::Request& req) const;
  // The order in *order; 404 when there is none.
  [[nodiscard]] Status LoadOrder(const std::string& id, domain::OrderState* order) const;
  // Appends through `append` (which reports delivery to the callback) and
  // waits for the log's acknowledgement; *last is where the last event landed.
  // `append` returns how many events it appended. Runs on a worker thread.
  [[nodiscard]] Status AppendAndWait(const std::function<Result<size_t>(eventstore::DeliveryCallback)>& append,
                                      eventstore::Position* last) const;

  const HttpOptions& options_;
  const ApiSources& sources_;
  OrderBodyCache& cache_;
};

}  // namespace orderflow::services::api

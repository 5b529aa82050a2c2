#include "services/api/order_routes.h"

#include <charconv>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>

#include "projections/views.h"
#include "services/api/order_request.h"

namespace orderflow::services::api {
namespace {

using nlohmann::json;

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

}  // namespace

void OrderRoutes::Register(Router& router) {
  using enum Access;
  router.Add("POST", "/orders", kWrite, false,
             [this](const http::Request& req, const std::string&, http::Response& res) { return PlaceOrder(req, res); });
  router.Add("GET", "/orders", kRead, true,
             [this](const http::Request& req, const std::string&, http::Response& res) { return ListOrders(req, res); });
  router.Add("GET", "/orders/{id}", kRead, true,
             [this](const http::Request& req, const std::string& id, http::Response& res) { return GetOrder(req, id, res); });
  router.Add("GET", "/orders/{id}/history", kRead, true,
             [this](const http::Request& req, const std::string& id, http::Response& res) {
               return GetHistory(req, id, res);
             });
  router.AddStream("/orders/{id}/events", kRead,
                   [this](const http::Request& req, const std::string& id, std::shared_ptr<http::EventSource>* source) {
                     return OpenStream(req, id, source);
                   });
  router.Add("POST", "/orders/{id}/cancel", kWrite, false,
             [this](const http::Request& req, const std::string& id, http::Response& res) {
               return CancelOrder(req, id, res);
             });
  router.Add("GET", "/analytics", kRead, true,
             [this](const http::Request& req, const std::string&, http::Response& res) { return GetAnalytics(req, res); });
  router.Add("GET", "/catalog", kRead, true,
             [this](const http::Request& req, const std::string&, http::Response& res) { return GetCatalog(req, res); });
}

Status OrderRoutes::CheckPosition(const http::Request& req) const {
  if (!req.HasParam("min_position")) return Status::Ok();
  const std::string text = req.Param("min_position");
  int32_t partition = 0;
  int64_t offset = 0;
  if (!ParsePosition(text, &partition, &offset)) {
    return Status::Malformed("min_position must be PARTITION:OFFSET as returned by a write, got '" + text + "'");
  }
  const eventstore::TopicPartition tp{sources_.orders_topic, partition};
  auto offsets = sources_.store->GetOffsets();
  if (!offsets.ok()) return offsets.status();
  const int64_t have = offsets->count(tp) ? offsets->at(tp) : 0;
  if (have > offset) return Status::Ok();
  return Status::Unavailable("the projection has not reached position " + text + " yet (partition " +
                           std::to_string(partition) + " is at offset " + std::to_string(have) + "); retry");
}

Status OrderRoutes::LoadOrder(const std::string& id, domain::OrderState* order) const {
  auto found = sources_.store->GetOrder(id);
  if (!found.ok()) return found.status();
  if (!found->has_value()) return Status::NotFound("order " + id + " not found");
  *order = std::move(**found);
  return Status::Ok();
}

Status OrderRoutes::AppendAndWait(const std::function<Result<size_t>(eventstore::DeliveryCallback)>& append,
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
  if (!appended.ok()) return appended.status();
  {
    std::lock_guard lock(acks->mu);
    acks->expected = *appended;
    if (acks->acked == acks->expected) acks->done.set_value();
  }
  if (future.wait_for(options_.append_timeout) != std::future_status::ready) {
    return Status::Unavailable("the log did not acknowledge the write within " +
                             std::to_string(options_.append_timeout.count()) +
                             " ms; it may still land: retry with the same Idempotency-Key");
  }
  {
    std::lock_guard lock(acks->mu);
    if (!acks->error.ok()) return acks->error;
    *last = acks->last;
  }
  if (sources_.wait_durable) {
    Status durable = sources_.wait_durable({{{sources_.orders_topic, last->partition}, last->offset + 1}});
    if (!durable.ok()) return Status::Unavailable(durable.message() + "; retry with the same Idempotency-Key");
  }
  return Status::Ok();
}

Status OrderRoutes::PlaceOrder(const http::Request& req, http::Response& res) {
  ORDERFLOW_RETURN_IF_ERROR(CheckParams(req, {}));
  domain::PlaceOrder command;
  auto parsed = ParsePlaceOrder(req.body, req.Header("Content-Type"), *sources_.catalog, RequestLimits{});
  if (!parsed.ok()) return parsed.status();
  command = std::move(parsed).value();
  // With an Idempotency-Key the order id is derived from it: a retried request
  // names the same order, and the order service's event id dedupes it.
  std::string order_id;
  const std::string key = req.Header("Idempotency-Key");
  if (!key.empty()) {
    if (key.size() > 200) return Status::Malformed("Idempotency-Key is longer than 200 characters");
    order_id = domain::UuidToString(domain::DeriveEventId(kOrderServiceNamespace, command.customer_id + "\n" + key));
  } else {
    order_id = NewOrderId();
  }
  domain::Event placed;
  eventstore::Position pos;
  ORDERFLOW_RETURN_IF_ERROR(AppendAndWait(
      [&](eventstore::DeliveryCallback cb) -> Result<size_t> {
        auto event = sources_.orders->Place(command, order_id, NowMs(), std::move(cb));
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
  return Status::Ok();
}

Status OrderRoutes::GetOrder(const http::Request& req, const std::string& id, http::Response& res) {
  ORDERFLOW_RETURN_IF_ERROR(CheckParams(req, {"min_position"}));
  ORDERFLOW_RETURN_IF_ERROR(CheckPosition(req));
  ORDERFLOW_RETURN_IF_ERROR(cache_.Render(*sources_.store, id, &res.body));
  res.status = 200;
  res.content_type = "application/json";
  return Status::Ok();
}

Status OrderRoutes::GetHistory(const http::Request& req, const std::string& id, http::Response& res) {
  ORDERFLOW_RETURN_IF_ERROR(CheckParams(req, {"min_position"}));
  ORDERFLOW_RETURN_IF_ERROR(CheckPosition(req));
  auto history = sources_.store->GetHistory(id);
  if (!history.ok()) return history.status();
  if (history->empty()) return Status::NotFound("order " + id + " not found");
  json events = json::array();
  for (const auto& e : *history) events.push_back(projections::HistoryJson(e));
  SendJson(res, 200, {{"order_id", id}, {"events", events}});
  return Status::Ok();
}

Status OrderRoutes::OpenStream(const http::Request& req, const std::string& id,
                                     std::shared_ptr<http::EventSource>* source) {
  ORDERFLOW_RETURN_IF_ERROR(CheckParams(req, {"after", "min_position"}));
  // Resume after the last event the client saw: the Last-Event-ID header (an
  // EventSource reconnecting) or ?after=SEQUENCE.
  std::string after_text = req.Header("Last-Event-ID");
  if (req.HasParam("after")) after_text = req.Param("after");
  int64_t next_sequence = 0;
  if (!after_text.empty()) {
    int64_t after = 0;
    auto [p, ec] = std::from_chars(after_text.data(), after_text.data() + after_text.size(), after);
    if (ec != std::errc() || p != after_text.data() + after_text.size() || after < 0) {
      return Status::Malformed("after / Last-Event-ID must be an event sequence number, got '" + after_text + "'");
    }
    next_sequence = after + 1;
  }
  ORDERFLOW_RETURN_IF_ERROR(CheckPosition(req));
  domain::OrderState order;
  ORDERFLOW_RETURN_IF_ERROR(LoadOrder(id, &order));  // 404 before the stream starts
  *source = std::make_shared<OrderEvents>(*sources_.store, id, next_sequence);
  return Status::Ok();
}

Status OrderRoutes::CancelOrder(const http::Request& req, const std::string& id, http::Response& res) {
  ORDERFLOW_RETURN_IF_ERROR(CheckParams(req, {"min_position"}));
  std::string reason;
  auto parsed = ParseCancelReason(req.body, req.Header("Content-Type"));
  if (!parsed.ok()) return parsed.status();
  reason = std::move(parsed).value();
  ORDERFLOW_RETURN_IF_ERROR(CheckPosition(req));
  domain::OrderState order;
  ORDERFLOW_RETURN_IF_ERROR(LoadOrder(id, &order));
  // Decide first (appends nothing on a rejection), then append and wait.
  eventstore::Position pos;
  ORDERFLOW_RETURN_IF_ERROR(AppendAndWait(
      [&](eventstore::DeliveryCallback cb) -> Result<size_t> {
        auto events = sources_.orders->Execute(order, domain::CancelOrder{reason, domain::CancelSource::kCustomer},
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
  return Status::Ok();
}

Status OrderRoutes::ListOrders(const http::Request& req, http::Response& res) {
  ORDERFLOW_RETURN_IF_ERROR(CheckParams(req, {"status", "customer", "limit", "after", "sort"}));
  projections::OrderQuery query;
  if (req.HasParam("sort")) {
    const std::string sort = req.Param("sort");
    if (sort != "newest" && sort != "id") return Status::Malformed("sort must be 'newest' or 'id', got '" + sort + "'");
    query.newest_first = sort == "newest";
  }
  if (req.HasParam("status")) {
    const std::string name = req.Param("status");
    query.status = projections::OrderStatusFromName(name);
    if (!query.status) return Status::Malformed("unknown status '" + name + "' (known: " + projections::OrderStatusNames() + ")");
  }
  query.customer = req.Param("customer");
  query.after = req.Param("after");
  if (req.HasParam("limit")) {
    const std::string text = req.Param("limit");
    size_t limit = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
    if (ec != std::errc() || p != text.data() + text.size() || limit == 0 || limit > options_.max_page) {
      return Status::Malformed("limit must be a whole number from 1 to " + std::to_string(options_.max_page) + ", got '" +
                               text + "'");
    }
    query.limit = limit;
  }
  auto page = sources_.store->ListOrders(query);
  // The only argument ListOrders can refuse is the cursor: a bad query parameter.
  if (!page.ok() && page.status().code() == StatusCode::kInvalidArgument) return Status::Malformed(page.status().message());
  if (!page.ok()) return page.status();
  json orders = json::array();
  for (const auto& o : page->orders) orders.push_back(projections::OrderJson(o));
  SendJson(res, 200, {{"orders", orders}, {"next", page->next.empty() ? json(nullptr) : json(page->next)}});
  return Status::Ok();
}

Status OrderRoutes::GetAnalytics(const http::Request& req, http::Response& res) {
  ORDERFLOW_RETURN_IF_ERROR(CheckParams(req, {"top"}));
  size_t top = 5;
  if (req.HasParam("top")) {
    const std::string t = req.Param("top");
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), top);
    if (ec != std::errc() || p != t.data() + t.size() || top == 0 || top > 100) {
      return Status::Malformed("top must be a whole number from 1 to 100, got '" + t + "'");
    }
  }
  auto a = sources_.store->GetAnalytics(top);
  if (!a.ok()) return a.status();
  SendJson(res, 200, projections::AnalyticsJson(*a));
  return Status::Ok();
}

Status OrderRoutes::GetCatalog(const http::Request& req, http::Response& res) {
  ORDERFLOW_RETURN_IF_ERROR(CheckParams(req, {}));
  SendJson(res, 200, {{"currency", sources_.catalog->currency()}, {"items", projections::CatalogJson(*sources_.catalog)}});
  return Status::Ok();
}

}  // namespace orderflow::services::api

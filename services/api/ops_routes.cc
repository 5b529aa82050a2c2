#include "services/api/ops_routes.h"

#include <prometheus/text_serializer.h>

#include <charconv>
#include <nlohmann/json.hpp>
#include <sstream>

namespace orderflow::services::api {

using nlohmann::json;

void OpsRoutes::Register(Router& router) {
  using enum Access;
  // With a token configured, only health, readiness and the login are open
  // (and /metrics with --metrics-public); everything that shows orders,
  // customers, stock or dead letters needs a credential.
  router.Add("GET", "/healthz", kOpen, true, [](const http::Request&, const std::string&, http::Response& res) {
    SendJson(res, 200, {{"status", "ok"}});
    return Status::Ok();
  });
  router.Add("GET", "/readyz", kOpen, true,
             [this](const http::Request&, const std::string&, http::Response& res) { return GetReady(res); });
  router.Add("GET", "/metrics", options_.metrics_public ? kOpen : kRead, false,
             [this](const http::Request& req, const std::string&, http::Response& res) { return GetMetrics(req, res); });
  router.Add("GET", "/stock", kRead, true,
             [this](const http::Request& req, const std::string&, http::Response& res) { return GetStock(req, res); });
  router.Add("GET", "/lag", kRead, false,
             [this](const http::Request& req, const std::string&, http::Response& res) { return GetLag(req, res); });
  router.Add("GET", "/throughput", kRead, false,
             [this](const http::Request& req, const std::string&, http::Response& res) { return GetThroughput(req, res); });
  router.Add("GET", "/dlq", kRead, false,
             [this](const http::Request& req, const std::string&, http::Response& res) {
               return ListDeadLetters(req, res);
             });
  router.Add("POST", "/dlq/{id}/redrive", kWrite, false,
             [this](const http::Request& req, const std::string& id, http::Response& res) {
               return RedriveDeadLetter(req, id, res);
             });
}

Status OpsRoutes::GetReady(http::Response& res) {
  const std::string reason = sources_.ops != nullptr ? sources_.ops->NotReadyReason() : "";
  if (reason.empty()) {
    SendJson(res, 200, {{"ready", true}});
  } else {
    SendJson(res, 503, {{"ready", false}, {"reason", reason}});  // an answer, not a refusal: it says why
  }
  return Status::Ok();
}

Status OpsRoutes::GetMetrics(const http::Request& req, http::Response& res) {
  ORDERFLOW_RETURN_IF_ERROR(CheckParams(req, {}));
  std::vector<prometheus::MetricFamily> families = metrics_.Collect();
  auto family = [&](const char* name, const char* help, prometheus::MetricType type) -> prometheus::MetricFamily& {
    families.push_back({name, help, type, {}});
    return families.back();
  };
  if (sources_.projector_counters != nullptr) {
    auto& applied = family("orderflow_events_applied_total", "Events the projector applied, by event type",
                           prometheus::MetricType::Counter);
    for (size_t i = 0; i < domain::kEventTypeCount; ++i) {
      prometheus::ClientMetric m;
      m.label = {{"type", std::string(domain::EventTypeNameAt(i))}};
      m.counter.value = static_cast<double>(sources_.projector_counters->applied_by_type[i].load());
      applied.metric.push_back(std::move(m));
    }
    auto& dups = family("orderflow_events_duplicate_total", "Re-delivered events the projector dropped by event id",
                        prometheus::MetricType::Counter);
    dups.metric.emplace_back().counter.value = static_cast<double>(sources_.projector_counters->duplicates.load());
  }
  if (sources_.ops != nullptr) {
    auto& lag = family("orderflow_consumer_lag", "Records in the log not yet applied, per consumer and partition",
                       prometheus::MetricType::Gauge);
    for (const auto& l : sources_.ops->Lag()) {
      prometheus::ClientMetric m;
      m.label = {{"consumer", l.consumer}, {"topic", l.partition.topic}, {"partition", std::to_string(l.partition.partition)}};
      m.gauge.value = static_cast<double>(l.lag);
      lag.metric.push_back(std::move(m));
    }
  }
  if (sources_.ops != nullptr) {
    auto& dlq = family("orderflow_dlq_records", "Records this process's consumers parked on orders.dlq, by service",
                       prometheus::MetricType::Counter);
    for (const auto& [service, n] : sources_.ops->DeadLettersParked()) {
      prometheus::ClientMetric m;
      m.label = {{"service", service}};
      m.counter.value = static_cast<double>(n);
      dlq.metric.push_back(std::move(m));
    }
  }
  if (auto counts = sources_.store->CountByStatus(); counts.ok()) {
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
    m.counter.value = static_cast<double>(cache_.count(outcome));
    cached.metric.push_back(std::move(m));
  }
  auto& ready = family("orderflow_ready", "1 once the projections caught up and the services run",
                       prometheus::MetricType::Gauge);
  ready.metric.emplace_back().gauge.value = sources_.ops != nullptr && !sources_.ops->NotReadyReason().empty() ? 0 : 1;
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  res.status = 200;
  res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  res.body = out.str();
  return Status::Ok();
}

Status OpsRoutes::GetStock(const http::Request& req, http::Response& res) {
  ORDERFLOW_RETURN_IF_ERROR(CheckParams(req, {}));
  if (sources_.ops == nullptr) return Status::NotFound("this process runs no inventory service; ask the one that does");
  auto levels = sources_.ops->Stock();
  if (!levels.ok()) return levels.status();
  json items = json::array();
  for (const auto& l : *levels) items.push_back({{"sku", l.sku}, {"name", l.name}, {"available", l.available}});
  SendJson(res, 200, {{"stock", items}});
  return Status::Ok();
}

Status OpsRoutes::GetLag(const http::Request& req, http::Response& res) {
  ORDERFLOW_RETURN_IF_ERROR(CheckParams(req, {}));
  json consumers = json::array();
  int64_t total = 0;
  if (sources_.ops != nullptr) {
    for (const auto& l : sources_.ops->Lag()) {
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
  if (sources_.ops != nullptr) {
    for (const auto& h : sources_.ops->Health()) {
      services.push_back({{"service", h.service}, {"running", h.running}, {"detail", h.detail}});
    }
  }
  SendJson(res, 200, {{"consumers", consumers}, {"total_lag", total}, {"services", services}});
  return Status::Ok();
}

void OpsRoutes::Sample() {
  if (sources_.projector_counters == nullptr) return;
  const int64_t now = NowMs();
  std::lock_guard lock(samples_mu_);
  if (!samples_.empty() && now - samples_.back().first < 1000) return;
  uint64_t applied = 0;
  for (size_t i = 0; i < domain::kEventTypeCount; ++i) applied += sources_.projector_counters->applied_by_type[i].load();
  samples_.emplace_back(now, applied);
  while (samples_.size() > 601) samples_.pop_front();
}

Status OpsRoutes::GetThroughput(const http::Request& req, http::Response& res) {
  ORDERFLOW_RETURN_IF_ERROR(CheckParams(req, {}));
  // One point per 10 s: the events applied in it, per second.
  json points = json::array();
  {
    std::lock_guard lock(samples_mu_);
    for (size_t i = 10; i < samples_.size(); i += 10) {
      const auto& [t0, n0] = samples_[i - 10];
      const auto& [t1, n1] = samples_[i];
      const double seconds = std::max<int64_t>(1, t1 - t0) / 1000.0;
      points.push_back({{"time_ms", t1}, {"events_per_second", static_cast<double>(n1 - n0) / seconds}});
    }
  }
  SendJson(res, 200, {{"interval_seconds", 10}, {"points", points}});
  return Status::Ok();
}

Status OpsRoutes::ListDeadLetters(const http::Request& req, http::Response& res) {
  ORDERFLOW_RETURN_IF_ERROR(CheckParams(req, {}));
  if (sources_.ops == nullptr) return Status::NotFound("dead letters are not served by this process");
  auto letters = sources_.ops->DeadLetters();
  if (!letters.ok()) return letters.status();
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
  return Status::Ok();
}

Status OpsRoutes::RedriveDeadLetter(const http::Request& req, const std::string& id, http::Response& res) {
  ORDERFLOW_RETURN_IF_ERROR(CheckParams(req, {}));
  if (sources_.ops == nullptr) return Status::NotFound("dead letters are not served by this process");
  int64_t n = -1;
  auto [p, ec] = std::from_chars(id.data(), id.data() + id.size(), n);
  if (ec != std::errc() || p != id.data() + id.size() || n < 0) {
    return Status::Malformed("a dead letter id is a whole number (its offset in orders.dlq), got '" + id + "'");
  }
  auto result = sources_.ops->Redrive(n);
  if (!result.ok()) return result.status();
  SendJson(res, 202, {{"redriven", result->redriven}, {"appended", result->appended}});
  return Status::Ok();
}

}  // namespace orderflow::services::api

// The API's own metrics: requests by method, route and status code, and
// their latency by route (Prometheus, served by GET /metrics with the others).
// Thread safety: Observe and Collect may be called concurrently.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace orderflow::services::api {

class RequestMetrics {
 public:
  RequestMetrics()
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
  void Observe(std::string_view method, std::string_view route, int status, double seconds);

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

}  // namespace orderflow::services::api

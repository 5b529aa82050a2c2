#include "services/api/metrics.h"

namespace orderflow::services::api {

void RequestMetrics::Observe(std::string_view method, std::string_view route, int status, double seconds) {
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

}  // namespace orderflow::services::api

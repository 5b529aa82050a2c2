#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <vector>

#include "domain/status.h"
#include "eventstore/kafka.h"
#include "services/lifecycle/runner.h"

namespace orderflow::services {

// Stall watchdog. librdkafka can leave an assigned partition unfetched after
// leader changes (seen under the LeaderMoves fault); a new consumer fetches it
// again. A partition whose stored offset has not moved for kStallAfter while
// the log holds more than a transaction marker past it gets the consumers
// recreated, once per stored offset. Time is the service's clock.
class StallWatchdog {
 public:
  static constexpr std::chrono::seconds kCheckEvery{5};
  static constexpr std::chrono::seconds kStallAfter{10};

  explicit StallWatchdog(const ServiceOptions& options)
      : options_(options), next_check_(options.clock->Now() + kCheckEvery) {}

  // kUnavailable, naming the partition, when one has stalled; checks at most
  // every kCheckEvery.
  Status Check(const std::vector<eventstore::TopicPartition>& assigned,
               const std::map<eventstore::TopicPartition, int64_t>& stored) {
    const auto now = options_.clock->Now();
    if (now < next_check_) return Status::Ok();
    next_check_ = now + kCheckEvery;
    for (const auto& tp : assigned) {
      const int64_t at = stored.count(tp) ? stored.at(tp) : 0;
      Progress& p = progress_[tp];
      if (p.offset != at) {
        p = {at, now};
        continue;
      }
      if (now - p.since < kStallAfter || (recreated_at_.count(tp) && recreated_at_.at(tp) == at)) continue;
      if (!watermarks_) {
        auto reader = eventstore::Reader::Create(options_.kafka, "orderflow-" + options_.name + "-watch");
        if (!reader.ok()) return Status::Ok();  // no watchdog this time; the service itself is fine
        watermarks_ = std::move(reader).value();
      }
      auto w = watermarks_->QueryWatermarks(tp, std::chrono::seconds(5));
      if (!w.ok() || w->high <= at + 1) continue;
      recreated_at_[tp] = at;
      p.since = now;
      return Status::Unavailable(tp.topic + "[" + std::to_string(tp.partition) + "] has not moved from offset " +
                                 std::to_string(at) + " for " + std::to_string(kStallAfter.count()) +
                                 " s though the log ends at " + std::to_string(w->high) +
                                 "; recreating the consumers");
    }
    return Status::Ok();
  }

 private:
  struct Progress {
    int64_t offset = -1;
    std::chrono::steady_clock::time_point since;
  };
  const ServiceOptions& options_;
  std::chrono::steady_clock::time_point next_check_;
  std::map<eventstore::TopicPartition, Progress> progress_;
  std::map<eventstore::TopicPartition, int64_t> recreated_at_;
  std::unique_ptr<eventstore::Reader> watermarks_;
};

}  // namespace orderflow::services

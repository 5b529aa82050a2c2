// The runner's stall watchdog: notices an assigned partition that stopped
// being fetched while its log holds more, so the runner recreates its
// consumers. Time is the clock it is given; the log's end comes from a
// function, so the watchdog is tested without a broker.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <vector>

#include "domain/clock.h"
#include "domain/status.h"
#include "eventstore/kafka.h"

namespace orderflow::services {

struct ServiceOptions;

// librdkafka can leave an assigned partition unfetched after leader changes
// (seen under the LeaderMoves fault); a new consumer fetches it again. A
// partition whose stored offset has not moved for kStallAfter while the log
// holds more than a transaction marker past it is reported, once per stored
// offset.
class StallWatchdog {
 public:
  static constexpr std::chrono::seconds kCheckEvery{5};
  static constexpr std::chrono::seconds kStallAfter{10};

  // The offset the next record of a partition will get; asked only about a
  // partition that has not moved for kStallAfter. An error skips the check.
  using LogEnd = std::function<Result<int64_t>(const eventstore::TopicPartition&)>;

  StallWatchdog(const Clock& clock, LogEnd log_end);

  // A service's log ends: from a Reader of its own, created at the first need.
  static LogEnd ReaderLogEnd(const ServiceOptions& options);

  // kUnavailable, naming the partition, when one has stalled; looks at most
  // every kCheckEvery of the clock.
  Status Check(const std::vector<eventstore::TopicPartition>& assigned,
               const std::map<eventstore::TopicPartition, int64_t>& stored);

 private:
  struct Progress {
    int64_t offset = -1;
    std::chrono::steady_clock::time_point since;
  };
  const Clock& clock_;
  LogEnd log_end_;
  std::chrono::steady_clock::time_point next_check_;
  std::map<eventstore::TopicPartition, Progress> progress_;
  std::map<eventstore::TopicPartition, int64_t> recreated_at_;
};

}  // namespace orderflow::services

#include "services/lifecycle/stall_watchdog.h"

#include <memory>
#include <string>
#include <utility>

#include "services/lifecycle/runner.h"

namespace orderflow::services {

StallWatchdog::StallWatchdog(const Clock& clock, LogEnd log_end)
    : clock_(clock), log_end_(std::move(log_end)), next_check_(clock.Now() + kCheckEvery) {}

StallWatchdog::LogEnd StallWatchdog::ReaderLogEnd(const ServiceOptions& options) {
  auto reader = std::make_shared<std::unique_ptr<eventstore::Reader>>();
  return [reader, kafka = options.kafka,
          client = "orderflow-" + options.name + "-watch"](const eventstore::TopicPartition& tp) -> Result<int64_t> {
    if (!*reader) {
      auto created = eventstore::Reader::Create(kafka, client);
      if (!created.ok()) return created.status();
      *reader = std::move(created).value();
    }
    auto w = (*reader)->QueryWatermarks(tp, std::chrono::seconds(5));
    if (!w.ok()) return w.status();
    return w->high;
  };
}

Status StallWatchdog::Check(const std::vector<eventstore::TopicPartition>& assigned,
                            const std::map<eventstore::TopicPartition, int64_t>& stored) {
  const auto now = clock_.Now();
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
    auto end = log_end_(tp);
    if (!end.ok() || *end <= at + 1) continue;  // no watchdog this time, or only a marker past it
    recreated_at_[tp] = at;
    p.since = now;
    return Status::Unavailable(tp.topic + "[" + std::to_string(tp.partition) + "] has not moved from offset " +
                               std::to_string(at) + " for " + std::to_string(kStallAfter.count()) +
                               " s though the log ends at " + std::to_string(*end) + "; recreating the consumers");
  }
  return Status::Ok();
}

}  // namespace orderflow::services

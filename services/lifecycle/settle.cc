#include "services/lifecycle/settle.h"

#include <algorithm>

namespace orderflow::services {

SettleReport CheckSettled(const std::vector<ConsumerPosition>& positions, const LogEnds& ends) {
  SettleReport report;
  auto behind = [&](std::string line) {
    if (std::find(report.behind.begin(), report.behind.end(), line) == report.behind.end()) {
      report.behind.push_back(std::move(line));
    }
  };
  for (const auto& ends_at : ends) {
    const auto& tp = ends_at.first;  // not a structured binding: clang 14's lambdas cannot capture one
    const auto end = ends_at.second;
    if (end == 0) continue;
    for (const ConsumerPosition& c : positions) {
      if (std::find(c.topics.begin(), c.topics.end(), tp.topic) == c.topics.end()) continue;
      if (c.assigned) {
        const auto& held = *c.assigned;
        if (std::none_of(held.begin(), held.end(), [&](const auto& a) { return a.topic == tp.topic; })) {
          behind(c.name + " holds no " + tp.topic + " partition");
          continue;
        }
        if (std::find(held.begin(), held.end(), tp) == held.end()) continue;
      }
      const auto at = c.committed.find(tp);
      const int64_t position = at == c.committed.end() ? 0 : at->second;
      if (position < end) {
        behind(c.name + " " + tp.topic + "[" + std::to_string(tp.partition) + "] " + std::to_string(position) + "/" +
               std::to_string(end));
      }
    }
  }
  report.settled = report.behind.empty();
  return report;
}

}  // namespace orderflow::services

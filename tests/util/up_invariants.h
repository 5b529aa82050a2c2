// The invariants every fault test checks after `orderflow up` (RunUp) finished:
// every acknowledged order terminal, the live projection at the log's end and
// equal to a clean replay, and no notification sent twice (or, where
// notification instances were SIGKILLed, at most `repeats_allowed` repeated
// outbox lines: a kill repeats at most one batch of side effects).
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "projections/store.h"
#include "replay/replay.h"
#include "cli/app/up.h"

namespace orderflow::testing {

// `what` names the fault in failure messages; `orders` is how many orders
// were acknowledged (placed). Call with ASSERT_NO_FATAL_FAILURE.
// `outboxes`: every notification instance's outbox (default: up's own).
inline void CheckUpInvariants(const std::string& what, const services::UpOptions& options,
                              const services::UpSummary& summary, uint64_t orders, const std::string& replay_dir,
                              std::vector<std::string> outboxes = {}, uint64_t repeats_allowed = 0) {
  if (outboxes.empty()) outboxes.push_back(options.data_dir + "/services/notification/outbox.log");
  EXPECT_EQ(summary.delivered + summary.cancelled, orders) << what << ": orders left unfinished";
  uint64_t by_status = 0;
  for (const auto& [status, n] : summary.orders_by_status) by_status += n;
  EXPECT_EQ(by_status, orders) << what << ": acknowledged orders missing from the log";
  EXPECT_GT(summary.delivered, 0u) << what;

  // The projection equals a clean replay of the log the faults produced.
  replay::ReplayOptions replay;
  replay.kafka = options.kafka;
  replay.data_dir = replay_dir;
  auto replayed = replay::Replay(replay);
  ASSERT_TRUE(replayed.ok()) << what << ": " << replayed.status().ToString();
  {
    // The live projection stopped at the log's end (nothing was appended
    // after it stopped), and holds what a replay to that end holds.
    auto live = projections::ProjectionStore::Open(options.data_dir, {});
    ASSERT_TRUE(live.ok()) << live.status().ToString();
    auto live_offsets = (*live)->GetOffsets();
    ASSERT_TRUE(live_offsets.ok()) << live_offsets.status().ToString();
    for (const auto& [tp, end] : replayed->end) {
      const int64_t have = live_offsets->count(tp) ? live_offsets->at(tp) : 0;
      EXPECT_EQ(have, end) << what << ": the live projection of " << tp.topic << "/" << tp.partition
                           << " stopped before the log's end";
    }
  }
  EXPECT_EQ(replayed->digest, summary.digest) << what;

  // Each notification was sent once (the outbox).
  std::map<std::string, int> sent;
  for (const std::string& path : outboxes) {
    std::ifstream outbox(path);
    for (std::string line; std::getline(outbox, line);) sent[line.substr(line.rfind('\t') + 1)] += 1;
  }
  EXPECT_GE(sent.size(), orders) << what;
  uint64_t repeats = 0;
  std::string repeated;
  for (const auto& [id, times] : sent) {
    if (times == 1) continue;
    repeats += static_cast<uint64_t>(times - 1);
    repeated += " " + id + " (" + std::to_string(times) + " times)";
  }
  EXPECT_LE(repeats, repeats_allowed) << what << ": notifications sent more than once:" << repeated;
  if (repeats > 0) std::cout << what << ": " << repeats << " repeated outbox line(s):" << repeated << std::endl;
}

}  // namespace orderflow::testing

// When a running system has settled: every consumer has processed the whole
// log, so nothing in the log can cause anything more.
//
// The protocol, one reading:
//   1. read every consumer's committed position (the next offset it reads);
//   2. then read the log's ends.
// A consumer appends and flushes what it produces from a record before it
// commits past that record, so every output of what the consumers had
// committed in step 1 lies below the ends read in step 2. When each consumer's
// position equals those ends, nothing is unprocessed and nothing unprocessed
// can produce more: the system has settled. Read in the other order, an output
// appended between the two reads would go unseen.
//
// Timers live outside the log (the delivery service's transit delay): the
// caller adds its own condition for them, such as every order being terminal.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "eventstore/kafka.h"

namespace orderflow::services {

using LogEnds = std::map<eventstore::TopicPartition, int64_t>;

struct ConsumerPosition {
  std::string name;                 // "projector", "archive", "payment", ...
  std::vector<std::string> topics;  // the topics it reads
  // The partitions whose positions `committed` gives. nullopt: every
  // partition of its topics (the projector, the archive, and a whole consumer
  // group read through its committed offsets, wherever its members run: see
  // Up::GroupPositions). A list: only those; a member holding none of a topic
  // (between a revocation and the next assignment) is not settled.
  std::optional<std::vector<eventstore::TopicPartition>> assigned;
  std::map<eventstore::TopicPartition, int64_t> committed;  // next offset to read
};

struct SettleReport {
  bool settled = false;
  // One line per consumer behind, for a progress log:
  // "payment orders.events[2] 410/523", "shipping holds no orders.events partition".
  std::vector<std::string> behind;
};

// `positions` must have been read before `ends` (see the protocol above).
SettleReport CheckSettled(const std::vector<ConsumerPosition>& positions, const LogEnds& ends);

}  // namespace orderflow::services

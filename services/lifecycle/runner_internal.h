// ServiceRunner's insides, shared by runner.cc (creating a runner, its
// committed state and offsets) and runner_loop.cc (one Run): the service's
// store, reactor, output log and consumers. Internal to services/lifecycle/.
// Thread safety: the runner's thread uses all of it; other threads read
// `offsets` and `assigned` under `offsets_mu` only.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "domain/status.h"
#include "eventstore/kafka.h"
#include "eventstore/state_db.h"
#include "services/lifecycle/runner.h"
#include "services/lifecycle/runner_io.h"

namespace orderflow::services {

struct ServiceRunner::Impl {
  std::unique_ptr<eventstore::StateDb> store;
  rocksdb::DB* db = nullptr;  // store->db()
  std::unique_ptr<Reactor> reactor;
  RunnerIo io;                                                  // opens readers; io.output appends
  std::vector<std::unique_ptr<InputConsumer>> readers;          // one per priority class
  std::map<eventstore::TopicPartition, int64_t> offsets;           // committed next offsets
  std::vector<eventstore::TopicPartition> assigned;                // what the consumers hold, as of the last poll
  mutable std::mutex offsets_mu;  // guards `offsets` and `assigned` against readers on other threads
  std::string data_dir;
  bool legacy_outputs = false;  // the store has outputs index entries of an earlier version (x/)
  // Set by the running Loop (ServiceRunner::Run) and cleared when it ends: what
  // its consumers call before partitions are taken away (they outlive it).
  std::function<void()> before_revoke;
  // Records whose handler failed, with the failed attempts, the last error and
  // who failed (Reactor::FailedIn, or the service): retried from the stored
  // offsets until the loop's limit, then dead-lettered in that one's name.
  // A hosted reactor that gave up (Reactor::Exclude) is in `parked`: the
  // record is dead-lettered in its name and handled by the others.
  struct Attempts {
    int attempts = 0;
    std::string error;
    std::string service;
  };
  struct Failure : Attempts {
    std::vector<Attempts> parked;
  };
  std::map<std::pair<eventstore::TopicPartition, int64_t>, Failure> failures;

  // Kafka never hands out transaction markers (exactly-once mode) or aborted
  // records, so a partition whose last offset is a marker would stay "behind"
  // by one forever. When a poll brought nothing, store each consumer position
  // that is past the stored offset: every record before it has been processed,
  // and the offsets in between hold no records, so no state changes with them.
  Status StepOverMarkers();
  // Commits the stored offsets of every held partition to the consumer
  // groups again. A commit sent during a rebalance is refused, and a partition
  // that gained nothing since never gets another: idle instances repeat theirs
  // so that `orderflow lag` reads zero at rest.
  // Returns false when some consumer holds no partitions (not joined yet, or
  // in a rebalance): what it would have sent is still to be sent.
  bool RecommitForOperators();
  // Reads the committed reactor state and offsets, and hands the state to the reactor.
  Status LoadState();
  // The stored next offset of `tp` (0 when none). The runner's thread only.
  int64_t StoredOffset(const eventstore::TopicPartition& tp) const {
    auto it = offsets.find(tp);
    return it == offsets.end() ? 0 : it->second;
  }
};

}  // namespace orderflow::services

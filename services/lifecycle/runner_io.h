// What a ServiceRunner reads its inputs from and appends its outputs to. The
// runner's loop is written against these two interfaces: MakeKafkaRunnerIo
// gives librdkafka's consumer groups and producer, and tests give fakes that
// need no broker (tests/services/runner_loop_test.cc).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/events.h"
#include "domain/status.h"
#include "eventstore/kafka.h"
#include "services/lifecycle/runner.h"
#include "services/lifecycle/stall_watchdog.h"

namespace orderflow::services {

// The consumer of one priority class of a service's inputs, a member of the
// class's consumer group (eventstore::GroupReader).
class InputConsumer {
 public:
  virtual ~InputConsumer() = default;
  // Up to `max` records, waiting up to `timeout` for the first; rebalances
  // happen inside.
  virtual Result<std::vector<eventstore::Record>> Poll(size_t max, std::chrono::milliseconds timeout) = 0;
  // The partitions held now.
  virtual std::vector<eventstore::TopicPartition> Assignment() const = 0;
  // The next offset each held partition hands out.
  virtual std::map<eventstore::TopicPartition, int64_t> Positions() const = 0;
  // Committed offsets, for operators' tools only: never read back.
  virtual void CommitForOperators(const std::vector<std::pair<eventstore::TopicPartition, int64_t>>& next_offsets) = 0;
};

// Where a service's outputs and dead letters go (eventstore::Producer).
class OutputLog {
 public:
  virtual ~OutputLog() = default;
  virtual Status AppendEvent(std::string_view topic, const domain::Event& event,
                             eventstore::DeliveryCallback on_delivery) = 0;
  virtual Status Append(std::string_view topic, std::string_view key, std::string_view value,
                        const std::vector<eventstore::Header>& headers, eventstore::DeliveryCallback on_delivery) = 0;
  // Every record appended so far acknowledged, or the first delivery error.
  virtual Status Flush(std::chrono::milliseconds timeout) = 0;
  // Runs delivery callbacks until `done()` holds, not waiting for records
  // appended after those it counts; the first delivery error, or kUnavailable
  // on timeout.
  virtual Status WaitForDeliveries(const std::function<bool()>& done, std::chrono::milliseconds timeout) = 0;
  // With ServiceOptions::exactly_once only.
  virtual Status BeginTransaction() = 0;
  virtual Status CommitTransaction(std::chrono::milliseconds timeout) = 0;
  virtual Status AbortTransaction(std::chrono::milliseconds timeout) = 0;
};

struct RunnerIo {
  // Opens the consumer of input class `index` in consumer group `group`; a
  // partition it is assigned starts at `start(partition)` (the stored offset);
  // `before_revoke` runs inside a Poll before partitions are taken away.
  std::function<Result<std::unique_ptr<InputConsumer>>(size_t index, const std::string& group,
                                                       eventstore::GroupReader::OffsetLookup start,
                                                       std::function<void()> before_revoke)>
      open_input;
  std::unique_ptr<OutputLog> output;
  StallWatchdog::LogEnd log_end;  // for the stall watchdog
};

// librdkafka's: a GroupReader per input class and the service's producer
// (idempotent; transactional with exactly_once), warmed up. kFailedPrecondition
// when the cluster refuses this user.
Result<RunnerIo> MakeKafkaRunnerIo(const ServiceOptions& options);

}  // namespace orderflow::services

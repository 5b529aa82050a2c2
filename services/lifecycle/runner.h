// The loop every lifecycle service shares: consume in a consumer group, keep
// the order aggregate for each order seen, let a Reactor decide outputs, append
// them, wait for their acknowledgement, then write local state and the input
// offsets in one RocksDB WriteBatch.
//
// Effectively-once: outputs get deterministic ids (UUIDv5 of the causing event
// id and the handler's tag), so re-processing after a crash re-appends the same
// events and every consumer drops the duplicates; local state and offsets
// commit together, after the outputs are durable.
#pragma once

#include <atomic>
#include <stop_token>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/clock.h"
#include "domain/events.h"
#include "domain/order.h"
#include "domain/status.h"
#include "eventstore/kafka.h"

namespace orderflow::services {

struct RunnerIo;  // runner_io.h

// The consumer group of input class `index` (of `classes`) of service `name`:
// "orderflow-NAME", or "orderflow-NAME-INDEX" for a service with several classes.
std::string ServiceGroupId(const std::string& name, size_t index, size_t classes);

// What a reactor sees and produces while one batch is processed.
class BatchContext {
 public:
  virtual ~BatchContext() = default;

  // Appends `payload` to `topic` keyed by `aggregate_id`, as an event caused by
  // `cause`; its id is UUIDv5(cause.id, service + "/" + tag), the same on every
  // re-delivery of `cause`. Returns false, and appends nothing, when that id is
  // already in the log (this service's outputs index, caught up before every
  // new partition is handled): the input was handled before, here or by
  // another instance, and its side effect must not run again.
  virtual bool Emit(const std::string& topic, const domain::Event& cause, const std::string& aggregate_id,
                    const std::string& tag, domain::EventPayload payload) = 0;
  // Emit on behalf of `producer`, one of the reactors a host runs
  // (host_reactor.h): the id is UUIDv5(cause.id, producer + "/" + tag) and the
  // event's producer is `producer`, exactly as if that reactor ran as service
  // `producer` of its own.
  virtual bool EmitAs(const std::string& producer, const std::string& topic, const domain::Event& cause,
                      const std::string& aggregate_id, const std::string& tag, domain::EventPayload payload) = 0;

  // The service's own key-value state; reads see this batch's writes.
  virtual std::optional<std::string> Get(const std::string& key) = 0;
  virtual void Put(const std::string& key, std::string value) = 0;
  virtual void Delete(const std::string& key) = 0;

  virtual int64_t now_ms() const = 0;
};

// A service's decisions. Called on the runner's thread only.
class Reactor {
 public:
  virtual ~Reactor() = default;
  // Called at start, and again after every retryable failure (the runner
  // resumes from the stored offsets), with every key/value of the service's state.
  virtual void Load(const std::map<std::string, std::string>& state) {}
  // A new (not yet applied) event of an order on orders.events, with the
  // order's status before applying it and the aggregate after. A handler that
  // cannot handle the event returns why: the batch is abandoned and consumed
  // again from the stored offsets, and after 3 failures the record is parked
  // on orders.dlq with the message. An exception escaping it counts the same (the runner
  // catches it: the one boundary for reactors).
  virtual Status OnOrderEvent(const domain::Event& event, domain::OrderStatus before,
                              const domain::OrderState& after, BatchContext& ctx) {
    return Status::Ok();
  }
  // True when the runner may skip a record of orders.events whose event-type
  // header is `event_type` without decoding it: only for events that change
  // no order status and no field this reactor reads, and that it does not
  // react to (its copy of the order then lacks them). A record without the
  // header is always decoded and handled. A skipped record is not checked
  // either (an undecodable value, a key that is not the order id): the
  // projector, which decodes every record, parks those on orders.dlq.
  virtual bool Skips(std::string_view event_type) const { return false; }
  // An event from another input topic; fails as OnOrderEvent.
  virtual Status OnEvent(const std::string& topic, const domain::Event& event, BatchContext& ctx) {
    return Status::Ok();
  }
  // Once per loop iteration, for timers.
  virtual void OnTick(BatchContext& ctx) {}
  // The reactor whose handler failed last, when this one hosts several
  // (HostReactor): the dead letter is parked in its name. Empty: this one.
  virtual std::string FailedIn() const { return {}; }
  // Only for a reactor that hosts others (HostReactor): until called again,
  // its handlers leave out the hosted reactors named (those that failed the
  // record at hand too often, whose copy of it is parked) and hand the event
  // to the others. False: it hosts none, and the runner parks the record for
  // the whole service.
  virtual bool Exclude(const std::vector<std::string>& names) { return names.empty(); }
  // Performs the batch's external side effects (the notification outbox),
  // after every event of the batch was handled and before its outputs are
  // appended. An error retries the batch from the stored offsets (after Load
  // has been called again with the committed state).
  virtual Status FlushSideEffects() { return Status::Ok(); }
  // The oldest batch whose side effects were flushed and that was not stored
  // yet is stored now: its outputs are in the outputs index. Called once per
  // FlushSideEffects that succeeded, in the same order, unless a failure
  // reloads the state (Load) first.
  virtual void Stored() {}
};

struct ServiceOptions {
  std::string name;      // "payment"; also the consumer group "orderflow-<name>"
  std::string instance = "1";
  eventstore::KafkaConfig kafka;
  std::string data_dir;  // this instance's own store
  // Input topics by priority: the first class is drained before the next is polled.
  std::vector<std::vector<std::string>> inputs;
  // Topics this service appends to. Before it handles a partition it did not
  // hold (at start, and at every assignment), it indexes its own earlier
  // outputs on them (records whose producer is `name`, from where its last
  // catch-up stopped to the log's end), so an input another instance (or a
  // crashed run of this one) already handled emits nothing and has no side
  // effect again. Empty: no index.
  std::vector<std::string> outputs;
  // The producer names whose outputs are this service's own: the reactors a
  // host runs (each emits under its own name). Empty: just `name`.
  std::vector<std::string> producers;
  size_t batch_size = 500;
  std::chrono::milliseconds poll_timeout{20};
  // The consumers' fetch.wait.max.ms: how long the broker may hold a fetch
  // that has less than 64 KiB for it. 0: GroupReader's (10 ms). Longer means
  // fewer fetches (less CPU for both sides) and later records.
  std::chrono::milliseconds fetch_wait{0};
  // Append each batch's outputs in a Kafka transaction (transactional.id
  // "orderflow-<name>-<instance>"), keeping duplicates out of the log on
  // brokers that support it. Correctness never depends on it.
  bool exactly_once = false;
  // If set, called with the next offset of every partition the batch read or
  // wrote before its state commits; returns once the log is durable that far
  // (`orderflow up` on the embedded broker waits for its archive).
  std::function<Status(const std::map<eventstore::TopicPartition, int64_t>&)> wait_durable;
  // Where the service reads the time: event stamps, the delivery timer, the
  // stall watchdog. Tests pass a fake one.
  const Clock* clock = &SystemClock();
};

struct ServiceStats {
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> events{0};
  std::atomic<uint64_t> skipped{0};       // records of orders.events skipped undecoded (Reactor::Skips)
  std::atomic<uint64_t> outputs{0};
  std::atomic<uint64_t> rejected{0};
  std::atomic<uint64_t> dead_letters{0};  // records parked on orders.dlq
  std::atomic<uint64_t> stalls{0};        // times the stall watchdog recreated the consumers
  std::atomic<uint64_t> suppressed{0};    // outputs not appended: already in the log
  std::atomic<uint64_t> catch_ups{0};     // times the outputs index was caught up
  std::atomic<uint64_t> indexed{0};       // own outputs found in the log by catch-ups
  std::atomic<uint64_t> topic_waits{0};   // times an input topic it never consumed did not exist yet
  std::atomic<uint64_t> polls{0};         // polls of the loop (each followed by the stall watchdog's look)
};

class ServiceRunner {
 public:
  // On Kafka (MakeKafkaRunnerIo).
  static Result<std::unique_ptr<ServiceRunner>> Create(ServiceOptions options, std::unique_ptr<Reactor> reactor);
  // On the inputs and output log of `io` (a test's fakes).
  static Result<std::unique_ptr<ServiceRunner>> Create(ServiceOptions options, std::unique_ptr<Reactor> reactor,
                                                       RunnerIo io);
  ~ServiceRunner();

  // Processes until `stop` is set. Transient errors (broker down, a failed
  // flush, RocksDB busy) restart consumption from the stored offsets with
  // exponential backoff and jitter; errors that retrying cannot fix are
  // returned. Records that cannot be processed (undecodable, a key that is not
  // the order id, a handler that throws on every one of 3 attempts) go to
  // orders.dlq with this batch's outputs, and the service moves on.
  Status Run(std::stop_token stop);

  // True once every input consumer has been assigned partitions (the group has
  // settled); work placed before may wait for the first rebalance.
  bool ready() const { return ready_.load(); }

  const ServiceStats& stats() const { return stats_; }
  // The next input offset per partition, as committed (thread-safe).
  std::map<eventstore::TopicPartition, int64_t> committed_offsets() const;
  // The input partitions this instance's consumers hold now (empty between a
  // revocation and the next assignment). Thread-safe.
  std::vector<eventstore::TopicPartition> assigned_partitions() const;
  const ServiceOptions& options() const { return options_; }
  // The reactor's committed state under `key` (as BatchContext::Get sees it
  // between batches); nullopt when absent. Thread-safe.
  Result<std::optional<std::string>> ReadState(const std::string& key) const;

 private:
  struct Impl;
  class Loop;  // one Run (runner.cc)
  ServiceRunner(ServiceOptions options, std::unique_ptr<Impl> impl);
  // After a fetch said "offset out of range" or "unknown topic or partition":
  // the message for a log that really no longer holds a stored offset (an
  // input topic deleted, or its start moved past the stored offset, named by
  // partition and offsets), or nullopt when the log still covers every stored
  // offset, or cannot be asked now. A broker answers so for a moment while it
  // restarts (a real cluster node catching up on metadata): that is retried.
  // An input topic that does not exist yet and was never consumed is waited
  // for (a service started before `up` created the topics): nullopt.
  std::optional<std::string> ConfirmLogProblem(const Status& error);
  ServiceOptions options_;
  std::unique_ptr<Impl> impl_;
  ServiceStats stats_;
  std::atomic<bool> ready_{false};
  uint64_t flush_us_ = 0;
  uint64_t poll_us_ = 0;
  uint64_t process_us_ = 0;
};

}  // namespace orderflow::services

// The live projector as a service: its store, the reader it consumes
// orders.events with, the producer that parks undecodable records on
// orders.dlq, and the projector over them. `orderflow up`, `orderflow service
// projector` and the tests all run this one type.
#pragma once

#include <chrono>
#include <stop_token>
#include <functional>
#include <memory>
#include <string>

#include "domain/status.h"
#include "eventstore/kafka.h"
#include "projections/projector.h"
#include "projections/store.h"

namespace orderflow::services {

struct ProjectorServiceOptions {
  // The reader's fetch.min.bytes when fetch_wait is set: a fetch returns at
  // once only when this much is there.
  static constexpr size_t kBatchBytes = 1 << 20;
  eventstore::KafkaConfig kafka;
  std::string data_dir;    // the projection store
  std::string instance;    // names the Kafka clients ("orderflow-projector-<instance>"); empty in `up`
  size_t batch_size = 5000;
  // The reader's fetch.wait.max.ms: how long the broker may hold a fetch that
  // has less than kBatchBytes for it (the user's --kafka settings win).
  std::chrono::milliseconds fetch_wait{100};
  // The projector's min_batch_interval: a busy step starts this long after
  // the one before. No order waits for the projector: under load, a tenth of
  // the fetches and larger batches to commit, each order's record and indexes
  // written fewer times (docs/benchmarks.md: ~17 % less of orderflow's CPU per
  // order at 500 orders/s, then ~10 % less at 1,000/s with the interval and
  // 1 MiB fetches). The projection is about this late, at most the fetch wait
  // more; a request with ?min_position does not wait for it (it hurries the
  // projector: Projector::Hurry). A user's fetch.wait.max.ms sets this too.
  std::chrono::milliseconds batch_interval{100};
  // If set, a batch commits only once the log is durable that far (`up` on
  // the embedded broker, whose archive is the log's durable copy).
  std::function<Status(const projections::Offsets&)> wait_durable;
};

class ProjectorService {
 public:
  // Opens the store and the clients and assigns every partition at its stored
  // offset. Errors: those of ProjectionStore::Open and Projector::Start.
  static Result<std::unique_ptr<ProjectorService>> Start(ProjectorServiceOptions options);
  ~ProjectorService();

  // Applies what arrives until `stop` is set; transient errors are retried
  // from the stored offsets. Returns once the last batch is committed.
  Status Run(std::stop_token stop);
  // Applies the log up to its end as it is now, then returns (or earlier, when
  // `stop` is set).
  Status RunUntilCaughtUp(std::stop_token stop);

  projections::ProjectionStore& store() { return *store_; }
  projections::Projector& projector() { return *projector_; }
  // The projector's reader: its cached high watermarks give the lag cheaply.
  eventstore::Reader& reader() { return *reader_; }

 private:
  ProjectorService() = default;

  std::unique_ptr<projections::ProjectionStore> store_;
  std::unique_ptr<eventstore::Reader> reader_;
  std::unique_ptr<eventstore::Producer> dead_letters_;
  std::unique_ptr<projections::Projector> projector_;  // last: destroyed (drained) first
};

}  // namespace orderflow::services

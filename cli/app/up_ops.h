// UpOps: the running `orderflow up` as the API's operations routes see it
// (OpsQueries, services/api/ops_queries.h): readiness, lag, health, stock and
// dead letters, read from the projector and the lifecycle services, and where
// each service's whole consumer group stands (GroupPositions, which `up` also
// uses to tell that the system has settled).
//
// Up owns what UpOps reads, and outlives it. The services (`runners`,
// `group_offsets`) are read only once `services_started` is set; they do not
// change after. Thread safety: every method may run on the HTTP server's
// worker threads concurrently and may ask the broker for a few seconds.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cli/app/projector_service.h"
#include "domain/catalog.h"
#include "domain/status.h"
#include "eventstore/kafka.h"
#include "eventstore/topics.h"
#include "services/api/ops_queries.h"
#include "services/lifecycle/runner.h"

namespace orderflow::services {

class UpOps final : public OpsQueries {
 public:
  // `start_end`: the log's end at start; ready once projected that far.
  UpOps(const eventstore::KafkaConfig& kafka, const std::vector<eventstore::TopicSpec>& topics,
        const domain::Catalog& catalog, ProjectorService& projector,
        const std::vector<std::unique_ptr<ServiceRunner>>& runners,
        const std::vector<std::vector<std::unique_ptr<eventstore::GroupOffsets>>>& group_offsets,
        const std::atomic<bool>& services_started, projections::Offsets start_end);
  ~UpOps() override;

  std::string NotReadyReason() override;
  std::vector<PartitionLag> Lag() override;
  std::vector<ServiceHealth> Health() override;
  std::map<std::string, uint64_t> DeadLettersParked() override;
  Result<std::vector<StockLevel>> Stock() override;
  Result<std::vector<eventstore::DeadLetter>> DeadLetters() override;
  Result<eventstore::RedriveResult> Redrive(int64_t id) override;

  // Where service `runner`'s whole consumer group stands, per input partition
  // (see up_ops.cc). Errors: the group coordinator's, when it does not answer.
  Result<std::map<eventstore::TopicPartition, int64_t>> GroupPositions(size_t runner);

 private:
  const eventstore::KafkaConfig& kafka_;
  const std::vector<eventstore::TopicSpec>& topics_;
  const domain::Catalog& catalog_;
  ProjectorService& projector_;
  const std::vector<std::unique_ptr<ServiceRunner>>& runners_;
  // Per runner, per input class: its consumer group's committed offsets.
  const std::vector<std::vector<std::unique_ptr<eventstore::GroupOffsets>>>& group_offsets_;
  const std::atomic<bool>& services_started_;
  std::atomic<bool> caught_up_{false};
  const projections::Offsets start_end_;
  std::mutex lag_mu_;
  std::unique_ptr<eventstore::Reader> lag_reader_;  // under lag_mu_
};

}  // namespace orderflow::services

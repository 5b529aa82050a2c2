// OpsQueries: what the API's operations routes (GET /readyz, /lag, /stock,
// /dlq, POST /dlq/{id}/redrive, parts of /metrics) ask the running process.
// `orderflow up` implements it (cli/app/up_ops.h); tests pass a fake.
// Methods run on the HTTP server's worker threads, concurrently, and may ask
// the broker: they must be thread-safe and may block for a few seconds.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "domain/status.h"
#include "eventstore/dead_letter.h"
#include "eventstore/kafka.h"

namespace orderflow::services {

struct PartitionLag {
  std::string consumer;
  eventstore::TopicPartition partition;
  int64_t lag = 0;
  int64_t committed = -1;  // the consumer's next offset, -1 when unknown
  int64_t end = -1;        // the partition's log end, -1 when unknown
};

struct StockLevel {
  std::string sku;
  std::string name;
  int64_t available = 0;
};

struct ServiceHealth {
  std::string service;
  bool running = false;
  std::string detail;  // what it is doing when not running ("starting", "catching up")
};

class OpsQueries {
 public:
  virtual ~OpsQueries() = default;

  // Why the process is not ready yet; empty when it is.
  virtual std::string NotReadyReason() = 0;
  // Consumer lag per consumer and partition.
  virtual std::vector<PartitionLag> Lag() = 0;
  // Whether each service runs.
  virtual std::vector<ServiceHealth> Health() = 0;
  // Records each consumer of this process parked on orders.dlq (service -> count).
  virtual std::map<std::string, uint64_t> DeadLettersParked() = 0;
  // Units available per SKU. kNotFound when this process runs no inventory service.
  virtual Result<std::vector<StockLevel>> Stock() = 0;
  // The dead letters on orders.dlq. kNotFound when this process does not serve them.
  virtual Result<std::vector<eventstore::DeadLetter>> DeadLetters() = 0;
  // Appends dead letter `id` (its offset on orders.dlq) to its topic again.
  virtual Result<eventstore::RedriveResult> Redrive(int64_t id) = 0;
};

}  // namespace orderflow::services

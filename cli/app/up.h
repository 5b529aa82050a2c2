// `orderflow up`: the embedded broker (unless brokers are given), the order
// service with an optional order simulator, and the projector, in one process.
#pragma once

#include <stop_token>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "domain/catalog.h"
#include "domain/status.h"
#include "eventstore/kafka.h"
#include "eventstore/topics.h"
#include "services/api/http_api.h"

namespace orderflow::services {

struct UpOptions {
  eventstore::KafkaConfig kafka;  // brokers empty: start the embedded broker
  std::string data_dir;
  // Of orders.events, for the topics `up` creates; 0: orders_partitions()'s default.
  int partitions = 0;
  uint64_t simulate = 0;          // orders to place
  double rate = 0;                // orders per second; 0 = as fast as possible
  uint64_t seed = 1;
  bool exit_when_done = false;    // exit once the simulation is fully projected
  // Called once that is so, before anything stops (the log is still up).
  std::function<void()> on_done;
  size_t batch_size = 5000;
  // The projector's interval between busy steps; unset: ProjectorServiceOptions'
  // batch_interval. A request with ?min_position does not wait for it.
  std::optional<std::chrono::milliseconds> projector_interval;
  bool lifecycle = true;          // run payment, inventory, shipping, delivery, notification too
  // Run payment, inventory, shipping and delivery as four services (four
  // consumer groups) instead of as one, fulfillment: for extra instances of
  // one of them in other processes.
  bool separate_services = false;
  std::chrono::milliseconds transit_delay{500};
  int64_t max_payment_minor = 50000;
  std::vector<std::string> blocked_customers = {"cust-0013"};
  bool exactly_once = false;      // Kafka transactions for the services' outputs
  std::optional<HttpOptions> http;  // serve the HTTP API (and web page) when set
  // Nice value (0-19) of the threads that process events: the projector, the
  // services, the archiver, their Kafka clients and the embedded broker. The
  // HTTP API and the order service keep the process's priority, so queries
  // are answered first when the cores are busy.
  int services_nice = 0;

  // `partitions`, or eventstore::kDefaultPartitions on a cluster and
  // kEmbeddedPartitions on the embedded broker.
  int orders_partitions() const {
    if (partitions > 0) return partitions;
    return kafka.brokers.empty() ? eventstore::kEmbeddedPartitions : eventstore::kDefaultPartitions;
  }
};

// Where a running `up` can be reached.
struct UpEndpoints {
  std::string brokers;
  std::string http;  // HOST:PORT; empty without HTTP
};

struct UpSummary {
  std::string brokers;
  uint64_t orders_placed = 0;
  uint64_t orders_rejected = 0;   // simulated placements that failed to append
  uint64_t events_applied = 0;
  uint64_t duplicates = 0;
  uint64_t records_rejected = 0;
  double seconds = 0;
  std::map<std::string, uint64_t> orders_by_status;
  uint64_t delivered = 0;
  uint64_t cancelled = 0;
  std::string digest;
};

// Runs until `stop` is set, or (with exit_when_done) until every order is in a
// terminal state (delivered or cancelled; with lifecycle off: projected) and
// the system has settled (services/lifecycle/settle.h: every consumer's
// committed position, read first, equals the log ends read after it).
// `on_ready` is called once when the services run.
// Errors: the first fatal error of any part (the others are then stopped).
Result<UpSummary> RunUp(const UpOptions& options, const domain::Catalog& catalog, std::stop_token stop,
                        const std::function<void(const UpEndpoints&)>& on_ready);

}  // namespace orderflow::services

// Helpers shared by the librdkafka wrappers in eventstore/: building a client's
// conf (kafka_conf.cc) and librdkafka's log callback (kafka_errors.cc).
#pragma once

#include <librdkafka/rdkafka.h>

#include <string>
#include <vector>

#include "domain/status.h"
#include "eventstore/kafka.h"

namespace orderflow::eventstore::internal {

// Builds a conf from orderflow defaults, then `defaults`, then the user's overrides.
// On error returns nullptr and sets *status.
rd_kafka_conf_t* MakeConf(const KafkaConfig& config, const std::string& client_id,
                          const std::vector<std::pair<std::string, std::string>>& defaults, Status* status);

// librdkafka's log lines, on spdlog (set on every conf by MakeConf). Called on
// librdkafka's threads; thread-safe.
void LogCallback(const rd_kafka_t* rk, int level, const char* fac, const char* buf);

}  // namespace orderflow::eventstore::internal

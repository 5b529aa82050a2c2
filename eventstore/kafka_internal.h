// Configuration helpers shared by the librdkafka wrappers in eventstore/.
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

}  // namespace orderflow::eventstore::internal

// A reactor that reacts to nothing: a ServiceRunner built with it only
// consumes its inputs and commits its offsets (the log-problem and stall tests).
#pragma once

#include <memory>
#include <string>

#include "domain/clock.h"
#include "eventstore/topics.h"
#include "services/lifecycle/runner.h"

namespace orderflow::testing {

class NoopReactor final : public services::Reactor {};

// A runner named "shipping" that only consumes orders.events on `kafka` into
// the store in `data_dir`; `clock` for the watchdog's time.
inline Result<std::unique_ptr<services::ServiceRunner>> NoopRunner(const eventstore::KafkaConfig& kafka,
                                                                   const std::string& data_dir,
                                                                   const Clock* clock = &SystemClock()) {
  services::ServiceOptions so;
  so.name = "shipping";
  so.kafka = kafka;
  so.data_dir = data_dir;
  so.inputs = {{eventstore::kOrdersTopic}};
  so.clock = clock;
  return services::ServiceRunner::Create(so, std::make_unique<NoopReactor>());
}

}  // namespace orderflow::testing

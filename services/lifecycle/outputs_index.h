// The outputs index of a lifecycle service: the ids of its own outputs that
// are in the log, so that a batch retried after a crash does not append them
// again (BatchContext::Emit asks it). Kept in the service's store (keys
// y/<aggregate id><event id> and m/outidx/..., service_keys.h).
#pragma once

#include <stop_token>

#include "domain/status.h"
#include "eventstore/state_db.h"
#include "services/lifecycle/runner.h"

namespace orderflow::services {

// Indexes the service's own outputs on `topics` (records whose producer is
// `name`) from where the previous catch-up stopped to the log's end now, so
// Emit knows every output already in the log. Bounded: each partition is
// read from its stored index position, and positions are committed with the
// ids they cover.
// Gives up (kUnavailable) as soon as `stop` is set: a SIGTERM during a
// catch-up stops the instance at once, the index is simply not advanced.
Status IndexOutputs(const ServiceOptions& options, eventstore::StateDb& store, ServiceStats& stats,
                    std::stop_token stop);

}  // namespace orderflow::services

// HostReactor: several reactors run as one service. The runner then reads
// orders.events once for all of them: one consumer group, one decode and one
// copy of each order, one producer flush and one store write per batch,
// instead of one of each per reactor.
//
// Each hosted reactor stays what it is as a service of its own:
//   - its outputs carry its own name (BatchContext::EmitAs), so their ids,
//     and the producer the outputs index looks for, are unchanged;
//   - its state lives under "NAME/" in the host's state;
//   - it sees only the order events it does not skip (Reactor::Skips), and
//     only the other topics it reads.
// The host skips a record of orders.events only when every reactor does.
// A reactor's failure fails the host's batch: after 3 attempts the record is
// parked on orders.dlq in the failing reactor's name (Reactor::FailedIn) and
// the host hands it to the others (Reactor::Exclude), as they would have
// handled it running alone.
//
// Thread safety: as Reactor (the runner's thread only).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "services/lifecycle/runner.h"

namespace orderflow::services {

struct HostedReactor {
  std::string name;  // as a service of its own: "payment"
  std::unique_ptr<Reactor> reactor;
  std::vector<std::string> topics;  // input topics other than orders.events that it reads
};

std::unique_ptr<Reactor> MakeHostReactor(std::vector<HostedReactor> hosted);

// Where a hosted reactor's state is in its host's: its keys behind this prefix.
inline std::string HostedStatePrefix(const std::string& name) { return name + "/"; }

}  // namespace orderflow::services

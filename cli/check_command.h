// `orderflow check`: the invariant checker (services/check.h) for people.
#pragma once

#include <string>
#include <vector>

namespace orderflow::cli {

// orderflow check --brokers LIST [--outbox FILE ...] [--json]; exit 1 when an
// invariant is broken.
int CmdCheck(const std::vector<std::string>& args);

}  // namespace orderflow::cli

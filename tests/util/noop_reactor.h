// A reactor that reacts to nothing: a ServiceRunner built with it only
// consumes its inputs and commits its offsets (the log-problem and stall tests).
#pragma once

#include "services/lifecycle/runner.h"

namespace orderflow::testing {

class NoopReactor final : public services::Reactor {};

}  // namespace orderflow::testing

// How many orders the volume tests place. Each test names its count and rate;
// $ORDERFLOW_ORDER_PERCENT (1-100, default 100) scales both, so a test keeps
// its length (its faults still land while orders flow) and does less work.
// scripts/sanitize.sh sets 40: under AddressSanitizer the suite is there to
// walk every code path, not to repeat it 5,000 times.
#pragma once

#include <cstdlib>

namespace orderflow::testing {

inline int OrderPercent() {
  const char* env = std::getenv("ORDERFLOW_ORDER_PERCENT");
  const int percent = env != nullptr ? std::atoi(env) : 100;
  return percent >= 1 && percent <= 100 ? percent : 100;
}

// `n` scaled, never below 1.
inline int Scaled(int n) {
  const int scaled = static_cast<int>(static_cast<long long>(n) * OrderPercent() / 100);
  return scaled > 0 ? scaled : 1;
}

}  // namespace orderflow::testing

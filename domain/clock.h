// Time as a dependency: code that waits or stamps reads the time from a Clock
// it is given, so a test moves time forward instead of sleeping through it
// (tests/util/fake_clock.h).
#pragma once

#include <chrono>
#include <cstdint>

namespace orderflow {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time, for timeouts, intervals and watchdogs.
  virtual std::chrono::steady_clock::time_point Now() const = 0;
  // Wall-clock milliseconds since the Unix epoch, for the times events carry.
  virtual int64_t WallMs() const = 0;
};

// The machine's clocks; lives for the whole process.
const Clock& SystemClock();

}  // namespace orderflow

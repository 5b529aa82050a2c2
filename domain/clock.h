// Time as a dependency, as RocksDB's SystemClock: code that waits, sleeps or
// stamps does it through a Clock it is given, so a test moves time forward
// instead of sleeping through it (tests/util/fake_clock.h). SystemClock() is
// the machine's; only it and the benchmarks read std::chrono's clocks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stop_token>

namespace orderflow {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time, for timeouts, intervals and watchdogs.
  virtual std::chrono::steady_clock::time_point Now() const = 0;
  // Wall-clock milliseconds since the Unix epoch, for the times events carry.
  virtual int64_t WallMs() const = 0;
  // Blocks the calling thread for `d` of this clock's time.
  virtual void SleepFor(std::chrono::nanoseconds d) const = 0;
  // Blocks for `d` of this clock's time or until `stop` is requested,
  // whichever comes first (at once if it already was); returns false when it
  // returned because of `stop`. A default std::stop_token never stops.
  virtual bool SleepFor(std::chrono::nanoseconds d, std::stop_token stop) const = 0;
  // With `lock` held on the mutex `cv` belongs to: waits on `cv` until `done()`
  // or this clock reaches `deadline`; returns done(). Whoever makes done() true
  // notifies `cv`.
  virtual bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                         std::chrono::steady_clock::time_point deadline, const std::function<bool()>& done) const = 0;
};

// The machine's clocks; lives for the whole process.
const Clock& SystemClock();

// Blocks until `stop` is requested (forever for a token that cannot stop).
void WaitForStop(std::stop_token stop);

}  // namespace orderflow

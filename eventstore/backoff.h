// Retrying: exponential backoff with jitter for transient errors, and asking
// again for a bounded time (a broker that has not learnt of a new topic yet).
#pragma once

#include <algorithm>
#include <chrono>
#include <random>

#include "domain/clock.h"

namespace orderflow::eventstore {

// Each Next() returns a random wait in [d/2, d] ("equal jitter"), then doubles
// d up to `max`; Reset() after a success. Jitter keeps the many consumers of
// one process (or of a fleet) from retrying against a broker in lockstep.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
      : initial_(initial), max_(max), current_(initial), rng_(std::random_device{}()) {}

  std::chrono::milliseconds Next() {
    const auto d = current_;
    current_ = std::min(current_ * 2, max_);
    std::uniform_int_distribution<int64_t> pick(d.count() / 2, d.count());
    return std::chrono::milliseconds(pick(rng_));
  }
  void Reset() { current_ = initial_; }
  std::chrono::milliseconds current() const { return current_; }

 private:
  std::chrono::milliseconds initial_, max_, current_;
  std::minstd_rand rng_;
};

// Calls `attempt` until it returns true or `limit` of `clock`'s time has
// passed, sleeping `interval` between calls; returns whether it succeeded.
template <typename Attempt>
bool RetryFor(const Clock& clock, std::chrono::milliseconds limit, std::chrono::milliseconds interval,
              Attempt&& attempt) {
  const auto deadline = clock.Now() + limit;
  for (;;) {
    if (attempt()) return true;
    if (clock.Now() >= deadline) return false;
    clock.SleepFor(interval);
  }
}

}  // namespace orderflow::eventstore

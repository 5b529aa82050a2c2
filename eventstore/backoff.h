// Exponential backoff with jitter, for retrying transient errors.
#pragma once

#include <algorithm>
#include <chrono>
#include <random>

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

}  // namespace orderflow::eventstore

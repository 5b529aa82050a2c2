// A Clock the test moves: it starts at the real time and advances only when
// told to, from any thread.
#pragma once

#include <atomic>
#include <chrono>

#include "domain/clock.h"

namespace orderflow::testing {

class FakeClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override {
    return start_ + std::chrono::milliseconds(advanced_ms_.load());
  }
  int64_t WallMs() const override { return wall_start_ms_ + advanced_ms_.load(); }
  void Advance(std::chrono::milliseconds by) { advanced_ms_.fetch_add(by.count()); }

 private:
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  const int64_t wall_start_ms_ = SystemClock().WallMs();
  std::atomic<int64_t> advanced_ms_{0};
};

}  // namespace orderflow::testing

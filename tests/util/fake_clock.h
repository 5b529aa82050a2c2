// A Clock the test moves: it starts at the real time and advances only when
// told to, from any thread. SleepFor returns once the test advanced it that
// far (or `stop` is requested); WaitUntil returns once done() or the test advanced it to the deadline.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "domain/clock.h"

namespace orderflow::testing {

class FakeClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override {
    return start_ + std::chrono::milliseconds(advanced_ms_.load());
  }
  int64_t WallMs() const override { return wall_start_ms_ + advanced_ms_.load(); }
  void Advance(std::chrono::milliseconds by) {
    {
      std::lock_guard lock(mu_);
      advanced_ms_.fetch_add(by.count());
    }
    moved_.notify_all();
  }
  void SleepFor(std::chrono::nanoseconds d) const override {
    const auto until = Now() + d;
    std::unique_lock lock(mu_);
    moved_.wait(lock, [&] { return Now() >= until; });
  }
  bool SleepFor(std::chrono::nanoseconds d, std::stop_token stop) const override {
    const auto until = Now() + d;
    std::unique_lock lock(mu_);
    moved_.wait(lock, stop, [&] { return Now() >= until; });
    return !stop.stop_requested();
  }
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 std::chrono::steady_clock::time_point deadline, const std::function<bool()>& done) const override {
    // The caller's cv is not this clock's: look at the fake time every real millisecond.
    while (!done() && Now() < deadline) cv.wait_for(lock, std::chrono::milliseconds(1));
    return done();
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable_any moved_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  const int64_t wall_start_ms_ = SystemClock().WallMs();
  std::atomic<int64_t> advanced_ms_{0};
};

}  // namespace orderflow::testing

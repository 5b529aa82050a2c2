#include "domain/clock.h"

#include <condition_variable>
#include <mutex>
#include <thread>

namespace orderflow {
namespace {

class RealClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override { return std::chrono::steady_clock::now(); }
  int64_t WallMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  void SleepFor(std::chrono::nanoseconds d) const override { std::this_thread::sleep_for(d); }
  bool SleepFor(std::chrono::nanoseconds d, std::stop_token stop) const override {
    if (!stop.stop_possible()) {
      std::this_thread::sleep_for(d);
      return true;
    }
    std::mutex mu;
    std::condition_variable_any stopped;
    std::unique_lock lock(mu);
    stopped.wait_for(lock, stop, d, [] { return false; });
    return !stop.stop_requested();
  }
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 std::chrono::steady_clock::time_point deadline, const std::function<bool()>& done) const override {
    return cv.wait_until(lock, deadline, done);
  }
};

}  // namespace

void WaitForStop(std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any stopped;
  std::unique_lock lock(mu);
  stopped.wait(lock, stop, [] { return false; });
}

const Clock& SystemClock() {
  static const RealClock clock;
  return clock;
}

}  // namespace orderflow

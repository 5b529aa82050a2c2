// The stall watchdog on a fake clock and a given log end: no broker, no
// waiting (the runner recreating its consumers on a real broker is
// StallWatchdogTest in tests/integration/fault_test.cc).
#include "services/lifecycle/stall_watchdog.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <vector>

#include "tests/util/fake_clock.h"

namespace orderflow::services {
namespace {

using namespace std::chrono_literals;

class StallWatchdogUnitTest : public ::testing::Test {
 protected:
  StallWatchdogUnitTest()
      : watchdog_(clock_, [this](const eventstore::TopicPartition& tp) -> Result<int64_t> {
          ++asked_;
          if (!end_ok_) return Status::Unavailable("broker away");
          return ends_[tp];
        }) {}

  // Moves the clock by `by` in steps of the watchdog's check interval,
  // checking at each: the first error, or Ok.
  Status Pass(std::chrono::seconds by) {
    for (auto passed = 0s; passed < by; passed += StallWatchdog::kCheckEvery) {
      clock_.Advance(StallWatchdog::kCheckEvery);
      Status s = watchdog_.Check(assigned_, stored_);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }

  testing::FakeClock clock_;
  StallWatchdog watchdog_;
  const eventstore::TopicPartition tp_{"orders.events", 3};
  std::vector<eventstore::TopicPartition> assigned_{tp_};
  std::map<eventstore::TopicPartition, int64_t> stored_{{tp_, 40}};
  std::map<eventstore::TopicPartition, int64_t> ends_{{tp_, 41}};
  bool end_ok_ = true;
  int asked_ = 0;
};

TEST_F(StallWatchdogUnitTest, AnIdlePartitionAtItsLogEndIsNeverStalled) {
  EXPECT_TRUE(Pass(10min).ok());  // 41 is one past 40: a transaction marker at most
  EXPECT_GT(asked_, 0) << "the watchdog never looked at the log end";
}

TEST_F(StallWatchdogUnitTest, APartitionThatDoesNotMoveWhileTheLogGrowsIsReportedOnce) {
  ends_[tp_] = 100;
  EXPECT_TRUE(Pass(StallWatchdog::kStallAfter).ok()) << "reported before kStallAfter passed";
  Status stalled = Pass(StallWatchdog::kCheckEvery);
  ASSERT_EQ(stalled.code(), StatusCode::kUnavailable);
  EXPECT_NE(stalled.message().find("orders.events[3] has not moved from offset 40"), std::string::npos)
      << stalled.message();
  EXPECT_NE(stalled.message().find("the log ends at 100"), std::string::npos) << stalled.message();
  // Recreating the consumers did not help: not reported again for the same offset.
  EXPECT_TRUE(Pass(5min).ok());
  // It moved, then stopped again: reported again, once.
  stored_[tp_] = 60;
  EXPECT_TRUE(Pass(StallWatchdog::kStallAfter).ok());
  EXPECT_EQ(Pass(StallWatchdog::kCheckEvery).code(), StatusCode::kUnavailable);
}

TEST_F(StallWatchdogUnitTest, APartitionThatKeepsMovingIsNeverStalled) {
  ends_[tp_] = 1'000'000;
  for (int i = 0; i < 100; ++i) {
    stored_[tp_] += 7;
    ASSERT_TRUE(Pass(StallWatchdog::kCheckEvery).ok()) << "at step " << i;
  }
  EXPECT_EQ(asked_, 0) << "asked the log end of a partition that moves";
}

TEST_F(StallWatchdogUnitTest, ALogEndItCannotLearnSkipsTheCheck) {
  ends_[tp_] = 100;
  end_ok_ = false;
  EXPECT_TRUE(Pass(1min).ok());
  end_ok_ = true;
  EXPECT_EQ(Pass(StallWatchdog::kCheckEvery).code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace orderflow::services

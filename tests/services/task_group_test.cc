// TaskGroup: the first error wins and halts the rest; exceptions are errors.
#include "cli/app/task_group.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "domain/clock.h"

namespace orderflow::services {
namespace {

Status RunUntilHalted(std::stop_token halt) {
  WaitForStop(halt);
  return Status::Ok();
}

TEST(TaskGroupTest, TheFirstErrorWinsAndHaltsTheOthers) {
  TaskGroup group;
  group.Spawn("idle", RunUntilHalted);
  group.Spawn("broken", [](std::stop_token) { return Status::Unavailable("disk gone"); });
  group.Join();  // returns only because the error halted "idle"
  EXPECT_TRUE(group.halted());
  EXPECT_EQ(group.first_error().code(), StatusCode::kUnavailable);
  EXPECT_EQ(group.first_error().message(), "broken: disk gone");
  group.Fail(Status::Internal("later"));
  EXPECT_EQ(group.first_error().message(), "broken: disk gone");
}

TEST(TaskGroupTest, AnExceptionIsAnErrorNotATerminate) {
  TaskGroup group;
  group.Spawn("idle", RunUntilHalted);
  // What escapes a task is a library's exception (orderflow's own code
  // returns Status): std::vector::at past the end stands for one.
  group.Spawn("thrower", [](std::stop_token) -> Status {
    const std::vector<int> empty;
    return Status::Internal(std::to_string(empty.at(0)));
  });
  group.Join();
  EXPECT_EQ(group.first_error().code(), StatusCode::kInternal);
  EXPECT_NE(group.first_error().message().find("thrower: unexpected exception: "), std::string::npos)
      << group.first_error().ToString();
}

TEST(TaskGroupTest, TheDestructorHaltsAndJoins) {
  std::atomic<bool> finished{false};
  {
    TaskGroup group;
    group.Spawn("idle", [&](std::stop_token halt) {
      Status s = RunUntilHalted(halt);
      finished = true;
      return s;
    });
  }
  EXPECT_TRUE(finished.load());
}

}  // namespace
}  // namespace orderflow::services

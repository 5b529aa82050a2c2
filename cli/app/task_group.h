// Threads that run until they are halted or one of them fails. The first
// error wins and halts the others; an exception escaping a task is an error
// like any other (never std::terminate). A task is given the group's
// stop_token: Halt() requests it, which also wakes a task sleeping on it
// (Clock::SleepFor). The destructor halts and joins, so no path out of the
// owner leaves a thread running.
#pragma once

#include <exception>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "domain/status.h"

namespace orderflow::services {

class TaskGroup {
 public:
  TaskGroup() = default;
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  ~TaskGroup() {
    Halt();
    Join();
  }

  // Runs `task(halt)` on a thread of its own; an error it returns or throws
  // is recorded as "<name>: <message>" (if it is the first) and halts the group.
  void Spawn(std::string name, std::function<Status(std::stop_token halt)> task) {
    threads_.emplace_back([this, name = std::move(name), task = std::move(task)] {
      Status s;
      try {
        s = task(halt_.get_token());
      } catch (const std::exception& e) {
        s = Status::Internal(std::string("unexpected exception: ") + e.what());
      } catch (...) {
        s = Status::Internal("unexpected exception");
      }
      if (!s.ok()) Fail(Status(s.code(), name + ": " + s.message()));
    });
  }

  // Records `error` if it is the first, and halts the group.
  void Fail(const Status& error) {
    {
      std::lock_guard lock(mu_);
      if (first_error_.ok()) first_error_ = error;
    }
    Halt();
  }

  void Halt() { halt_.request_stop(); }
  bool halted() const { return halt_.stop_requested(); }
  // Requested when the group is halted.
  std::stop_token token() const { return halt_.get_token(); }

  // Waits for every thread; idempotent.
  void Join() {
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  Status first_error() const {
    std::lock_guard lock(mu_);
    return first_error_;
  }

 private:
  std::stop_source halt_;
  mutable std::mutex mu_;
  Status first_error_;
  std::vector<std::thread> threads_;
};

}  // namespace orderflow::services

#include "services/priority.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace orderflow::services {

Status SetThreadNice(int nice) {
  if (nice == 0) return Status::Ok();
  // On Linux, PRIO_PROCESS with a thread id sets that one thread's nice value.
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  if (::setpriority(PRIO_PROCESS, tid, nice) != 0) {
    return Status::Internal(std::string("setpriority(") + std::to_string(nice) + "): " + std::strerror(errno));
  }
  return Status::Ok();
}

Status RunAtNice(int nice, const std::function<Status()>& f) {
  if (nice == 0) return f();
  Status result;
  std::thread worker([&] {
    Status set = SetThreadNice(nice);
    if (!set.ok()) spdlog::warn("{}; running at the default priority", set.ToString());
    result = f();
  });
  worker.join();
  return result;
}

}  // namespace orderflow::services

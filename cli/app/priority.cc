#include "cli/app/priority.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace orderflow::services {

void SetThreadNice(int nice) {
  if (nice == 0) return;
  // On Linux, PRIO_PROCESS with a thread id sets that one thread's nice value.
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  if (::setpriority(PRIO_PROCESS, tid, nice) != 0) {
    spdlog::warn("setpriority({}): {}; running at the default priority", nice, std::strerror(errno));
  }
}

Status RunAtNice(int nice, const std::function<Status()>& f) {
  if (nice == 0) return f();
  Status result;
  std::thread worker([&] {
    SetThreadNice(nice);
    result = f();
  });
  worker.join();
  return result;
}

}  // namespace orderflow::services

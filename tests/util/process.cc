#include "tests/util/process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "domain/clock.h"

#include "tests/util/temp_dir.h"

extern char** environ;

namespace orderflow::testing {

std::string OrderflowBinary() { return ORDERFLOW_BINARY; }

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& stderr_path) {
  int fds[2];
  if (pipe(fds) != 0) return;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  if (!stderr_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // orderflow takes SIGINT and SIGTERM on a thread of its own, blocking both
  // before anything else. It starts with them already blocked here, so that a
  // signal a test sends at any moment after the spawn, even before
  // orderflow's first instruction ran, waits for that thread instead of
  // ending the process by the default action. Other programs start as usual.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  if (argv[0] == OrderflowBinary()) {
    sigset_t held;
    sigemptyset(&held);
    sigaddset(&held, SIGINT);
    sigaddset(&held, SIGTERM);
    posix_spawnattr_setsigmask(&attr, &held);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  }
  if (int rc = posix_spawn(&pid_, args[0], &actions, &attr, args.data(), environ); rc != 0) {
    pid_ = -1;
    // A test that waits for the child's output would otherwise wait its whole
    // timeout and report only that the line never came.
    ADD_FAILURE() << "could not start " << argv[0] << ": " << std::strerror(rc)
                  << (argv[0] == OrderflowBinary() ? " (build the orderflow target too)" : "");
  }
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  stdout_fd_ = fds[0];
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

std::optional<std::string> ChildProcess::ReadLine(std::chrono::milliseconds timeout) {
  auto deadline = SystemClock().Now() + timeout;
  while (true) {
    auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SystemClock().Now());
    if (left.count() <= 0) return std::nullopt;
    pollfd pfd{stdout_fd_, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    char buf[4096];
    ssize_t n = read(stdout_fd_, buf, sizeof buf);
    if (n <= 0) return std::nullopt;
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

void ChildProcess::Kill(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

int ChildProcess::Wait(std::chrono::milliseconds timeout) {
  auto deadline = SystemClock().Now() + timeout;
  while (pid_ > 0) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (SystemClock().Now() > deadline) return -1;
    SystemClock().SleepFor(std::chrono::milliseconds(10));
  }
  return -1;
}

CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  TempDir dir;
  std::string err_path = dir.Sub("stderr");
  CommandResult result;
  {
    ChildProcess child(argv, err_path);
    auto deadline = SystemClock().Now() + timeout;
    while (SystemClock().Now() < deadline) {
      if (auto line = child.ReadLine(std::chrono::milliseconds(50))) {
        result.out += *line + "\n";
        continue;
      }
      int status = child.Wait(std::chrono::milliseconds(0));
      if (status != -1) {
        while (auto rest = child.ReadLine(std::chrono::milliseconds(10))) result.out += *rest + "\n";
        result.status = status;
        break;
      }
    }
  }
  std::ifstream in(err_path);
  std::stringstream ss;
  ss << in.rdbuf();
  result.err = ss.str();
  return result;
}

std::string LastLines(const std::string& path, int n) {
  std::ifstream in(path);
  std::deque<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(std::move(line));
    if (static_cast<int>(lines.size()) > n) lines.pop_front();
  }
  std::string out = "\n--- last " + std::to_string(lines.size()) + " lines of " + path + " ---\n";
  for (const auto& line : lines) out += line + "\n";
  return out;
}

bool WaitForFileToContain(const std::string& path, const std::string& text, std::chrono::milliseconds timeout) {
  const auto deadline = SystemClock().Now() + timeout;
  while (true) {
    std::ifstream in(path);
    const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (content.find(text) != std::string::npos) return true;
    if (SystemClock().Now() >= deadline) return false;
    SystemClock().SleepFor(std::chrono::milliseconds(50));
  }
}

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace orderflow::testing

// Child processes for tests that kill and restart orderflow binaries.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace orderflow::testing {

// `a` followed by `b`: a command line plus the broker's arguments.
inline std::vector<std::string> Cat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Path of the orderflow binary under test (set by CMake).
std::string OrderflowBinary();

class ChildProcess {
 public:
  // Starts `argv[0]` with `argv`; stdout goes to a pipe (read with ReadLine),
  // stderr to `stderr_path` (appended) if given, else inherited.
  ChildProcess(const std::vector<std::string>& argv, const std::string& stderr_path = "");
  ~ChildProcess();  // SIGKILLs the child if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // One line from the child's stdout (without newline); nullopt on EOF or timeout.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout);
  void Kill(int signal);
  // Waits for exit; returns the exit status (128+signal if killed), -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  bool running() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string buffer_;
};

// Runs a command to completion; returns its exit status and captures stdout/stderr.
struct CommandResult {
  int status = -1;
  std::string out;
  std::string err;
};
CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

// Runs the orderflow binary with `args` to completion.
inline CommandResult Orderflow(std::vector<std::string> args,
                               std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
  args.insert(args.begin(), OrderflowBinary());
  return RunCommand(args, timeout);
}

// "\n--- last N lines of PATH ---\n" and those lines, for failure messages
// about a process whose log is deleted with the test's directory.
std::string LastLines(const std::string& path, int n = 40);

// Waits until the file at `path` contains `text` (a child's log line, say):
// true once it does, false if `timeout` passes first. For tests that must
// know a process reached a state before they inject a fault.
bool WaitForFileToContain(const std::string& path, const std::string& text, std::chrono::milliseconds timeout);

// A TCP port on 127.0.0.1 that was free a moment ago (for a child's --http, a server's --port).
int FreeLoopbackPort();

}  // namespace orderflow::testing

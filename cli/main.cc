// orderflow: one binary for the services, the replay tool and the CLI.
//
// `orderflow COMMAND [options]`; every command takes --help. Errors are one line
// on stderr and a non-zero exit (1: the operation failed, 2: bad usage).

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "domain/clock.h"
#include "domain/events.h"

namespace orderflow::cli {
namespace {

// How long a command may take to stop after SIGINT/SIGTERM: it finishes the
// batch in flight, flushes and writes its state; past this it exits anyway.
constexpr auto kShutdownGrace = std::chrono::seconds(30);

// SIGINT and SIGTERM are taken by one thread of their own, never by a signal
// handler: they are blocked before any other thread exists (every thread
// inherits the mask), so no system call of the services is interrupted. The
// first signal requests g_stop (waking whatever waits on its token); a second
// exits at once with 130; a command that has not returned kShutdownGrace
// after the first exits with 1. The destructor ends the thread with SIGUSR2,
// so a clean stop ends with every thread joined and every destructor run.
// The thread sleeps in sigwait until a signal comes: it polls nothing.
class SignalThread {
 public:
  SignalThread() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    sigaddset(&signals_, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
    thread_ = std::thread([this] { Run(); });
  }
  ~SignalThread() {
    ending_.store(true);
    pthread_kill(thread_.native_handle(), SIGUSR2);
    thread_.join();
  }
  SignalThread(const SignalThread&) = delete;
  SignalThread& operator=(const SignalThread&) = delete;

 private:
  void Run() {
    // Before a stop: wait for a signal as long as it takes; after: at most
    // until the grace period ends.
    for (;;) {
      int signal = 0;
      if (!g_stop.stop_requested()) {
        if (sigwait(&signals_, &signal) != 0) continue;
      } else {
        const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(grace_ends_ - SystemClock().Now());
        if (left.count() <= 0) {
          std::fprintf(stderr, "orderflow: still not stopped %lld s after the signal; exiting without a clean stop\n",
                       static_cast<long long>(kShutdownGrace.count()));
          _exit(1);
        }
        const timespec wait{static_cast<time_t>(left.count() / 1'000'000'000),
                            static_cast<long>(left.count() % 1'000'000'000)};
        signal = sigtimedwait(&signals_, nullptr, &wait);
      }
      if (signal == SIGUSR2 && ending_.load()) return;  // another sender's SIGUSR2 is ignored
      if (signal != SIGINT && signal != SIGTERM) continue;
      if (!g_stop.request_stop()) _exit(130);  // the second signal
      grace_ends_ = SystemClock().Now() + kShutdownGrace;
    }
  }

  sigset_t signals_;
  std::atomic<bool> ending_{false};
  std::chrono::steady_clock::time_point grace_ends_;
  std::thread thread_;
};

struct CommandInfo {
  const char* name;
  const char* summary;
  Result<int> (*run)(const std::vector<std::string>&);
};

const CommandInfo kCommands[] = {
    {"up", "run the services and the projector (embedded broker unless --brokers)", CmdUp},
    {"broker", "run the embedded Kafka-protocol broker", CmdBroker},
    {"service", "run one service as its own process", CmdService},
    {"stock", "add stock to a SKU", CmdStock},
    {"snapshot", "create, list, restore or delete snapshots of the projections", CmdSnapshot},
    {"analytics", "revenue, orders by status, top SKUs, orders per hour", CmdAnalytics},
    {"order", "place, get, cancel or list orders", CmdOrder},
    {"history", "an order's event timeline from the local store", CmdHistory},
    {"dlq", "list, show or redrive dead letters (records services could not process)", CmdDlq},
    {"log", "export the log to a file, or import one into an empty cluster", CmdLog},
    {"catalog", "the demo catalog", CmdCatalog},
    {"replay", "rebuild the projections from offset zero", CmdReplay},
    {"digest", "the state digest of a data directory", CmdDigest},
    {"topics", "orderflow's topics on the cluster: partitions, leaders, ISR, offsets, retention", CmdTopics},
    {"lag", "committed offset, log end and lag per consumer group and partition", CmdLag},
    {"check", "check the log and outboxes: unfinished orders, oversold SKUs, double refunds, repeated notifications", CmdCheck},
};

void PrintUsage(std::ostream& out) {
  out << "Usage: orderflow COMMAND [options]\n\n"
         "An event-sourced order-processing system on Kafka, RocksDB and Cap'n Proto.\n\nCommands:\n";
  for (const auto& c : kCommands) {
    char line[160];
    std::snprintf(line, sizeof line, "  %-10s %s\n", c.name, c.summary);
    out << line;
  }
  out << "\nRun `orderflow COMMAND --help` for a command's options.\n";
}

int RunCommand(std::vector<std::string> args) {
  if (args.empty()) {
    PrintUsage(std::cerr);
    return 2;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    PrintUsage(std::cout);
    return 0;
  }
  if (args[0] == "--version") {
    std::cout << "orderflow 0.1.0 (schema version " << domain::kCurrentSchemaVersion << ")\n";
    return 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  for (const auto& c : kCommands) {
    if (command != c.name) continue;
    Result<int> exit = c.run(args);
    if (exit.ok()) return *exit;
    if (exit.status().code() == StatusCode::kMalformed) {  // a Usage error
      std::cerr << "orderflow " << command << ": " << exit.status().message() << " (see `orderflow " << command
                << " --help`)\n";
      return 2;
    }
    return Fail(exit.status());
  }
  std::cerr << "orderflow: unknown command '" << command << "' (see `orderflow --help`)\n";
  return 2;
}

int Main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("orderflow");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
  SignalThread signals;
  const int code = RunCommand(std::vector<std::string>(argv + 1, argv + argc));
  // A consumer whose group coordinator did not answer its close finishes on a
  // thread of its own (eventstore::FinishClosingClients); past a few seconds
  // the process goes without it: the stores are closed, the group drops the
  // member after its session timeout.
  if (!eventstore::FinishClosingClients(std::chrono::seconds(5))) {
    spdlog::warn("a Kafka consumer is still closing; exiting without waiting for it");
    logger->flush();
    std::fflush(nullptr);
    _exit(code);
  }
  return code;
}

}  // namespace
}  // namespace orderflow::cli

int main(int argc, char** argv) { return orderflow::cli::Main(argc, argv); }

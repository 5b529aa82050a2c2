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
#include <optional>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "domain/events.h"

namespace orderflow::cli {
namespace {

// How long a command may take to stop after SIGINT/SIGTERM: it finishes the
// batch in flight, flushes and writes its state; past this it exits anyway.
constexpr auto kShutdownGrace = std::chrono::seconds(30);

// SIGINT and SIGTERM are taken by one thread of their own, never by a signal
// handler: they are blocked before any other thread exists (every thread
// inherits the mask), so no system call of the services is interrupted. The
// first signal sets g_stop; a second exits at once with 130; a command that
// has not returned kShutdownGrace after g_stop was set exits with 1. The
// thread is joined when Main returns, so a clean stop ends with every thread
// joined and every destructor run.
class SignalThread {
 public:
  SignalThread() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
    thread_ = std::thread([this] { Run(); });
  }
  ~SignalThread() {
    exiting_.store(true);
    thread_.join();
  }
  SignalThread(const SignalThread&) = delete;
  SignalThread& operator=(const SignalThread&) = delete;

 private:
  void Run() {
    std::optional<std::chrono::steady_clock::time_point> stop_since;
    while (!exiting_.load()) {
      timespec tick{0, 100'000'000};
      const int signal = sigtimedwait(&signals_, nullptr, &tick);
      if ((signal == SIGINT || signal == SIGTERM) && g_stop.exchange(true)) _exit(130);
      if (!stop_since && g_stop.load()) stop_since = std::chrono::steady_clock::now();
      if (stop_since && std::chrono::steady_clock::now() - *stop_since > kShutdownGrace) {
        std::fprintf(stderr, "orderflow: still not stopped %lld s after the signal; exiting without a clean stop\n",
                     static_cast<long long>(kShutdownGrace.count()));
        _exit(1);
      }
    }
  }

  sigset_t signals_;
  std::atomic<bool> exiting_{false};
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

int Main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("orderflow");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
  SignalThread signals;

  std::vector<std::string> args(argv + 1, argv + argc);
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

}  // namespace
}  // namespace orderflow::cli

int main(int argc, char** argv) { return orderflow::cli::Main(argc, argv); }

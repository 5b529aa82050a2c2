// A full disk is an operating condition: `orderflow up` with its data
// directory on a small filesystem pauses writing (one clear message naming the
// directory and the free space), keeps running, and finishes every order once
// the filesystem grows; the state equals a replay of the log. Needs root to
// mount a tmpfs; skipped otherwise.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "domain/clock.h"

#include "tests/util/broker.h"
#include "tests/util/process.h"
#include "tests/util/temp_dir.h"

namespace orderflow {
namespace {

using namespace std::chrono_literals;
using orderflow::testing::Cat;
using orderflow::testing::ChildProcess;
using orderflow::testing::OrderflowBinary;
using orderflow::testing::TempDir;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class SmallFilesystem {
 public:
  explicit SmallFilesystem(std::string path) : path_(std::move(path)) {
    std::filesystem::create_directories(path_);
    mounted_ = ::geteuid() == 0 && ::mount("tmpfs", path_.c_str(), "tmpfs", 0, "size=12m") == 0;
  }
  ~SmallFilesystem() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  bool Grow() { return ::mount("tmpfs", path_.c_str(), "tmpfs", MS_REMOUNT, "size=2g") == 0; }

 private:
  std::string path_;
  bool mounted_ = false;
};

// Reads are answered from the store while writing is paused: the order list,
// one order, analytics, health.
void ExpectReadsAnswered(int port, const std::string& when) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(10, 0);
  auto list = client.Get("/orders?limit=5");
  ASSERT_TRUE(list) << when << ": GET /orders: " << httplib::to_string(list.error());
  ASSERT_EQ(list->status, 200) << when << ": " << list->body;
  auto orders = nlohmann::json::parse(list->body)["orders"];
  ASSERT_FALSE(orders.empty()) << when << ": no orders listed";
  const std::string id = orders[0]["order_id"];
  auto one = client.Get("/orders/" + id);
  ASSERT_TRUE(one) << when;
  EXPECT_EQ(one->status, 200) << when << ": " << one->body;
  auto analytics = client.Get("/analytics");
  ASSERT_TRUE(analytics) << when;
  EXPECT_EQ(analytics->status, 200) << when << ": " << analytics->body;
  auto health = client.Get("/healthz");
  ASSERT_TRUE(health) << when;
  EXPECT_EQ(health->status, 200) << when;
}

TEST(DiskFullTest, UpPausesWhileTheDiskIsFullAndFinishesEveryOrderOnceSpaceIsFreed) {
  TempDir dir;
  SmallFilesystem fs(dir.Sub("small"));
  if (!fs.mounted()) GTEST_SKIP() << "needs root to mount a 12 MiB tmpfs";
  auto broker = testing::StartBroker(4);
  ASSERT_NE(broker, nullptr);
  const std::string data = dir.Sub("small") + "/data";
  const std::string log = dir.Sub("up.log");
  constexpr int kOrders = 2000;
  const int port = testing::FreeLoopbackPort();
  ChildProcess up(Cat({OrderflowBinary(), "up", "--http", "127.0.0.1:" + std::to_string(port), "--data-dir", data,
                       "--simulate", std::to_string(kOrders), "--rate", "400", "--exit-when-done", "--json",
                       "--log-level", "warn"},
                      broker->CliArgs()),
                  log);
  ASSERT_TRUE(testing::WaitForFileToContain(log, "no space left for the", 60s))
      << "the 12 MiB filesystem never filled" << testing::LastLines(log);
  SystemClock().SleepFor(3s);  // paused, not dead
  ASSERT_EQ(::kill(up.pid(), 0), 0) << "up exited while the disk was full" << testing::LastLines(log);
  const std::string message = ReadAll(log);
  EXPECT_NE(message.find(data), std::string::npos) << "the message names the directory";
  EXPECT_NE(message.find("MiB free on its filesystem"), std::string::npos);
  ExpectReadsAnswered(port, "while the disk is full");
  ASSERT_TRUE(fs.Grow());

  std::string out;
  for (auto line = up.ReadLine(240s); line; line = up.ReadLine(30s)) out += *line + "\n";
  ASSERT_EQ(up.Wait(30s), 0) << testing::LastLines(log);
  EXPECT_EQ(ReadAll(log).find("Assertion"), std::string::npos);
  auto summary = nlohmann::json::parse(out);
  EXPECT_EQ(summary["orders_placed"], kOrders);
  EXPECT_EQ(summary["orders_by_status"]["delivered"].get<int>() + summary["orders_by_status"]["cancelled"].get<int>(),
            kOrders)
      << out;
  auto replayed = testing::Orderflow(Cat({"replay", "--data-dir", dir.Sub("replayed"), "--json"}, broker->CliArgs()));
  ASSERT_EQ(replayed.status, 0) << replayed.err;
  EXPECT_EQ(nlohmann::json::parse(replayed.out)["digest"], summary["digest"]);
}

// SIGTERM while the disk is full: `up` stops cleanly (exit 0, within the
// grace period) without having written what did not fit; the next start,
// with space, finishes every order and equals a replay.
TEST(DiskFullTest, UpStopsCleanlyOnSigtermWhileTheDiskIsFullAndTheNextStartFinishes) {
  TempDir dir;
  SmallFilesystem fs(dir.Sub("small"));
  if (!fs.mounted()) GTEST_SKIP() << "needs root to mount a 12 MiB tmpfs";
  auto broker = testing::StartBroker(4);
  ASSERT_NE(broker, nullptr);
  const std::string data = dir.Sub("small") + "/data";
  const std::string log = dir.Sub("up.log");
  constexpr int kOrders = 2000;
  ChildProcess up(Cat({OrderflowBinary(), "up", "--http", "off", "--data-dir", data, "--simulate",
                       std::to_string(kOrders), "--rate", "400", "--log-level", "warn"},
                      broker->CliArgs()),
                  log);
  ASSERT_TRUE(testing::WaitForFileToContain(log, "no space left for the", 60s))
      << "the 12 MiB filesystem never filled" << testing::LastLines(log);
  ASSERT_EQ(::kill(up.pid(), 0), 0) << "up exited when the disk filled" << testing::LastLines(log);
  const auto signalled = SystemClock().Now();
  up.Kill(SIGTERM);
  ASSERT_EQ(up.Wait(40s), 0) << testing::LastLines(log);
  EXPECT_LT(SystemClock().Now() - signalled, 30s);
  ASSERT_TRUE(fs.Grow());
  // The next start places no new orders: it finishes those in the log.
  auto last = testing::Orderflow(Cat({"up", "--http", "off", "--data-dir", data, "--exit-when-done", "--json",
                                      "--log-level", "warn"},
                                     broker->CliArgs()),
                                 300s);
  ASSERT_EQ(last.status, 0) << last.err;
  auto summary = nlohmann::json::parse(last.out);
  uint64_t total = 0;
  for (const auto& [status, n] : summary["orders_by_status"].items()) total += n.get<uint64_t>();
  EXPECT_GT(total, 0u);
  EXPECT_EQ(summary["delivered"].get<uint64_t>() + summary["cancelled"].get<uint64_t>(), total) << last.out;
  auto replayed = testing::Orderflow(Cat({"replay", "--data-dir", dir.Sub("replayed"), "--json"}, broker->CliArgs()));
  ASSERT_EQ(replayed.status, 0) << replayed.err;
  EXPECT_EQ(nlohmann::json::parse(replayed.out)["digest"], summary["digest"]);
}

}  // namespace
}  // namespace orderflow

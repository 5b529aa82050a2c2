// A full disk is an operating condition: `orderflow up` with its data
// directory on a small filesystem pauses writing (one clear message naming the
// directory and the free space), keeps running, and finishes every order once
// the filesystem grows; the state equals a replay of the log. Needs root to
// mount a tmpfs; skipped otherwise.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

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

TEST(DiskFullTest, UpPausesWhileTheDiskIsFullAndFinishesEveryOrderOnceSpaceIsFreed) {
  TempDir dir;
  SmallFilesystem fs(dir.Sub("small"));
  if (!fs.mounted()) GTEST_SKIP() << "needs root to mount a 12 MiB tmpfs";
  auto broker = testing::StartBroker(4);
  ASSERT_NE(broker, nullptr);
  const std::string data = dir.Sub("small") + "/data";
  const std::string log = dir.Sub("up.log");
  constexpr int kOrders = 2000;
  ChildProcess up(Cat({OrderflowBinary(), "up", "--http", "off", "--data-dir", data, "--simulate",
                       std::to_string(kOrders), "--rate", "400", "--exit-when-done", "--json", "--log-level", "warn"},
                      broker->CliArgs()),
                  log);
  bool full = false;
  for (int i = 0; i < 600 && !full; ++i) {
    std::this_thread::sleep_for(100ms);
    full = ReadAll(log).find("no space left for the") != std::string::npos;
  }
  ASSERT_TRUE(full) << "the 12 MiB filesystem never filled; see " << log;
  std::this_thread::sleep_for(3s);  // paused, not dead
  ASSERT_EQ(::kill(up.pid(), 0), 0) << "up exited while the disk was full; see " << log;
  const std::string message = ReadAll(log);
  EXPECT_NE(message.find(data), std::string::npos) << "the message names the directory";
  EXPECT_NE(message.find("MiB free on its filesystem"), std::string::npos);
  ASSERT_TRUE(fs.Grow());

  std::string out;
  for (auto line = up.ReadLine(240s); line; line = up.ReadLine(30s)) out += *line + "\n";
  ASSERT_EQ(up.Wait(30s), 0) << "see " << log;
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

}  // namespace
}  // namespace orderflow

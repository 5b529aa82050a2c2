// Stopping and starting: SIGTERM/SIGINT finish the batch in flight and exit 0;
// a second signal exits at once; `orderflow up` on the embedded broker
// republishes its archive on the next start and loses nothing; `orderflow log
// export|import` move a whole log to another cluster.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <random>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "domain/clock.h"
#include "eventstore/embedded_broker.h"
#include "eventstore/topics.h"
#include "eventstore/log_archive.h"
#include "projections/store.h"
#include "replay/replay.h"
#include "tests/util/broker.h"
#include "tests/util/flip_byte.h"
#include "tests/util/process.h"
#include "tests/util/temp_dir.h"

namespace orderflow {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::Cat;
using testing::ChildProcess;
using testing::OrderflowBinary;
using testing::Orderflow;
using testing::RunCommand;
using testing::TempDir;

bool FileContains(const std::string& path, const std::string& needle) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str().find(needle) != std::string::npos;
}

std::string ReadAll(ChildProcess& child) {
  std::string out;
  while (auto line = child.ReadLine(5s)) out += *line + "\n";
  return out;
}

uint64_t Total(const json& by_status) {
  uint64_t n = 0;
  for (const auto& [status, count] : by_status.items()) n += count.get<uint64_t>();
  return n;
}

// The archive of `data` is the whole log: republished into a fresh broker and
// replayed from offset zero, it gives `digest`, and `orders` orders.
void ExpectArchiveReplaysTo(const std::string& data, const std::string& digest, uint64_t orders, const TempDir& dir) {
  auto archive = eventstore::LogArchive::Open(data + "/archive");
  ASSERT_TRUE(archive.ok()) << archive.status().ToString();
  auto partitions = (*archive)->TopicPartitions();
  ASSERT_TRUE(partitions.ok());
  auto broker = eventstore::EmbeddedBroker::Start(3);
  ASSERT_TRUE(broker.ok());
  std::vector<eventstore::TopicSpec> specs;
  for (const auto& [topic, n] : *partitions) specs.push_back({topic, n});
  ASSERT_TRUE((*broker)->CreateTopics(specs).ok());
  const eventstore::KafkaConfig kafka{(*broker)->bootstraps(), {}};
  auto republished = eventstore::Republish(
      kafka, [&](const std::function<Status(eventstore::ArchivedRecord&&)>& sink) { return (*archive)->ForEach(sink); });
  ASSERT_TRUE(republished.ok()) << republished.status().ToString();
  replay::ReplayOptions replay;
  replay.kafka = kafka;
  replay.data_dir = dir.Sub("replayed");
  auto replayed = replay::Replay(replay);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  EXPECT_EQ(replayed->digest, digest);
  auto store = projections::ProjectionStore::Open(replay.data_dir, {.read_only = true});
  ASSERT_TRUE(store.ok());
  auto counts = (*store)->CountByStatus();
  ASSERT_TRUE(counts.ok());
  uint64_t replayed_total = 0;
  for (const auto& [status, n] : *counts) replayed_total += n;
  EXPECT_EQ(replayed_total, orders) << "every order in the log is in the store";
}

// A corrupt projection store (one flipped byte in its MANIFEST): `up` refuses
// to start and says how to rebuild it; with --rebuild-corrupt it moves the
// corrupt files aside, rebuilds the store from the log, and ends with every
// order and the digest the store had before.
TEST(RestartTest, ACorruptProjectionStoreIsSetAsideAndRebuiltFromTheLog) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  const std::vector<std::string> up = {"up", "--data-dir", data, "--http", "off", "--exit-when-done", "--json",
                                       "--transit-ms", "50"};
  auto first = Orderflow(Cat(up, {"--simulate", "200"}), 180s);
  ASSERT_EQ(first.status, 0) << first.err;
  const json before = json::parse(first.out);
  ASSERT_EQ(Total(before["orders_by_status"]), 200u);

  int flipped = 0;
  for (const auto& entry : std::filesystem::directory_iterator(data)) {
    if (entry.path().filename().string().rfind("MANIFEST-", 0) != 0) continue;
    testing::FlipByte(entry.path(), static_cast<std::streamoff>(std::filesystem::file_size(entry.path()) / 2));
    ++flipped;
  }
  ASSERT_EQ(flipped, 1);

  auto refused = Orderflow(up, 120s);
  EXPECT_EQ(refused.status, 1) << refused.err;
  EXPECT_NE(refused.err.find("orderflow replay --data-dir " + data + " --force"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--rebuild-corrupt"), std::string::npos) << refused.err;

  auto rebuilt = Orderflow(Cat(up, {"--rebuild-corrupt"}), 180s);
  ASSERT_EQ(rebuilt.status, 0) << rebuilt.err;
  const json after = json::parse(rebuilt.out);
  EXPECT_EQ(after["orders_by_status"], before["orders_by_status"]);
  EXPECT_EQ(after["digest"], before["digest"]);
  int set_aside = 0;
  for (const auto& entry : std::filesystem::directory_iterator(data)) {
    if (entry.is_directory() && entry.path().filename().string().rfind("corrupt-", 0) == 0) {
      ++set_aside;
      EXPECT_TRUE(std::filesystem::exists(entry.path() / "CURRENT")) << "the corrupt files are kept for a post-mortem";
    }
  }
  EXPECT_EQ(set_aside, 1);
}

TEST(RestartTest, UpOnTheEmbeddedBrokerStoppedThreeTimesMidRunLosesNothing) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  uint64_t placed_in_graceful_runs = 0;
  // Stop 1: SIGTERM. Stop 2: SIGINT. Stop 3: two SIGTERMs, the second exits at once.
  const std::vector<std::vector<int>> stops = {{SIGTERM}, {SIGINT}, {SIGTERM, SIGTERM}};
  for (size_t round = 0; round < stops.size(); ++round) {
    const std::string log = dir.Sub("up-" + std::to_string(round) + ".log");
    ChildProcess up({OrderflowBinary(), "up", "--http", "off", "--data-dir", data, "--simulate", "20000", "--rate",
                     "500", "--partitions", "3", "--transit-ms", "50", "--json", "--log-level", "info"},
                    log);
    for (int i = 0; i < 600 && !FileContains(log, "placed "); ++i) SystemClock().SleepFor(50ms);
    ASSERT_TRUE(FileContains(log, "placed ")) << "round " << round << ": no orders placed; see " << log;
    SystemClock().SleepFor(500ms);  // orders in flight in every service
    const auto signalled = SystemClock().Now();
    for (size_t i = 0; i < stops[round].size(); ++i) {
      up.Kill(stops[round][i]);
      // The second signal comes while the first stop drains.
      if (i + 1 < stops[round].size()) {
        ASSERT_TRUE(testing::WaitForFileToContain(log, "stopping: letting the services finish", 30s)) << log;
      }
    }
    const int status = up.Wait(35s);
    const auto took = SystemClock().Now() - signalled;
    if (stops[round].size() == 1) {
      ASSERT_EQ(status, 0) << "round " << round << "; see " << log;
      EXPECT_LT(took, 30s);
      auto summary = json::parse(ReadAll(up));
      placed_in_graceful_runs += summary["orders_placed"].get<uint64_t>();
      // A clean stop lets every service finish what is in the log. A shipped
      // order may still wait for its transit timer (kept in the delivery
      // service's store, not in the log): the next start delivers it.
      const uint64_t shipped = summary["orders_by_status"].value("shipped", uint64_t{0});
      EXPECT_EQ(summary["delivered"].get<uint64_t>() + summary["cancelled"].get<uint64_t>() + shipped,
                Total(summary["orders_by_status"]))
          << "round " << round << ": " << summary["orders_by_status"];
    } else {
      EXPECT_EQ(status, 130) << "a second signal exits at once";
      EXPECT_LT(took, 3s);
    }
  }
  // The fourth start republishes the archive and finishes every order.
  auto last = Orderflow({"up", "--http", "off", "--data-dir", data, "--exit-when-done", "--json", "--log-level", "warn"});
  ASSERT_EQ(last.status, 0) << last.err;
  auto summary = json::parse(last.out);
  const uint64_t total = Total(summary["orders_by_status"]);
  EXPECT_GT(total, placed_in_graceful_runs);
  EXPECT_EQ(summary["delivered"].get<uint64_t>() + summary["cancelled"].get<uint64_t>(), total);

  ExpectArchiveReplaysTo(data, summary["digest"].get<std::string>(), total, dir);
}

// `orderflow up` on the embedded broker, sent SIGTERM at a random moment of
// its life 20 times ($ORDERFLOW_SIGTERM_ROUNDS; 5 under ASan): while it
// starts the broker and republishes its archive, while the projector catches
// up, while orders flow. Each stop exits 0 (no crash, every thread joined);
// the last start finishes every order, and its digest is a replay's.
TEST(RestartTest, UpExitsZeroOnSigtermAtAnyMomentAndLosesNothing) {
  const char* env = std::getenv("ORDERFLOW_SIGTERM_ROUNDS");
  const int rounds = env != nullptr && std::atoi(env) > 0 ? std::atoi(env) : 20;
  TempDir dir;
  const std::string data = dir.Sub("data");
  std::mt19937 rng(4242);
  for (int round = 0; round < rounds; ++round) {
    const std::string log = dir.Sub("up-" + std::to_string(round) + ".log");
    ChildProcess up({OrderflowBinary(), "up", "--http", "off", "--data-dir", data, "--simulate", "100000", "--rate",
                     "100", "--partitions", "3", "--transit-ms", "50", "--log-level", "info"},
                    log);
    // Even stops come while it starts (broker, archive, projector, services);
    // odd ones once orders flow: after the line saying the simulation began.
    const bool flowing = round % 2 == 1;
    if (flowing) {
      ASSERT_TRUE(testing::WaitForFileToContain(log, "simulating ", 120s)) << "round " << round << ": no orders; see " << log;
    }
    const int ms = static_cast<int>(rng() % (flowing ? 2000 : 1000));
    SystemClock().SleepFor(std::chrono::milliseconds(ms));
    up.Kill(SIGTERM);
    EXPECT_EQ(up.Wait(40s), 0) << "stop " << round + 1 << " of " << rounds << ", " << ms << " ms after "
                               << (flowing ? "orders flowed" : "the start") << "; see " << log;
  }
  auto last = Orderflow({"up", "--http", "off", "--data-dir", data, "--exit-when-done", "--json", "--log-level", "warn"});
  ASSERT_EQ(last.status, 0) << last.err;
  auto summary = json::parse(last.out);
  const uint64_t total = Total(summary["orders_by_status"]);
  EXPECT_GT(total, 0u);
  EXPECT_EQ(summary["delivered"].get<uint64_t>() + summary["cancelled"].get<uint64_t>(), total);
  ExpectArchiveReplaysTo(data, summary["digest"].get<std::string>(), total, dir);
}

TEST(RestartTest, LogExportAndImportMoveTheWholeLogToAnotherCluster) {
  TempDir dir;
  auto a_broker = testing::StartBroker(3);
  ASSERT_NE(a_broker, nullptr);
  const std::vector<std::string> brokers_a = a_broker->CliArgs();
  auto up = Orderflow(Cat({"up", "--http", "off", "--data-dir", dir.Sub("live"), "--simulate",
                       "300", "--transit-ms", "0", "--exit-when-done", "--json", "--log-level", "warn"}, brokers_a));
  ASSERT_EQ(up.status, 0) << up.err;
  const std::string digest = json::parse(up.out)["digest"];

  const std::string file = dir.Sub("orders.oflog");
  auto exported = Orderflow(Cat({"log", "export", file, "--json"}, brokers_a));
  ASSERT_EQ(exported.status, 0) << exported.err;
  const uint64_t records = json::parse(exported.out)["exported"];
  EXPECT_GT(records, 300u * 5);

  auto b_broker = testing::StartBroker(3);
  ASSERT_NE(b_broker, nullptr);
  const std::vector<std::string> brokers_b = b_broker->CliArgs();
  auto imported = Orderflow(Cat({"log", "import", file, "--json"}, brokers_b));
  ASSERT_EQ(imported.status, 0) << imported.err;
  EXPECT_EQ(json::parse(imported.out)["imported"], records);
  auto replayed = Orderflow(Cat({"replay", "--data-dir", dir.Sub("replayed"), "--json"}, brokers_b));
  ASSERT_EQ(replayed.status, 0) << replayed.err;
  EXPECT_EQ(json::parse(replayed.out)["digest"], digest);

  // Into a cluster that already has records: refused, nothing appended.
  auto again = Orderflow(Cat({"log", "import", file}, brokers_b));
  EXPECT_EQ(again.status, 1);
  EXPECT_NE(again.err.find("already holds"), std::string::npos) << again.err;
  // Not an export, or a truncated one: refused with the reason.
  { std::ofstream(dir.Sub("junk")) << "hello"; }
  auto junk = Orderflow(Cat({"log", "import", dir.Sub("junk")}, brokers_b));
  EXPECT_EQ(junk.status, 1);
  EXPECT_NE(junk.err.find("is not an orderflow log export"), std::string::npos) << junk.err;
  std::filesystem::resize_file(file, std::filesystem::file_size(file) / 2);
  auto c_broker = testing::StartBroker(3);
  ASSERT_NE(c_broker, nullptr);
  const std::vector<std::string> brokers_c = c_broker->CliArgs();
  auto truncated = Orderflow(Cat({"log", "import", file}, brokers_c));
  EXPECT_EQ(truncated.status, 1);
  EXPECT_NE(truncated.err.find("damaged"), std::string::npos) << truncated.err;
}

}  // namespace
}  // namespace orderflow

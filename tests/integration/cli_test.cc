// The orderflow binary as a user runs it: exit codes, one-line errors, --help,
// --json, and the broker + up + replay + digest + history flow.
#include <gtest/gtest.h>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <signal.h>
#include <thread>
#include <sstream>
#include <map>
#include <filesystem>
#include <set>

#include "domain/clock.h"
#include "eventstore/kafka.h"
#include "eventstore/topics.h"
#include "tests/util/broker.h"
#include "tests/util/events.h"
#include "tests/util/process.h"
#include "tests/util/scale.h"
#include "tests/util/temp_dir.h"

namespace orderflow {
namespace {

using namespace std::chrono_literals;
using orderflow::testing::Cat;
using orderflow::testing::ChildProcess;
using orderflow::testing::CommandResult;
using orderflow::testing::OrderflowBinary;
using orderflow::testing::Orderflow;
using orderflow::testing::RunCommand;
using orderflow::testing::TempDir;

size_t Lines(const std::string& s) { return std::count(s.begin(), s.end(), '\n'); }

TEST(CliTest, HelpExitsZeroForEveryCommand) {
  auto top = Orderflow({"--help"});
  EXPECT_EQ(top.status, 0);
  EXPECT_NE(top.out.find("Commands:"), std::string::npos);
  for (const char* cmd : {"up", "broker", "service", "order", "history", "catalog", "replay", "digest", "stock",
                          "analytics", "snapshot", "dlq", "lag", "topics", "check"}) {
    auto r = Orderflow({cmd, "--help"});
    EXPECT_EQ(r.status, 0) << cmd << ": " << r.err;
    EXPECT_NE(r.out.find("Usage: orderflow"), std::string::npos) << cmd;
  }
  for (const char* sub : {"place", "get", "cancel", "list"}) {
    auto r = Orderflow({"order", sub, "--help"});
    EXPECT_EQ(r.status, 0) << sub;
    EXPECT_NE(r.out.find("--json"), std::string::npos) << sub;
  }
}

// The binary carries its allocator's settings (cli/allocator.cc): jemalloc
// with two arenas. Sanitizer builds have no jemalloc, and nothing to check.
TEST(CliTest, TheBinaryRunsJemallocWithTwoArenas) {
#ifndef ORDERFLOW_WITH_JEMALLOC
  GTEST_SKIP() << "orderflow is built without jemalloc (a sanitizer build)";
#endif
  const char* before = getenv("MALLOC_CONF");
  const std::string saved = before == nullptr ? "" : before;
  ASSERT_EQ(setenv("MALLOC_CONF", "stats_print:true", 1), 0);
  auto r = Orderflow({"catalog", "--json"});
  if (before == nullptr) {
    unsetenv("MALLOC_CONF");
  } else {
    setenv("MALLOC_CONF", saved.c_str(), 1);
  }
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_NE(r.err.find("jemalloc statistics"), std::string::npos) << "orderflow does not run jemalloc";
  EXPECT_NE(r.err.find("opt.narenas: 2\n"), std::string::npos) << r.err.substr(0, 1500);
}

TEST(CliTest, UsageErrorsAreOneLineWithExitCodeTwo) {
  const std::vector<std::vector<std::string>> cases = {
      {"frobnicate"},
      {"up", "--no-such-flag"},
      {"up", "--simulate", "lots"},
      {"order"},
      {"order", "explode"},
      {"order", "get"},
      {"order", "list", "--status", "lost"},
      {"order", "list", "--limit", "0"},
      {"up", "--partitions", "0"},
      {"broker", "--partitions", "-3"},
      {"order", "place", "--brokers", "127.0.0.1:1", "--customer", "c", "--item", "SKU-MUG"},
      {"order", "place", "--brokers", "127.0.0.1:1", "--customer", "c", "--item", "SKU-MUG:two"},
      {"order", "place", "--customer", "c", "--item", "SKU-MUG:1"},
      {"replay", "--kafka", "novalue"},
      {"history"},
      {"digest", "--log-level", "loud"},
      {"topics"},
      {"lag", "--brokers", "127.0.0.1:1", "--group", "orderflow-nobody"},
      {"check", "--outbox"},
      {"up", "--topic-prefix", "has space"},
      {"up", "--services-nice", "20"},
  };
  for (const auto& args : cases) {
    auto r = Orderflow(args, 20s);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(r.status, 2) << joined << "\n" << r.err;
    EXPECT_EQ(Lines(r.err), 1u) << joined << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("orderflow", 0), 0u) << joined;
  }
}

TEST(CliTest, OperationalErrorsExitOneAndSayWhatToDo) {
  TempDir dir;
  auto r = Orderflow({"order", "get", "nope", "--data-dir", dir.Sub("missing")});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(Lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("orderflow up"), std::string::npos) << r.err;
}

TEST(CliTest, CatalogJsonListsSkusAndPrices) {
  auto r = Orderflow({"catalog", "--json"});
  ASSERT_EQ(r.status, 0);
  auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.is_array());
  ASSERT_FALSE(j.empty());
  EXPECT_TRUE(j[0].contains("sku"));
  EXPECT_GT(j[0]["price_minor"].get<int64_t>(), 0);
}

// The foundation's promise: broker + up --simulate + replay into a new
// directory give the digest of the live directory, and history works with
// everything stopped.
TEST(CliTest, BrokerUpReplayDigestAndHistoryAgree) {
  TempDir dir;
  auto broker = testing::StartBroker(3);
  ASSERT_NE(broker, nullptr);
  const std::vector<std::string> brokers = broker->CliArgs();
  const std::string live = dir.Sub("live");

  auto up = Orderflow(Cat({"up", "--http", "off", "--data-dir", live, "--simulate", "500", "--exit-when-done", "--json",
                       "--log-level", "warn", "--projector-only"}, brokers));
  ASSERT_EQ(up.status, 0) << up.err;
  auto summary = nlohmann::json::parse(up.out);
  EXPECT_EQ(summary["orders_placed"], 500);
  EXPECT_EQ(summary["orders_by_status"]["placed"], 500);

  auto placed = Orderflow(Cat({"order", "place", "--customer", "alice", "--item", "SKU-MUG:2", "--item",
                     "SKU-KETTLE:1", "--json"}, brokers));
  ASSERT_EQ(placed.status, 0) << placed.err;
  const std::string id = nlohmann::json::parse(placed.out)["order_id"];
  auto rejected = Orderflow(Cat({"order", "place", "--customer", "alice", "--item", "SKU-NOPE:1"}, brokers));
  EXPECT_EQ(rejected.status, 1);
  EXPECT_NE(rejected.err.find("unknown SKU"), std::string::npos) << rejected.err;

  auto up2 = Orderflow(
      Cat({"up", "--http", "off", "--data-dir", live, "--exit-when-done", "--log-level", "warn", "--projector-only"}, brokers));
  ASSERT_EQ(up2.status, 0) << up2.err;
  auto cancel = Orderflow(Cat({"order", "cancel", id, "--data-dir", live}, brokers));
  ASSERT_EQ(cancel.status, 0) << cancel.err;
  auto up3 = Orderflow(
      Cat({"up", "--http", "off", "--data-dir", live, "--exit-when-done", "--log-level", "warn", "--projector-only"}, brokers));
  ASSERT_EQ(up3.status, 0) << up3.err;

  // Services stopped: history and get read the local store.
  auto history = Orderflow({"history", id, "--data-dir", live, "--json"});
  ASSERT_EQ(history.status, 0) << history.err;
  auto events = nlohmann::json::parse(history.out)["events"];
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["type"], "OrderPlaced");
  EXPECT_EQ(events[1]["type"], "OrderCancelled");
  EXPECT_LT(events[0]["offset"].get<int64_t>(), events[1]["offset"].get<int64_t>());
  auto text = Orderflow({"history", id, "--data-dir", live});
  EXPECT_NE(text.out.find("OrderPlaced"), std::string::npos);
  EXPECT_NE(text.out.find("v2"), std::string::npos);

  auto get = Orderflow({"order", "get", id, "--data-dir", live, "--json"});
  ASSERT_EQ(get.status, 0);
  EXPECT_EQ(nlohmann::json::parse(get.out)["status"], "cancelled");
  auto list = Orderflow({"order", "list", "--status", "cancelled", "--data-dir", live, "--json"});
  ASSERT_EQ(list.status, 0) << list.err;
  auto listed = nlohmann::json::parse(list.out);
  ASSERT_EQ(listed["orders"].size(), 1u) << list.out;
  EXPECT_EQ(listed["orders"][0]["order_id"], id);
  EXPECT_EQ(listed["orders"][0]["status"], "cancelled");
  EXPECT_TRUE(listed["next"].is_null());
  // Without a filter: every order, a page at a time, each once.
  std::set<std::string> seen;
  std::string after;
  for (int page = 0; page < 10; ++page) {
    std::vector<std::string> args = {"order", "list", "--limit", "200", "--data-dir", live, "--json"};
    if (!after.empty()) args.insert(args.end(), {"--after", after});
    auto r = Orderflow(args);
    ASSERT_EQ(r.status, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    for (const auto& o : j["orders"]) EXPECT_TRUE(seen.insert(o["order_id"].get<std::string>()).second);
    if (j["next"].is_null()) break;
    after = j["next"].get<std::string>();
  }
  EXPECT_EQ(seen.size(), 501u);  // the 500 simulated and the one placed above
  EXPECT_TRUE(seen.count(id));
  auto text_list = Orderflow({"order", "list", "--status", "cancelled", "--data-dir", live});
  EXPECT_NE(text_list.out.find(id), std::string::npos);
  EXPECT_NE(text_list.out.find("cancelled"), std::string::npos);
  auto none = Orderflow({"order", "list", "--customer", "nobody-at-all", "--data-dir", live});
  EXPECT_EQ(none.status, 0);
  EXPECT_EQ(none.out, "");
  EXPECT_NE(none.err.find("no orders of customer nobody-at-all"), std::string::npos) << none.err;

  auto refused = Orderflow(Cat({"order", "cancel", id, "--data-dir", live}, brokers));
  EXPECT_EQ(refused.status, 1);
  EXPECT_NE(refused.err.find("already cancelled"), std::string::npos) << refused.err;

  auto digest = Orderflow({"digest", "--data-dir", live});
  ASSERT_EQ(digest.status, 0);
  auto replay = Orderflow(Cat({"replay", "--data-dir", dir.Sub("replayed"), "--json"}, brokers));
  ASSERT_EQ(replay.status, 0) << replay.err;
  auto replayed = nlohmann::json::parse(replay.out);
  EXPECT_EQ(replayed["events"], 502);
  EXPECT_EQ(replayed["digest"].get<std::string>() + "\n", digest.out);

  auto again = Orderflow(Cat({"replay", "--data-dir", dir.Sub("replayed")}, brokers));
  EXPECT_EQ(again.status, 1);
  EXPECT_NE(again.err.find("not empty"), std::string::npos);
}

}  // namespace
}  // namespace orderflow

namespace orderflow {
namespace {

// `up --exit-when-done` next to another instance of one of its services (same
// consumer group, another process): up's instance holds some of the
// partitions, and up finishes once every order is terminal and what it holds
// is done, instead of waiting for partitions that are not its own.
TEST(CliTest, UpExitsWhenDoneBesideAnotherInstanceOfAService) {
  TempDir dir;
  auto broker = testing::StartBroker(4);
  ASSERT_NE(broker, nullptr);
  const std::vector<std::string> brokers = broker->CliArgs();
  ChildProcess shipping(Cat({OrderflowBinary(), "service", "fulfillment", "--instance", "2", "--data-dir",
                         dir.Sub("fulfillment-2"), "--transit-ms", "0"}, brokers),
                        dir.Sub("shipping.log"));
  auto up = Orderflow(Cat({"up", "--http", "off", "--data-dir", dir.Sub("up"), "--simulate", "300",
                       "--exit-when-done", "--json", "--transit-ms", "0", "--log-level", "warn"}, brokers),
                      120s);
  ASSERT_EQ(up.status, 0) << up.err;
  auto summary = nlohmann::json::parse(up.out);
  EXPECT_EQ(summary["delivered"].get<uint64_t>() + summary["cancelled"].get<uint64_t>(), 300u) << up.out;
  std::ifstream log(dir.Sub("shipping.log"));
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("assigned"), std::string::npos) << "the second fulfillment instance never got partitions";
}

// --services-nice: what processes events (the embedded broker, the services'
// Kafka clients, RocksDB's background threads) runs at the given nice value;
// the main thread and the order service's producer, which the HTTP API's
// POST /orders uses, keep the process's.
TEST(CliTest, UpServicesNiceLowersTheThreadsThatProcessEvents) {
  TempDir dir;
  ChildProcess up({OrderflowBinary(), "up", "--http", "127.0.0.1:0", "--data-dir", dir.Sub("data"), "--simulate",
                   "20", "--transit-ms", "0", "--services-nice", "7"},
                  dir.Sub("up.log"));
  std::string text;
  for (int i = 0; i < 300 && text.find("HTTP API and web page on") == std::string::npos; ++i) {
    SystemClock().SleepFor(100ms);
    std::ifstream log(dir.Sub("up.log"));
    text.assign(std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>());
  }
  ASSERT_NE(text.find("HTTP API and web page on"), std::string::npos) << text;
  std::map<std::string, std::multiset<int>> nice_by_name;  // thread name -> nice values
  int main_nice = -100;
  const std::string task_dir = "/proc/" + std::to_string(up.pid()) + "/task";
  for (const auto& entry : std::filesystem::directory_iterator(task_dir)) {
    std::ifstream stat(entry.path() / "stat");
    std::string line((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;  // the thread just ended
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    for (int i = 0; i < 17 && rest >> field; ++i) {
    }  // the 17th field after the name: nice
    const int nice = std::stoi(field);
    nice_by_name[line.substr(open + 1, close - open - 1)].insert(nice);
    if (entry.path().filename() == std::to_string(up.pid())) main_nice = nice;
  }
  up.Kill(SIGINT);
  EXPECT_EQ(up.Wait(30s), 0);
  EXPECT_EQ(main_nice, 0);
  ASSERT_EQ(nice_by_name["rdk:mock"].size(), 1u);
  EXPECT_EQ(*nice_by_name["rdk:mock"].begin(), 7) << "the embedded broker";
  EXPECT_EQ(nice_by_name["rdk:main"].count(0), 1u) << "the order service's producer alone keeps nice 0";
  EXPECT_GE(nice_by_name["rdk:main"].count(7), 8u) << "the projector's, services' and archiver's clients";
  EXPECT_EQ(nice_by_name["rocksdb:low"].count(0), 0u);
}

// Kafka settings from a properties file (--kafka-config, its bootstrap.servers
// in place of --brokers) and the API token from a file: the process's argv and
// its log never show the password or the token, and the token works.
TEST(CliTest, UpTakesKafkaSettingsAndTokensFromFilesAndShowsNoSecret) {
  TempDir dir;
  auto broker = testing::StartBroker(2);
  ASSERT_NE(broker, nullptr);
  const std::string kPassword = "kafka-password-7f3a91";
  const std::string kToken = "api-token-c0ffee42";
  {
    std::ofstream props(dir.Sub("client.properties"));
    props << "# librdkafka properties\n\nbootstrap.servers = " << broker->bootstraps()
          << "\nsasl.username=orderflow\nsasl.password=" << kPassword << "\n";
    std::ofstream token(dir.Sub("token"));
    token << kToken << "\n";
  }
  std::vector<std::string> args = {OrderflowBinary(), "up", "--kafka-config", dir.Sub("client.properties"),
                                    "--api-token-file", dir.Sub("token"), "--http", "127.0.0.1:0", "--data-dir",
                                    dir.Sub("data"), "--simulate", "20", "--transit-ms", "0", "--log-level", "debug"};
  if (broker->real()) args = Cat(args, {"--topic-prefix", broker->config().topic_prefix});
  ChildProcess up(args, dir.Sub("up.log"));
  std::string text, address;
  for (int i = 0; i < 600 && address.empty(); ++i) {
    SystemClock().SleepFor(100ms);
    std::ifstream log(dir.Sub("up.log"));
    text.assign(std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>());
    const auto at = text.find("HTTP API and web page on http://");
    if (at != std::string::npos) {
      address = text.substr(at + 32, text.find_first_of("/ \n", at + 32) - at - 32);
    }
  }
  ASSERT_FALSE(address.empty()) << text;
  std::ifstream cmdline_file("/proc/" + std::to_string(up.pid()) + "/cmdline");
  const std::string cmdline((std::istreambuf_iterator<char>(cmdline_file)), std::istreambuf_iterator<char>());
  ASSERT_NE(cmdline.find("--kafka-config"), std::string::npos) << "read the wrong process";
  EXPECT_EQ(cmdline.find(kPassword), std::string::npos);
  EXPECT_EQ(cmdline.find(kToken), std::string::npos);

  const auto colon = address.rfind(':');
  httplib::Client client(address.substr(0, colon), std::stoi(address.substr(colon + 1)));
  client.set_read_timeout(10, 0);
  auto refused = client.Get("/orders?limit=1");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  auto listed = client.Get("/orders?limit=1", {{"Authorization", "Bearer " + kToken}});
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->status, 200) << listed->body;

  up.Kill(SIGINT);
  EXPECT_EQ(up.Wait(60s), 0);
  std::ifstream log(dir.Sub("up.log"));
  text.assign(std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find(kPassword), std::string::npos);
  EXPECT_EQ(text.find(kToken), std::string::npos);
}

TEST(CliTest, KafkaConfigAndTokenFileErrorsAreOneLineNamingTheFile) {
  TempDir dir;
  {
    std::ofstream bad(dir.Sub("bad.properties"));
    bad << "bootstrap.servers=127.0.0.1:1\nthis line has no equals sign\n";
    std::ofstream empty(dir.Sub("empty-token"));
  }
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"topics", "--kafka-config", dir.Sub("missing.properties")}, "missing.properties"},
      {{"topics", "--kafka-config", dir.Sub("bad.properties")}, "bad.properties:2"},
      {{"up", "--api-token-file", dir.Sub("empty-token")}, "empty-token"},
      {{"up", "--api-token", "x", "--api-token-file", dir.Sub("empty-token")}, "not both"},
  };
  for (const auto& [args, names] : cases) {
    auto r = Orderflow(args, 20s);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_EQ(Lines(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find(names), std::string::npos) << r.err;
  }
}

// `orderflow up` runs the whole pipeline in one process: every order ends
// delivered or cancelled, the summary adds up, and `orderflow analytics` agrees.
TEST(CliTest, UpRunsTheWholeLifecycleAndAnalyticsAgree) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  const uint64_t orders = testing::Scaled(5000);
  auto up = Orderflow(Cat({"up", "--http", "127.0.0.1:0", "--simulate", std::to_string(orders), "--exit-when-done", "--json", "--transit-ms",
                           "0", "--data-dir", data, "--log-level", "warn"},
                          testing::UpBrokerArgs()),
                      240s);
  ASSERT_EQ(up.status, 0) << up.err;
  auto summary = nlohmann::json::parse(up.out);
  const uint64_t delivered = summary["delivered"], cancelled = summary["cancelled"];
  EXPECT_EQ(delivered + cancelled, orders);
  EXPECT_GT(delivered, 0u);
  EXPECT_GT(cancelled, 0u);  // the gateway declines orders over the limit and a blocked customer
  uint64_t by_status = 0;
  for (const auto& [status, n] : summary["orders_by_status"].items()) by_status += n.get<uint64_t>();
  EXPECT_EQ(by_status, orders) << "orders left in a non-terminal state";

  auto analytics = Orderflow({"analytics", "--json", "--data-dir", data});
  ASSERT_EQ(analytics.status, 0) << analytics.err;
  auto a = nlohmann::json::parse(analytics.out);
  EXPECT_EQ(a["orders_by_status"], summary["orders_by_status"]);
  EXPECT_EQ(a["delivered"].get<uint64_t>(), delivered);
  EXPECT_GT(a["revenue"]["gross_minor"].get<int64_t>(), 0);
  EXPECT_EQ(a["revenue"]["net_minor"].get<int64_t>(),
            a["revenue"]["gross_minor"].get<int64_t>() - a["revenue"]["refunded_minor"].get<int64_t>());
  int64_t hourly = 0;
  for (const auto& h : a["orders_per_hour"]) hourly += h["orders"].get<int64_t>();
  EXPECT_EQ(hourly, static_cast<int64_t>(orders));
  ASSERT_FALSE(a["top_skus_by_units"].empty());
  EXPECT_GE(a["top_skus_by_units"][0]["units"].get<int64_t>(), a["top_skus_by_units"].back()["units"].get<int64_t>());

  // The outbox holds one line per notification id.
  std::ifstream outbox(data + "/services/notification/outbox.log");
  std::set<std::string> ids;
  size_t lines = 0;
  for (std::string line; std::getline(outbox, line); ++lines) ids.insert(line.substr(line.rfind('\t') + 1));
  EXPECT_EQ(ids.size(), lines);
  EXPECT_GE(lines, orders + delivered);  // placed for all; shipped and delivered for delivered ones
}

}  // namespace
}  // namespace orderflow

namespace orderflow {
namespace {

// --exactly-once wraps each service batch in a Kafka transaction; the embedded
// broker accepts them (without atomicity), and the outcome is the same.
TEST(CliTest, ExactlyOnceModeCompletesEveryOrder) {
  TempDir dir;
  auto up = Orderflow(Cat({"up", "--http", "off", "--simulate", "300", "--exit-when-done", "--json", "--transit-ms", "0",
                           "--exactly-once", "--data-dir", dir.Sub("data"), "--log-level", "warn"},
                          testing::UpBrokerArgs()),
                      120s);
  ASSERT_EQ(up.status, 0) << up.err;
  auto summary = nlohmann::json::parse(up.out);
  EXPECT_EQ(summary["delivered"].get<uint64_t>() + summary["cancelled"].get<uint64_t>(), 300u);
  EXPECT_GT(summary["delivered"].get<uint64_t>(), 0u);
}

}  // namespace
}  // namespace orderflow

namespace orderflow {
namespace {

// `orderflow check` after a clean run finds nothing wrong; the same outbox
// given twice (as two instances that both sent every notification) is named.
TEST(CliTest, CheckFindsNothingAfterACleanRunAndNamesRepeatedNotifications) {
  TempDir dir;
  auto broker = testing::StartBroker(3);
  ASSERT_NE(broker, nullptr);
  const std::string data = dir.Sub("up");
  auto up = Orderflow(Cat({"up", "--http", "off", "--data-dir", data, "--simulate", "300", "--transit-ms", "0",
                           "--exit-when-done", "--json", "--log-level", "warn"},
                          broker->CliArgs()));
  ASSERT_EQ(up.status, 0) << up.err;
  const std::string outbox = data + "/services/notification/outbox.log";
  auto check = Orderflow(Cat({"check", "--outbox", outbox, "--json"}, broker->CliArgs()));
  ASSERT_EQ(check.status, 0) << check.out << check.err;
  auto report = nlohmann::json::parse(check.out);
  EXPECT_TRUE(report["ok"].get<bool>());
  EXPECT_EQ(report["orders"], 300);
  EXPECT_TRUE(report["not_terminal"].empty());
  EXPECT_GE(report["outbox_lines"].get<int>(), 300);
  EXPECT_EQ(report["outbox_lines"], report["notifications_sent_in_log"]);

  auto twice = Orderflow(Cat({"check", "--outbox", outbox, "--outbox", outbox}, broker->CliArgs()));
  EXPECT_EQ(twice.status, 1);
  EXPECT_NE(twice.out.find("notification ids written more than once across the outboxes"), std::string::npos)
      << twice.out;
  auto missing = Orderflow(Cat({"check", "--outbox", dir.Sub("nope.log")}, broker->CliArgs()));
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("nope.log cannot be read"), std::string::npos) << missing.err;
}

// Each detector of `orderflow check` fires on a log where its violation was
// written on purpose, and names the order; an order without a violation is
// named by none. Stock of SKU-MUG is 3: two orders of 2 mugs each ship.
TEST(CliTest, CheckNamesTheOrderOfEachViolationWrittenOnPurpose) {
  TempDir dir;
  auto broker = testing::StartBroker(3);
  ASSERT_NE(broker, nullptr);
  const std::string catalog = dir.Sub("catalog.csv");
  std::ofstream(catalog) << "sku,name,price_minor,stock\nSKU-MUG,Stoneware mug,1450,3\n";
  auto producer = eventstore::Producer::Create(broker->config(), "check-test");
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  uint32_t n = 0;
  auto write = [&](const std::string& order, domain::EventPayload payload) {
    domain::Event e = payload.index() == 0 ? testing::PlacedEvent(order) : testing::LifecycleEvent(order, ++n, payload);
    ASSERT_TRUE((*producer)->AppendEvent(eventstore::kOrdersTopic, e).ok());
  };
  const domain::OrderPlaced two_mugs{"alice", {{"SKU-MUG", 2, 1450}}, 2900, "EUR"};
  // A clean cancellation: declined, cancelled, nothing to refund.
  write("order-clean", two_mugs);
  write("order-clean", domain::PaymentDeclined{"insufficient funds", 2900});
  write("order-clean", domain::OrderCancelled{"payment declined", domain::CancelSource::kPayment});
  // Refunded twice.
  write("order-refunded-twice", two_mugs);
  write("order-refunded-twice", domain::PaymentAuthorized{"pay-1", 2900, "card"});
  write("order-refunded-twice", domain::InventoryRejected{"SKU-MUG", 2, 0, "out of stock"});
  write("order-refunded-twice", domain::PaymentRefunded{"pay-1", 2900, "out of stock"});
  write("order-refunded-twice", domain::PaymentRefunded{"pay-1", 2900, "out of stock"});
  write("order-refunded-twice", domain::OrderCancelled{"out of stock", domain::CancelSource::kInventory});
  // Paid, cancelled, never refunded.
  write("order-unrefunded", two_mugs);
  write("order-unrefunded", domain::PaymentAuthorized{"pay-2", 2900, "card"});
  write("order-unrefunded", domain::OrderCancelled{"changed my mind", domain::CancelSource::kCustomer});
  // Two orders of 2 mugs shipped from a stock of 3: the one read second
  // (they may sit on different partitions) is the one shipped past the stock.
  for (const char* order : {"order-ships-a", "order-ships-b"}) {
    write(order, two_mugs);
    write(order, domain::PaymentAuthorized{std::string("pay-") + order, 2900, "card"});
    write(order, domain::InventoryReserved{std::string("res-") + order, {{"SKU-MUG", 2, 1450}}});
    write(order, domain::OrderShipped{"DHL", std::string("track-") + order});
    write(order, domain::OrderDelivered{"front desk"});
  }
  ASSERT_TRUE((*producer)->Flush(30s).ok());
  // The same notification written by two outboxes.
  const std::string line = "alice\torder.shipped\torder-ships-a\tnotif-1\n";
  std::ofstream(dir.Sub("a.log")) << line << "bob\torder.placed\torder-clean\tnotif-2\n";
  std::ofstream(dir.Sub("b.log")) << line;

  auto check = Orderflow(Cat({"check", "--catalog", catalog, "--outbox", dir.Sub("a.log"), "--outbox", dir.Sub("b.log"),
                              "--json"},
                             broker->CliArgs()));
  EXPECT_EQ(check.status, 1) << check.err;
  auto r = nlohmann::json::parse(check.out);
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_EQ(r["orders"], 5);
  EXPECT_TRUE(r["not_terminal"].empty()) << r["not_terminal"];
  EXPECT_EQ(r["refunded_twice"], nlohmann::json::array({"order-refunded-twice"}));
  EXPECT_EQ(r["paid_cancelled_unrefunded"], nlohmann::json::array({"order-unrefunded"}));
  ASSERT_TRUE(r["oversold"].contains("SKU-MUG")) << r["oversold"];
  EXPECT_EQ(r["oversold"]["SKU-MUG"]["shipped"], 4);
  EXPECT_EQ(r["oversold"]["SKU-MUG"]["stock"], 3);
  const auto past = r["oversold"]["SKU-MUG"]["orders"];
  ASSERT_EQ(past.size(), 1u) << past;
  const std::string oversold = past[0];
  EXPECT_TRUE(oversold == "order-ships-a" || oversold == "order-ships-b") << oversold;
  EXPECT_EQ(r["notifications_repeated"], nlohmann::json({{"notif-1", 2}}));
  EXPECT_EQ(r["notifications_repeated_orders"], nlohmann::json({{"notif-1", "order-ships-a"}}));
  // The text form names them too.
  auto text = Orderflow(Cat({"check", "--catalog", catalog, "--outbox", dir.Sub("a.log"), "--outbox", dir.Sub("b.log")},
                            broker->CliArgs()));
  EXPECT_EQ(text.status, 1);
  for (const char* named : {"refunded more than once: order-refunded-twice", "without a refund: order-unrefunded",
                            "notif-1x2 (order order-ships-a)"}) {
    EXPECT_NE(text.out.find(named), std::string::npos) << named << " not in:\n" << text.out;
  }
  EXPECT_NE(text.out.find("shipped past the stock: " + oversold), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("order-clean"), std::string::npos) << text.out;
}

}  // namespace
}  // namespace orderflow

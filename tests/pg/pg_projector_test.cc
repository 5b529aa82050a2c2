// The PostgreSQL read model against a real PostgreSQL (scripts/postgres.sh):
// `orderflow service pg-projector` SIGKILLed during a 5,000-order run, the
// database stopped for 10 s mid-run, bad records, schema versions, and
// `orderflow replay --to-postgres`. The tables and views must equal the
// RocksDB projection and `orderflow analytics` of the same log.
//
// PostgreSQL: $ORDERFLOW_TEST_POSTGRES (scripts/test.sh starts one), else this
// binary starts its own with scripts/postgres.sh. Each test has its own schema.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <random>
#include <thread>

#include "domain/catalog.h"
#include "domain/clock.h"
#include "eventstore/codec.h"
#include "eventstore/dead_letter.h"
#include "eventstore/topics.h"
#include "projections/store.h"
#include "projections/pg/pg_read_model.h"
#include "tests/util/broker.h"
#include "tests/util/events.h"
#include "tests/util/process.h"
#include "tests/util/temp_dir.h"

namespace orderflow {
namespace {

using namespace std::chrono_literals;
using testing::ChildProcess;
using testing::Orderflow;
using testing::OrderflowBinary;
using testing::TempDir;

const std::string kPostgresScript = std::string(ORDERFLOW_SOURCE_DIR) + "/scripts/postgres.sh";

int FreePort() { return testing::FreeLoopbackPort(); }

// A PostgreSQL of its own (scripts/postgres.sh), stopped when destroyed.
class OwnPostgres {
 public:
  OwnPostgres() : port_(FreePort()) {
    // As root, the server runs as an unprivileged user: it must reach DIR.
    std::filesystem::permissions(dir_.path(), std::filesystem::perms::others_exec | std::filesystem::perms::group_exec,
                                 std::filesystem::perm_options::add);
    auto r = testing::RunCommand({"/bin/bash", kPostgresScript, "start", "--dir", dir_.Sub("pg"), "--port",
                                  std::to_string(port_)},
                                 120s);
    if (r.status == 0) url_ = r.out.substr(0, r.out.find('\n'));
    else ADD_FAILURE() << "scripts/postgres.sh start: " << r.err;
  }
  ~OwnPostgres() { Stop(); }
  void Stop() { testing::RunCommand({"/bin/bash", kPostgresScript, "stop", "--dir", dir_.Sub("pg")}, 60s); }
  bool Start() {
    return testing::RunCommand({"/bin/bash", kPostgresScript, "start", "--dir", dir_.Sub("pg"), "--port",
                                std::to_string(port_)},
                               120s)
               .status == 0;
  }
  const std::string& url() const { return url_; }

 private:
  TempDir dir_;
  int port_;
  std::string url_;
};

// The suite's shared PostgreSQL: $ORDERFLOW_TEST_POSTGRES or one of our own.
const std::string& SharedPostgres() {
  static std::unique_ptr<OwnPostgres> own;
  static std::string url = [] {
    if (const char* env = std::getenv("ORDERFLOW_TEST_POSTGRES"); env != nullptr && *env != '\0') return std::string(env);
    own = std::make_unique<OwnPostgres>();
    return own->url();
  }();
  return url;
}

std::string NewSchema() {
  static int n = 0;
  return "t" + std::to_string(getpid()) + "_" + std::to_string(++n) + "_" + std::to_string(std::random_device{}() % 100000);
}

std::vector<std::string> PgArgs(const std::string& url, const std::string& schema) {
  return {"--postgres", url, "--pg-schema", schema};
}

struct OrderRow {
  std::string status;
  int64_t total_minor = 0;
  int64_t events = 0;
  bool operator==(const OrderRow&) const = default;
};

std::map<std::string, OrderRow> PgOrders(const std::string& url, const std::string& schema) {
  pqxx::connection conn{url};
  pqxx::nontransaction tx{conn};
  std::map<std::string, OrderRow> out;
  for (const auto& row : tx.exec("SELECT order_id, status, total_minor, event_count FROM " + schema + ".orders")) {
    out[row[0].as<std::string>()] = {row[1].as<std::string>(), row[2].as<int64_t>(), row[3].as<int64_t>()};
  }
  return out;
}

std::map<std::string, OrderRow> RocksOrders(const projections::ProjectionStore& store) {
  std::map<std::string, OrderRow> out;
  projections::OrderQuery q;
  q.limit = 1000;
  for (;;) {
    auto page = store.ListOrders(q);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    for (const auto& o : page->orders) {
      out[o.order_id] = {std::string(domain::OrderStatusName(o.status)), o.total_minor, o.version};
    }
    if (page->next.empty()) break;
    q.after = page->next;
  }
  return out;
}

// The views equal the RocksDB projection's analytics, and no event is stored twice.
void ExpectViewsEqualAnalytics(const std::string& url, const std::string& s, const projections::ProjectionStore& store) {
  auto a = store.GetAnalytics(100);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  pqxx::connection conn{url};
  pqxx::nontransaction tx{conn};
  auto revenue = tx.exec1("SELECT gross_minor, refunded_minor, net_minor FROM " + s + ".revenue");
  EXPECT_EQ(revenue[0].as<int64_t>(), a->gross_minor);
  EXPECT_EQ(revenue[1].as<int64_t>(), a->refunded_minor);
  EXPECT_EQ(revenue[2].as<int64_t>(), a->net_minor);
  std::map<std::string, uint64_t> by_status;
  for (const auto& row : tx.exec("SELECT status, orders FROM " + s + ".orders_by_status")) {
    by_status[row[0].as<std::string>()] = row[1].as<uint64_t>();
  }
  EXPECT_EQ(by_status, a->orders_by_status);
  std::map<int64_t, int64_t> orders_per_hour, revenue_per_hour;
  for (const auto& row : tx.exec("SELECT hour_start_ms, orders_placed, revenue_minor FROM " + s + ".revenue_per_hour")) {
    if (row[1].as<int64_t>() != 0) orders_per_hour[row[0].as<int64_t>()] = row[1].as<int64_t>();
    revenue_per_hour[row[0].as<int64_t>()] = row[2].as<int64_t>();
  }
  EXPECT_EQ(orders_per_hour, a->orders_per_hour);
  for (const auto& [hour, minor] : a->revenue_per_hour) EXPECT_EQ(revenue_per_hour[hour], minor) << hour;
  std::map<std::string, std::pair<int64_t, int64_t>> skus;
  for (const auto& row : tx.exec("SELECT sku, units, revenue_minor FROM " + s + ".top_skus")) {
    skus[row[0].as<std::string>()] = {row[1].as<int64_t>(), row[2].as<int64_t>()};
  }
  for (const auto& sale : a->top_by_units) {
    EXPECT_EQ(skus[sale.sku], std::make_pair(sale.units, sale.revenue_minor)) << sale.sku;
  }
  auto delivered = tx.exec1("SELECT delivered, average_placed_to_delivered_ms FROM " + s + ".delivery_times");
  EXPECT_EQ(delivered[0].as<int64_t>(), a->delivered);
  EXPECT_NEAR(delivered[1].as<double>(), a->average_placed_to_delivered_ms, 0.01);
  // order_events: one row per applied event, none twice.
  auto counts = tx.exec1("SELECT count(*), count(DISTINCT event_id), (SELECT coalesce(sum(event_count), 0) FROM " + s +
                         ".orders) FROM " + s + ".order_events");
  EXPECT_EQ(counts[0].as<int64_t>(), counts[1].as<int64_t>()) << "an event id stored twice";
  EXPECT_EQ(counts[0].as<int64_t>(), counts[2].as<int64_t>());
}

void ExpectPgEqualsRocks(const std::string& url, const std::string& schema, const std::string& data_dir,
                         size_t orders) {
  auto store = projections::ProjectionStore::Open(data_dir, {.read_only = true});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const auto rocks = RocksOrders(**store);
  const auto pg = PgOrders(url, schema);
  EXPECT_EQ(rocks.size(), orders);
  EXPECT_EQ(pg.size(), rocks.size());
  size_t differing = 0;
  for (const auto& [id, row] : rocks) {
    auto it = pg.find(id);
    if (it == pg.end() || !(it->second == row)) {
      if (++differing <= 5) {
        ADD_FAILURE() << "order " << id << ": rocksdb " << row.status << "/" << row.total_minor << "/" << row.events
                      << ", postgres "
                      << (it == pg.end() ? "missing"
                                         : it->second.status + "/" + std::to_string(it->second.total_minor) + "/" +
                                               std::to_string(it->second.events));
      }
    }
  }
  EXPECT_EQ(differing, 0u);
  ExpectViewsEqualAnalytics(url, schema, **store);
}

std::vector<std::string> UpArgs(const testing::TestBroker& broker, const std::string& data_dir, int orders) {
  return testing::Cat({OrderflowBinary(), "up", "--simulate", std::to_string(orders), "--exit-when-done", "--data-dir",
                       data_dir, "--http", "off", "--transit-ms", "50"},
                      broker.CliArgs());
}

std::vector<std::string> PgProjectorArgs(const testing::TestBroker& broker, const std::string& url,
                                         const std::string& schema) {
  return testing::Cat(testing::Cat({OrderflowBinary(), "service", "pg-projector"}, broker.CliArgs()),
                      PgArgs(url, schema));
}

// Runs the pg-projector until it has applied the whole log; returns its exit status.
int CatchUp(const testing::TestBroker& broker, const std::string& url, const std::string& schema) {
  auto args = testing::Cat(PgProjectorArgs(broker, url, schema), {"--exit-when-caught-up"});
  args.erase(args.begin());
  auto r = Orderflow(args, 120s);
  EXPECT_EQ(r.status, 0) << r.err;
  return r.status;
}

// Every ```sql block of docs/sql.md, as written (but the SET search_path,
// pointed at the test's schema), runs and returns rows.
void ExpectDocQueriesRun(const std::string& url, const std::string& schema) {
  std::ifstream in(std::string(ORDERFLOW_SOURCE_DIR) + "/docs/sql.md");
  ASSERT_TRUE(in.good());
  std::vector<std::string> blocks;
  std::string line, block;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!inside && line == "```sql") {
      inside = true;
      block.clear();
    } else if (inside && line == "```") {
      inside = false;
      blocks.push_back(block);
    } else if (inside) {
      block += line + "\n";
    }
  }
  ASSERT_GE(blocks.size(), 10u);
  pqxx::connection conn{url};
  pqxx::nontransaction tx{conn};
  tx.exec0("SET search_path TO " + schema);
  for (const std::string& sql : blocks) {
    if (sql.starts_with("SET search_path")) continue;
    try {
      auto rows = tx.exec(sql);
      EXPECT_GT(rows.size(), 0u) << "no rows from docs/sql.md:\n" << sql;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "docs/sql.md query failed: " << e.what() << "\n" << sql;
    }
  }
}

TEST(PgProjectorTest, FiveThousandOrdersWithFiveKillsEqualTheRocksDbProjection) {
  const std::string& url = SharedPostgres();
  ASSERT_FALSE(url.empty());
  const std::string schema = NewSchema();
  TempDir dir;
  auto broker = testing::StartBroker(6);
  ASSERT_NE(broker, nullptr);
  ChildProcess up(UpArgs(*broker, dir.Sub("data"), 5000), dir.Sub("up.log"));
  // Five lives of the pg-projector while orders flow, each ended by SIGKILL.
  std::mt19937 rng(7);
  for (int life = 0; life < 5; ++life) {
    ChildProcess projector(PgProjectorArgs(*broker, url, schema), dir.Sub("pg.log"));
    SystemClock().SleepFor(std::chrono::milliseconds(1500 + rng() % 2500));
    projector.Kill(SIGKILL);
    EXPECT_EQ(projector.Wait(10s), 128 + SIGKILL) << "life " << life << testing::LastLines(dir.Sub("pg.log"));
  }
  ASSERT_EQ(up.Wait(300s), 0) << "orderflow up failed; see " << dir.Sub("up.log");
  ASSERT_EQ(CatchUp(*broker, url, schema), 0);
  ExpectPgEqualsRocks(url, schema, dir.Sub("data"), 5000);
  ExpectDocQueriesRun(url, schema);

  // The same log rebuilt with replay --to-postgres gives the same rows.
  const auto live = PgOrders(url, schema);
  auto replayed = Orderflow(testing::Cat(testing::Cat({"replay", "--json"}, broker->CliArgs()),
                                         {"--to-postgres", url, "--pg-schema", schema}),
                            300s);
  ASSERT_EQ(replayed.status, 0) << replayed.err;
  EXPECT_EQ(PgOrders(url, schema), live);
  ExpectPgEqualsRocks(url, schema, dir.Sub("data"), 5000);
  // And the projector resumes from the rebuilt offsets with nothing left to do.
  ASSERT_EQ(CatchUp(*broker, url, schema), 0);
  EXPECT_EQ(PgOrders(url, schema), live);
}

// The read model's stock equals what the inventory service serves at GET
// /stock, SKU for SKU, after orders and a `stock add`; and an event written
// by schema version 1 (the golden fixture of a v1 NotificationSent: template
// "order_delivered") is stored upcast ("order.delivered"), as every reader
// sees it, with its written version kept.
TEST(PgProjectorTest, StockEqualsGetStockAndAV1EventIsStoredUpcast) {
  const std::string& url = SharedPostgres();
  ASSERT_FALSE(url.empty());
  const std::string schema = NewSchema();
  TempDir dir;
  auto broker = testing::StartBroker(3);
  ASSERT_NE(broker, nullptr);
  {
    std::ifstream in(std::string(ORDERFLOW_SOURCE_DIR) + "/tests/fixtures/v1/NotificationSent.bin", std::ios::binary);
    ASSERT_TRUE(in.good());
    const std::string v1((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto producer = eventstore::Producer::Create(broker->config(), "pg-test-v1");
    ASSERT_TRUE(producer.ok());
    ASSERT_TRUE((*producer)->Append(eventstore::kOrdersTopic, "0b6f8e9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", v1, {}).ok());
    ASSERT_TRUE((*producer)->Flush(30s).ok());
  }
  const int port = FreePort();
  ChildProcess up(testing::Cat({OrderflowBinary(), "up", "--simulate", "300", "--data-dir", dir.Sub("data"), "--http",
                                "127.0.0.1:" + std::to_string(port), "--transit-ms", "0", "--log-level", "info"},
                               broker->CliArgs()),
                  dir.Sub("up.log"));
  ASSERT_TRUE(testing::WaitForFileToContain(dir.Sub("up.log"), "placed 300 orders", 120s))
      << testing::LastLines(dir.Sub("up.log"));
  auto added = Orderflow(testing::Cat({"stock", "add", "SKU-MUG", "7"}, broker->CliArgs()));
  ASSERT_EQ(added.status, 0) << added.err;
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(10, 0);
  // Settled: every consumer at the log's end, every service running.
  nlohmann::json stock;
  const auto deadline = SystemClock().Now() + 120s;
  for (bool settled = false; !settled && SystemClock().Now() < deadline;) {
    SystemClock().SleepFor(200ms);
    auto lag = client.Get("/lag");
    if (!lag || lag->status != 200) continue;
    auto l = nlohmann::json::parse(lag->body);
    settled = l["total_lag"] == 0 && !l["services"].empty();
    for (const auto& s : l["services"]) settled = settled && s["running"].get<bool>();
  }
  auto got = client.Get("/stock");
  ASSERT_TRUE(got && got->status == 200);
  std::map<std::string, int64_t> served;
  const auto body = nlohmann::json::parse(got->body);  // kept: a range over a temporary's member dangles
  for (const auto& item : body["stock"]) served[item["sku"]] = item["available"];
  ASSERT_EQ(served.size(), domain::Catalog::Demo().items().size());
  up.Kill(SIGTERM);
  ASSERT_EQ(up.Wait(40s), 0) << testing::LastLines(dir.Sub("up.log"));

  ASSERT_EQ(CatchUp(*broker, url, schema), 0);
  pqxx::connection conn{url};
  pqxx::nontransaction tx{conn};
  std::map<std::string, int64_t> stored;
  for (const auto& row : tx.exec("SELECT sku, available FROM " + schema + ".stock")) {
    stored[row[0].as<std::string>()] = row[1].as<int64_t>();
  }
  EXPECT_EQ(stored, served);
  EXPECT_LT(stored["SKU-MUG"], domain::Catalog::Demo().Find("SKU-MUG")->initial_stock + 7) << "orders took mugs";
  auto v1 = tx.exec1("SELECT payload->>'template_name', schema_version FROM " + schema +
                     ".order_events WHERE order_id = '0b6f8e9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b' AND type = 'NotificationSent'");
  EXPECT_EQ(v1[0].as<std::string>(), "order.delivered");
  EXPECT_EQ(v1[1].as<int>(), 1);
}

// The pg-projector sent SIGTERM at a random moment of its life 20 times
// ($ORDERFLOW_SIGTERM_ROUNDS; 5 under ASan) while orders flow and after:
// while it connects and assigns, mid-batch, idle. Each stop exits 0 (no
// crash, every thread joined); the read model ends equal to the RocksDB
// projection, no event applied twice.
TEST(PgProjectorTest, ExitsZeroOnSigtermAtAnyMomentAndLosesNothing) {
  const char* env = std::getenv("ORDERFLOW_SIGTERM_ROUNDS");
  const int rounds = env != nullptr && std::atoi(env) > 0 ? std::atoi(env) : 20;
  const std::string& url = SharedPostgres();
  ASSERT_FALSE(url.empty());
  const std::string schema = NewSchema();
  TempDir dir;
  auto broker = testing::StartBroker(6);
  ASSERT_NE(broker, nullptr);
  ChildProcess up(UpArgs(*broker, dir.Sub("data"), 2000), dir.Sub("up.log"));
  std::mt19937 rng(99);
  for (int round = 0; round < rounds; ++round) {
    ChildProcess projector(PgProjectorArgs(*broker, url, schema), dir.Sub("pg.log"));
    const int ms = rng() % 4 == 0 ? static_cast<int>(rng() % 100) : 100 + static_cast<int>(rng() % 1900);
    SystemClock().SleepFor(std::chrono::milliseconds(ms));
    projector.Kill(SIGTERM);
    EXPECT_EQ(projector.Wait(40s), 0) << "stop " << round + 1 << " of " << rounds << ", " << ms << " ms after the start"
                                      << testing::LastLines(dir.Sub("pg.log"));
  }
  ASSERT_EQ(up.Wait(300s), 0) << "orderflow up failed; see " << dir.Sub("up.log");
  ASSERT_EQ(CatchUp(*broker, url, schema), 0);
  ExpectPgEqualsRocks(url, schema, dir.Sub("data"), 2000);
}

// The outage overlaps the work by construction: the projector is connected
// and idle when the database stops, and every order is placed after that, so
// each of its events reaches the projector while the database is down.
TEST(PgProjectorTest, WaitsWhileTheDatabaseIsDownForTenSecondsAndLosesNothing) {
  OwnPostgres postgres;  // its own: stopping it must not disturb other tests
  ASSERT_FALSE(postgres.url().empty());
  const std::string schema = "orderflow";
  TempDir dir;
  auto broker = testing::StartBroker(6);
  ASSERT_NE(broker, nullptr);
  ChildProcess projector(PgProjectorArgs(*broker, postgres.url(), schema), dir.Sub("pg.log"));
  ASSERT_TRUE(testing::WaitForFileToContain(dir.Sub("pg.log"), "read model in schema", 120s))
      << "the pg-projector did not start" << testing::LastLines(dir.Sub("pg.log"));
  postgres.Stop();
  ChildProcess up(UpArgs(*broker, dir.Sub("data"), 2000), dir.Sub("up.log"));
  // The fault is met: the projector had records to store and found the database gone.
  ASSERT_TRUE(testing::WaitForFileToContain(dir.Sub("pg.log"), "resuming from the stored offsets", 120s))
      << "the pg-projector never met the outage" << testing::LastLines(dir.Sub("pg.log"));
  SystemClock().SleepFor(10s);  // the outage lasts ten seconds at least, while orders flow
  EXPECT_EQ(projector.Wait(0ms), -1) << "pg-projector exited during the outage"
                                      << testing::LastLines(dir.Sub("pg.log"));
  ASSERT_TRUE(postgres.Start());
  ASSERT_TRUE(testing::WaitForFileToContain(dir.Sub("pg.log"), "pg-projector: resumed", 120s))
      << "no reconnect after the outage" << testing::LastLines(dir.Sub("pg.log"));
  ASSERT_EQ(up.Wait(300s), 0) << "orderflow up failed; see " << dir.Sub("up.log");
  // The projector outlived the outage: still running, it catches up, then stops cleanly.
  EXPECT_EQ(projector.Wait(0ms), -1) << "pg-projector exited after the outage"
                                      << testing::LastLines(dir.Sub("pg.log"));
  std::map<std::string, OrderRow> rocks;
  {
    auto store = projections::ProjectionStore::Open(dir.Sub("data"), {.read_only = true});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    rocks = RocksOrders(**store);
  }
  const auto deadline = SystemClock().Now() + 120s;
  while (PgOrders(postgres.url(), schema) != rocks && SystemClock().Now() < deadline) {
    SystemClock().SleepFor(200ms);
  }
  projector.Kill(SIGTERM);
  EXPECT_EQ(projector.Wait(30s), 0) << testing::LastLines(dir.Sub("pg.log"));
  ExpectPgEqualsRocks(postgres.url(), schema, dir.Sub("data"), 2000);
}

TEST(PgProjectorTest, RecordsThatCannotBeStoredGoToTheDeadLetterTopic) {
  const std::string& url = SharedPostgres();
  ASSERT_FALSE(url.empty());
  const std::string schema = NewSchema();
  auto broker = testing::StartBroker(1);
  ASSERT_NE(broker, nullptr);
  auto producer = eventstore::Producer::Create(broker->config(), "pg-test");
  ASSERT_TRUE(producer.ok());
  domain::Event good = testing::PlacedEvent("order-good", "cust-1");
  // Decodes, but PostgreSQL text cannot hold it (Latin-1, not UTF-8).
  domain::Event bad_utf8 = testing::PlacedEvent("order-latin1", "caf\xe9");
  ASSERT_TRUE((*producer)->AppendEvent(eventstore::kOrdersTopic, good).ok());
  ASSERT_TRUE((*producer)->Append(eventstore::kOrdersTopic, "garbage", "not an event", {}).ok());
  ASSERT_TRUE((*producer)->AppendEvent(eventstore::kOrdersTopic, bad_utf8).ok());
  ASSERT_TRUE((*producer)->Flush(30s).ok());

  ASSERT_EQ(CatchUp(*broker, url, schema), 0);
  auto orders = PgOrders(url, schema);
  EXPECT_EQ(orders.size(), 1u);
  EXPECT_TRUE(orders.count("order-good"));
  pqxx::connection conn{url};
  pqxx::nontransaction tx{conn};
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM " + schema + ".rejected_records")[0].as<int>(), 2);
  auto letters = eventstore::ReadDeadLetters(broker->config(), 10s);
  ASSERT_TRUE(letters.ok()) << letters.status().ToString();
  int parked = 0;
  for (const auto& d : *letters) {
    if (d.service == "pg-projector") ++parked;
  }
  EXPECT_EQ(parked, 2);
  // Offsets moved past all three: a second run applies nothing again.
  ASSERT_EQ(CatchUp(*broker, url, schema), 0);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM " + schema + ".order_events")[0].as<int>(), 1);
}

TEST(PgProjectorTest, ASchemaNewerThanTheCodeIsRefusedAndASecondWriterToo) {
  const std::string& url = SharedPostgres();
  ASSERT_FALSE(url.empty());
  const std::string schema = NewSchema();
  projections::PgOptions options{url, schema};
  {
    auto model = projections::PgReadModel::Open(options, domain::Catalog::Demo());
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    auto second = projections::PgReadModel::Open(options, domain::Catalog::Demo());
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), StatusCode::kInUse) << second.status().ToString();
  }
  {
    pqxx::connection conn{url};
    pqxx::work tx{conn};
    tx.exec0("INSERT INTO " + schema + ".schema_migrations (version, description) VALUES (99, 'from the future')");
    tx.commit();
  }
  auto refused = projections::PgReadModel::Open(options, domain::Catalog::Demo());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("newer than this orderflow"), std::string::npos)
      << refused.status().message();
  auto bad = projections::PgReadModel::Open({url, "Robert'); DROP TABLE"}, domain::Catalog::Demo());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  auto unreachable = projections::PgReadModel::Open({"postgresql://nobody@127.0.0.1:1/none", schema}, domain::Catalog::Demo());
  EXPECT_EQ(unreachable.status().code(), StatusCode::kUnavailable) << unreachable.status().ToString();
}

// Ends the session of the read model that writes `schema` (the one holding
// its advisory lock), as a server restart would; how many sessions it ended.
size_t TerminateWriter(pqxx::connection& admin, const std::string& schema) {
  pqxx::nontransaction tx{admin};
  return tx
      .exec_params("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND "
                   "((classid::bigint << 32) | objid::bigint) = hashtext($1)::bigint",
                   "orderflow-read-model:" + schema)
      .size();
}

// The server ends the read model's session (as a restart or an operator's
// pg_terminate_backend would): every call on it must say kUnavailable, the
// projector's cue to reconnect and resume, never kInternal, its cue to exit.
TEST(PgProjectorTest, ALostSessionIsUnavailableOnEveryCall) {
  const std::string& url = SharedPostgres();
  ASSERT_FALSE(url.empty());
  const std::string schema = NewSchema();
  projections::PgOptions options{url, schema};
  pqxx::connection admin{url};
  auto terminate_writer = [&] {
    ASSERT_EQ(TerminateWriter(admin, schema), 1u) << "no session holds the writer lock of " << schema;
    SystemClock().SleepFor(200ms);  // the backend is gone once it has sent its goodbye
  };
  std::vector<eventstore::Record> records;
  records.push_back(testing::ToRecord(testing::PlacedEvent("order-lost-1", "cust-1"), 0, 0));
  const std::vector<std::string> calls = {"LoadOffsets", "Prepare", "Commit", "AdvanceOffsets"};
  for (const std::string& call : calls) {
    auto model = projections::PgReadModel::Open(options, domain::Catalog::Demo());
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    auto batch = (*model)->Prepare(records);  // prepared on the live session
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    terminate_writer();
    Status s;
    if (call == "LoadOffsets") s = (*model)->LoadOffsets().status();
    if (call == "Prepare") s = (*model)->Prepare(records).status();
    if (call == "Commit") s = (*model)->Commit(*batch);
    if (call == "AdvanceOffsets") s = (*model)->AdvanceOffsets({{{"orders.events", 0}, 7}});
    EXPECT_EQ(s.code(), StatusCode::kUnavailable) << call << ": " << s.ToString();
  }
  // Nothing was half-written: a fresh session commits the batch once.
  auto model = projections::PgReadModel::Open(options, domain::Catalog::Demo());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto batch = (*model)->Prepare(records);
  ASSERT_TRUE(batch.ok());
  ASSERT_TRUE((*model)->Commit(*batch).ok());
  pqxx::nontransaction tx{admin};
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM " + schema + ".order_events")[0].as<int>(), 1);
}

// The same, with the session ended in the middle of a batch's COPY and upserts
// (at a different moment each round): the commit fails as kUnavailable or
// lands whole, never half. A session ended after the server took COMMIT but
// before its answer came back is a commit of unknown outcome: kUnavailable
// that may have landed (whole, with its offsets, so a restart skips it).
TEST(PgProjectorTest, ASessionLostMidCommitIsUnavailable) {
  const std::string& url = SharedPostgres();
  ASSERT_FALSE(url.empty());
  const std::string schema = NewSchema();
  projections::PgOptions options{url, schema};
  auto placed = [](int partition) {
    std::vector<eventstore::Record> records;
    for (int i = 0; i < 4000; ++i) {
      const std::string id = "order-" + std::to_string(partition) + "-" + std::to_string(i);
      records.push_back(testing::ToRecord(testing::PlacedEvent(id, "cust-1"), partition, i));
    }
    return records;
  };
  // First for sure: the batch's offsets wait on a lock this test holds, and
  // the session ends while they wait, after the rows went in, before COMMIT.
  {
    auto model = projections::PgReadModel::Open(options, domain::Catalog::Demo());
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    auto batch = (*model)->Prepare(placed(100));
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    pqxx::connection blocker{url};
    pqxx::work hold{blocker};
    hold.exec0("LOCK TABLE " + schema + ".offsets IN ACCESS EXCLUSIVE MODE");
    bool waited = false;
    std::string killer_error;  // an exception on the thread would end the test binary
    std::thread killer([&] {
      try {
        pqxx::connection admin{url};
        for (int i = 0; i < 600 && !waited; ++i) {
          pqxx::nontransaction q{admin};
          waited = !q.exec("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE " +
                           q.quote("%" + schema + ".offsets%"))
                        .empty();
          if (!waited) SystemClock().SleepFor(std::chrono::milliseconds(100));
        }
        TerminateWriter(admin, schema);
      } catch (const std::exception& e) {
        killer_error = e.what();
      }
    });
    Status s = (*model)->Commit(*batch);
    killer.join();
    hold.abort();
    ASSERT_EQ(killer_error, "");
    ASSERT_TRUE(waited) << "the commit never waited on the offsets' lock";
    EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
    EXPECT_EQ(s.ToString().find("commit outcome unknown"), std::string::npos) << s.ToString();
    pqxx::connection check{url};
    pqxx::nontransaction tx{check};
    EXPECT_EQ(tx.exec1("SELECT count(*) FROM " + schema + ".order_events WHERE partition = 100")[0].as<int>(), 0);
    EXPECT_EQ(tx.exec1("SELECT count(*) FROM " + schema + ".offsets WHERE partition = 100")[0].as<int>(), 0);
  }
  int unavailable = 0, committed = 0, in_doubt = 0;
  for (int round = 0; round < 12; ++round) {
    auto model = projections::PgReadModel::Open(options, domain::Catalog::Demo());
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    auto batch = (*model)->Prepare(placed(round));
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    std::string killer_error;
    std::thread killer([&] {
      try {
        SystemClock().SleepFor(std::chrono::milliseconds(20 * round));
        pqxx::connection admin{url};
        TerminateWriter(admin, schema);
      } catch (const std::exception& e) {
        killer_error = e.what();
      }
    });
    Status s = (*model)->Commit(*batch);
    killer.join();
    ASSERT_EQ(killer_error, "") << "round " << round;
    const bool outcome_unknown = s.ToString().find("commit outcome unknown") != std::string::npos;
    if (s.ok()) {
      ++committed;
    } else {
      EXPECT_EQ(s.code(), StatusCode::kUnavailable) << "round " << round << ": " << s.ToString();
      ++(outcome_unknown ? in_doubt : unavailable);
    }
    model->reset();
    pqxx::connection check{url};
    pqxx::nontransaction tx{check};
    const std::string where = " WHERE partition = " + std::to_string(round);
    const int rows = tx.exec1("SELECT count(*) FROM " + schema + ".order_events" + where)[0].as<int>();
    const int offsets = tx.exec1("SELECT count(*) FROM " + schema + ".offsets" + where +
                                 " AND topic = 'orders.events' AND next_offset = 4000")[0]
                            .as<int>();
    if (outcome_unknown) {
      EXPECT_TRUE(rows == 0 || rows == 4000) << "round " << round << ": " << rows << " rows";
    } else {
      EXPECT_EQ(rows, s.ok() ? 4000 : 0) << "round " << round << ": " << s.ToString();
    }
    EXPECT_EQ(offsets, rows == 4000 ? 1 : 0) << "round " << round << ": the offsets moved without the rows";
  }
  std::cout << "commits lost to the session's end: " << unavailable << ", of unknown outcome: " << in_doubt
            << ", landed: " << committed << "\n";
}

// A writer started while the session of its killed predecessor still holds
// the schema's lock (PostgreSQL frees it once the backend notices the client
// is gone) waits for it within `lock_wait`, and is refused after.
TEST(PgProjectorTest, AWriterWaitsForALockThatIsBeingReleased) {
  const std::string& url = SharedPostgres();
  ASSERT_FALSE(url.empty());
  const std::string schema = NewSchema();
  auto first = projections::PgReadModel::Open({url, schema}, domain::Catalog::Demo());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const auto started = SystemClock().Now();
  auto held = projections::PgReadModel::Open({url, schema, 300ms}, domain::Catalog::Demo());
  EXPECT_EQ(held.status().code(), StatusCode::kInUse) << held.status().ToString();
  EXPECT_GE(SystemClock().Now() - started, 300ms);
  std::thread release([&] {
    SystemClock().SleepFor(500ms);
    first->reset();  // its session ends, and the lock with it
  });
  auto waited = projections::PgReadModel::Open({url, schema, 10s}, domain::Catalog::Demo());
  release.join();
  EXPECT_TRUE(waited.ok()) << waited.status().ToString();
}

}  // namespace
}  // namespace orderflow

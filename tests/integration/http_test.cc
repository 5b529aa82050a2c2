// The HTTP API of `orderflow up`, against a real embedded broker, a real
// RocksDB projection and a real HTTP client (cpp-httplib) over loopback.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "domain/clock.h"
#include "eventstore/kafka.h"
#include "eventstore/topics.h"
#include "cli/app/up.h"
#include "tests/util/broker.h"
#include "tests/util/raw_connection.h"
#include "tests/util/temp_dir.h"

namespace orderflow {
namespace {

using nlohmann::json;
using testing::TempDir;
using namespace std::chrono_literals;

constexpr char kToken[] = "s3cret-token";
constexpr char kReadToken[] = "read-only-token";
const std::string kTlsFixtures = std::string(ORDERFLOW_SOURCE_DIR) + "/tests/fixtures/tls/";
const std::string kTlsCa = kTlsFixtures + "ca.pem";

// `orderflow up` in this process, on a thread, serving HTTP on a free port.
class RunningUp {
 public:
  explicit RunningUp(services::UpOptions options) {
    options.data_dir = dir_.Sub("data");
    tls_ = options.http && !options.http->tls_cert_file.empty();
    if (!testing::RealKafka().empty()) {
      broker_ = testing::StartBroker(options.partitions > 0 ? options.partitions : eventstore::kDefaultPartitions);
      if (broker_) options.kafka = broker_->config();
    }
    kafka_ = options.kafka;
    std::promise<services::UpEndpoints> ready;
    auto ready_future = ready.get_future();
    thread_ = std::thread([this, options, &ready] {
      bool signalled = false;
      auto summary = services::RunUp(options, domain::Catalog::Demo(), stop_.get_token(), [&](const services::UpEndpoints& e) {
        signalled = true;
        ready.set_value(e);
      });
      if (!summary.ok()) {
        error_ = summary.status().ToString();
        if (!signalled) ready.set_value({});
      }
    });
    endpoints_ = ready_future.get();
  }
  ~RunningUp() {
    reader_.reset();  // before the embedded broker goes
    stop_.request_stop();
    thread_.join();
  }

  const services::UpEndpoints& endpoints() const { return endpoints_; }
  bool tls() const { return tls_; }
  const std::string& error() const { return error_; }

  // A client that sends `token` (when not empty) with every request; over
  // HTTPS when the API serves it, trusting tests/fixtures/tls/ca.pem.
  httplib::Client Client(const std::string& token = kToken) const {
    httplib::Client client((tls_ ? "https://" : "http://") + endpoints_.http);
    if (tls_) {
      client.set_ca_cert_path(kTlsCa.c_str());
      client.enable_server_certificate_verification(true);
    }
    client.set_read_timeout(30, 0);
    if (!token.empty()) client.set_default_headers({{"Authorization", "Bearer " + token}});
    return client;
  }

  // A producer to the same log (for records the API would never write).
  std::unique_ptr<eventstore::Producer> MakeProducer() const {
    eventstore::KafkaConfig kafka = kafka_;
    kafka.brokers = endpoints_.brokers;
    auto producer = eventstore::Producer::Create(kafka, "http-test-poison");
    EXPECT_TRUE(producer.ok()) << producer.status().ToString();
    return producer.ok() ? std::move(producer).value() : nullptr;
  }

  // Sum of the high watermarks of orders.events: grows with every append.
  int64_t LogEnd() {
    if (!reader_) {
      eventstore::KafkaConfig kafka = kafka_;
      kafka.brokers = endpoints_.brokers;
      auto reader = eventstore::Reader::Create(kafka, "http-test-watermarks");
      EXPECT_TRUE(reader.ok());
      reader_ = std::move(reader).value();
    }
    auto partitions = reader_->PartitionCount(eventstore::kOrdersTopic, 10s);
    EXPECT_TRUE(partitions.ok());
    int64_t sum = 0;
    for (int32_t p = 0; p < *partitions; ++p) {
      auto w = reader_->QueryWatermarks({eventstore::kOrdersTopic, p}, 10s);
      EXPECT_TRUE(w.ok()) << w.status().ToString();
      sum += w->high;
    }
    return sum;
  }

 private:
  std::unique_ptr<testing::TestBroker> broker_;  // real Kafka only; outlives the thread
  eventstore::KafkaConfig kafka_;
  TempDir dir_;
  std::stop_source stop_;
  std::thread thread_;
  services::UpEndpoints endpoints_;
  std::string error_;
  bool tls_ = false;
  std::unique_ptr<eventstore::Reader> reader_;
};

services::UpOptions Options(bool lifecycle) {
  services::UpOptions o;
  o.partitions = 3;
  o.lifecycle = lifecycle;
  o.transit_delay = 100ms;
  services::HttpOptions http;
  http.listen = "127.0.0.1:0";
  http.max_wait = 1500ms;
  if (!lifecycle) {
    http.api_token = kToken;
    http.api_read_token = kReadToken;
  }
  o.http = http;
  return o;
}

struct Reply {
  int status = 0;
  json body;
  std::string text;
  httplib::Headers headers;
};

Reply Send(httplib::Client& client, const std::string& method, const std::string& path, const std::string& body = "",
           httplib::Headers headers = {}, const std::string& content_type = "application/json") {
  httplib::Request req;
  req.method = method;
  req.path = path;
  req.headers = std::move(headers);
  if (!body.empty()) {
    req.body = body;
    if (!content_type.empty()) req.set_header("Content-Type", content_type);
  }
  auto res = client.send(req);
  Reply r;
  if (!res) {
    ADD_FAILURE() << method << " " << path << ": " << httplib::to_string(res.error());
    return r;
  }
  r.status = res->status;
  r.text = res->body;
  r.headers = res->headers;
  r.body = json::parse(res->body, nullptr, false);
  return r;
}

httplib::Headers Auth() { return {{"Authorization", std::string("Bearer ") + kToken}}; }

json OrderBody(const std::string& customer, const std::string& sku = "SKU-KETTLE", int quantity = 2) {
  return {{"customer_id", customer}, {"lines", {{{"sku", sku}, {"quantity", quantity}}}}};
}

// Places an order and returns the 202 body.
json Place(httplib::Client& client, const std::string& customer, httplib::Headers headers = {}) {
  Reply r = Send(client, "POST", "/orders", OrderBody(customer).dump(), std::move(headers));
  EXPECT_EQ(r.status, 202) << r.text;
  return r.body;
}

// Polls `path` until `done(body)` or `limit`; returns the last body.
template <typename Done>
json WaitFor(httplib::Client& client, const std::string& path, Done done, std::chrono::seconds limit = 60s) {
  const auto deadline = SystemClock().Now() + limit;
  json body;
  while (SystemClock().Now() < deadline) {
    Reply r = Send(client, "GET", path);
    body = r.body;
    if (r.status == 200 && done(body)) return body;
    SystemClock().SleepFor(100ms);
  }
  ADD_FAILURE() << "GET " << path << " never got there; last: " << body.dump();
  return body;
}

// ---------------------------------------------------------------------------
// The full lifecycle behind the API: SSE follows an order to delivered.

// One `orderflow up` per test suite: with the lifecycle (no tokens) or the
// projector only (tokens on), over HTTP or HTTPS (tests/fixtures/tls).
template <bool kLifecycle, bool kTls>
class UpSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    services::UpOptions options = Options(kLifecycle);
    if (kTls) {
      options.http->tls_cert_file = kTlsFixtures + "server.pem";
      options.http->tls_key_file = kTlsFixtures + "server.key";
    }
    up_ = new RunningUp(options);
  }
  static void TearDownTestSuite() {
    delete up_;
    up_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(up_->error().empty()) << up_->error(); }
  static inline RunningUp* up_ = nullptr;
};

using HttpLifecycleTest = UpSuite<true, false>;

TEST_F(HttpLifecycleTest, HealthReadyCatalogAndAnalyticsAnswer) {
  auto client = up_->Client();
  Reply health = Send(client, "GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body["status"], "ok");
  Reply ready;
  for (int i = 0; i < 100; ++i) {
    ready = Send(client, "GET", "/readyz");
    if (ready.status == 200) break;
    SystemClock().SleepFor(100ms);
  }
  EXPECT_EQ(ready.status, 200) << ready.text;
  EXPECT_EQ(ready.body["ready"], true);
  Reply catalog = Send(client, "GET", "/catalog");
  ASSERT_EQ(catalog.status, 200);
  EXPECT_EQ(catalog.body["currency"], "EUR");
  ASSERT_GE(catalog.body["items"].size(), 8u);
  EXPECT_EQ(catalog.body["items"][0]["sku"], "SKU-ESPRESSO");
  Reply analytics = Send(client, "GET", "/analytics?top=3");
  ASSERT_EQ(analytics.status, 200) << analytics.text;
  EXPECT_TRUE(analytics.body["revenue"].contains("net_minor"));
  EXPECT_TRUE(analytics.body["orders_per_hour"].is_array());
}

TEST_F(HttpLifecycleTest, EventStreamSendsEachLifecycleEventOnceUntilDelivered) {
  auto client = up_->Client();
  json placed = Place(client, "cust-sse");
  const std::string id = placed["order_id"];
  std::string buffer;
  std::vector<std::pair<int, std::string>> events;  // (id, event type)
  auto res = client.Get("/orders/" + id + "/events?min_position=" + placed["position"].get<std::string>(),
                        [&](const char* data, size_t n) {
    buffer.append(data, n);
    size_t end;
    while ((end = buffer.find("\n\n")) != std::string::npos) {
      std::string frame = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      int seq = -1;
      std::string type, payload;
      size_t pos = 0;
      while (pos < frame.size()) {
        size_t nl = frame.find('\n', pos);
        std::string line = frame.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? frame.size() : nl + 1;
        if (line.starts_with("id: ")) seq = std::stoi(line.substr(4));
        if (line.starts_with("event: ")) type = line.substr(7);
        if (line.starts_with("data: ")) payload = line.substr(6);
      }
      if (seq < 0) continue;  // retry / keep-alive
      EXPECT_EQ(json::parse(payload)["type"], type);
      events.emplace_back(seq, type);
      if (type == "OrderDelivered") return false;  // done: close the stream
    }
    return true;
  });
  ASSERT_FALSE(events.empty()) << httplib::to_string(res.error());
  EXPECT_EQ(events.front().second, "OrderPlaced");
  EXPECT_EQ(events.back().second, "OrderDelivered");
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].first, static_cast<int>(i) + 1);  // once each, in order
  std::set<std::string> types;
  for (const auto& [seq, type] : events) types.insert(type);
  for (const char* t : {"PaymentAuthorized", "InventoryReserved", "OrderShipped"}) EXPECT_TRUE(types.count(t)) << t;

  // A reconnecting client resumes after the last id it saw.
  std::vector<int> resumed;
  client.Get("/orders/" + id + "/events", {{"Last-Event-ID", "3"}}, [&](const char* data, size_t n) {
    std::string text(data, n);
    for (size_t p = text.find("id: "); p != std::string::npos; p = text.find("id: ", p + 1)) {
      resumed.push_back(std::stoi(text.substr(p + 4)));
    }
    return resumed.empty();  // stop after the first frame
  });
  ASSERT_FALSE(resumed.empty());
  EXPECT_EQ(resumed.front(), 4);

  // History agrees with the stream.
  Reply history = Send(client, "GET", "/orders/" + id + "/history");
  ASSERT_EQ(history.status, 200);
  ASSERT_GE(history.body["events"].size(), events.size());
  EXPECT_EQ(history.body["events"][0]["type"], "OrderPlaced");
  Reply order = Send(client, "GET", "/orders/" + id);
  EXPECT_EQ(order.body["status"], "delivered");
}

TEST_F(HttpLifecycleTest, MetricsCountEventsLagDeadLettersAndRequests) {
  auto client = up_->Client();
  json placed = Place(client, "cust-metrics");
  Send(client, "GET", "/orders/" + placed["order_id"].get<std::string>() + "?min_position=" +
                          placed["position"].get<std::string>());
  // Requests are counted once their response is written, which can be just
  // after the client has it (each request here is its own connection): poll.
  const std::vector<std::string> needles = {
      "# TYPE orderflow_events_applied_total counter", "orderflow_events_applied_total{type=\"OrderPlaced\"} ",
      "# TYPE orderflow_consumer_lag gauge",
      "orderflow_consumer_lag{consumer=\"projector\",topic=\"orders.events\",partition=\"0\"}",
      "orderflow_dlq_records{service=\"projector\"} 0", "orderflow_dlq_records{service=\"fulfillment\"} 0",
      "orderflow_http_requests_total{code=\"202\",method=\"POST\",route=\"/orders\"} ",
      "orderflow_http_request_duration_seconds_bucket{route=\"/orders/{id}\",le=\"0.001\"}",
      "orderflow_orders{status=", "orderflow_ready 1"};
  Reply metrics;
  for (int attempt = 0; attempt < 50; ++attempt) {
    metrics = Send(client, "GET", "/metrics");
    bool all = true;
    for (const auto& n : needles) all = all && metrics.text.find(n) != std::string::npos;
    if (all) break;
    SystemClock().SleepFor(100ms);
  }
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.headers.find("Content-Type")->second.find("text/plain"), std::string::npos);
  for (const auto& needle : needles) {
    EXPECT_NE(metrics.text.find(needle), std::string::npos) << needle << "\n" << metrics.text;
  }
}

// The operator console's endpoints: stock falls when an order reserves it,
// lag returns to 0 with every service running, and a poison record shows up
// as a dead letter that can be redriven once (a second redrive conflicts).
// Last in this suite: it leaves dead letters behind.
TEST_F(HttpLifecycleTest, OperatorEndpointsShowStockLagDeadLettersAndRedrive) {
  auto client = up_->Client("");
  auto settled = [](const json& lag) {
    if (lag["total_lag"] != 0 || lag["services"].empty()) return false;
    for (const auto& s : lag["services"]) {
      if (!s["running"].get<bool>()) return false;
    }
    return lag["consumers"].size() > 1;
  };
  WaitFor(client, "/lag", settled);
  auto kettle = [](const json& stock) -> int64_t {
    for (const auto& s : stock["stock"]) {
      if (s["sku"] == "SKU-KETTLE") return s["available"].get<int64_t>();
    }
    return -1;
  };
  const int64_t before = kettle(Send(client, "GET", "/stock").body);
  ASSERT_GT(before, 2);
  Place(client, "cust-console");  // two kettles
  WaitFor(client, "/stock", [&](const json& s) { return kettle(s) == before - 2; });
  json lag = WaitFor(client, "/lag", settled);
  bool projector_seen = false, fulfillment_seen = false;
  for (const auto& c : lag["consumers"]) {
    projector_seen = projector_seen || c["consumer"] == "projector";
    fulfillment_seen = fulfillment_seen || c["consumer"] == "fulfillment";
    EXPECT_EQ(c["lag"], 0) << c.dump();
    EXPECT_EQ(c["committed"], c["end"]) << c.dump();
  }
  EXPECT_TRUE(projector_seen && fulfillment_seen) << lag.dump();
  EXPECT_EQ(Send(client, "GET", "/throughput").body["interval_seconds"], 10);

  // A record no service can decode: parked on orders.dlq, listed, redriven once.
  auto producer = up_->MakeProducer();
  ASSERT_TRUE(producer);
  eventstore::Position at;
  ASSERT_TRUE(producer->Append(eventstore::kOrdersTopic, "k-console-poison", "\xde\xad not an envelope", {},
                               [&at](const Status&, eventstore::Position p) { at = p; }).ok());
  ASSERT_TRUE(producer->Flush(10s).ok());
  json letters = WaitFor(client, "/dlq", [&](const json& d) {
    for (const auto& l : d["dead_letters"]) {
      if (l["source"]["offset"] == at.offset && l["source"]["partition"] == at.partition) return true;
    }
    return false;
  });
  int64_t id = -1;
  for (const auto& l : letters["dead_letters"]) {
    if (l["source"]["offset"] == at.offset && l["source"]["partition"] == at.partition) {
      id = l["id"];
      EXPECT_FALSE(l["error"].get<std::string>().empty());
      EXPECT_TRUE(l["redriven_at_ms"].is_null());
    }
  }
  ASSERT_GE(id, 0);
  Reply redriven = Send(client, "POST", "/dlq/" + std::to_string(id) + "/redrive");
  EXPECT_EQ(redriven.status, 202) << redriven.text;
  EXPECT_EQ(redriven.body["redriven"], json::array({id}));
  Reply again = Send(client, "POST", "/dlq/" + std::to_string(id) + "/redrive");
  EXPECT_EQ(again.status, 409) << again.text;
  EXPECT_EQ(Send(client, "POST", "/dlq/nine/redrive").status, 400);
  EXPECT_EQ(Send(client, "POST", "/dlq/999999/redrive").status, 404);
}

// ---------------------------------------------------------------------------
// Projector only (orders stay placed), with an API token on writes.

using HttpApiTest = UpSuite<false, false>;

TEST_F(HttpApiTest, ReadYourWritesEveryPlacedOrderIsVisibleAtItsPosition) {
  auto client = up_->Client();
  for (int i = 0; i < 40; ++i) {
    json placed = Place(client, "cust-ryw", Auth());
    const std::string id = placed["order_id"];
    ASSERT_EQ(placed["position"], std::to_string(placed["partition"].get<int>()) + ":" +
                                      std::to_string(placed["offset"].get<int64_t>()));
    Reply order = Send(client, "GET", placed["status_url"]);
    ASSERT_EQ(order.status, 200) << "order " << i << ": " << order.text;
    EXPECT_EQ(order.body["order_id"], id);
    EXPECT_EQ(order.body["status"], "placed");
    EXPECT_EQ(order.body["total_minor"], 11980);
    Reply history = Send(client, "GET", "/orders/" + id + "/history?min_position=" + placed["position"].get<std::string>());
    ASSERT_EQ(history.status, 200);
    EXPECT_EQ(history.body["events"].size(), 1u);
  }
  // A position the log has not reached: a bounded wait, then 503 saying so.
  const auto start = SystemClock().Now();
  Reply waited = Send(client, "GET", "/orders/anything?min_position=0:999999999");
  EXPECT_EQ(waited.status, 503);
  EXPECT_NE(waited.body["error"].get<std::string>().find("has not reached position 0:999999999"), std::string::npos);
  EXPECT_GE(SystemClock().Now() - start, 1400ms);
}

// A request that waits for a position hurries the projector: with an
// hour between its busy steps, each order placed after the first busy step
// is read back at its position only because the request woke the projector.
TEST(HttpHurryTest, AMinPositionRequestDoesNotWaitForTheProjectorsInterval) {
  services::UpOptions options = Options(false);
  options.projector_interval = 1h;
  RunningUp up(options);
  ASSERT_TRUE(up.error().empty()) << up.error();
  auto client = up.Client();
  for (int i = 0; i < 3; ++i) {
    json placed = Place(client, "cust-hurry", Auth());
    Reply order = Send(client, "GET", placed["status_url"]);
    ASSERT_EQ(order.status, 200) << "order " << i << ": " << order.text;
    EXPECT_EQ(order.body["order_id"], placed["order_id"]);
  }
}

// The front door holds: with 2,000 silent connections and 200 event streams
// open, an order is placed and read back at its position promptly (on
// cpp-httplib's thread per connection, 70 idle connections stopped the API).
TEST_F(HttpApiTest, ManyIdleConnectionsAndEventStreamsDoNotStopOrders) {
  auto client = up_->Client();
  json first = Place(client, "cust-crowd", Auth());
  const std::string first_id = first["order_id"];
  ASSERT_EQ(Send(client, "GET", first["status_url"]).status, 200);
  std::vector<testing::Connection> idle;
  for (int i = 0; i < 2000; ++i) {
    idle.emplace_back(up_->endpoints().http);
    ASSERT_TRUE(idle.back().ok()) << "connection " << i;
  }
  std::vector<testing::Connection> streams;
  for (int i = 0; i < 200; ++i) {
    streams.emplace_back(up_->endpoints().http);
    ASSERT_TRUE(streams.back().Send("GET /orders/" + first_id + "/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                                    std::string(kToken) + "\r\n\r\n"));
  }
  for (auto& s : streams) {
    const std::string head = s.Read(10s, "event: OrderPlaced");
    ASSERT_NE(head.find("event: OrderPlaced"), std::string::npos) << head;
  }
  const auto start = SystemClock().Now();
  json placed = Place(client, "cust-crowd", Auth());
  Reply order = Send(client, "GET", placed["status_url"]);
  EXPECT_EQ(order.status, 200) << order.text;
  EXPECT_EQ(order.body["order_id"], placed["order_id"]);
  EXPECT_LT(SystemClock().Now() - start, 5s);
  EXPECT_EQ(Send(client, "GET", "/healthz").status, 200);
}

// With a token configured, every endpoint that shows orders, customers or
// analytics needs a credential; writes need the write token; only health and
// readiness stay open. Each endpoint with no token, a wrong one, the
// read-only one and the right one.
// With --metrics-public, /metrics (and only it, beside health and the
// login) answers without a token; everything else still needs one.
TEST(HttpMetricsPublicTest, MetricsOpenEverythingElseStillNeedsTheToken) {
  services::UpOptions options = Options(false);
  options.http->metrics_public = true;
  RunningUp up(options);
  ASSERT_TRUE(up.error().empty()) << up.error();
  auto nobody = up.Client("");
  Reply metrics = Send(nobody, "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200) << metrics.text;
  EXPECT_NE(metrics.text.find("# TYPE orderflow_"), std::string::npos) << metrics.text;
  for (const char* path : {"/orders", "/stock", "/lag", "/throughput", "/dlq", "/analytics", "/catalog"}) {
    EXPECT_EQ(Send(nobody, "GET", path).status, 401) << path;
  }
  EXPECT_EQ(Send(nobody, "POST", "/orders", OrderBody("c").dump()).status, 401);
}

// Opens an event stream and reads it until `until` appears (or it ends, or
// 10 s pass); returns its status and what came.
Reply ReadStream(httplib::Client& client, const std::string& path, httplib::Headers headers,
                 const std::string& until) {
  Reply r;
  client.set_read_timeout(10, 0);
  auto res = client.Get(
      path, headers,
      [&](const httplib::Response& response) {
        r.status = response.status;
        return true;
      },
      [&](const char* data, size_t n) {
        r.text.append(data, n);
        return r.text.find(until) == std::string::npos;
      });
  if (r.status == 0 && res) r.status = res->status;
  return r;
}

// Every endpoint against no token, a wrong one, the read token and the write
// token; the session cookie for the event stream; what refusals append (nothing).
void ExpectTokenTable(RunningUp* up_) {
  auto writer = up_->Client(kToken);
  json placed = Place(writer, "cust-token");
  const std::string id = placed["order_id"];
  ASSERT_EQ(Send(writer, "GET", placed["status_url"]).status, 200);
  struct Endpoint {
    std::string method, path, body;
    int open_status;  // what the right token gets
    bool write;
  };
  const std::vector<Endpoint> endpoints = {
      {"GET", "/orders", "", 200, false},
      {"GET", "/orders/" + id, "", 200, false},
      {"GET", "/orders/" + id + "/history", "", 200, false},
      {"GET", "/analytics", "", 200, false},
      {"GET", "/catalog", "", 200, false},
      {"GET", "/metrics", "", 200, false},
      {"GET", "/stock", "", 503, false},  // past the token: this fixture runs no inventory service
      {"GET", "/lag", "", 200, false},
      {"GET", "/throughput", "", 200, false},
      {"GET", "/dlq", "", 200, false},
      {"POST", "/orders", OrderBody("cust-token").dump(), 202, true},
      {"POST", "/orders/" + id + "/cancel", "", 202, true},
      {"POST", "/dlq/999999/redrive", "", 404, true},
  };
  auto nobody = up_->Client("");
  auto wrong = up_->Client("not-the-token");
  auto reader = up_->Client(kReadToken);
  for (const auto& e : endpoints) {
    const std::string what = e.method + " " + e.path;
    const int64_t end_before = up_->LogEnd();
    Reply none = Send(nobody, e.method, e.path, e.body);
    EXPECT_EQ(none.status, 401) << what << ": " << none.text;
    Reply bad = Send(wrong, e.method, e.path, e.body);
    EXPECT_EQ(bad.status, 401) << what << ": " << bad.text;
    EXPECT_NE(bad.text.find("not valid"), std::string::npos) << what;
    Reply read = Send(reader, e.method, e.path, e.body);
    EXPECT_EQ(read.status, e.write ? 403 : e.open_status) << what << ": " << read.text;
    EXPECT_EQ(up_->LogEnd(), end_before) << what << " appended without the write token";
    Reply right = Send(writer, e.method, e.path, e.body);
    EXPECT_EQ(right.status, e.open_status) << what << ": " << right.text;
  }
  // The event stream: refused without a credential, before any event is sent.
  for (const httplib::Headers& auth : {httplib::Headers{}, httplib::Headers{{"Authorization", "Bearer nope"}}}) {
    auto client = up_->Client("");
    const Reply reply = ReadStream(client, "/orders/" + id + "/events", auth, "}");
    EXPECT_EQ(reply.status, 401) << reply.text;
    EXPECT_EQ(reply.text.find("event:"), std::string::npos) << reply.text;
  }
  // Health and readiness stay open.
  EXPECT_EQ(Send(nobody, "GET", "/healthz").status, 200);
  EXPECT_EQ(Send(nobody, "GET", "/readyz").status, 200);
  // The page's login: a token buys a session cookie that works where no
  // header can be sent (EventSource); a wrong token buys nothing.
  EXPECT_EQ(Send(nobody, "POST", "/session", R"({"token":"nope"})").status, 401);
  Reply login = Send(nobody, "POST", "/session", json{{"token", kReadToken}}.dump());
  ASSERT_EQ(login.status, 200) << login.text;
  EXPECT_EQ(login.body["access"], "read");
  std::string cookie, set_cookie;
  for (const auto& [name, value] : login.headers) {
    if (name == "Set-Cookie") set_cookie = value;
  }
  cookie = set_cookie.substr(0, set_cookie.find(';'));
  ASSERT_TRUE(cookie.starts_with("orderflow_session=")) << cookie;
  // Over HTTPS the browser must never send it over plain HTTP.
  EXPECT_EQ(set_cookie.find("; Secure") != std::string::npos, up_->tls()) << set_cookie;
  EXPECT_EQ(Send(nobody, "GET", "/orders/" + id, "", {{"Cookie", cookie}}).status, 200);
  EXPECT_EQ(Send(nobody, "POST", "/orders", OrderBody("c").dump(), {{"Cookie", cookie}}).status, 403);
  auto streamer = up_->Client("");
  const Reply stream = ReadStream(streamer, "/orders/" + id + "/events", {{"Cookie", cookie}}, "event: OrderPlaced");
  EXPECT_EQ(stream.status, 200) << stream.text;
  EXPECT_NE(stream.text.find("event: OrderPlaced"), std::string::npos) << stream.text;
  EXPECT_EQ(Send(nobody, "DELETE", "/session", "", {{"Cookie", cookie}}).status, 200);
  EXPECT_EQ(Send(nobody, "GET", "/orders/" + id, "", {{"Cookie", cookie}}).status, 401);
}

TEST_F(HttpApiTest, EveryEndpointButHealthNeedsTheRightToken) { ExpectTokenTable(up_); }

// ---------------------------------------------------------------------------
// The same API over HTTPS (tests/fixtures/tls), tokens and all.

using HttpsApiTest = UpSuite<false, true>;

TEST_F(HttpsApiTest, EveryEndpointButHealthNeedsTheRightTokenOverTls) { ExpectTokenTable(up_); }

TEST_F(HttpsApiTest, PlainHttpToTheApiIsAnsweredWithUseHttpsAndNothingElse) {
  testing::Connection plain(up_->endpoints().http);
  ASSERT_TRUE(plain.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string reply = plain.Read(10s, "}");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 400")) << reply;
  EXPECT_NE(reply.find("this port speaks HTTPS: use https://"), std::string::npos) << reply;
}

TEST_F(HttpApiTest, IdempotencyKeyMakesARetryTheSameOrder) {
  auto client = up_->Client();
  httplib::Headers headers = Auth();
  headers.emplace("Idempotency-Key", "retry-me-1");
  json first = Place(client, "cust-idem", headers);
  json second = Place(client, "cust-idem", headers);
  EXPECT_EQ(first["order_id"], second["order_id"]);
  Reply history = Send(client, "GET", "/orders/" + second["order_id"].get<std::string>() +
                                          "/history?min_position=" + second["position"].get<std::string>());
  ASSERT_EQ(history.status, 200);
  EXPECT_EQ(history.body["events"].size(), 1u);  // the second append was deduplicated
}

TEST_F(HttpApiTest, CancelAppendsOnceThenConflicts) {
  auto client = up_->Client();
  json placed = Place(client, "cust-cancel", Auth());
  const std::string id = placed["order_id"];
  Reply cancel = Send(client, "POST", "/orders/" + id + "/cancel?min_position=" + placed["position"].get<std::string>(),
                      R"({"reason":"changed my mind"})", Auth());
  ASSERT_EQ(cancel.status, 202) << cancel.text;
  Reply order = Send(client, "GET", cancel.body["status_url"]);
  ASSERT_EQ(order.status, 200);
  EXPECT_EQ(order.body["status"], "cancelled");
  EXPECT_EQ(order.body["cancel_reason"], "changed my mind");
  const int64_t end = up_->LogEnd();
  Reply again = Send(client, "POST", "/orders/" + id + "/cancel", "", Auth());
  EXPECT_EQ(again.status, 409) << again.text;
  EXPECT_EQ(up_->LogEnd(), end);
}

// GET /orders/{id} keeps each order's JSON (services/api/http_api.cc,
// OrderBodyCache). A repeated read is served from it, a write elsewhere in the
// store leaves it valid once the order's stored bytes are compared, and a
// changed order is never served from it: read at the cancel's position, and
// read again without one, the order is cancelled.
int64_t OrderCacheCount(httplib::Client& client, const std::string& result) {
  const std::string needle = "orderflow_http_order_cache_total{result=\"" + result + "\"} ";
  const std::string text = Send(client, "GET", "/metrics").text;
  const size_t at = text.find(needle);
  EXPECT_NE(at, std::string::npos) << needle << "\n" << text;
  return at == std::string::npos ? -1 : std::stoll(text.substr(at + needle.size()));
}

TEST_F(HttpApiTest, AChangedOrderIsNeverServedFromTheOrderCache) {
  auto client = up_->Client();
  json placed = Place(client, "cust-cache", Auth());
  const std::string id = placed["order_id"];
  Reply first = Send(client, "GET", placed["status_url"]);
  ASSERT_EQ(first.status, 200) << first.text;
  EXPECT_EQ(first.body["status"], "placed");
  const int64_t rendered = OrderCacheCount(client, "rendered");
  const int64_t fresh = OrderCacheCount(client, "fresh");
  const int64_t revalidated = OrderCacheCount(client, "revalidated");
  Reply again = Send(client, "GET", "/orders/" + id);
  EXPECT_EQ(again.text, first.text);
  EXPECT_EQ(OrderCacheCount(client, "rendered"), rendered);  // served from the cache
  EXPECT_EQ(OrderCacheCount(client, "fresh") + OrderCacheCount(client, "revalidated"), fresh + revalidated + 1);

  // Another order changes the store: this one's entry is checked against its
  // stored bytes, found equal, and served.
  json other = Place(client, "cust-cache", Auth());
  ASSERT_EQ(Send(client, "GET", other["status_url"]).status, 200);
  const int64_t revalidated_before = OrderCacheCount(client, "revalidated");
  const int64_t rendered_before = OrderCacheCount(client, "rendered");
  Reply unchanged = Send(client, "GET", "/orders/" + id);
  EXPECT_EQ(unchanged.text, first.text);
  EXPECT_EQ(OrderCacheCount(client, "revalidated"), revalidated_before + 1);
  EXPECT_EQ(OrderCacheCount(client, "rendered"), rendered_before);

  // This order changes: rendered anew, at the write's position and after it.
  Reply cancel = Send(client, "POST", "/orders/" + id + "/cancel", R"({"reason":"cache test"})", Auth());
  ASSERT_EQ(cancel.status, 202) << cancel.text;
  Reply cancelled = Send(client, "GET", cancel.body["status_url"]);
  ASSERT_EQ(cancelled.status, 200) << cancelled.text;
  EXPECT_EQ(cancelled.body["status"], "cancelled");
  EXPECT_EQ(cancelled.body["cancel_reason"], "cache test");
  EXPECT_EQ(cancelled.body["version"], first.body["version"].get<int>() + 1);
  EXPECT_EQ(OrderCacheCount(client, "rendered"), rendered_before + 1);
  for (int i = 0; i < 3; ++i) {
    Reply later = Send(client, "GET", "/orders/" + id);
    EXPECT_EQ(later.text, cancelled.text);
  }
}

TEST_F(HttpApiTest, ListPagesByCustomerAndStatus) {
  auto client = up_->Client();
  std::set<std::string> placed;
  std::vector<std::string> status_urls;
  json last;
  for (int i = 0; i < 5; ++i) {
    last = Place(client, "cust-pages", Auth());
    placed.insert(last["order_id"].get<std::string>());
    status_urls.push_back(last["status_url"].get<std::string>());
  }
  // Each is projected (its status_url carries ?min_position: the server waits for it).
  for (const auto& url : status_urls) ASSERT_EQ(Send(client, "GET", url).status, 200) << url;
  std::set<std::string> seen;
  std::string after;
  int pages = 0;
  while (true) {
    Reply page = Send(client, "GET", "/orders?customer=cust-pages&limit=2" + (after.empty() ? "" : "&after=" + after));
    ASSERT_EQ(page.status, 200) << page.text;
    ++pages;
    for (const auto& o : page.body["orders"]) {
      EXPECT_EQ(o["customer_id"], "cust-pages");
      EXPECT_TRUE(seen.insert(o["order_id"].get<std::string>()).second) << "order listed twice";
    }
    if (page.body["next"].is_null()) break;
    after = page.body["next"];
    ASSERT_LE(pages, 5);
  }
  EXPECT_EQ(seen, placed);
  EXPECT_EQ(pages, 3);
  Reply by_status = Send(client, "GET", "/orders?status=placed&customer=cust-pages&limit=500");
  ASSERT_EQ(by_status.status, 200);
  EXPECT_EQ(by_status.body["orders"].size(), 5u);
  Reply none = Send(client, "GET", "/orders?status=delivered&customer=cust-pages");
  EXPECT_EQ(none.body["orders"].size(), 0u);
  Reply all = Send(client, "GET", "/orders?status=placed&limit=1");
  EXPECT_EQ(all.body["orders"].size(), 1u);
  EXPECT_FALSE(all.body["next"].is_null());
}

struct BadRequest {
  const char* name;
  std::string method;
  std::string path;
  std::string body;
  int status;
  std::string error;  // a part of the error text
  bool auth = true;
  std::string content_type = "application/json";
  httplib::Headers extra = {};
};

TEST_F(HttpApiTest, BadRequestsGetAClearErrorAndAppendNothing) {
  auto client = up_->Client();
  json placed = Place(client, "cust-bad", Auth());
  const std::string id = placed["order_id"];
  ASSERT_EQ(Send(client, "GET", placed["status_url"]).status, 200);
  const json good = OrderBody("cust-bad");
  auto with = [&](const char* field, json value) {
    json b = good;
    b[field] = std::move(value);
    return b.dump();
  };
  auto line = [&](json l) { return with("lines", json::array({std::move(l)})); };
  json many = json::array();
  for (int i = 0; i < 51; ++i) many.push_back({{"sku", "SKU-MUG"}, {"quantity", 1}});
  const std::vector<BadRequest> cases = {
      {"truncated JSON", "POST", "/orders", "{\"customer_id\": ", 400, "malformed JSON"},
      {"not an object", "POST", "/orders", "[1,2]", 400, "must be a JSON object"},
      {"empty body", "POST", "/orders", "", 400, "request body is empty"},
      {"missing customer", "POST", "/orders", R"({"lines":[{"sku":"SKU-MUG","quantity":1}]})", 400,
       "missing field 'customer_id'"},
      {"customer not a string", "POST", "/orders", with("customer_id", 42), 400, "'customer_id' must be a string"},
      {"customer with control characters", "POST", "/orders", with("customer_id", "a\u0001b"), 400,
       "control characters"},
      {"missing lines", "POST", "/orders", R"({"customer_id":"c"})", 400, "missing field 'lines'"},
      {"lines not an array", "POST", "/orders", with("lines", "SKU-MUG"), 400, "'lines' must be an array"},
      {"no lines", "POST", "/orders", with("lines", json::array()), 400, "at least one line"},
      {"too many lines", "POST", "/orders", with("lines", many), 400, "at most 50 lines"},
      {"line not an object", "POST", "/orders", with("lines", json::array({5})), 400, "lines[0] must be an object"},
      {"missing quantity", "POST", "/orders", line({{"sku", "SKU-MUG"}}), 400, "missing field 'lines[0].quantity'"},
      {"quantity a string", "POST", "/orders", line({{"sku", "SKU-MUG"}, {"quantity", "2"}}), 400,
       "'lines[0].quantity' must be a number"},
      {"quantity a fraction", "POST", "/orders", line({{"sku", "SKU-MUG"}, {"quantity", 1.5}}), 400, "whole number"},
      {"quantity zero", "POST", "/orders", line({{"sku", "SKU-MUG"}, {"quantity", 0}}), 400, "at least 1"},
      {"quantity negative", "POST", "/orders", line({{"sku", "SKU-MUG"}, {"quantity", -3}}), 400, "at least 1"},
      {"quantity absurd", "POST", "/orders", line({{"sku", "SKU-MUG"}, {"quantity", 1000000}}), 400, "at most 1000"},
      {"quantity beyond 64 bits", "POST", "/orders",
       R"({"customer_id":"c","lines":[{"sku":"SKU-MUG","quantity":123456789012345678901234567890}]})", 400,
       "whole number"},
      {"unknown SKU", "POST", "/orders", line({{"sku", "SKU-NOPE"}, {"quantity", 1}}), 422, "unknown SKU 'SKU-NOPE'"},
      {"SKU twice", "POST", "/orders",
       with("lines", json::array({{{"sku", "SKU-MUG"}, {"quantity", 1}}, {{"sku", "SKU-MUG"}, {"quantity", 2}}})), 400,
       "more than one line"},
      {"unknown field", "POST", "/orders", with("coupon", "FREE"), 400, "unknown field 'coupon'"},
      {"unknown line field", "POST", "/orders", line({{"sku", "SKU-MUG"}, {"quantity", 1}, {"colour", "red"}}), 400,
       "unknown field 'lines[0].colour'"},
      {"wrong content type", "POST", "/orders", good.dump(), 415, "Content-Type must be application/json", true,
       "text/plain"},
      {"body over the limit", "POST", "/orders", std::string(70 * 1024, 'x'), 413, "exceeds 65536 bytes"},
      {"a content type that only contains application/json", "POST", "/orders", good.dump(), 415,
       "Content-Type must be application/json", true, "application/jsonp"},
      {"a charset other than UTF-8", "POST", "/orders", good.dump(), 415, "charset must be utf-8", true,
       "application/json; charset=latin1"},
      {"body not UTF-8", "POST", "/orders", "{\"customer_id\":\"caf\xe9\",\"lines\":[]}", 400, "not valid UTF-8"},
      {"an overlong UTF-8 encoding", "POST", "/orders", "{\"customer_id\":\"\xc0\xaf\"}", 400, "not valid UTF-8"},
      {"a duplicate key", "POST", "/orders",
       R"({"customer_id":"a","customer_id":"b","lines":[{"sku":"SKU-MUG","quantity":1}]})", 400,
       "duplicate key 'customer_id'"},
      {"a duplicate key in a line", "POST", "/orders",
       R"({"customer_id":"a","lines":[{"sku":"SKU-MUG","quantity":1,"quantity":2}]})", 400, "duplicate key 'quantity'"},
      {"a number beyond a double", "POST", "/orders",
       R"({"customer_id":"c","lines":[{"sku":"SKU-MUG","quantity":1e999}]})", 400, "number out of range"},
      {"a negative number beyond 64 bits", "POST", "/orders",
       R"({"customer_id":"c","lines":[{"sku":"SKU-MUG","quantity":-123456789012345678901234567890}]})", 400,
       "whole number"},
      {"a cancel body with a duplicate key", "POST", "/orders/" + id + "/cancel", R"({"reason":"a","reason":"b"})",
       400, "duplicate key 'reason'"},
      {"a malformed percent escape", "GET", "/orders?customer=%zz", "", 400, "malformed URL"},
      {"no token", "POST", "/orders", good.dump(), 401, "Authorization: Bearer", false},
      {"wrong token", "POST", "/orders", good.dump(), 401, "not valid", false, "application/json",
       {{"Authorization", "Bearer nope"}}},
      {"cancel without token", "POST", "/orders/" + id + "/cancel", "", 401, "Authorization", false},
      {"cancel unknown order", "POST", "/orders/no-such-order/cancel", "", 404, "order no-such-order not found"},
      {"cancel with a bad reason", "POST", "/orders/" + id + "/cancel", R"({"reason":7})", 400,
       "'reason' must be a string"},
      {"unknown route", "GET", "/nope", "", 404, "no such endpoint: GET /nope"},
      {"wrong method on an order", "DELETE", "/orders/" + id, "", 405, "DELETE is not allowed on /orders/{id}"},
      {"wrong method on orders", "PUT", "/orders", good.dump(), 405, "PUT is not allowed on /orders"},
      {"unknown order", "GET", "/orders/no-such-order", "", 404, "order no-such-order not found"},
      {"malformed min_position", "GET", "/orders/" + id + "?min_position=abc", "", 400, "min_position must be"},
      {"unknown status filter", "GET", "/orders?status=lost", "", 400, "unknown status 'lost'"},
      {"limit zero", "GET", "/orders?limit=0", "", 400, "limit must be a whole number from 1 to 500"},
      {"limit not a number", "GET", "/orders?limit=ten", "", 400, "limit must be"},
      {"unknown query parameter", "GET", "/orders?colour=red", "", 400, "unknown query parameter 'colour'"},
      {"analytics top zero", "GET", "/analytics?top=0", "", 400, "top must be"},
      {"a parameter given twice", "GET", "/orders?limit=5&limit=6", "", 400, "query parameter 'limit' is given twice"},
      {"min_position given twice", "GET", "/orders/" + id + "?min_position=0:0&min_position=0:1", "", 400,
       "'min_position' is given twice"},
      {"a parameter value not UTF-8", "GET", "/orders?customer=caf%E9", "", 400,
       "query parameter 'customer' is not valid UTF-8"},
      {"a parameter name not UTF-8", "GET", "/orders?%C0%AF=1", "", 400, "name is not valid UTF-8"},
      {"a cursor not UTF-8", "GET", "/orders?sort=id&after=%FF%FE", "", 400, "'after' is not valid UTF-8"},
      {"a cursor the server never issued (by id)", "GET", "/orders?sort=id&after=no-such-order", "", 400,
       "not a cursor this listing returned"},
      {"a cursor the server never issued (newest)", "GET", "/orders?after=00000000000000016e6f2d73756368", "", 400,
       "not a cursor this listing returned"},
      {"a cursor that is not hex", "GET", "/orders?after=zz", "", 400, "not a cursor this listing returned"},
      {"bad Last-Event-ID", "GET", "/orders/" + id + "/events", "", 400, "Last-Event-ID must be", true,
       "application/json", {{"Last-Event-ID", "yesterday"}}},
  };
  ASSERT_GE(cases.size(), 20u);
  auto plain = up_->Client("");  // each case sends its own credentials
  const int64_t end_before = up_->LogEnd();
  for (const auto& c : cases) {
    httplib::Headers headers = c.extra;
    if (c.auth) headers.emplace("Authorization", std::string("Bearer ") + kToken);
    Reply r = Send(plain, c.method, c.path, c.body, headers, c.content_type);
    EXPECT_EQ(r.status, c.status) << c.name << ": " << r.text;
    ASSERT_TRUE(r.body.is_object() && r.body.contains("error")) << c.name << ": not a JSON error: " << r.text;
    EXPECT_NE(r.body["error"].get<std::string>().find(c.error), std::string::npos)
        << c.name << ": expected '" << c.error << "' in: " << r.body["error"];
    EXPECT_EQ(up_->LogEnd(), end_before) << c.name << " appended to the log";
  }
  // No Content-Type at all (an HTTP client library adds one; a raw socket does not).
  testing::Connection raw(up_->endpoints().http);
  const std::string body = good.dump();
  ASSERT_TRUE(raw.Send("POST /orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + std::string(kToken) +
                       "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body));
  const std::string reply = raw.Read(10s, "}");
  EXPECT_NE(reply.find("HTTP/1.1 415"), std::string::npos) << reply;
  EXPECT_NE(reply.find("Content-Type must be application/json, got none"), std::string::npos) << reply;
  EXPECT_EQ(up_->LogEnd(), end_before);
  // The service still works afterwards.
  Place(client, "cust-bad", Auth());
  EXPECT_EQ(up_->LogEnd(), end_before + 1);
}

}  // namespace
}  // namespace orderflow

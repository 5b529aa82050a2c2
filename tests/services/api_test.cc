// The API's router, authorization and operations routes without a broker or
// a server: requests built in memory, OpsQueries faked.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "services/api/auth.h"
#include "services/api/ops_routes.h"
#include "services/api/order_cache.h"
#include "services/api/router.h"

namespace orderflow::services::api {
namespace {

using nlohmann::json;

http::Request Req(std::string method, std::string path, std::vector<std::pair<std::string, std::string>> headers = {},
                  std::string body = {}) {
  http::Request r;
  r.method = std::move(method);
  r.path = path;
  r.target = std::move(path);
  r.headers = std::move(headers);
  r.body = std::move(body);
  return r;
}

// The endpoint's answer: its response, or its refusal as the API sends it.
http::Response Serve(const Router& router, const http::Request& req) {
  std::string id;
  const Route* route = nullptr;
  const Endpoint* e = router.Find(req.method, req.path, &id, &route);
  if (e == nullptr) return ErrorResponse(route ? 405 : 404, "no endpoint");
  http::Response res;
  if (Status refused = e->handler(req, id, res); !refused.ok()) {
    res = {};
    SendError(res, refused);
  }
  return res;
}

TEST(RouterTest, MatchesRoutesSegmentBySegment) {
  std::string id;
  const Route* r = MatchRoute("/orders/o-1/history", &id);
  ASSERT_NE(r, nullptr);
  EXPECT_STREQ(r->label, "/orders/{id}/history");
  EXPECT_EQ(id, "o-1");
  EXPECT_EQ(MatchRoute("/orders//history"), nullptr);  // an empty id is no id
  EXPECT_EQ(MatchRoute("/orders/o-1/history/x"), nullptr);
  EXPECT_EQ(RouteLabel("/orders/o-9"), "/orders/{id}");
  EXPECT_EQ(RouteLabel("/app.js"), "static");
  EXPECT_EQ(RouteLabel("/nope"), "unknown");
}

TEST(RouterTest, FindsTheEndpointOrTellsAWrongMethodFromNoRoute) {
  Router router;
  int called = 0;
  router.Add("GET", "/orders/{id}", Access::kRead, true, [&](const http::Request&, const std::string& id, http::Response&) {
    ++called;
    EXPECT_EQ(id, "abc");
    return Status::Ok();
  });
  std::string id;
  const Route* route = nullptr;
  const Endpoint* e = router.Find("GET", "/orders/abc", &id, &route);
  ASSERT_NE(e, nullptr);
  http::Response res;
  EXPECT_TRUE(e->handler(Req("GET", "/orders/abc"), id, res).ok());
  EXPECT_EQ(called, 1);

  EXPECT_EQ(router.Find("DELETE", "/orders/abc", &id, &route), nullptr);
  ASSERT_NE(route, nullptr);  // the route exists: 405 with its Allow header
  EXPECT_STREQ(route->allow, "GET");
  EXPECT_EQ(router.Find("GET", "/elsewhere", &id, &route), nullptr);
  EXPECT_EQ(route, nullptr);  // 404
}

TEST(AuthTest, WithoutTokensEverythingIsOpen) {
  Auth auth("", "");
  EXPECT_TRUE(auth.Authorize(Req("POST", "/orders"), Access::kWrite).ok());
}

TEST(AuthTest, TokensGrantReadOrWriteAndOthersAreRefused) {
  Auth auth("write-secret", "read-secret");
  auto with = [](std::string token) { return Req("POST", "/orders", {{"Authorization", "Bearer " + token}}); };
  EXPECT_EQ(HttpStatus(auth.Authorize(Req("GET", "/orders"), Access::kRead).code()), 401);  // no credential
  EXPECT_TRUE(auth.Authorize(Req("GET", "/healthz"), Access::kOpen).ok());
  EXPECT_EQ(HttpStatus(auth.Authorize(with("wrong"), Access::kRead).code()), 401);
  EXPECT_TRUE(auth.Authorize(with("read-secret"), Access::kRead).ok());
  EXPECT_EQ(HttpStatus(auth.Authorize(with("read-secret"), Access::kWrite).code()), 403);
  EXPECT_TRUE(auth.Authorize(with("write-secret"), Access::kWrite).ok());
  EXPECT_EQ(HttpStatus(auth.Authorize(Req("GET", "/orders", {{"Authorization", "Basic x"}}), Access::kRead).code()), 401);
}

TEST(AuthTest, ASessionCookieGrantsWhatItsTokenGrantsUntilClosed) {
  Auth auth("write-secret", "read-secret");
  Router router;
  auth.Register(router);
  http::Response res;
  EXPECT_EQ(Serve(router, Req("POST", "/session", {}, R"({"token":"nope"})")).status, 401);
  EXPECT_EQ(Serve(router, Req("POST", "/session", {}, "not json")).status, 400);
  res = Serve(router, Req("POST", "/session", {}, R"({"token":"read-secret"})"));
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(json::parse(res.body)["access"], "read");
  std::string cookie;
  for (const auto& [name, value] : res.headers) {
    if (name == "Set-Cookie") cookie = value.substr(0, value.find(';'));
  }
  ASSERT_TRUE(cookie.starts_with("orderflow_session="));
  const auto with_cookie = [&](std::string method, std::string path) {
    return Req(std::move(method), std::move(path), {{"Cookie", "theme=dark; " + cookie}});
  };
  EXPECT_TRUE(auth.Authorize(with_cookie("GET", "/orders"), Access::kRead).ok());
  EXPECT_EQ(HttpStatus(auth.Authorize(with_cookie("POST", "/orders"), Access::kWrite).code()), 403);
  ASSERT_EQ(Serve(router, with_cookie("DELETE", "/session")).status, 200);
  EXPECT_EQ(HttpStatus(auth.Authorize(with_cookie("GET", "/orders"), Access::kRead).code()), 401);
}

// What the operations routes ask, answered from fields a test sets.
class FakeOps final : public OpsQueries {
 public:
  std::string not_ready;
  std::vector<PartitionLag> lag;
  Result<std::vector<StockLevel>> stock = std::vector<StockLevel>{};
  std::vector<int64_t> redriven;

  std::string NotReadyReason() override { return not_ready; }
  std::vector<PartitionLag> Lag() override { return lag; }
  std::vector<ServiceHealth> Health() override { return {{"payment", true, ""}, {"shipping", false, "starting"}}; }
  std::map<std::string, uint64_t> DeadLettersParked() override { return {{"projector", 2}}; }
  Result<std::vector<StockLevel>> Stock() override { return stock; }
  Result<std::vector<eventstore::DeadLetter>> DeadLetters() override {
    return Status::NotFound("dead letters are not served by this process");
  }
  Result<eventstore::RedriveResult> Redrive(int64_t id) override {
    redriven.push_back(id);
    eventstore::RedriveResult r;
    r.redriven = {id};
    r.appended = 1;
    return r;
  }
};

class OpsRoutesTest : public ::testing::Test {
 protected:
  OpsRoutesTest() : routes_(options_, sources_, cache_, metrics_) {
    sources_.ops = &ops_;
    routes_.Register(router_);
  }
  json Get(const std::string& path, int want_status) {
    http::Request req = Req("GET", path.substr(0, path.find('?')));
    if (path.find('?') != std::string::npos) {
      EXPECT_TRUE(http::ParseQuery(path.substr(path.find('?') + 1), &req.params));
    }
    const http::Response res = Serve(router_, req);
    EXPECT_EQ(res.status, want_status) << path << ": " << res.body;
    return json::parse(res.body);
  }

  HttpOptions options_;
  ApiSources sources_;
  OrderBodyCache cache_{0};
  RequestMetrics metrics_;
  FakeOps ops_;
  Router router_;
  OpsRoutes routes_;
};

TEST_F(OpsRoutesTest, ReadinessSaysWhyNot) {
  EXPECT_EQ(Get("/readyz", 200)["ready"], true);
  ops_.not_ready = "projector catching up";
  const json body = Get("/readyz", 503);
  EXPECT_EQ(body["ready"], false);
  EXPECT_EQ(body["reason"], "projector catching up");
}

TEST_F(OpsRoutesTest, LagSumsThePartitionsAndListsTheServices) {
  ops_.lag = {{"projector", {"orders.events", 0}, 3, 7, 10}, {"payment", {"orders.events", 1}, 4, -1, 9}};
  const json body = Get("/lag", 200);
  EXPECT_EQ(body["total_lag"], 7);
  EXPECT_EQ(body["consumers"][1]["committed"], nullptr);
  EXPECT_EQ(body["services"][1]["detail"], "starting");
}

TEST_F(OpsRoutesTest, StockAndDeadLettersPassTheQueriesAnswersOn) {
  ops_.stock = std::vector<StockLevel>{{"SKU-1", "Widget", 5}};
  EXPECT_EQ(Get("/stock", 200)["stock"][0]["available"], 5);
  ops_.stock = Status::Unavailable("the inventory service is starting");
  EXPECT_EQ(Get("/stock", 503)["error"], "the inventory service is starting; retry");
  EXPECT_EQ(Get("/dlq", 404)["error"], "dead letters are not served by this process");
  EXPECT_EQ(Get("/stock?x=1", 400)["error"], "unknown query parameter 'x' (this endpoint takes none)");
}

TEST_F(OpsRoutesTest, RedriveTakesAWholeNumberId) {
  EXPECT_EQ(Serve(router_, Req("POST", "/dlq/abc/redrive")).status, 400);
  EXPECT_TRUE(ops_.redriven.empty());
  EXPECT_EQ(Serve(router_, Req("POST", "/dlq/42/redrive")).status, 202);
  EXPECT_EQ(ops_.redriven, std::vector<int64_t>{42});
}

TEST_F(OpsRoutesTest, WithoutOpsQueriesTheOperationsRoutesSaySo) {
  sources_.ops = nullptr;
  EXPECT_EQ(Get("/stock", 404)["error"], "this process runs no inventory service; ask the one that does");
  EXPECT_EQ(Get("/readyz", 200)["ready"], true);
  EXPECT_EQ(Get("/lag", 200)["total_lag"], 0);
}

}  // namespace
}  // namespace orderflow::services::api

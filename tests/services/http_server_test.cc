// services/api/http_server.h over loopback with plain sockets: the limits that
// keep it answering (connections, streams, header and idle timeouts) and a
// graceful stop.
#include "services/api/http_server.h"

#include "tests/util/fake_clock.h"
#include "tests/util/raw_connection.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace orderflow::services::http {
namespace {

using namespace std::chrono_literals;
using orderflow::testing::Connection;

// Answers /hello with "hi", and /stream with an event stream that sends one
// event per NotifyStreams.
class CountingSource : public EventSource {
 public:
  std::string Next(bool*) override {
    ++calls_;
    return calls_ == 1 ? "retry: 1000\n\n" : "data: " + std::to_string(calls_) + "\n\n";
  }

 private:
  int calls_ = 0;
};

std::unique_ptr<Server> StartServer(ServerOptions options) {
  options.listen = "127.0.0.1:0";
  auto server = Server::Start(
      options,
      [](Request req, Responder responder) {
        if (req.path == "/stream") return responder.Stream(std::make_shared<CountingSource>());
        Response res;
        res.content_type = "text/plain";
        res.body = req.path == "/hello" ? "hi" : "?";
        responder.Send(std::move(res));
      },
      [](int status, const std::string& message) {
        Response r;
        r.status = status;
        r.body = "{\"error\":\"" + message + "\"}";
        return r;
      });
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return std::move(server).value();
}

std::string Get(const std::string& address, const std::string& path) {
  Connection c(address);
  if (!c.ok()) return "";
  c.Send("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  return c.Read(5s);
}

TEST(HttpServerTest, ManyIdleConnectionsAndStreamsDoNotStopRequests) {
  auto server = StartServer({});
  std::vector<Connection> idle;
  for (int i = 0; i < 2000; ++i) {
    idle.emplace_back(server->address());
    ASSERT_TRUE(idle.back().ok()) << "connection " << i;
  }
  std::vector<Connection> streams;
  for (int i = 0; i < 200; ++i) {
    streams.emplace_back(server->address());
    ASSERT_TRUE(streams.back().Send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  for (auto& s : streams) ASSERT_NE(s.Read(5s, "retry: 1000").find("text/event-stream"), std::string::npos);
  EXPECT_EQ(server->streams(), 200u);
  EXPECT_EQ(server->connections(), 2200u);
  const auto t = SystemClock().Now();
  const std::string reply = Get(server->address(), "/hello");
  EXPECT_NE(reply.find("200 OK"), std::string::npos) << reply;
  EXPECT_LT(SystemClock().Now() - t, 2s);
  // The streams are live: a notification reaches every one.
  server->NotifyStreams();
  for (auto& s : streams) EXPECT_NE(s.Read(5s, "data: 2").find("data: 2"), std::string::npos);
}

TEST(HttpServerTest, BeyondTheConnectionLimitANewConnectionGets503AndTheOthersKeepWorking) {
  ServerOptions options;
  options.max_connections = 20;
  auto server = StartServer(options);
  std::vector<Connection> held;
  for (int i = 0; i < 20; ++i) held.emplace_back(server->address());
  for (int i = 0; i < 100 && server->connections() < 20; ++i) SystemClock().SleepFor(10ms);
  ASSERT_EQ(server->connections(), 20u);
  Connection extra(server->address());
  const auto t = SystemClock().Now();
  const std::string refused = extra.Read(5s, "}");
  EXPECT_NE(refused.find("503"), std::string::npos) << refused;
  EXPECT_NE(refused.find("too many open connections (20)"), std::string::npos) << refused;
  EXPECT_LT(SystemClock().Now() - t, 2s);
  // A held connection is still served.
  ASSERT_TRUE(held[0].Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_NE(held[0].Read(5s, "hi").find("200 OK"), std::string::npos);
  // And once some go, new ones are accepted again.
  while (held.size() > 10) held.pop_back();
  for (int i = 0; i < 200 && server->connections() > 10; ++i) SystemClock().SleepFor(10ms);
  EXPECT_NE(Get(server->address(), "/hello").find("200 OK"), std::string::npos);
}

TEST(HttpServerTest, AClientThatSendsItsHeaderSlowlyIsCutOffAfterTheHeaderTimeout) {
  ServerOptions options;
  options.header_timeout = 1s;
  auto server = StartServer(options);
  Connection slow(server->address());
  const std::string request = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
  const auto t = SystemClock().Now();
  size_t sent = 0;
  std::string reply;
  while (sent < request.size() && SystemClock().Now() - t < 10s) {
    if (!slow.Send(request.substr(sent, 1))) break;
    ++sent;
    reply += slow.Read(250ms);
    if (slow.closed()) break;
  }
  EXPECT_LT(sent, request.size()) << "the whole header went through: " << reply;
  EXPECT_TRUE(slow.closed());
  EXPECT_EQ(reply, "");
  EXPECT_LT(SystemClock().Now() - t, 4s);
  // Others are unaffected.
  EXPECT_NE(Get(server->address(), "/hello").find("200 OK"), std::string::npos);
}

TEST(HttpServerTest, AnIdleConnectionIsClosedAfterTheIdleTimeout) {
  ServerOptions options;
  options.idle_timeout = 300ms;
  auto server = StartServer(options);
  Connection c(server->address());
  ASSERT_TRUE(c.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_NE(c.Read(5s, "hi").find("200 OK"), std::string::npos);
  c.Read(3s);
  EXPECT_TRUE(c.closed());
  for (int i = 0; i < 100 && server->connections() > 0; ++i) SystemClock().SleepFor(10ms);
  EXPECT_EQ(server->connections(), 0u);
}

// The deadlines follow the server's clock: an hour of idle timeout passes in
// no time when a fake clock is moved, and not before.
TEST(HttpServerTest, TheIdleTimeoutFollowsTheServersClock) {
  testing::FakeClock clock;
  ServerOptions options;
  options.idle_timeout = 1h;
  options.header_timeout = 200ms;  // the reaper looks every 25 ms of real time
  options.clock = &clock;
  auto server = StartServer(options);
  Connection c(server->address());
  ASSERT_TRUE(c.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_NE(c.Read(5s, "hi").find("200 OK"), std::string::npos);
  c.Read(300ms);
  EXPECT_FALSE(c.closed()) << "closed before the clock moved";
  clock.Advance(61min);
  c.Read(5s);
  EXPECT_TRUE(c.closed());
}

TEST(HttpServerTest, StreamsBeyondTheLimitGet503) {
  ServerOptions options;
  options.max_streams = 3;
  auto server = StartServer(options);
  std::vector<Connection> streams;
  for (int i = 0; i < 3; ++i) {
    streams.emplace_back(server->address());
    streams.back().Send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_NE(streams.back().Read(5s, "retry").find("200 OK"), std::string::npos);
  }
  Connection fourth(server->address());
  fourth.Send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string reply = fourth.Read(5s, "}");
  EXPECT_NE(reply.find("503"), std::string::npos) << reply;
  EXPECT_NE(reply.find("too many open event streams (3)"), std::string::npos) << reply;
  // A stream whose client leaves frees its place.
  streams.pop_back();
  for (int i = 0; i < 200 && server->streams() > 2; ++i) SystemClock().SleepFor(10ms);
  EXPECT_EQ(server->streams(), 2u);
}

TEST(HttpServerTest, StopEndsStreamsWithAFinalCommentAndAnswersRequestsInFlight) {
  ServerOptions options;
  std::atomic<bool> release{false};
  std::atomic<bool> slow_started{false};
  options.listen = "127.0.0.1:0";
  Server* raw = nullptr;
  auto server = Server::Start(
      options,
      [&](Request req, Responder responder) {
        if (req.path == "/stream") return responder.Stream(std::make_shared<CountingSource>());
        // A slow handler on the worker pool, in flight while Stop begins.
        slow_started = true;
        raw->Run([&release, responder] {
          while (!release.load()) SystemClock().SleepFor(5ms);
          Response res;
          res.body = "late";
          responder.Send(std::move(res));
        });
      },
      [](int status, const std::string& message) {
        Response r;
        r.status = status;
        r.body = message;
        return r;
      });
  ASSERT_TRUE(server.ok());
  raw = server->get();
  Connection stream((*server)->address());
  stream.Send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_NE(stream.Read(5s, "retry").find("200 OK"), std::string::npos);
  Connection slow((*server)->address());
  slow.Send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  for (int i = 0; i < 3000 && !slow_started.load(); ++i) SystemClock().SleepFor(10ms);
  ASSERT_TRUE(slow_started.load()) << "the slow request never reached its handler";
  std::thread stopper([&] { (*server)->Stop(); });
  SystemClock().SleepFor(200ms);
  release = true;
  const std::string ending = stream.Read(5s, "0\r\n\r\n");
  EXPECT_NE(ending.find(": the server is shutting down"), std::string::npos) << ending;
  EXPECT_NE(ending.find("0\r\n\r\n"), std::string::npos) << ending;
  const std::string late = slow.Read(5s, "late");
  EXPECT_NE(late.find("late"), std::string::npos) << late;
  stopper.join();
  EXPECT_EQ((*server)->connections(), 0u);
  EXPECT_FALSE(Connection((*server)->address()).ok()) << "still accepting after Stop";
}

TEST(HttpServerTest, QueryStringsArePercentDecoded) {
  std::vector<std::pair<std::string, std::string>> params;
  ASSERT_TRUE(ParseQuery("a=1&b=x%20y+z&&c", &params));
  ASSERT_EQ(params.size(), 3u);
  EXPECT_EQ(params[1], (std::pair<std::string, std::string>{"b", "x y z"}));
  EXPECT_EQ(params[2].first, "c");
  EXPECT_FALSE(ParseQuery("a=%zz", &params));
  EXPECT_FALSE(ParseQuery("a=%2", &params));
}

}  // namespace
}  // namespace orderflow::services::http

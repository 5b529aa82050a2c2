// A log that no longer holds what a service consumed (retention moved its
// start past the stored offset, or the topic was recreated and ends before
// it) stops the service with an error naming topic, partition and offsets.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "domain/clock.h"
#include "eventstore/topics.h"
#include "services/lifecycle/runner.h"
#include "tests/util/noop_reactor.h"
#include "tests/util/broker.h"
#include "tests/util/events.h"
#include "tests/util/temp_dir.h"

namespace orderflow {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

// Runs `runner` until it returns (or 90 s pass) and returns its status.
Status RunUntilItStops(services::ServiceRunner& runner) {
  std::stop_source stop;
  auto result = std::async(std::launch::async, [&] { return runner.Run(stop.get_token()); });
  if (result.wait_for(90s) != std::future_status::ready) {
    stop.request_stop();
    result.wait();
    return Status::Internal("the service kept running");
  }
  return result.get();
}

TEST(LogProblemTest, ARecreatedTopicStopsTheServiceNamingPartitionAndOffsets) {
  TempDir dir;
  {
    auto first = testing::StartBroker(2);
    ASSERT_TRUE(first);
    auto producer = eventstore::Producer::Create(testing::ConfigFor(*first), "t");
    ASSERT_TRUE(producer.ok());
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE((*producer)->AppendEvent(eventstore::kOrdersTopic, testing::PlacedEvent("o-" + std::to_string(i))).ok());
    }
    ASSERT_TRUE((*producer)->Flush(10s).ok());
    auto runner = testing::NoopRunner(testing::ConfigFor(*first), dir.Sub("svc"));
    ASSERT_TRUE(runner.ok()) << runner.status().ToString();
    std::stop_source stop;
    std::thread t([&] { EXPECT_TRUE((*runner)->Run(stop.get_token()).ok()); });
    for (int i = 0; i < 600 && (*runner)->stats().events.load() < 20; ++i) SystemClock().SleepFor(50ms);
    stop.request_stop();
    t.join();
    ASSERT_EQ((*runner)->stats().events.load(), 20u);
  }
  auto second = testing::StartBroker(2);  // the same topics, empty: recreated
  ASSERT_TRUE(second);
  auto runner = testing::NoopRunner(testing::ConfigFor(*second), dir.Sub("svc"));
  ASSERT_TRUE(runner.ok());
  Status s = RunUntilItStops(**runner);
  ASSERT_EQ(s.code(), StatusCode::kOutOfRange) << s.ToString();
  EXPECT_NE(s.message().find("shipping: orders.events["), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("]: the log ends at offset 0 but the store in " + dir.Sub("svc") +
                             " has consumed up to offset "),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("the topic was recreated"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("`orderflow replay`"), std::string::npos) << s.message();
}

TEST(LogProblemTest, RetentionPastTheStoredOffsetStopsTheServiceNamingTheLostOffsets) {
  auto broker = testing::StartEmbeddedBroker(1);  // its size limit moves the log start
  ASSERT_TRUE(broker);
  eventstore::KafkaConfig uncompressed = testing::ConfigFor(*broker);
  uncompressed.overrides.push_back({"compression.type", "none"});
  auto producer = eventstore::Producer::Create(uncompressed, "t");
  ASSERT_TRUE(producer.ok());
  const std::string big(64 * 1024, 'x');
  for (int i = 0; i < 120; ++i) {  // ~7.7 MB: the embedded broker drops the oldest segments
    ASSERT_TRUE((*producer)->Append(eventstore::kOrdersTopic, "k", big, {}).ok());
    if (i % 10 == 9) {
      ASSERT_TRUE((*producer)->Flush(10s).ok());
    }
  }
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  TempDir dir;
  auto runner = testing::NoopRunner(testing::ConfigFor(*broker), dir.Sub("svc"));
  ASSERT_TRUE(runner.ok());
  Status s = RunUntilItStops(**runner);
  ASSERT_EQ(s.code(), StatusCode::kOutOfRange) << s.ToString();
  EXPECT_NE(s.message().find("shipping: orders.events[0]: the log now starts at offset "), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("needs offset 0; events 0.."), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("are gone (retention"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("move " + dir.Sub("svc") + " aside"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace orderflow

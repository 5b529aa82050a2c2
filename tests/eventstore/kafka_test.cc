#include "eventstore/kafka.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <set>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include "eventstore/codec.h"
#include "eventstore/kafka_internal.h"
#include "eventstore/topics.h"
#include "tests/util/broker.h"
#include "tests/util/events.h"

namespace orderflow::eventstore {
namespace {

using namespace std::chrono_literals;

TEST(KafkaTest, AppendedEventsComeBackWithHeadersKeyedByOrder) {
  auto broker = orderflow::testing::StartBroker(3);
  ASSERT_NE(broker, nullptr);
  auto config = orderflow::testing::ConfigFor(*broker);
  auto producer = Producer::Create(config, "test-producer");
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  std::vector<domain::Event> events;
  std::vector<Position> positions(20);
  for (int i = 0; i < 20; ++i) {
    events.push_back(orderflow::testing::PlacedEvent("order-" + std::to_string(i % 5)));
    events.back().id[0] = static_cast<uint8_t>(i);
    ASSERT_TRUE((*producer)
                    ->AppendEvent(kOrdersTopic, events.back(),
                                  [&positions, i](const Status& s, Position p) {
                                    if (s.ok()) positions[i] = p;
                                  })
                    .ok());
  }
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  for (int i = 0; i < 20; ++i) {
    EXPECT_GE(positions[i].offset, 0) << i;
    EXPECT_EQ(positions[i].partition, positions[i % 5].partition) << "same key, same partition";
  }

  auto reader = Reader::Create(config, "test-reader");
  ASSERT_TRUE(reader.ok());
  auto partitions = (*reader)->PartitionCount(kOrdersTopic, 5s);
  ASSERT_TRUE(partitions.ok());
  EXPECT_EQ(*partitions, 3);
  std::vector<std::pair<TopicPartition, int64_t>> assignment;
  int64_t total = 0;
  for (int32_t p = 0; p < *partitions; ++p) {
    assignment.push_back({{kOrdersTopic, p}, 0});
    auto w = (*reader)->QueryWatermarks({kOrdersTopic, p}, 5s);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w->low, 0);
    total += w->high;
  }
  EXPECT_EQ(total, 20);
  ASSERT_TRUE((*reader)->Assign(assignment).ok());
  std::vector<Record> got;
  for (int i = 0; i < 100 && got.size() < 20; ++i) {
    auto batch = (*reader)->Poll(100, 100ms);
    ASSERT_TRUE(batch.ok());
    for (auto& r : *batch) got.push_back(std::move(r));
  }
  ASSERT_EQ(got.size(), 20u);
  for (const Record& r : got) {
    EXPECT_EQ(r.HeaderValue(kHeaderEventType), "OrderPlaced");
    EXPECT_EQ(r.HeaderValue(kHeaderSchemaVersion), std::to_string(domain::kCurrentSchemaVersion));
    EXPECT_EQ(r.HeaderValue(kHeaderContentType), kContentType);
    auto e = DecodeEvent(r.value());
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e->order_id, r.key());
  }
}

// The watermarks of many partitions asked at once are those asked one by one,
// in the order asked, for partitions with records and without; a partition
// the cluster does not have is an error, as asked alone.
TEST(KafkaTest, WatermarksOfManyPartitionsAtOnceAreThoseAskedOneByOne) {
  auto broker = orderflow::testing::StartBroker(6);
  ASSERT_NE(broker, nullptr);
  auto config = orderflow::testing::ConfigFor(*broker);
  auto producer = Producer::Create(config, "test-producer");
  ASSERT_TRUE(producer.ok());
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE((*producer)->AppendEvent(kOrdersTopic, orderflow::testing::PlacedEvent("o-" + std::to_string(i))).ok());
  }
  ASSERT_TRUE((*producer)->Append(kInventoryTopic, "sku-1", "stock", {}).ok());
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  auto reader = Reader::Create(config, "test-reader");
  ASSERT_TRUE(reader.ok());
  std::vector<TopicPartition> asked;
  for (int32_t p = 5; p >= 0; --p) asked.push_back({kOrdersTopic, p});  // not in partition order
  auto side = (*reader)->PartitionCount(kInventoryTopic, 10s);  // one per broker at least
  ASSERT_TRUE(side.ok()) << side.status().ToString();
  for (int32_t p = 0; p < *side; ++p) asked.push_back({kInventoryTopic, p});
  auto all = (*reader)->QueryWatermarks(asked, 10s);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), asked.size());
  int64_t orders = 0, inventory = 0;
  for (size_t i = 0; i < asked.size(); ++i) {
    auto one = (*reader)->QueryWatermarks(asked[i], 10s);
    ASSERT_TRUE(one.ok());
    EXPECT_EQ((*all)[i].low, one->low) << asked[i].topic << "[" << asked[i].partition << "]";
    EXPECT_EQ((*all)[i].high, one->high) << asked[i].topic << "[" << asked[i].partition << "]";
    (asked[i].topic == kOrdersTopic ? orders : inventory) += (*all)[i].high - (*all)[i].low;
  }
  EXPECT_EQ(orders, 50);
  EXPECT_EQ(inventory, 1);
  auto none = (*reader)->QueryWatermarks(std::vector<TopicPartition>{}, 10s);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto missing = (*reader)->QueryWatermarks(std::vector<TopicPartition>{{kOrdersTopic, 0}, {kOrdersTopic, 99}}, 1s);
  EXPECT_FALSE(missing.ok());
}

// Tickers (Reader::Tickers) keep a fetch in flight on each broker that leads
// a partition read, so that a shallow prefetch queue refills at once: one
// partition of another topic per such broker, read from its end on a queue
// of its own. What they read never comes back from Poll, and the partitions
// read come back whole through a queue of a few messages.
TEST(KafkaTest, TickersCoverEveryLeaderAndWhatTheyReadIsNotReturned) {
  auto broker = orderflow::testing::StartBroker(6);
  ASSERT_NE(broker, nullptr);
  auto config = orderflow::testing::ConfigFor(*broker);
  auto producer = Producer::Create(config, "test-producer");
  ASSERT_TRUE(producer.ok());
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE((*producer)->AppendEvent(kOrdersTopic, orderflow::testing::PlacedEvent("o-" + std::to_string(i))).ok());
  }
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  KafkaConfig shallow = config;
  shallow.overrides.push_back({"queued.min.messages", "5"});
  shallow.overrides.push_back({"queued.max.messages.kbytes", "1"});
  auto reader = Reader::Create(shallow, "test-reader");
  ASSERT_TRUE(reader.ok());
  std::vector<TopicPartition> partitions;
  std::vector<std::pair<TopicPartition, int64_t>> positions;
  for (int32_t p = 0; p < 6; ++p) {
    partitions.push_back({kOrdersTopic, p});
    positions.push_back({{kOrdersTopic, p}, 0});
  }
  const std::vector<std::string> others = {kInventoryTopic, kNotificationsHighTopic, kNotificationsLowTopic};
  for (int i = 0; i < 20; ++i) {  // records on the tickers' topics before Assign: never returned either
    for (const std::string& topic : others) {
      ASSERT_TRUE((*producer)->Append(topic, "early-" + std::to_string(i), "not wanted", {}).ok());
    }
  }
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  auto none = (*reader)->Tickers(partitions, {}, 10s);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  auto tickers = (*reader)->Tickers(partitions, others, 10s);
  ASSERT_TRUE(tickers.ok()) << tickers.status().ToString();
  ASSERT_GE(tickers->size(), 1u);
  EXPECT_LE(tickers->size(), broker->real() ? 1u : 3u) << "one per broker";
  for (const TopicPartition& t : *tickers) EXPECT_NE(t.topic, kOrdersTopic);
  // The tickers' ends as Assign finds them (nothing is appended meanwhile).
  auto ends_before = (*reader)->QueryWatermarks(*tickers, 10s);
  ASSERT_TRUE(ends_before.ok()) << ends_before.status().ToString();
  ASSERT_TRUE((*reader)->Assign(positions, *tickers).ok());
  for (int i = 0; i < 60; ++i) {  // records on the tickers' topics, after their end
    for (const std::string& topic : others) {
      ASSERT_TRUE((*producer)->Append(topic, "k-" + std::to_string(i), "not wanted", {}).ok());
    }
  }
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  auto ends_after = (*reader)->QueryWatermarks(*tickers, 10s);
  ASSERT_TRUE(ends_after.ok()) << ends_after.status().ToString();
  // Each ticker reads from its end on: exactly the records appended after
  // Assign, none of the 20 per topic before it.
  uint64_t appended_after = 0, before = 0;
  for (size_t i = 0; i < tickers->size(); ++i) {
    appended_after += static_cast<uint64_t>((*ends_after)[i].high - (*ends_before)[i].high);
    before += static_cast<uint64_t>((*ends_before)[i].high);
  }
  ASSERT_GT(appended_after, 0u) << "no record landed on a ticker's partition";
  ASSERT_GT(before, 0u) << "no record before the tickers' end: the test would not see a ticker start too early";
  std::set<std::string> seen;
  for (int i = 0; i < 600 && (seen.size() < 300 || (*reader)->TickerRecords() < appended_after); ++i) {
    auto batch = (*reader)->Poll(50, 100ms);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    for (const Record& r : *batch) {
      ASSERT_EQ(r.topic(), kOrdersTopic) << "a ticker's record came back";
      seen.insert(std::string(r.key()));
    }
  }
  EXPECT_EQ(seen.size(), 300u);
  EXPECT_EQ((*reader)->TickerRecords(), appended_after) << "the tickers read " << (*reader)->TickerRecords()
                                                         << " records; " << before << " were there before Assign";
}

TEST(KafkaTest, MissingTopicIsNotFound) {
  auto broker = orderflow::testing::StartBroker(1);
  auto reader = Reader::Create(orderflow::testing::ConfigFor(*broker), "test-reader");
  ASSERT_TRUE(reader.ok());
  auto n = (*reader)->PartitionCount("no.such.topic", 5s);
  ASSERT_FALSE(n.ok()) << "got " << *n << " partitions";
  EXPECT_EQ(n.status().code(), StatusCode::kNotFound);
}

TEST(KafkaTest, BadKafkaPropertyIsAnInvalidArgumentNamingIt) {
  KafkaConfig config;
  config.brokers = "127.0.0.1:1";
  config.overrides = {{"no.such.property", "1"}};
  auto producer = Producer::Create(config, "x");
  ASSERT_FALSE(producer.ok());
  EXPECT_EQ(producer.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(producer.status().message().find("no.such.property"), std::string::npos);
}

TEST(KafkaTest, ProvisionTopicsAcceptsTopicsThatExist) {
  auto broker = orderflow::testing::StartBroker(2);
  EXPECT_TRUE(ProvisionTopics(orderflow::testing::ConfigFor(*broker), DefaultTopics(2), 10s).ok());
}

// A coordinator that closes the connection while it restarts makes librdkafka
// log an ERROR that suspects the protocol and names no address (seen when a
// node of a 3-node cluster came back): a warning at most once a minute, never
// an error line, which the cluster fault tests count as a failure.
TEST(KafkaLogTest, ACoordinatorClosingTheConnectionIsAWarningOnceNotAnError) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  auto logger = std::make_shared<spdlog::logger>("kafka-log-test", sink);
  logger->set_level(spdlog::level::debug);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);
  const char* line =
      "[thrd:app]: orderflow-delivery-1#consumer-225: GroupCoordinator: Disconnected while requesting ApiVersion: "
      "might be caused by incorrect security.protocol configuration (connecting to a SSL listener?) or broker "
      "version is < 0.10 (see api.version.request) (after 4ms in state APIVERSION_QUERY)";
  internal::LogCallback(nullptr, 3, "ERROR", line);
  internal::LogCallback(nullptr, 3, "ERROR", line);
  spdlog::set_default_logger(previous);
  std::vector<spdlog::level::level_enum> levels;
  for (const auto& m : sink->last_raw()) levels.push_back(m.level);
  ASSERT_EQ(levels.size(), 2u);
  EXPECT_EQ(levels[0], spdlog::level::warn);
  EXPECT_NE(sink->last_formatted().front().find("Kafka broker GroupCoordinator unreachable"), std::string::npos)
      << "named by its role";
  EXPECT_EQ(levels[1], spdlog::level::debug) << "said twice within a minute";
  // After that suspicion, an error no broker answered carries the protocol
  // hint; an answer from a broker (leadership moving) does not: it spoke the
  // client's protocol.
  EXPECT_NE(KafkaError(RD_KAFKA_RESP_ERR__TRANSPORT, "watermarks").message().find("security.protocol=SASL_SSL"),
            std::string::npos);
  const Status answered = KafkaError(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, "watermarks");
  EXPECT_EQ(answered.code(), StatusCode::kUnavailable);
  EXPECT_EQ(answered.message().find("security.protocol"), std::string::npos) << answered.message();
}

// One member of a group on the embedded broker, holding every partition of
// orders.events, counting its revokes; what it logs while it closes is kept.
class GroupReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = orderflow::testing::StartEmbeddedBroker(4);
    ASSERT_NE(broker_, nullptr);
    auto reader = GroupReader::Create(
        orderflow::testing::ConfigFor(*broker_), "closing", "member", {std::string(kOrdersTopic)},
        [](const TopicPartition&) { return int64_t{0}; }, [this] { ++revokes_; });
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    reader_ = std::move(reader).value();
    for (int i = 0; i < 400 && reader_->Assignment().empty(); ++i) ASSERT_TRUE(reader_->Poll(10, 50ms).ok());
    ASSERT_EQ(reader_->Assignment().size(), 4u);
  }
  // Destroys the member; returns how long that took and what it logged.
  std::chrono::steady_clock::duration Close(std::string* logged) {
    auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
    auto previous = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("close-test", sink));
    const auto start = std::chrono::steady_clock::now();
    reader_.reset();
    const auto took = std::chrono::steady_clock::now() - start;
    spdlog::set_default_logger(previous);
    for (const std::string& line : sink->last_formatted()) *logged += line;
    return took;
  }
  std::unique_ptr<orderflow::testing::TestBroker> broker_;
  std::unique_ptr<GroupReader> reader_;
  int revokes_ = 0;
};

// A member closing on a group coordinator that answers: its final revoke
// reaches it, it leaves, and no bound is needed.
TEST_F(GroupReaderTest, AMemberClosesByLeavingItsGroupAfterItsFinalRevoke) {
  std::string logged;
  Close(&logged);
  EXPECT_EQ(revokes_, 1);
  EXPECT_EQ(logged.find("did not let this member leave"), std::string::npos) << logged;
  EXPECT_EQ(logged.find("still closing"), std::string::npos) << logged;
  EXPECT_TRUE(FinishClosingClients(0s)) << "nothing left closing in the background";
}

// A member's close waits for the group coordinator (its LeaveGroup, an offset
// commit in flight): a coordinator that does not answer must not hold a
// stopping service past its grace period. The fault: every broker answers
// after 15 s, with a commit in flight when the member closes.
TEST_F(GroupReaderTest, AMemberWhoseCoordinatorDoesNotAnswerClosesWithinItsBoundAndStillRevokes) {
  reader_->SetCloseTimeoutForTesting(3s);
  for (int32_t id = 1; id <= 3; ++id) rd_kafka_mock_broker_set_rtt(broker_->mock_cluster(), id, 15'000);
  reader_->CommitForOperators({{{std::string(kOrdersTopic), 0}, 0}});
  std::string logged;
  const auto took = Close(&logged);
  for (int32_t id = 1; id <= 3; ++id) rd_kafka_mock_broker_set_rtt(broker_->mock_cluster(), id, 0);
  EXPECT_NE(logged.find("did not let this member leave within 3000 ms"), std::string::npos)
      << "the fault was not met: " << logged;
  EXPECT_NE(logged.find("finishes in the background"), std::string::npos) << logged;
  EXPECT_EQ(revokes_, 1) << "the final revoke still reaches the member (it stores its batch in flight there)";
  // Unbounded, the close lasts until the commit is answered (15 s).
  EXPECT_LT(took, 10s);
  EXPECT_TRUE(FinishClosingClients(60s)) << "the consumer finishes closing once the coordinator answers";
}

}  // namespace
}  // namespace orderflow::eventstore

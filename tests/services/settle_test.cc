// The settle protocol (services/lifecycle/settle.h): settled exactly when every
// consumer's position, read first, equals the log ends read after it.
#include "services/lifecycle/settle.h"

#include <gtest/gtest.h>

namespace orderflow::services {
namespace {

using eventstore::TopicPartition;

const TopicPartition kOrders0{"orders.events", 0};
const TopicPartition kOrders1{"orders.events", 1};
const TopicPartition kInventory0{"inventory.events", 0};

ConsumerPosition Projector(int64_t at0, int64_t at1) {
  return {"projector", {"orders.events"}, std::nullopt, {{kOrders0, at0}, {kOrders1, at1}}};
}

TEST(SettleTest, EveryConsumerAtTheEndsIsSettled) {
  const LogEnds ends = {{kOrders0, 10}, {kOrders1, 4}, {kInventory0, 7}};
  ConsumerPosition inventory{"inventory", {"inventory.events"}, std::vector{kInventory0}, {{kInventory0, 7}}};
  auto report = CheckSettled({Projector(10, 4), inventory}, ends);
  EXPECT_TRUE(report.settled);
  EXPECT_TRUE(report.behind.empty());
}

TEST(SettleTest, AConsumerBehindOnOnePartitionIsNamedWithItsPosition) {
  const LogEnds ends = {{kOrders0, 10}, {kOrders1, 4}};
  auto report = CheckSettled({Projector(10, 3)}, ends);
  EXPECT_FALSE(report.settled);
  ASSERT_EQ(report.behind.size(), 1u);
  EXPECT_EQ(report.behind[0], "projector orders.events[1] 3/4");
}

TEST(SettleTest, APartitionNeverCommittedCountsFromZeroAndEmptyPartitionsAreIgnored) {
  const LogEnds ends = {{kOrders0, 0}, {kOrders1, 2}};
  ConsumerPosition fresh{"projector", {"orders.events"}, std::nullopt, {}};
  auto report = CheckSettled({fresh}, ends);
  EXPECT_FALSE(report.settled);
  ASSERT_EQ(report.behind.size(), 1u);
  EXPECT_EQ(report.behind[0], "projector orders.events[1] 0/2");
}

TEST(SettleTest, AGroupMemberWithoutPartitionsOfItsTopicIsNotSettled) {
  // Between a revocation and the next assignment nobody answers for the topic.
  const LogEnds ends = {{kOrders0, 5}, {kOrders1, 5}};
  ConsumerPosition payment{"payment", {"orders.events"}, std::vector<TopicPartition>{}, {{kOrders0, 5}, {kOrders1, 5}}};
  auto report = CheckSettled({payment}, ends);
  EXPECT_FALSE(report.settled);
  ASSERT_EQ(report.behind.size(), 1u);  // once, not once per partition
  EXPECT_EQ(report.behind[0], "payment holds no orders.events partition");
}

TEST(SettleTest, APartitionHeldByAnotherMemberIsThatMembersToFinish) {
  const LogEnds ends = {{kOrders0, 5}, {kOrders1, 9}};
  ConsumerPosition payment{"payment", {"orders.events"}, std::vector{kOrders0}, {{kOrders0, 5}}};
  EXPECT_TRUE(CheckSettled({payment}, ends).settled);
  payment.committed[kOrders0] = 4;
  EXPECT_FALSE(CheckSettled({payment}, ends).settled);
}

TEST(SettleTest, TopicsAConsumerDoesNotReadDoNotHoldItBack) {
  const LogEnds ends = {{kOrders0, 3}, {kOrders1, 3}, {kInventory0, 100}};
  EXPECT_TRUE(CheckSettled({Projector(3, 3)}, ends).settled);
  // An output the projector's own reading cannot see, once a reader of its topic exists:
  ConsumerPosition inventory{"inventory", {"inventory.events"}, std::vector{kInventory0}, {{kInventory0, 99}}};
  auto report = CheckSettled({Projector(3, 3), inventory}, ends);
  EXPECT_FALSE(report.settled);
  EXPECT_EQ(report.behind, std::vector<std::string>{"inventory inventory.events[0] 99/100"});
}

}  // namespace
}  // namespace orderflow::services

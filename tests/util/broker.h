// An embedded broker with orderflow's topics, for integration tests.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "eventstore/embedded_broker.h"
#include "eventstore/kafka.h"
#include "eventstore/topics.h"

namespace orderflow::testing {

inline std::unique_ptr<eventstore::EmbeddedBroker> StartBroker(int partitions = 4) {
  auto broker = eventstore::EmbeddedBroker::Start(3);
  EXPECT_TRUE(broker.ok()) << broker.status().ToString();
  if (!broker.ok()) return nullptr;
  EXPECT_TRUE((*broker)->CreateTopics(eventstore::DefaultTopics(partitions)).ok());
  return std::move(broker).value();
}

inline eventstore::KafkaConfig ConfigFor(const eventstore::EmbeddedBroker& broker) {
  eventstore::KafkaConfig config;
  config.brokers = broker.bootstraps();
  return config;
}

}  // namespace orderflow::testing

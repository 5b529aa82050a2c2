// Topic names and provisioning.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "domain/status.h"
#include "eventstore/kafka.h"

namespace orderflow::eventstore {

inline constexpr char kOrdersTopic[] = "orders.events";
inline constexpr char kInventoryTopic[] = "inventory.events";
inline constexpr char kNotificationsHighTopic[] = "notifications.high";
inline constexpr char kNotificationsLowTopic[] = "notifications.low";
inline constexpr char kDeadLetterTopic[] = "orders.dlq";

inline constexpr int kDefaultPartitions = 6;

struct TopicSpec {
  std::string name;
  int partitions = kDefaultPartitions;
  int replication_factor = 3;
};

// Every topic orderflow uses, `partitions` each (the DLQ gets one).
std::vector<TopicSpec> DefaultTopics(int partitions = kDefaultPartitions);

// Makes sure each topic exists on a real cluster: creates the missing ones with
// the admin API (infinite retention for event topics) and accepts existing ones.
// Brokers without the CreateTopics API (the embedded broker) pass when the
// topics already exist. Idempotent.
Status ProvisionTopics(const KafkaConfig& config, const std::vector<TopicSpec>& topics,
                       std::chrono::milliseconds timeout);

}  // namespace orderflow::eventstore

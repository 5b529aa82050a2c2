// Topic names and provisioning.
#pragma once

#include <chrono>
#include <map>
#include <memory>
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

// Partitions of orders.events on a new cluster (`--partitions`): at most that
// many instances of a service share the work. librdkafka 2.0.2 sends one
// partition per produce request, so each partition costs requests per batch:
// 3 instead of 6 took a fifth off the broker's CPU per order and up to a fifth
// off orderflow's (docs/benchmarks.md, session 18). Scale-out beyond 3
// instances asks for more at creation.
inline constexpr int kDefaultPartitions = 3;
// On the embedded broker, which keeps ~5 MB per partition and walks a
// partition's batches from the oldest on each fetch: more, shorter partitions.
inline constexpr int kEmbeddedPartitions = 6;

struct TopicSpec {
  std::string name;
  int partitions = kDefaultPartitions;
  int replication_factor = 3;
  // Created with at least one partition per broker in the cluster, so that
  // every broker leads one (Reader::Tickers finds its fetch-keeping partitions
  // among the side topics).
  bool one_per_broker = false;
};

// The side topics' partitions (inventory.events, notifications.high and .low)
// beside `partitions` for orders.events: a sixth, at least one. They carry a
// third of the records per order, and librdkafka 2.0.2 sends one partition per
// produce request, so a batch's outputs cost a request per partition they
// touch: one partition each instead of six cut orderflow's CPU per order by
// ~17 % and the broker's by ~30 % at 500 orders/s (docs/benchmarks.md, "Fewer
// partitions on the side topics"). The price is scale-out: one instance reads
// each partition. Existing topics keep their counts (ProvisionTopics).
int SideTopicPartitions(int partitions);

// Every topic orderflow uses: orders.events with `partitions`, the side topics
// with SideTopicPartitions(partitions) but at least one per broker, the DLQ
// with one.
std::vector<TopicSpec> DefaultTopics(int partitions = kDefaultPartitions);

// `spec` as created on a cluster of `brokers`: its partitions raised to one
// per broker where it asks for that (TopicSpec::one_per_broker), which is then
// settled.
TopicSpec OnCluster(TopicSpec spec, int brokers);

// Whether `topic` is an event topic: part of the system of record, kept forever
// (orders.events, inventory.events, orders.dlq), unlike the notification queues.
bool IsEventTopic(const std::string& topic);

// Makes sure each topic exists on a real cluster: creates the missing ones with
// the admin API, with the partitions OnCluster gives, replication factor
// min(spec, brokers in the cluster), min.insync.replicas=2 at factor 3, and
// retention.ms=-1 on event topics. An existing orders.events or
// inventory.events whose retention is finite or whose cleanup.policy compacts
// is refused (kFailedPrecondition naming the topic and the config to change):
// replay from offset zero needs the whole log.
// Brokers without the CreateTopics API (the embedded broker) pass when the
// topics already exist. Names are taken without config.topic_prefix. Idempotent.
Status ProvisionTopics(const KafkaConfig& config, const std::vector<TopicSpec>& topics,
                       std::chrono::milliseconds timeout);

struct PartitionInfo {
  int32_t partition = 0;
  int32_t leader = -1;  // broker id, -1 when none
  std::vector<int32_t> replicas;
  std::vector<int32_t> isr;
  Watermarks offsets;  // log start and end
};

struct TopicInfo {
  std::string name;  // without the prefix
  std::vector<PartitionInfo> partitions;
  // Every config the broker reports (retention.ms, cleanup.policy, min.insync.replicas, ...);
  // empty where the broker has no DescribeConfigs (the embedded broker).
  std::vector<std::pair<std::string, std::string>> configs;
  std::string Config(const std::string& name) const;  // "" if absent
};

// Partitions, leaders, replicas, ISR, log start/end and configs of `topics`.
// Errors: kNotFound for a topic the cluster lacks, kUnavailable on timeout.
Result<std::vector<TopicInfo>> DescribeTopics(const KafkaConfig& config, const std::vector<std::string>& topics,
                                              std::chrono::milliseconds timeout);

// One partition of a consumer group: what it committed and where the log ends.
struct GroupPartitionLag {
  std::string group;  // without the prefix
  TopicPartition tp;
  int64_t committed = -1;  // -1: the group has committed nothing for it
  int64_t end = 0;
  int64_t lag() const { return committed < 0 ? end : end - committed; }
};

// Reads one consumer group's committed offsets (OffsetFetch) without joining
// the group, so its members are undisturbed. One handle, kept: cheap to ask
// again. Thread-safe.
class GroupOffsets {
 public:
  static Result<std::unique_ptr<GroupOffsets>> Create(const KafkaConfig& config, const std::string& group);
  ~GroupOffsets();
  GroupOffsets(const GroupOffsets&) = delete;
  GroupOffsets& operator=(const GroupOffsets&) = delete;

  // The next offset the group will read, per partition; -1 where it has
  // committed nothing. kUnavailable when the coordinator does not answer in time.
  Result<std::map<TopicPartition, int64_t>> Committed(const std::vector<TopicPartition>& partitions,
                                                      std::chrono::milliseconds timeout) const;
  const std::string& group() const { return group_; }

 private:
  GroupOffsets(KafkaConfig config, std::string group, KafkaHandle rk);
  KafkaConfig config_;
  std::string group_;
  KafkaHandle rk_;
};

// Committed offset, log end and lag of each group in `groups` (group id -> the
// topics it reads), for every partition of those topics.
Result<std::vector<GroupPartitionLag>> GroupLag(const KafkaConfig& config,
                                                const std::vector<std::pair<std::string, std::vector<std::string>>>& groups,
                                                std::chrono::milliseconds timeout);

// The rows of the groups a deployment runs: those that committed anything. A
// group that never did belongs to services it does not run (fulfillment, or
// the four it hosts: not both), or to one that has not committed yet. (Live
// members would tell those apart, but on the embedded broker a
// DescribeConsumerGroups did not answer within a minute, and librdkafka's
// ListGroups makes it drop the connection.) A group whose members are gone
// keeps its commits, and its lag.
std::vector<GroupPartitionLag> GroupsInUse(std::vector<GroupPartitionLag> rows);

}  // namespace orderflow::eventstore

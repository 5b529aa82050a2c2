#include "eventstore/topics.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "eventstore/backoff.h"
#include "eventstore/kafka_internal.h"

namespace orderflow::eventstore {

int SideTopicPartitions(int partitions) { return std::max(1, partitions / 6); }

TopicSpec OnCluster(TopicSpec spec, int brokers) {
  if (spec.one_per_broker) spec.partitions = std::max(spec.partitions, brokers);
  spec.one_per_broker = false;
  return spec;
}

std::vector<TopicSpec> DefaultTopics(int partitions) {
  const int side = SideTopicPartitions(partitions);
  return {{.name = kOrdersTopic, .partitions = partitions},
          {.name = kInventoryTopic, .partitions = side, .one_per_broker = true},
          {.name = kNotificationsHighTopic, .partitions = side, .one_per_broker = true},
          {.name = kNotificationsLowTopic, .partitions = side, .one_per_broker = true},
          {.name = kDeadLetterTopic, .partitions = 1}};
}

bool IsEventTopic(const std::string& topic) {
  return topic == kOrdersTopic || topic == kInventoryTopic || topic == kDeadLetterTopic;
}

std::string TopicInfo::Config(const std::string& name) const {
  for (const auto& [k, v] : configs) {
    if (k == name) return v;
  }
  return "";
}

namespace {

using MetadataPtr = std::unique_ptr<const rd_kafka_metadata_t, void (*)(const rd_kafka_metadata_t*)>;

Result<MetadataPtr> Metadata(rd_kafka_t* rk, std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &md, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(err, "cluster metadata");
  return MetadataPtr(md, rd_kafka_metadata_destroy);
}

const rd_kafka_metadata_topic_t* FindTopic(const rd_kafka_metadata_t& md, const std::string& name) {
  for (int i = 0; i < md.topic_cnt; ++i) {
    if (name == md.topics[i].topic && md.topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) return &md.topics[i];
  }
  return nullptr;
}

Result<KafkaHandle> AdminClient(const KafkaConfig& config) {
  Status status;
  rd_kafka_conf_t* conf = internal::MakeConf(config, "orderflow-admin", {}, &status);
  if (conf == nullptr) return status;
  char errstr[512];
  rd_kafka_t* raw = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (raw == nullptr) {
    rd_kafka_conf_destroy(conf);
    return Status::InvalidArgument(std::string("cannot create Kafka admin client: ") + errstr);
  }
  return KafkaHandle(raw);
}

// Every config of each named topic (cluster names), by DescribeConfigs. A
// broker without that API (the embedded one) yields an empty map.
Result<std::map<std::string, std::vector<std::pair<std::string, std::string>>>> TopicConfigsOnce(
    rd_kafka_t* rk, const std::vector<std::string>& names, std::chrono::milliseconds timeout) {
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> out;
  if (names.empty()) return out;
  std::vector<rd_kafka_ConfigResource_t*> resources;
  for (const auto& n : names) resources.push_back(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, n.c_str()));
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
  char errstr[256];
  rd_kafka_AdminOptions_set_request_timeout(options, static_cast<int>(timeout.count()), errstr, sizeof errstr);
  rd_kafka_DescribeConfigs(rk, resources.data(), resources.size(), options, queue);
  // librdkafka should answer every admin request, with __TIMED_OUT at the
  // latest when the request's timeout passes; its timers run about once a
  // second, and a busy machine delays them more (a 1 s margin ran out under
  // ASan), so wait well past the timeout for that answer. Once, under ASan on
  // a loaded machine, no answer came even 10 s after it (the embedded broker,
  // which has no DescribeConfigs): handled as __TIMED_OUT is, unchecked, but
  // with a warning.
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, static_cast<int>(timeout.count()) + 10'000);
  Status result;
  if (ev == nullptr) {
    spdlog::warn("the brokers did not describe the configs of {} topic(s) within {} ms: their retention is not "
                 "checked",
                 names.size(), timeout.count());
  } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    const auto err = rd_kafka_event_error(ev);
    // The embedded broker answers no DescribeConfigs: nothing to check there.
    if (err != RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE && err != RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION &&
        err != RD_KAFKA_RESP_ERR__TIMED_OUT) {
      result = KafkaError(err, "describe topic configs");
    }
  } else if (const rd_kafka_DescribeConfigs_result_t* res = rd_kafka_event_DescribeConfigs_result(ev)) {
    size_t cnt = 0;
    const rd_kafka_ConfigResource_t** described = rd_kafka_DescribeConfigs_result_resources(res, &cnt);
    for (size_t i = 0; i < cnt; ++i) {
      if (rd_kafka_ConfigResource_error(described[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        result = KafkaError(rd_kafka_ConfigResource_error(described[i]),
                            std::string("configs of topic ") + rd_kafka_ConfigResource_name(described[i]));
        break;
      }
      auto& configs = out[rd_kafka_ConfigResource_name(described[i])];
      size_t n = 0;
      const rd_kafka_ConfigEntry_t** entries = rd_kafka_ConfigResource_configs(described[i], &n);
      for (size_t j = 0; j < n; ++j) {
        const char* value = rd_kafka_ConfigEntry_value(entries[j]);
        configs.emplace_back(rd_kafka_ConfigEntry_name(entries[j]), value ? value : "");
      }
    }
  }
  if (ev != nullptr) rd_kafka_event_destroy(ev);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_queue_destroy(queue);
  rd_kafka_ConfigResource_destroy_array(resources.data(), resources.size());
  if (!result.ok()) return result;
  return out;
}

// As TopicConfigsOnce; a topic created a moment ago may be unknown to the
// broker asked, so "unknown topic" is asked again for up to 3 s.
Result<std::map<std::string, std::vector<std::pair<std::string, std::string>>>> TopicConfigs(
    const Clock& clock, rd_kafka_t* rk, const std::vector<std::string>& names, std::chrono::milliseconds timeout) {
  auto configs = TopicConfigsOnce(rk, names, timeout);
  RetryFor(clock, std::chrono::seconds(3), std::chrono::milliseconds(200), [&] {
    if (configs.ok() || configs.status().code() != StatusCode::kNotFound) return true;
    configs = TopicConfigsOnce(rk, names, timeout);
    return false;
  });
  return configs;
}

// orderflow replays its event topics from offset zero: a topic that deletes or
// compacts records would lose the history.
Status CheckKeepsEverything(const std::string& topic, const std::string& cluster_name,
                            const std::vector<std::pair<std::string, std::string>>& configs) {
  for (const auto& [k, v] : configs) {
    const bool finite = (k == "retention.ms" || k == "retention.bytes") && v != "-1";
    const bool compacts = k == "cleanup.policy" && v.find("compact") != std::string::npos;
    if (finite || compacts) {
      return Status::FailedPrecondition(
          "topic " + cluster_name + " has " + k + "=" + v + ", but orderflow replays " + topic +
          " from offset zero and needs every record kept; set retention.ms=-1, retention.bytes=-1 and "
          "cleanup.policy=delete on it (kafka-configs --alter --entity-type topics --entity-name " + cluster_name +
          " --add-config retention.ms=-1,retention.bytes=-1,cleanup.policy=delete)");
    }
  }
  return Status::Ok();
}

}  // namespace

Status ProvisionTopics(const KafkaConfig& config, const std::vector<TopicSpec>& topics,
                       std::chrono::milliseconds timeout) {
  auto admin = AdminClient(config);
  if (!admin.ok()) return admin.status();
  rd_kafka_t* rk = admin->get();
  auto md = Metadata(rk, timeout);
  if (!md.ok()) return md.status();
  const int brokers = std::max(1, (*md)->broker_cnt);
  std::vector<TopicSpec> missing;
  std::vector<std::string> existing_event_topics;
  for (const TopicSpec& spec : topics) {
    const std::string name = ClusterName(config, spec.name);
    if (FindTopic(**md, name) == nullptr) {
      missing.push_back(OnCluster(spec, brokers));
    } else if (spec.name == kOrdersTopic || spec.name == kInventoryTopic) {
      existing_event_topics.push_back(name);
    }
  }
  auto configs = TopicConfigs(*config.clock, rk, existing_event_topics, timeout);
  if (!configs.ok()) return configs.status();
  for (const auto& [name, entries] : *configs) {
    ORDERFLOW_RETURN_IF_ERROR(CheckKeepsEverything(name.substr(config.topic_prefix.size()), name, entries));
  }
  if (missing.empty()) return Status::Ok();

  char errstr[512];
  std::vector<rd_kafka_NewTopic_t*> new_topics;
  auto destroy_new = [&] { rd_kafka_NewTopic_destroy_array(new_topics.data(), new_topics.size()); };
  for (const TopicSpec& spec : missing) {
    const int rf = std::min(spec.replication_factor, brokers);
    const std::string name = ClusterName(config, spec.name);
    rd_kafka_NewTopic_t* t = rd_kafka_NewTopic_new(name.c_str(), spec.partitions, rf, errstr, sizeof errstr);
    if (t == nullptr) {
      destroy_new();
      return Status::InvalidArgument("topic " + name + ": " + errstr);
    }
    new_topics.push_back(t);
    if (IsEventTopic(spec.name)) {  // the log is the system of record
      rd_kafka_NewTopic_set_config(t, "retention.ms", "-1");
      rd_kafka_NewTopic_set_config(t, "retention.bytes", "-1");
      rd_kafka_NewTopic_set_config(t, "cleanup.policy", "delete");
    }
    // Acknowledged (acks=all) means on two replicas: one broker may die without loss.
    if (rf >= 3) rd_kafka_NewTopic_set_config(t, "min.insync.replicas", "2");
    if (rf < 3 && brokers > 1) {
      spdlog::warn("creating {} with replication factor {}: the cluster lists only {} brokers now (one still "
                   "starting?); kafka-reassign-partitions can raise it later",
                   name, rf, brokers);
    }
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, new_topics.data(), new_topics.size(), nullptr, queue);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, static_cast<int>(timeout.count()));
  Status result = Status::Ok();
  if (ev == nullptr) {
    result = Status::Unavailable("creating topics timed out");
  } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    result = KafkaError(rd_kafka_event_error(ev), "create topics");
  } else if (const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev)) {
    size_t cnt = 0;
    const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(res, &cnt);
    for (size_t i = 0; i < cnt && result.ok(); ++i) {
      rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        const char* msg = rd_kafka_topic_result_error_string(results[i]);
        result = KafkaError(err, std::string("create topic ") + rd_kafka_topic_result_name(results[i]) +
                                     (msg ? std::string(" (") + msg + ")" : ""));
      }
    }
  }
  if (ev != nullptr) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(queue);
  destroy_new();
  if (!result.ok()) {
    // Brokers without the admin API: the topics may still have been made another way.
    auto again = Metadata(rk, timeout);
    bool all = again.ok();
    for (const TopicSpec& spec : topics) all = all && FindTopic(**again, ClusterName(config, spec.name)) != nullptr;
    if (all) return Status::Ok();
    return Status(result.code(), result.message() + " (create the topics on the cluster, or start `orderflow broker`)");
  }
  for (const TopicSpec& spec : missing) {
    spdlog::info("created topic {} ({} partitions, replication factor {})", ClusterName(config, spec.name),
                 spec.partitions, std::min(spec.replication_factor, brokers));
  }
  // CreateTopics returns before every broker knows the new partitions' leaders:
  // wait until the metadata names one for each, so the first fetch or
  // watermark query does not fail with "not leader".
  const bool led = RetryFor(*config.clock, timeout, std::chrono::milliseconds(100), [&] {
    auto now = Metadata(rk, timeout);
    bool ready = now.ok();
    for (const TopicSpec& spec : missing) {
      if (!ready) break;
      const rd_kafka_metadata_topic_t* t = FindTopic(**now, ClusterName(config, spec.name));
      ready = t != nullptr && t->partition_cnt == spec.partitions;
      for (int i = 0; ready && i < t->partition_cnt; ++i) ready = t->partitions[i].leader >= 0;
    }
    return ready;
  });
  if (led) return Status::Ok();
  return Status::Unavailable("created topics have no leader after " + std::to_string(timeout.count()) + " ms");
}

Result<std::vector<TopicInfo>> DescribeTopics(const KafkaConfig& config, const std::vector<std::string>& topics,
                                              std::chrono::milliseconds timeout) {
  auto admin = AdminClient(config);
  if (!admin.ok()) return admin.status();
  std::vector<std::string> names;
  for (const auto& t : topics) names.push_back(ClusterName(config, t));
  // Brokers learn a new topic one by one: ask again for up to 3 s before
  // calling one missing (as Reader::PartitionCount does).
  auto md = Metadata(admin->get(), timeout);
  RetryFor(*config.clock, std::chrono::seconds(3), std::chrono::milliseconds(100), [&] {
    if (!md.ok() || std::all_of(names.begin(), names.end(),
                                [&](const std::string& n) { return FindTopic(**md, n) != nullptr; })) {
      return true;
    }
    md = Metadata(admin->get(), timeout);
    return false;
  });
  if (!md.ok()) return md.status();
  for (const auto& name : names) {
    if (FindTopic(**md, name) == nullptr) {
      return Status::NotFound("topic " + name + " does not exist; `orderflow up --brokers ...` creates orderflow's topics");
    }
  }
  auto configs = TopicConfigs(*config.clock, admin->get(), names, timeout);
  if (!configs.ok()) return configs.status();
  auto reader = Reader::Create(config, "orderflow-topics");
  if (!reader.ok()) return reader.status();
  std::vector<TopicInfo> out;
  for (const auto& topic : topics) {
    const std::string name = ClusterName(config, topic);
    const rd_kafka_metadata_topic_t* t = FindTopic(**md, name);
    if (t == nullptr) {
      return Status::NotFound("topic " + name + " does not exist; `orderflow up --brokers ...` creates orderflow's topics");
    }
    TopicInfo info;
    info.name = topic;
    if (configs->count(name)) info.configs = configs->at(name);
    for (int i = 0; i < t->partition_cnt; ++i) {
      const rd_kafka_metadata_partition_t& p = t->partitions[i];
      PartitionInfo pi;
      pi.partition = p.id;
      pi.leader = p.leader;
      pi.replicas.assign(p.replicas, p.replicas + p.replica_cnt);
      pi.isr.assign(p.isrs, p.isrs + p.isr_cnt);
      auto w = (*reader)->QueryWatermarks({topic, p.id}, timeout);
      // The broker asked may not know a topic created a moment ago yet
      // ("unknown partition"): ask again for up to 3 s, as for the metadata.
      RetryFor(*config.clock, std::chrono::seconds(3), std::chrono::milliseconds(100), [&] {
        if (w.ok() || w.status().code() != StatusCode::kNotFound) return true;
        w = (*reader)->QueryWatermarks({topic, p.id}, timeout);
        return false;
      });
      if (!w.ok()) return w.status();
      pi.offsets = *w;
      info.partitions.push_back(std::move(pi));
    }
    std::sort(info.partitions.begin(), info.partitions.end(),
              [](const PartitionInfo& a, const PartitionInfo& b) { return a.partition < b.partition; });
    out.push_back(std::move(info));
  }
  return out;
}

GroupOffsets::GroupOffsets(KafkaConfig config, std::string group, KafkaHandle rk)
    : config_(std::move(config)), group_(std::move(group)), rk_(std::move(rk)) {}

GroupOffsets::~GroupOffsets() {
  if (rk_) rd_kafka_consumer_close(rk_.get());
}

Result<std::unique_ptr<GroupOffsets>> GroupOffsets::Create(const KafkaConfig& config, const std::string& group) {
  // A consumer with the group's id that never subscribes: it only fetches the
  // group's committed offsets.
  Status status;
  rd_kafka_conf_t* conf = internal::MakeConf(
      config, "orderflow-offsets", {{"group.id", ClusterName(config, group)}, {"enable.auto.commit", "false"}}, &status);
  if (conf == nullptr) return status;
  char errstr[512];
  rd_kafka_t* raw = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (raw == nullptr) {
    rd_kafka_conf_destroy(conf);
    return Status::InvalidArgument(std::string("cannot create Kafka consumer: ") + errstr);
  }
  return std::unique_ptr<GroupOffsets>(new GroupOffsets(config, group, KafkaHandle(raw)));
}

Result<std::map<TopicPartition, int64_t>> GroupOffsets::Committed(const std::vector<TopicPartition>& partitions,
                                                                  std::chrono::milliseconds timeout) const {
  std::unique_ptr<rd_kafka_topic_partition_list_t, void (*)(rd_kafka_topic_partition_list_t*)> list(
      rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())), rd_kafka_topic_partition_list_destroy);
  for (const auto& tp : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), ClusterName(config_, tp.topic).c_str(), tp.partition);
  }
  rd_kafka_resp_err_t err = rd_kafka_committed(rk_.get(), list.get(), static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaError(err, "committed offsets of group " + ClusterName(config_, group_));
  }
  std::map<TopicPartition, int64_t> out;
  for (int i = 0; i < list->cnt; ++i) {
    out[partitions[static_cast<size_t>(i)]] = list->elems[i].offset >= 0 ? list->elems[i].offset : -1;
  }
  return out;
}

std::vector<GroupPartitionLag> GroupsInUse(std::vector<GroupPartitionLag> rows) {
  std::set<std::string> used;
  for (const auto& r : rows) {
    if (r.committed >= 0) used.insert(r.group);
  }
  std::erase_if(rows, [&](const GroupPartitionLag& r) { return !used.count(r.group); });
  return rows;
}

Result<std::vector<GroupPartitionLag>> GroupLag(const KafkaConfig& config,
                                                const std::vector<std::pair<std::string, std::vector<std::string>>>& groups,
                                                std::chrono::milliseconds timeout) {
  auto reader = Reader::Create(config, "orderflow-lag");
  if (!reader.ok()) return reader.status();
  std::map<std::string, int32_t> partition_counts;
  std::vector<GroupPartitionLag> out;
  for (const auto& [group, topics] : groups) {
    std::vector<TopicPartition> partitions;
    for (const auto& topic : topics) {
      if (!partition_counts.count(topic)) {
        auto n = (*reader)->PartitionCount(topic, timeout);
        if (!n.ok()) return n.status();
        partition_counts[topic] = *n;
      }
      for (int32_t p = 0; p < partition_counts[topic]; ++p) partitions.push_back({topic, p});
    }
    auto offsets = GroupOffsets::Create(config, group);
    if (!offsets.ok()) return offsets.status();
    auto committed = (*offsets)->Committed(partitions, timeout);
    if (!committed.ok()) return committed.status();
    for (const auto& tp : partitions) {
      auto w = (*reader)->QueryWatermarks(tp, timeout);
      if (!w.ok()) return w.status();
      out.push_back({group, tp, committed->at(tp), w->high});
    }
  }
  return out;
}

}  // namespace orderflow::eventstore

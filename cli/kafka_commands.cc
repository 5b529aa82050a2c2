#include "cli/commands.h"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "eventstore/topics.h"
#include "services/lifecycle/lifecycle.h"

namespace po = boost::program_options;
using nlohmann::json;

namespace orderflow::cli {
namespace {

constexpr auto kAdminTimeout = std::chrono::seconds(10);

std::string Join(const std::vector<int32_t>& ids) {
  std::string out;
  for (int32_t id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
  return out;
}

}  // namespace

Result<int> CmdTopics(const std::vector<std::string>& args) {
  Parsed p;
  ORDERFLOW_RETURN_IF_ERROR(Parse(args, "orderflow topics --brokers LIST [--json]\n\n"
                   "Shows each of orderflow's topics on the cluster: per partition the leader, replicas, in-sync\n"
                   "replicas and log start/end offsets, and the topic's retention and cleanup policy.",
             {}, {}, p));
  if (p.common.help) return 0;
  ORDERFLOW_ASSIGN_OR_RETURN(const auto kafka, KafkaFrom(p.common, true));
  std::vector<std::string> names;
  for (const auto& spec : eventstore::DefaultTopics()) names.push_back(spec.name);
  auto topics = eventstore::DescribeTopics(kafka, names, kAdminTimeout);
  if (!topics.ok()) return Fail(topics.status());
  if (p.common.json) {
    json out = json::array();
    for (const auto& t : *topics) {
      json configs = json::object();
      for (const auto& [k, v] : t.configs) configs[k] = v;
      json partitions = json::array();
      for (const auto& pi : t.partitions) {
        partitions.push_back({{"partition", pi.partition},
                              {"leader", pi.leader},
                              {"replicas", pi.replicas},
                              {"isr", pi.isr},
                              {"log_start", pi.offsets.low},
                              {"log_end", pi.offsets.high}});
      }
      out.push_back({{"topic", t.name},
                     {"name_on_cluster", kafka.topic_prefix + t.name},
                     {"partitions", partitions},
                     {"configs", configs}});
    }
    PrintJson(out);
    return 0;
  }
  for (const auto& t : *topics) {
    int64_t records = 0;
    for (const auto& pi : t.partitions) records += pi.offsets.high - pi.offsets.low;
    const std::string retention = t.Config("retention.ms");
    std::printf("%s%s: %zu partitions, %lld records, retention.ms %s, cleanup.policy %s, min.insync.replicas %s\n",
                kafka.topic_prefix.c_str(), t.name.c_str(), t.partitions.size(), static_cast<long long>(records),
                retention.empty() ? "?" : retention.c_str(),
                t.Config("cleanup.policy").empty() ? "?" : t.Config("cleanup.policy").c_str(),
                t.Config("min.insync.replicas").empty() ? "?" : t.Config("min.insync.replicas").c_str());
    for (const auto& pi : t.partitions) {
      std::printf("  %3d  leader %d  replicas %s  isr %s  offsets %lld..%lld\n", pi.partition, pi.leader,
                  Join(pi.replicas).c_str(), Join(pi.isr).c_str(), static_cast<long long>(pi.offsets.low),
                  static_cast<long long>(pi.offsets.high));
    }
  }
  if (!topics->empty() && topics->front().configs.empty()) {
    std::cerr << "orderflow topics: this broker does not describe topic configs (the embedded broker keeps no"
                 " retention settings)\n";
  }
  return 0;
}

Result<int> CmdLag(const std::vector<std::string>& args) {
  std::vector<std::string> only;
  po::options_description specific("Options");
  specific.add_options()("group", po::value(&only)->composing()->value_name("GROUP"),
                         "only this consumer group (repeatable), e.g. orderflow-payment");
  Parsed p;
  ORDERFLOW_RETURN_IF_ERROR(Parse(args, "orderflow lag --brokers LIST [--group GROUP ...] [--json]\n\n"
                   "Shows, per consumer group of orderflow's services and projector and per partition, the offset\n"
                   "the group committed, the end of the log and the lag between them. Services commit these\n"
                   "offsets after their own local commit, as information only: their RocksDB store is the truth.\n"
                   "Groups that committed nothing (services this deployment does not run) are left out unless\n"
                   "named with --group.",
             specific, {}, p));
  if (p.common.help) return 0;
  ORDERFLOW_ASSIGN_OR_RETURN(const auto kafka, KafkaFrom(p.common, true));
  auto groups = services::ConsumerGroups();
  if (!only.empty()) {
    std::erase_if(groups, [&](const auto& g) { return std::find(only.begin(), only.end(), g.first) == only.end(); });
    if (groups.size() != only.size()) {
      std::string known;
      for (const auto& g : services::ConsumerGroups()) known += (known.empty() ? "" : ", ") + g.first;
      return Usage("unknown --group; orderflow's groups are " + known);
    }
  }
  auto rows = eventstore::GroupLag(kafka, groups, kAdminTimeout);
  if (!rows.ok()) return Fail(rows.status());
  if (only.empty()) *rows = eventstore::GroupsInUse(std::move(rows).value());
  if (p.common.json) {
    json out = json::array();
    for (const auto& r : *rows) {
      out.push_back({{"group", r.group},
                     {"topic", r.tp.topic},
                     {"partition", r.tp.partition},
                     {"committed", r.committed < 0 ? json(nullptr) : json(r.committed)},
                     {"log_end", r.end},
                     {"lag", r.lag()}});
    }
    PrintJson(out);
    return 0;
  }
  std::printf("%-26s %-20s %4s %12s %12s %10s\n", "GROUP", "TOPIC", "PART", "COMMITTED", "LOG-END", "LAG");
  int64_t total = 0;
  for (const auto& r : *rows) {
    std::printf("%-26s %-20s %4d %12s %12lld %10lld\n", (kafka.topic_prefix + r.group).c_str(), r.tp.topic.c_str(),
                r.tp.partition, r.committed < 0 ? "-" : std::to_string(r.committed).c_str(),
                static_cast<long long>(r.end), static_cast<long long>(r.lag()));
    total += r.lag();
  }
  std::printf("total lag: %lld\n", static_cast<long long>(total));
  return 0;
}

}  // namespace orderflow::cli

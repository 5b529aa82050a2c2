#include "cli/commands.h"

#include <spdlog/spdlog.h>

#include <boost/program_options.hpp>
#include <iostream>

#include "cli/common.h"
#include "eventstore/embedded_broker.h"
#include "eventstore/topics.h"

namespace po = boost::program_options;

namespace orderflow::cli {

Result<int> CmdBroker(const std::vector<std::string>& args) {
  po::options_description d("broker options");
  int partitions = eventstore::kEmbeddedPartitions;
  int brokers = 3;
  d.add_options()("partitions", po::value(&partitions)->default_value(partitions),
                  "partitions of orders.events (inventory.events and notifications.*: a sixth, at least one "
                  "per broker)")(
      "broker-count", po::value(&brokers)->default_value(brokers), "mock brokers in the cluster");
  Parsed p;
  ORDERFLOW_RETURN_IF_ERROR(Parse(args, "orderflow broker [--partitions N]\n\n"
                   "Runs the embedded Kafka-protocol broker (librdkafka's mock cluster) until SIGINT/SIGTERM.\n"
                   "The first line on stdout is its bootstrap list. Data lives in memory only.",
             d, {}, p, "info"));
  if (p.common.help) return 0;
  if (brokers < 1 || brokers > 16) return Usage("--broker-count must be from 1 to 16");
  if (partitions < 1 || partitions > 1000) return Usage("--partitions must be between 1 and 1000");
  auto broker = eventstore::EmbeddedBroker::Start(brokers);
  if (!broker.ok()) return Fail(broker.status());
  Status created = (*broker)->CreateTopics(eventstore::DefaultTopics(partitions));
  if (!created.ok()) return Fail(created);
  std::cout << (*broker)->bootstraps() << std::endl;
  spdlog::info("embedded broker up: {} brokers, topics with {} partitions; Ctrl-C to stop", brokers, partitions);
  WaitForStop(g_stop.get_token());
  spdlog::info("embedded broker stopping");
  return 0;
}

}  // namespace orderflow::cli

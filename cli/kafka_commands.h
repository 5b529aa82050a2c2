// `orderflow topics` and `orderflow lag`: the cluster as operators see it.
#pragma once

#include <string>
#include <vector>

namespace orderflow::cli {

// orderflow topics [--json]: partitions, leader, replicas, ISR, log start/end
// and retention of each of orderflow's topics.
int CmdTopics(const std::vector<std::string>& args);

// orderflow lag [--json] [--group G]: per consumer group and partition, the
// committed offset, the log end and the lag.
int CmdLag(const std::vector<std::string>& args);

}  // namespace orderflow::cli

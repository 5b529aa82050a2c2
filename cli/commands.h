// The orderflow commands, one function each: `args` are the arguments after
// the command name. Each returns its exit code (0 done, 1 the operation
// failed, with one line on stderr), or an error for main.cc to print: a Usage
// error exits 2 with a pointer to --help, any other 1.
#pragma once

#include <string>
#include <vector>

#include "domain/status.h"

namespace orderflow::cli {

// orderflow up: the services and the projector, on the embedded broker unless
// --brokers; until SIGINT/SIGTERM or, with --exit-when-done, the simulation's end.
Result<int> CmdUp(const std::vector<std::string>& args);

// orderflow broker: the embedded Kafka-protocol broker until SIGINT/SIGTERM.
Result<int> CmdBroker(const std::vector<std::string>& args);

// orderflow service NAME: one service as its own process, until SIGINT/SIGTERM
// (a clean stop: the batch in flight finishes, every thread is joined).
Result<int> CmdService(const std::vector<std::string>& args);

// orderflow stock add SKU QTY: a StockAdded event on inventory.events.
Result<int> CmdStock(const std::vector<std::string>& args);

// orderflow snapshot create|list|restore|delete: snapshots of the projections.
Result<int> CmdSnapshot(const std::vector<std::string>& args);

// orderflow analytics: revenue, orders by status, top SKUs, orders per hour.
Result<int> CmdAnalytics(const std::vector<std::string>& args);

// orderflow order place|get|cancel|list.
Result<int> CmdOrder(const std::vector<std::string>& args);

// orderflow history ID: an order's event timeline from the local store.
Result<int> CmdHistory(const std::vector<std::string>& args);

// orderflow dlq list|show|redrive: the dead letters on orders.dlq.
Result<int> CmdDlq(const std::vector<std::string>& args);

// orderflow log export|import FILE: the log to a file and back.
Result<int> CmdLog(const std::vector<std::string>& args);

// orderflow catalog: the catalog of --catalog, or the demo one.
Result<int> CmdCatalog(const std::vector<std::string>& args);

// orderflow replay: rebuild the projections from offset zero (or a snapshot).
Result<int> CmdReplay(const std::vector<std::string>& args);

// orderflow digest: the state digest of a data directory.
Result<int> CmdDigest(const std::vector<std::string>& args);

// orderflow topics [--json]: partitions, leader, replicas, ISR, log start/end
// and retention of each of orderflow's topics.
Result<int> CmdTopics(const std::vector<std::string>& args);

// orderflow lag [--json] [--group G]: per consumer group and partition, the
// committed offset, the log end and the lag.
Result<int> CmdLag(const std::vector<std::string>& args);

// orderflow check --brokers LIST [--outbox FILE ...] [--json]; exit 1 when an
// invariant is broken.
Result<int> CmdCheck(const std::vector<std::string>& args);

}  // namespace orderflow::cli

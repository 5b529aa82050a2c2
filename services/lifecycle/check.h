// The invariant checker: reads orders.events and inventory.events from offset
// zero, and the notification outboxes, and reports what a correct run never
// shows. `orderflow check` prints it; the chaos tests assert on it.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "domain/catalog.h"
#include "domain/status.h"
#include "eventstore/kafka.h"

namespace orderflow::services {

struct CheckOptions {
  eventstore::KafkaConfig kafka;
  // Outbox files (`<data-dir>/outbox.log` of each notification instance).
  std::vector<std::string> outboxes;
  std::chrono::milliseconds timeout{60000};  // for reading the log to its end
};

struct CheckReport {
  uint64_t orders = 0;
  uint64_t events = 0;           // distinct events on orders.events
  uint64_t duplicate_events = 0;  // records whose event id was already in the log
  std::map<std::string, uint64_t> duplicates_by_type;  // the same, per event type ("NotificationSent")
  std::map<std::string, uint64_t> by_status;
  std::vector<std::string> not_terminal;                  // order ids
  std::vector<std::string> refunded_twice;                // more than one PaymentRefunded
  std::vector<std::string> paid_cancelled_unrefunded;     // cancelled after payment, no refund
  std::vector<std::string> refunded_delivered;            // delivered and refunded
  std::map<std::string, std::pair<int64_t, int64_t>> oversold;  // SKU -> (units shipped, stock there was)
  // SKU -> the orders whose shipment went past its stock, in the order read
  // (their OrderShipped events), the first of them the one that crossed it.
  std::map<std::string, std::vector<std::string>> oversold_orders;
  std::map<std::string, uint64_t> notifications_sent_in_log;    // NotificationSent per notification id
  uint64_t outbox_lines = 0;
  std::map<std::string, int> notifications_repeated;  // id -> lines across all outboxes, where > 1
  std::map<std::string, std::string> notifications_repeated_orders;  // the same ids -> their order (from the outbox line)
  // NotificationSent ids in the log that no given outbox holds (only counted when outboxes are given).
  uint64_t notifications_missing_from_outboxes = 0;

  // True when nothing above is wrong (duplicate events are allowed: consumers drop them).
  bool ok() const {
    return not_terminal.empty() && refunded_twice.empty() && paid_cancelled_unrefunded.empty() &&
           refunded_delivered.empty() && oversold.empty() && notifications_repeated.empty();
  }
};

// Reads the whole of orders.events and inventory.events (kept in memory: one
// OrderState per order) and the outboxes. `catalog` gives each SKU's initial
// stock; each StockAdded event adds to it once (by event id: a redriven one is
// in the log twice). Errors: kNotFound for a missing topic, kUnavailable when
// the log cannot be read to its end within the timeout.
Result<CheckReport> CheckLog(const CheckOptions& options, const domain::Catalog& catalog);

}  // namespace orderflow::services

#include "services/lifecycle/check.h"

#include <fstream>
#include <unordered_map>
#include <unordered_set>

#include "domain/events.h"
#include "domain/order.h"
#include "eventstore/codec.h"
#include "eventstore/topics.h"

namespace orderflow::services {
namespace {

// Calls `sink` for every decodable event of `topic`, from each partition's
// log start to the end the log had when the call began.
Status ReadTopic(const eventstore::KafkaConfig& kafka, const std::string& topic, std::chrono::milliseconds timeout,
                 const std::function<void(const domain::Event&)>& sink) {
  auto reader = eventstore::Reader::Create(kafka, "orderflow-check");
  if (!reader.ok()) return reader.status();
  auto partitions = (*reader)->PartitionCount(topic, std::chrono::seconds(10));
  if (!partitions.ok()) return partitions.status();
  std::vector<std::pair<eventstore::TopicPartition, int64_t>> positions;
  std::vector<eventstore::TopicPartition> all;
  std::map<eventstore::TopicPartition, int64_t> ends;
  for (int32_t p = 0; p < *partitions; ++p) {
    eventstore::TopicPartition tp{topic, p};
    auto w = (*reader)->QueryWatermarks(tp, std::chrono::seconds(10));
    if (!w.ok()) return w.status();
    if (w->high > w->low) {
      positions.emplace_back(tp, w->low);
      all.push_back(tp);
      ends[tp] = w->high;
    }
  }
  if (positions.empty()) return Status::Ok();
  ORDERFLOW_RETURN_IF_ERROR((*reader)->Assign(positions));
  const auto deadline = kafka.clock->Now() + timeout;
  for (;;) {
    auto records = (*reader)->Poll(10000, std::chrono::milliseconds(200));
    if (!records.ok()) return records.status();
    for (const auto& r : *records) {
      if (r.offset() >= ends[{std::string(r.topic()), r.partition()}]) continue;
      auto event = eventstore::DecodeEvent(r.value());
      if (event.ok()) sink(*event);  // undecodable records are the DLQ's business
    }
    if (records->empty()) {
      bool done = true;
      for (const auto& [tp, position] : (*reader)->Positions(all)) done = done && position >= ends[tp];
      if (done) return Status::Ok();
    }
    if (kafka.clock->Now() > deadline) {
      return Status::Unavailable("reading " + topic + " to its end took longer than " +
                                 std::to_string(timeout.count()) + " ms");
    }
  }
}

}  // namespace

Result<CheckReport> CheckLog(const CheckOptions& options, const domain::Catalog& catalog) {
  CheckReport report;
  std::unordered_map<std::string, domain::OrderState> orders;
  std::unordered_map<std::string, int> refunds;
  std::unordered_set<std::string> seen;
  std::vector<std::string> shipped_in_order;  // order ids, as their (first) OrderShipped was read
  ORDERFLOW_RETURN_IF_ERROR(ReadTopic(options.kafka, eventstore::kOrdersTopic, options.timeout, [&](const domain::Event& e) {
    if (!seen.insert(domain::UuidToString(e.id)).second) {
      ++report.duplicate_events;
      ++report.duplicates_by_type[std::string(domain::EventTypeName(e.payload))];
      return;
    }
    ++report.events;
    domain::OrderState& state = orders[e.order_id];
    domain::Apply(state, e);
    if (std::holds_alternative<domain::OrderShipped>(e.payload)) shipped_in_order.push_back(e.order_id);
    if (std::holds_alternative<domain::PaymentRefunded>(e.payload)) ++refunds[e.order_id];
    if (const auto* sent = std::get_if<domain::NotificationSent>(&e.payload)) {
      ++report.notifications_sent_in_log[sent->notification_id];
    }
  }));
  std::map<std::string, int64_t> stock;
  for (const auto& item : catalog.items()) stock[item.sku] = item.initial_stock;
  // An addition counts once, however often it is in the log (a redriven one
  // is there twice), as the inventory service applies it.
  std::unordered_set<std::string> additions;
  ORDERFLOW_RETURN_IF_ERROR(
      ReadTopic(options.kafka, eventstore::kInventoryTopic, options.timeout, [&](const domain::Event& e) {
        const auto* added = std::get_if<domain::StockAdded>(&e.payload);
        if (added != nullptr && additions.insert(domain::UuidToString(e.id)).second) {
          stock[added->sku] += added->quantity;
        }
      }));

  std::map<std::string, int64_t> shipped;
  for (const auto& [id, o] : orders) {
    if (o.status == domain::OrderStatus::kNone) continue;  // events of an order whose OrderPlaced is not in the log
    ++report.orders;
    ++report.by_status[std::string(domain::OrderStatusName(o.status))];
    if (!domain::IsTerminal(o.status)) report.not_terminal.push_back(id);
    const int n = refunds.count(id) ? refunds.at(id) : 0;
    if (n > 1) report.refunded_twice.push_back(id);
    if (o.status == domain::OrderStatus::kCancelled && o.paid_minor > 0 && n == 0) {
      report.paid_cancelled_unrefunded.push_back(id);
    }
    if (o.status == domain::OrderStatus::kDelivered) {
      if (n > 0) report.refunded_delivered.push_back(id);
    }
    if (o.status == domain::OrderStatus::kShipped || o.status == domain::OrderStatus::kDelivered) {
      for (const auto& l : o.lines) shipped[l.sku] += l.quantity;
    }
  }
  for (const auto& [sku, units] : shipped) {
    const int64_t had = stock.count(sku) ? stock.at(sku) : 0;
    if (units > had) report.oversold[sku] = {units, had};
  }
  // Name the orders: walk the shipments in the order read and list, per
  // oversold SKU, each order from the one whose units went past the stock.
  std::map<std::string, int64_t> running;
  for (const std::string& id : shipped_in_order) {
    const domain::OrderState& o = orders.at(id);
    if (o.status != domain::OrderStatus::kShipped && o.status != domain::OrderStatus::kDelivered) continue;
    for (const auto& l : o.lines) {
      auto over = report.oversold.find(l.sku);
      if (over == report.oversold.end()) continue;
      running[l.sku] += l.quantity;
      if (running[l.sku] > over->second.second) report.oversold_orders[l.sku].push_back(id);
    }
  }

  // An outbox line: recipient, template, order id, notification id (tab-separated).
  std::map<std::string, int> lines;
  std::map<std::string, std::string> order_of;
  for (const auto& path : options.outboxes) {
    std::ifstream in(path);
    if (!in) return Status::NotFound("outbox " + path + " cannot be read");
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      ++report.outbox_lines;
      const size_t last_tab = line.rfind('\t');
      const std::string id = line.substr(last_tab + 1);
      ++lines[id];
      if (last_tab != std::string::npos && last_tab > 0) {
        const size_t order_tab = line.rfind('\t', last_tab - 1);
        order_of[id] = line.substr(order_tab == std::string::npos ? 0 : order_tab + 1,
                                   last_tab - (order_tab == std::string::npos ? 0 : order_tab + 1));
      }
    }
  }
  for (const auto& [id, times] : lines) {
    if (times > 1) {
      report.notifications_repeated[id] = times;
      report.notifications_repeated_orders[id] = order_of.count(id) ? order_of.at(id) : "";
    }
  }
  if (!options.outboxes.empty()) {
    for (const auto& [id, n] : report.notifications_sent_in_log) {
      if (!lines.count(id)) ++report.notifications_missing_from_outboxes;
    }
  }
  return report;
}

}  // namespace orderflow::services

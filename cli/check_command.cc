#include "cli/commands.h"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "services/lifecycle/check.h"

namespace po = boost::program_options;
using nlohmann::json;

namespace orderflow::cli {
namespace {

// At most this many ids per list in the text output (JSON has them all).
constexpr size_t kShown = 10;

void PrintIds(const char* what, const std::vector<std::string>& ids) {
  if (ids.empty()) return;
  std::printf("PROBLEM %zu %s:", ids.size(), what);
  for (size_t i = 0; i < ids.size() && i < kShown; ++i) std::printf(" %s", ids[i].c_str());
  std::printf("%s\n", ids.size() > kShown ? " ..." : "");
}

}  // namespace

Result<int> CmdCheck(const std::vector<std::string>& args) {
  std::vector<std::string> outboxes;
  po::options_description specific("Options");
  specific.add_options()("outbox", po::value(&outboxes)->composing()->value_name("FILE"),
                         "a notification outbox (repeatable: every instance's <data-dir>/outbox.log)");
  Parsed p;
  ORDERFLOW_RETURN_IF_ERROR(Parse(args, "orderflow check --brokers LIST [--outbox FILE ...] [--catalog FILE] [--json]\n\n"
                   "Reads orders.events and inventory.events from offset zero and the given outboxes, and reports\n"
                   "orders that are not delivered or cancelled, SKUs shipped beyond their stock, orders refunded\n"
                   "twice, paid-and-cancelled orders without a refund, and notification ids written to the\n"
                   "outboxes more than once. Exit code 1 when any is found. Run it when the services are idle.",
             specific, {}, p));
  if (p.common.help) return 0;
  services::CheckOptions options;
  ORDERFLOW_ASSIGN_OR_RETURN(options.kafka, KafkaFrom(p.common, true));
  options.outboxes = outboxes;
  ORDERFLOW_ASSIGN_OR_RETURN(const auto catalog, LoadCatalog(p.common));
  auto report = services::CheckLog(options, catalog);
  if (!report.ok()) return Fail(report.status());
  const services::CheckReport& r = *report;
  if (p.common.json) {
    json oversold = json::object();
    for (const auto& [sku, v] : r.oversold) {
      oversold[sku] = {{"shipped", v.first},
                       {"stock", v.second},
                       {"orders", r.oversold_orders.count(sku) ? r.oversold_orders.at(sku) : std::vector<std::string>{}}};
    }
    json repeated = json::object();
    for (const auto& [id, n] : r.notifications_repeated) repeated[id] = n;
    json repeated_orders = json::object();
    for (const auto& [id, order] : r.notifications_repeated_orders) repeated_orders[id] = order;
    PrintJson({{"ok", r.ok()},
               {"orders", r.orders},
               {"events", r.events},
               {"duplicate_events", r.duplicate_events},
               {"duplicates_by_type", r.duplicates_by_type},
               {"orders_by_status", r.by_status},
               {"not_terminal", r.not_terminal},
               {"refunded_twice", r.refunded_twice},
               {"paid_cancelled_unrefunded", r.paid_cancelled_unrefunded},
               {"refunded_delivered", r.refunded_delivered},
               {"oversold", oversold},
               {"notifications_sent_in_log", r.notifications_sent_in_log.size()},
               {"outbox_lines", r.outbox_lines},
               {"notifications_repeated", repeated},
               {"notifications_repeated_orders", repeated_orders}});
    return r.ok() ? 0 : 1;
  }
  std::printf("%llu orders, %llu events (%llu duplicate records dropped), %zu notifications in the log, %llu outbox "
              "lines\n",
              static_cast<unsigned long long>(r.orders), static_cast<unsigned long long>(r.events),
              static_cast<unsigned long long>(r.duplicate_events), r.notifications_sent_in_log.size(),
              static_cast<unsigned long long>(r.outbox_lines));
  PrintIds("orders not delivered or cancelled", r.not_terminal);
  PrintIds("orders refunded more than once", r.refunded_twice);
  PrintIds("orders paid and cancelled without a refund", r.paid_cancelled_unrefunded);
  PrintIds("orders delivered and refunded", r.refunded_delivered);
  for (const auto& [sku, v] : r.oversold) {
    std::string orders;
    if (r.oversold_orders.count(sku)) {
      for (const auto& id : r.oversold_orders.at(sku)) orders += (orders.empty() ? "" : " ") + id;
    }
    std::printf("PROBLEM %s oversold: %lld units shipped, %lld in stock; shipped past the stock: %s\n", sku.c_str(),
                static_cast<long long>(v.first), static_cast<long long>(v.second), orders.c_str());
  }
  if (!r.notifications_repeated.empty()) {
    std::vector<std::string> ids;
    for (const auto& [id, n] : r.notifications_repeated) {
      ids.push_back(id + "x" + std::to_string(n) + " (order " + r.notifications_repeated_orders.at(id) + ")");
    }
    PrintIds("notification ids written more than once across the outboxes", ids);
  }
  if (r.ok()) std::printf("ok\n");
  return r.ok() ? 0 : 1;
}

}  // namespace orderflow::cli

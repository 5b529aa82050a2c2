#include "cli/commands.h"

#include <boost/program_options.hpp>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/output.h"
#include "eventstore/topics.h"
#include "projections/store.h"
#include "services/orders/order_service.h"
#include "projections/views.h"

namespace po = boost::program_options;

namespace orderflow::cli {
namespace {

Result<std::vector<domain::RequestedLine>> ParseItems(const std::vector<std::string>& items) {
  std::vector<domain::RequestedLine> lines;
  for (const std::string& item : items) {
    auto colon = item.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == item.size()) {
      return Usage("--item expects SKU:QTY, got '" + item + "'");
    }
    int32_t qty = 0;
    const char* begin = item.data() + colon + 1;
    const char* end = item.data() + item.size();
    auto [ptr, ec] = std::from_chars(begin, end, qty);
    if (ec != std::errc() || ptr != end) {
      return Usage("--item '" + item + "': quantity must be a whole number");
    }
    lines.push_back({item.substr(0, colon), qty});
  }
  return lines;
}

Result<int> OrderPlace(const std::vector<std::string>& rest) {
  Parsed p;
  std::string customer, address;
  std::vector<std::string> items;
  po::options_description d("order place options");
  d.add_options()("customer", po::value(&customer)->value_name("C"), "customer id (required)")(
      "item", po::value(&items)->composing()->value_name("SKU:QTY"), "a line of the order, repeatable (required)")(
      "address", po::value(&address)->value_name("TEXT"), "shipping address");
  ORDERFLOW_RETURN_IF_ERROR(Parse(rest, "orderflow order place --customer C --item SKU:QTY [--item ...] --brokers LIST\n\n"
                   "Places an order (appends OrderPlaced) and prints its id.",
             d, {}, p));
  if (p.common.help) return 0;
  ORDERFLOW_ASSIGN_OR_RETURN(auto kafka, KafkaFrom(p.common, true));
  if (customer.empty()) return Usage("--customer is required");
  if (items.empty()) return Usage("at least one --item SKU:QTY is required");
  ORDERFLOW_ASSIGN_OR_RETURN(auto lines, ParseItems(items));
  domain::PlaceOrder command{customer, std::move(lines), address};
  ORDERFLOW_ASSIGN_OR_RETURN(auto catalog, LoadCatalog(p.common));
  auto producer = eventstore::Producer::Create(kafka, "orderflow-cli");
  if (!producer.ok()) return Fail(producer.status());
  services::OrderService service(**producer, catalog);
  eventstore::Position position;
  std::string id = services::NewOrderId();
  auto placed = service.Place(command, id, services::NowMs(),
                              [&position](const Status&, eventstore::Position pos) { position = pos; });
  if (!placed.ok()) return Fail(placed.status());
  Status flushed = (*producer)->Flush(std::chrono::seconds(30));
  if (!flushed.ok()) return Fail(flushed);
  if (p.common.json) {
    PrintJson({{"order_id", id},
               {"event_id", domain::UuidToString(placed->id)},
               {"topic", eventstore::kOrdersTopic},
               {"partition", position.partition},
               {"offset", position.offset}});
  } else {
    std::cout << id << std::endl;
  }
  return 0;
}

int PrintOrder(const domain::OrderState& order, bool json) {
  if (json) {
    PrintJson(projections::OrderJson(order));
  } else {
    std::cout << OrderText(order);
  }
  return 0;
}

Result<int> CancelOrder(const std::string& id, const domain::OrderState& order, const std::string& reason,
                const Common& common) {
  ORDERFLOW_ASSIGN_OR_RETURN(auto kafka, KafkaFrom(common, true));
  ORDERFLOW_ASSIGN_OR_RETURN(auto catalog, LoadCatalog(common));
  auto producer = eventstore::Producer::Create(kafka, "orderflow-cli");
  if (!producer.ok()) return Fail(producer.status());
  services::OrderService service(**producer, catalog);
  auto events = service.Execute(order, domain::CancelOrder{reason, domain::CancelSource::kCustomer},
                                services::NowMs());
  if (!events.ok()) return Fail(events.status());
  Status flushed = (*producer)->Flush(std::chrono::seconds(30));
  if (!flushed.ok()) return Fail(flushed);
  if (common.json) {
    PrintJson({{"order_id", id}, {"cancelled", true}});
  } else {
    std::cout << "cancelled " << id << std::endl;
  }
  return 0;
}

// `order get` and `order cancel` both read the order from the local store first.
Result<int> OrderGetOrCancel(const std::string& sub, const std::vector<std::string>& rest) {
  Parsed p;
  std::string id;
  std::string reason = "customer request";
  po::options_description d("order " + sub + " options");
  d.add_options()("id", po::value(&id)->value_name("ID"), "order id");
  if (sub == "cancel") d.add_options()("reason", po::value(&reason), "why the order is cancelled");
  po::positional_options_description pos;
  pos.add("id", 1);
  const std::string text = sub == "get" ? "orderflow order get ID [--data-dir DIR] [--json]\n\n"
                                          "Shows an order's current state from the local store."
                                        : "orderflow order cancel ID [--reason TEXT] --brokers LIST\n\n"
                                          "Cancels an order that has not shipped (state read from the local store).";
  ORDERFLOW_RETURN_IF_ERROR(Parse(rest, text, d, pos, p));
  if (p.common.help) return 0;
  if (id.empty()) return Usage("order " + sub + " needs an order id");
  ORDERFLOW_ASSIGN_OR_RETURN(auto store, OpenReadOnly(p.common));
  auto order = store->GetOrder(id);
  if (!order.ok()) return Fail(order.status());
  if (!order->has_value()) return Fail(Status::NotFound("order " + id + " is not in " + p.common.data_dir));
  if (sub == "get") return PrintOrder(**order, p.common.json);
  return CancelOrder(id, **order, reason, p.common);
}

Result<int> OrderList(const std::vector<std::string>& rest) {
  Parsed p;
  std::string status_name, customer, after;
  size_t limit = 20;
  constexpr size_t kMaxLimit = 500;
  const std::string known = projections::OrderStatusNames();
  po::options_description d("order list options");
  d.add_options()("status", po::value(&status_name)->value_name("S"), ("only orders with this status: " + known).c_str())(
      "customer", po::value(&customer)->value_name("ID"), "only this customer's orders")(
      "limit", po::value(&limit)->default_value(limit), "at most N orders (1 to 500)")(
      "after", po::value(&after)->value_name("ID"), "start after this order id (the `next` of the page before)");
  ORDERFLOW_RETURN_IF_ERROR(Parse(rest,
             "orderflow order list [--status S] [--customer ID] [--limit N] [--after ID] [--data-dir DIR] [--json]\n\n"
             "Lists orders from the local store, a page at a time in order-id order. The next page's --after is\n"
             "printed on stderr (`next` with --json).",
             d, {}, p));
  if (p.common.help) return 0;
  projections::OrderQuery query;
  if (!status_name.empty()) {
    query.status = projections::OrderStatusFromName(status_name);
    if (!query.status) return Usage("unknown --status '" + status_name + "' (known: " + known + ")");
  }
  if (limit == 0 || limit > kMaxLimit) return Usage("--limit must be from 1 to " + std::to_string(kMaxLimit));
  query.customer = customer;
  query.after = after;
  query.limit = limit;
  ORDERFLOW_ASSIGN_OR_RETURN(auto store, OpenReadOnly(p.common));
  auto page = store->ListOrders(query);
  if (!page.ok()) return Fail(page.status());
  if (p.common.json) {
    nlohmann::json orders = nlohmann::json::array();
    for (const auto& o : page->orders) orders.push_back(projections::OrderJson(o));
    PrintJson({{"orders", orders}, {"next", page->next.empty() ? nlohmann::json(nullptr) : nlohmann::json(page->next)}});
    return 0;
  }
  if (page->orders.empty()) {
    std::cerr << "no orders" << (status_name.empty() ? "" : " with status " + status_name)
              << (customer.empty() ? "" : " of customer " + customer) << (after.empty() ? "" : " after " + after)
              << " in " << p.common.data_dir << "\n";
  }
  for (const auto& o : page->orders) {
    std::printf("%s  %-18s  %-14s  %14s  %s\n", o.order_id.c_str(), std::string(domain::OrderStatusName(o.status)).c_str(),
                o.customer_id.c_str(), FormatMoney(o.total_minor, o.currency).c_str(),
                projections::FormatTime(o.updated_at_ms).c_str());
  }
  if (!page->next.empty()) std::cerr << "more: --after " << page->next << "\n";
  return 0;
}

}  // namespace

Result<int> CmdOrder(const std::vector<std::string>& args) {
  const std::string usage =
      "orderflow order place --customer C --item SKU:QTY [--item ...]\n"
      "       orderflow order get ID\n"
      "       orderflow order cancel ID [--reason TEXT]\n"
      "       orderflow order list [--status S] [--limit N]";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "Usage: " << usage << "\n\nRun `orderflow order SUBCOMMAND --help` for its options.\n";
    if (args.empty()) return Usage("order needs a subcommand: place, get, cancel or list");
    return 0;
  }
  const std::string sub = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub == "place") return OrderPlace(rest);
  if (sub == "get" || sub == "cancel") return OrderGetOrCancel(sub, rest);
  if (sub == "list") return OrderList(rest);
  return Usage("unknown order subcommand '" + sub + "' (place, get, cancel or list)");
}

}  // namespace orderflow::cli

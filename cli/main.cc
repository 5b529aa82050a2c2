// orderflow: one binary for the services, the replay tool and the CLI.
//
// `orderflow COMMAND [options]`; every command takes --help. Errors are one line
// on stderr and a non-zero exit (1: the operation failed, 2: bad usage).

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/program_options.hpp>
#include <charconv>
#include <csignal>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <fstream>
#include <map>
#include <sstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/common.h"
#include "cli/check_command.h"
#include "cli/kafka_commands.h"
#include "cli/output.h"
#include "domain/catalog.h"
#include "eventstore/codec.h"
#include "eventstore/dead_letter.h"
#include "eventstore/embedded_broker.h"
#include "eventstore/topics.h"
#include "eventstore/log_archive.h"
#include "projections/projector.h"
#include "projections/snapshot.h"
#include "projections/store.h"
#include "replay/replay.h"
#include "services/lifecycle.h"
#include "services/order_service.h"
#include "services/up.h"

namespace po = boost::program_options;
using nlohmann::json;

namespace orderflow::cli {
namespace {

// Set by SIGINT/SIGTERM; a second signal exits at once.
std::atomic<bool> g_stop{false};

extern "C" void OnSignal(int) {
  if (g_stop.exchange(true)) _exit(130);
}

// How long a command may take to stop after SIGINT/SIGTERM: it finishes the
// batch in flight, flushes and writes its state; past this it exits anyway.
constexpr auto kShutdownGrace = std::chrono::seconds(30);

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::thread([] {
    while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::this_thread::sleep_for(kShutdownGrace);
    std::fprintf(stderr, "orderflow: still not stopped %lld s after the signal; exiting without a clean stop\n",
                 static_cast<long long>(kShutdownGrace.count()));
    _exit(1);
  }).detach();
}

// Epoch milliseconds, or an ISO-8601 UTC time "YYYY-MM-DDTHH:MM:SS[.mmm]Z".
int64_t ParseTime(const std::string& text) {
  int64_t ms = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec == std::errc() && ptr == text.data() + text.size()) return ms;
  std::tm tm{};
  int millis = 0;
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) throw UsageError{"cannot read time '" + text + "' (epoch ms or YYYY-MM-DDTHH:MM:SS.mmmZ)"};
  if (*rest == '.') {
    // Up to three digits of fraction: ".5" is 500 ms; further digits are ignored.
    int digits = 0;
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest) {
      if (digits < 3) millis = millis * 10 + (*rest - '0'), ++digits;
    }
    for (; digits < 3; ++digits) millis *= 10;
  }
  if (*rest != 'Z' || rest[1] != '\0') throw UsageError{"time '" + text + "' must end in Z (UTC)"};
  return static_cast<int64_t>(timegm(&tm)) * 1000 + millis;
}


std::unique_ptr<projections::ProjectionStore> OpenReadOnly(const Common& c) {
  auto store = projections::ProjectionStore::Open(c.data_dir, {.read_only = true});
  if (!store.ok()) throw store.status();
  return std::move(store).value();
}


// ---- commands ---------------------------------------------------------------

int CmdBroker(const std::vector<std::string>& args) {
  po::options_description d("broker options");
  int partitions = eventstore::kDefaultPartitions;
  int brokers = 3;
  d.add_options()("partitions", po::value(&partitions)->default_value(partitions), "partitions per topic")(
      "broker-count", po::value(&brokers)->default_value(brokers), "mock brokers in the cluster");
  Parsed p;
  if (!Parse(args, "orderflow broker [--partitions N]\n\n"
                   "Runs the embedded Kafka-protocol broker (librdkafka's mock cluster) until SIGINT/SIGTERM.\n"
                   "The first line on stdout is its bootstrap list. Data lives in memory only.",
             d, {}, p, "info")) {
    return 0;
  }
  if (brokers < 1 || brokers > 16) throw UsageError{"--broker-count must be from 1 to 16"};
  if (partitions < 1 || partitions > 1000) throw UsageError{"--partitions must be between 1 and 1000"};
  auto broker = eventstore::EmbeddedBroker::Start(brokers);
  if (!broker.ok()) return Fail(broker.status());
  Status created = (*broker)->CreateTopics(eventstore::DefaultTopics(partitions));
  if (!created.ok()) return Fail(created);
  std::cout << (*broker)->bootstraps() << std::endl;
  spdlog::info("embedded broker up: {} brokers, topics with {} partitions; Ctrl-C to stop", brokers, partitions);
  while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  spdlog::info("embedded broker stopping");
  return 0;
}

int CmdUp(const std::vector<std::string>& args) {
  po::options_description d("up options");
  services::UpOptions o;
  d.add_options()
      ("simulate", po::value(&o.simulate)->default_value(0)->value_name("N"), "place N random valid orders")
      ("rate", po::value(&o.rate)->default_value(0)->value_name("R"), "orders per second (0: as fast as possible)")
      ("exit-when-done", po::bool_switch(&o.exit_when_done),
       "exit 0 once every simulated order is projected and the projector reached the end of the log")
      ("seed", po::value(&o.seed)->default_value(1), "simulator random seed")
      ("partitions", po::value(&o.partitions)->default_value(eventstore::kDefaultPartitions),
       "partitions per topic on the embedded broker")
      ("batch-size", po::value(&o.batch_size)->default_value(5000), "events per projection batch")
      ("transit-ms", po::value<int64_t>()->default_value(500), "simulated transit time from shipped to delivered")
      ("max-payment", po::value(&o.max_payment_minor)->default_value(o.max_payment_minor),
       "the payment gateway declines orders above this total (minor units)")
      ("projector-only", po::bool_switch(), "run the order service and projector only, no lifecycle services")
      ("blocked-customer", po::value(&o.blocked_customers)->composing()->value_name("ID"),
       "a customer whose card the payment gateway declines, repeatable (default cust-0013)")
      ("exactly-once", po::bool_switch(&o.exactly_once),
       "append each service batch in a Kafka transaction (real brokers; the embedded one is not atomic)")
      ("http", po::value<std::string>()->default_value("127.0.0.1:8080")->value_name("HOST:PORT"),
       "serve the HTTP API and web page here (port 0: any free port; 'off': no HTTP)")
      ("api-token", po::value<std::string>()->value_name("TOKEN"),
       "require 'Authorization: Bearer TOKEN' on every endpoint but /healthz and /readyz (default: "
       "$ORDERFLOW_API_TOKEN, else none: everything open)")
      ("api-read-token", po::value<std::string>()->value_name("TOKEN"),
       "a second token that reads but cannot place or cancel orders (default: $ORDERFLOW_API_READ_TOKEN)")
      ("metrics-public", po::bool_switch(), "serve /metrics without a token")
      ("http-max-connections", po::value<size_t>()->default_value(10'000)->value_name("N"),
       "open connections at most; beyond, a new one gets 503")
      ("http-max-streams", po::value<size_t>()->default_value(1'000)->value_name("N"), "open event streams at most")
      ("http-idle-timeout", po::value<int64_t>()->default_value(60'000)->value_name("MS"),
       "close a connection that sends no request for this long")
      ("http-header-timeout", po::value<int64_t>()->default_value(10'000)->value_name("MS"),
       "close a connection whose request does not arrive within this long of its first byte")
      ("web-dir", po::value<std::string>()->default_value(ORDERFLOW_WEB_DIR)->value_name("DIR"),
       "static files of the web page, served at /");
  Parsed p;
  if (!Parse(args, "orderflow up [--brokers LIST] [--data-dir DIR] [--simulate N] [--rate R] [--exit-when-done]\n\n"
                   "Runs the order service, the lifecycle services and the projector. Without --brokers it starts\n"
                   "the embedded broker in this process; its log is archived in DIR/archive and put back into the\n"
                   "broker on the next start, so stopping loses nothing.",
             d, {}, p, "info")) {
    return 0;
  }
  if (o.partitions < 1 || o.partitions > 1000) throw UsageError{"--partitions must be from 1 to 1000"};
  if (o.rate < 0) throw UsageError{"--rate must be >= 0"};
  if (o.batch_size == 0) throw UsageError{"--batch-size must be > 0"};
  o.kafka = KafkaFrom(p.common, false);
  o.data_dir = p.common.data_dir;
  o.transit_delay = std::chrono::milliseconds(p.vm["transit-ms"].as<int64_t>());
  o.lifecycle = !p.vm["projector-only"].as<bool>();
  if (o.transit_delay.count() < 0) throw UsageError{"--transit-ms must be >= 0"};
  if (const std::string http = p.vm["http"].as<std::string>(); http != "off") {
    services::HttpOptions h;
    h.listen = http;
    if (p.vm.count("api-token")) {
      h.api_token = p.vm["api-token"].as<std::string>();
    } else if (const char* token = std::getenv("ORDERFLOW_API_TOKEN")) {
      h.api_token = token;
    }
    if (p.vm.count("api-read-token")) {
      h.api_read_token = p.vm["api-read-token"].as<std::string>();
    } else if (const char* token = std::getenv("ORDERFLOW_API_READ_TOKEN")) {
      h.api_read_token = token;
    }
    if (!h.api_read_token.empty() && h.api_read_token == h.api_token) {
      throw UsageError{"--api-read-token must differ from --api-token"};
    }
    h.metrics_public = p.vm["metrics-public"].as<bool>();
    h.max_connections = p.vm["http-max-connections"].as<size_t>();
    h.max_streams = p.vm["http-max-streams"].as<size_t>();
    h.idle_timeout = std::chrono::milliseconds(p.vm["http-idle-timeout"].as<int64_t>());
    h.header_timeout = std::chrono::milliseconds(p.vm["http-header-timeout"].as<int64_t>());
    if (h.max_connections == 0 || h.max_streams == 0) throw UsageError{"--http-max-connections and --http-max-streams must be > 0"};
    if (h.idle_timeout.count() <= 0 || h.header_timeout.count() <= 0) {
      throw UsageError{"--http-idle-timeout and --http-header-timeout must be > 0"};
    }
    h.web_dir = p.vm["web-dir"].as<std::string>();
    o.http = h;
  }
  const bool embedded = o.kafka.brokers.empty();
  const auto catalog = LoadCatalog(p.common);
  if (!embedded) {
    replay::ReplayOptions rebuild;
    rebuild.kafka = o.kafka;
    auto rebuilt = replay::RebuildIfOutdated(rebuild, o.data_dir);
    if (!rebuilt.ok()) return Fail(rebuilt.status());
  }
  auto summary = services::RunUp(o, catalog, g_stop, [&](const services::UpEndpoints& e) {
    spdlog::info("orderflow up: brokers {}{}, data in {}; Ctrl-C to stop", e.brokers, embedded ? " (embedded)" : "",
                 o.data_dir);
    if (!e.http.empty()) spdlog::info("HTTP API and web page on http://{}/", e.http);
  });
  if (!summary.ok()) return Fail(summary.status());
  const auto& s = *summary;
  if (p.common.json) {
    PrintJson({{"brokers", s.brokers},
               {"orders_placed", s.orders_placed},
               {"delivered", s.delivered},
               {"cancelled", s.cancelled},
               {"orders_failed", s.orders_rejected},
               {"events_applied", s.events_applied},
               {"duplicates_dropped", s.duplicates},
               {"records_rejected", s.records_rejected},
               {"orders_by_status", s.orders_by_status},
               {"seconds", s.seconds},
               {"digest", s.digest}});
  } else {
    std::printf("placed %llu orders, projected %llu events in %.2f s\n",
                static_cast<unsigned long long>(s.orders_placed), static_cast<unsigned long long>(s.events_applied),
                s.seconds);
    for (const auto& [status, count] : s.orders_by_status) {
      std::printf("  %-20s %llu\n", status.c_str(), static_cast<unsigned long long>(count));
    }
    if (s.duplicates || s.records_rejected) {
      std::printf("dropped %llu duplicate events, rejected %llu undecodable records\n",
                  static_cast<unsigned long long>(s.duplicates), static_cast<unsigned long long>(s.records_rejected));
    }
    std::printf("digest %s\n", s.digest.c_str());
  }
  return 0;
}

int CmdCatalog(const std::vector<std::string>& args) {
  Parsed p;
  if (!Parse(args, "orderflow catalog [--json]\n\nLists the demo catalog: SKU, name, price.", {}, {}, p)) return 0;
  auto catalog = LoadCatalog(p.common);
  if (p.common.json) {
    PrintJson(CatalogJson(catalog));
  } else {
    std::cout << CatalogText(catalog);
  }
  return 0;
}

std::vector<domain::RequestedLine> ParseItems(const std::vector<std::string>& items) {
  std::vector<domain::RequestedLine> lines;
  for (const std::string& item : items) {
    auto colon = item.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == item.size()) {
      throw UsageError{"--item expects SKU:QTY, got '" + item + "'"};
    }
    int32_t qty = 0;
    const char* begin = item.data() + colon + 1;
    const char* end = item.data() + item.size();
    auto [ptr, ec] = std::from_chars(begin, end, qty);
    if (ec != std::errc() || ptr != end) {
      throw UsageError{"--item '" + item + "': quantity must be a whole number"};
    }
    lines.push_back({item.substr(0, colon), qty});
  }
  return lines;
}

int CmdOrder(const std::vector<std::string>& args) {
  const std::string usage =
      "orderflow order place --customer C --item SKU:QTY [--item ...]\n"
      "       orderflow order get ID\n"
      "       orderflow order cancel ID [--reason TEXT]\n"
      "       orderflow order list [--status S] [--limit N]";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "Usage: " << usage << "\n\nRun `orderflow order SUBCOMMAND --help` for its options.\n";
    if (args.empty()) throw UsageError{"order needs a subcommand: place, get, cancel or list"};
    return 0;
  }
  const std::string sub = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  Parsed p;
  if (sub == "place") {
    std::string customer, address;
    std::vector<std::string> items;
    po::options_description d("order place options");
    d.add_options()("customer", po::value(&customer)->value_name("C"), "customer id (required)")(
        "item", po::value(&items)->composing()->value_name("SKU:QTY"), "a line of the order, repeatable (required)")(
        "address", po::value(&address)->value_name("TEXT"), "shipping address");
    if (!Parse(rest, "orderflow order place --customer C --item SKU:QTY [--item ...] --brokers LIST\n\n"
                     "Places an order (appends OrderPlaced) and prints its id.",
               d, {}, p)) {
      return 0;
    }
    auto kafka = KafkaFrom(p.common, true);
    if (customer.empty()) throw UsageError{"--customer is required"};
    if (items.empty()) throw UsageError{"at least one --item SKU:QTY is required"};
    domain::PlaceOrder command{customer, ParseItems(items), address};
    auto catalog = LoadCatalog(p.common);
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
  if (sub == "get" || sub == "cancel") {
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
    if (!Parse(rest, text, d, pos, p)) return 0;
    if (id.empty()) throw UsageError{"order " + sub + " needs an order id"};
    auto store = OpenReadOnly(p.common);
    auto order = store->GetOrder(id);
    if (!order.ok()) return Fail(order.status());
    if (!order->has_value()) return Fail(Status::NotFound("order " + id + " is not in " + p.common.data_dir));
    if (sub == "get") {
      if (p.common.json) {
        PrintJson(OrderJson(**order));
      } else {
        std::cout << OrderText(**order);
      }
      return 0;
    }
    auto kafka = KafkaFrom(p.common, true);
    auto catalog = LoadCatalog(p.common);
    auto producer = eventstore::Producer::Create(kafka, "orderflow-cli");
    if (!producer.ok()) return Fail(producer.status());
    services::OrderService service(**producer, catalog);
    auto events = service.Execute(**order, domain::CancelOrder{reason, domain::CancelSource::kCustomer},
                                  services::NowMs());
    if (!events.ok()) return Fail(events.status());
    Status flushed = (*producer)->Flush(std::chrono::seconds(30));
    if (!flushed.ok()) return Fail(flushed);
    if (p.common.json) {
      PrintJson({{"order_id", id}, {"cancelled", true}});
    } else {
      std::cout << "cancelled " << id << std::endl;
    }
    return 0;
  }
  if (sub == "list") {
    std::string status_name, customer, after;
    size_t limit = 20;
    constexpr size_t kMaxLimit = 500;
    const std::string known = services::OrderStatusNames();
    po::options_description d("order list options");
    d.add_options()("status", po::value(&status_name)->value_name("S"), ("only orders with this status: " + known).c_str())(
        "customer", po::value(&customer)->value_name("ID"), "only this customer's orders")(
        "limit", po::value(&limit)->default_value(limit), "at most N orders (1 to 500)")(
        "after", po::value(&after)->value_name("ID"), "start after this order id (the `next` of the page before)");
    if (!Parse(rest,
               "orderflow order list [--status S] [--customer ID] [--limit N] [--after ID] [--data-dir DIR] [--json]\n\n"
               "Lists orders from the local store, a page at a time in order-id order. The next page's --after is\n"
               "printed on stderr (`next` with --json).",
               d, {}, p)) {
      return 0;
    }
    projections::OrderQuery query;
    if (!status_name.empty()) {
      query.status = services::OrderStatusFromName(status_name);
      if (!query.status) throw UsageError{"unknown --status '" + status_name + "' (known: " + known + ")"};
    }
    if (limit == 0 || limit > kMaxLimit) throw UsageError{"--limit must be from 1 to " + std::to_string(kMaxLimit)};
    query.customer = customer;
    query.after = after;
    query.limit = limit;
    auto store = OpenReadOnly(p.common);
    auto page = store->ListOrders(query);
    if (!page.ok()) return Fail(page.status());
    if (p.common.json) {
      nlohmann::json orders = nlohmann::json::array();
      for (const auto& o : page->orders) orders.push_back(OrderJson(o));
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
                  FormatTime(o.updated_at_ms).c_str());
    }
    if (!page->next.empty()) std::cerr << "more: --after " << page->next << "\n";
    return 0;
  }
  throw UsageError{"unknown order subcommand '" + sub + "' (place, get, cancel or list)"};
}

int CmdHistory(const std::vector<std::string>& args) {
  std::string id;
  po::options_description d("history options");
  d.add_options()("id", po::value(&id)->value_name("ID"), "order id");
  po::positional_options_description pos;
  pos.add("id", 1);
  Parsed p;
  if (!Parse(args, "orderflow history ID [--data-dir DIR] [--json]\n\n"
                   "Prints the order's event timeline from the local store: offset, time, type, schema version,\n"
                   "summary. Works with the services stopped.",
             d, pos, p)) {
    return 0;
  }
  if (id.empty()) throw UsageError{"history needs an order id"};
  auto store = OpenReadOnly(p.common);
  auto history = store->GetHistory(id);
  if (!history.ok()) return Fail(history.status());
  if (history->empty()) return Fail(Status::NotFound("order " + id + " has no history in " + p.common.data_dir));
  if (p.common.json) {
    json events = json::array();
    for (const auto& e : *history) events.push_back(HistoryJson(e));
    PrintJson({{"order_id", id}, {"events", events}});
  } else {
    std::printf("%-8s %-24s %-22s %-4s %s\n", "OFFSET", "TIME", "TYPE", "VER", "SUMMARY");
    for (const auto& e : *history) std::cout << HistoryLine(e) << "\n";
  }
  return 0;
}

int CmdReplay(const std::vector<std::string>& args) {
  replay::ReplayOptions o;
  po::options_description d("replay options");
  std::string verify_dir, until_time, snapshots_dir;
  d.add_options()("batch-size", po::value(&o.batch_size)->default_value(10000), "events per WriteBatch")(
      "force", po::bool_switch(&o.force), "replace the orderflow store already in --data-dir")(
      "until-offset", po::value(&o.until_offset)->value_name("N"),
      "time travel: apply each partition up to offset N (inclusive)")(
      "until-time", po::value(&until_time)->value_name("T"),
      "time travel: apply records appended at or before T (epoch ms, or YYYY-MM-DDTHH:MM:SS[.mmm]Z)")(
      "from-snapshot", po::value(&o.from_snapshot)->value_name("NAME"),
      "restore snapshot NAME into --data-dir, then replay only the tail")(
      "snapshots", po::value(&snapshots_dir)->value_name("DIR"),
      "where snapshots live (default: <data-dir of the snapshot's store>-snapshots; with --from-snapshot required)")(
      "verify", po::value(&verify_dir)->value_name("DIR"),
      "compare the rebuilt state with the store in DIR; exit 1 naming the first differing key");
  Parsed p;
  if (!Parse(args, "orderflow replay --brokers LIST --data-dir NEW_DIR [--json]\n\n"
                   "Rebuilds the projections into an empty directory from offset zero of every partition and\n"
                   "prints events, elapsed seconds, events/s and the state digest.",
             d, {}, p, "warn")) {
    return 0;
  }
  if (o.batch_size == 0) throw UsageError{"--batch-size must be > 0"};
  if (!until_time.empty()) o.until_time_ms = ParseTime(until_time);
  if (!o.from_snapshot.empty() && snapshots_dir.empty()) {
    throw UsageError{"--from-snapshot needs --snapshots DIR (where `orderflow snapshot create` put it)"};
  }
  o.snapshots_dir = snapshots_dir;
  o.kafka = KafkaFrom(p.common, true);
  o.data_dir = p.common.data_dir;
  const bool tty = isatty(STDERR_FILENO) && !p.common.json;
  if (tty) {
    o.on_progress = [](const replay::ReplayProgress& pr) {
      double pct = pr.total ? 100.0 * pr.records / pr.total : 100.0;
      double eta = pr.records_per_second > 0 ? (pr.total - std::min(pr.total, pr.records)) / pr.records_per_second : 0;
      // The partition with the most left decides when replay ends: show its ETA too.
      const replay::PartitionProgress* behind = nullptr;
      for (const auto& part : pr.partitions) {
        if (!behind || part.end - part.done > behind->end - behind->done) behind = &part;
      }
      std::string slowest;
      if (behind != nullptr && pr.seconds > 0 && behind->done > 0) {
        double part_rate = behind->done / pr.seconds;
        slowest = "; " + behind->partition.topic + "[" + std::to_string(behind->partition.partition) + "] " +
                  std::to_string(behind->done) + "/" + std::to_string(behind->end) + ", ETA " +
                  std::to_string(static_cast<int>((behind->end - behind->done) / part_rate + 0.5)) + " s";
      }
      std::fprintf(stderr, "\rreplay: %llu/%llu events (%.0f%%), %.0f events/s, ETA %.0f s%s   ",
                   static_cast<unsigned long long>(pr.records), static_cast<unsigned long long>(pr.total), pct,
                   pr.records_per_second, eta, slowest.c_str());
    };
  }
  auto result = replay::Replay(o);
  if (tty) std::fprintf(stderr, "\n");
  if (!result.ok()) return Fail(result.status());
  const auto& r = *result;
  if (p.common.json) {
    json offsets = json::object();
    for (const auto& [tp, off] : r.end) offsets[tp.topic + "/" + std::to_string(tp.partition)] = off;
    PrintJson({{"events", r.records},
               {"applied", r.events},
               {"duplicates_dropped", r.duplicates},
               {"records_rejected", r.rejected},
               {"seconds", r.seconds},
               {"events_per_second", r.events_per_second},
               {"poll_seconds", r.poll_seconds},
               {"apply_seconds", r.apply_seconds},
               {"offsets", offsets},
               {"digest", r.digest}});
  } else {
    std::printf("replayed %llu events in %.3f s (%.0f events/s) into %s\n",
                static_cast<unsigned long long>(r.records), r.seconds, r.events_per_second, o.data_dir.c_str());
    std::printf("digest %s\n", r.digest.c_str());
  }
  spdlog::debug("replay: {:.3f} s polling, {:.3f} s applying", r.poll_seconds, r.apply_seconds);
  if (!verify_dir.empty()) {
    auto live = projections::ProjectionStore::Open(verify_dir, {.read_only = true});
    if (!live.ok()) return Fail(live.status());
    auto rebuilt = projections::ProjectionStore::Open(o.data_dir, {.read_only = true});
    if (!rebuilt.ok()) return Fail(rebuilt.status());
    auto diff = (*rebuilt)->FirstDifference(**live);
    if (!diff.ok()) return Fail(diff.status());
    if (diff->has_value()) {
      return Fail(Status::FailedPrecondition("verify: " + o.data_dir + " differs from " + verify_dir + ": " + **diff));
    }
    if (!p.common.json) std::printf("verified: equal to %s\n", verify_dir.c_str());
  }
  return 0;
}

int CmdDigest(const std::vector<std::string>& args) {
  Parsed p;
  if (!Parse(args, "orderflow digest [--data-dir DIR] [--json]\n\n"
                   "Prints the SHA-256 over the sorted contents of the local projections.",
             {}, {}, p)) {
    return 0;
  }
  auto store = OpenReadOnly(p.common);
  auto digest = store->Digest();
  if (!digest.ok()) return Fail(digest.status());
  if (p.common.json) {
    auto offsets = store->GetOffsets();
    if (!offsets.ok()) return Fail(offsets.status());
    json o = json::object();
    for (const auto& [tp, off] : *offsets) o[tp.topic + "/" + std::to_string(tp.partition)] = off;
    PrintJson({{"digest", *digest}, {"offsets", o}});
  } else {
    std::cout << *digest << std::endl;
  }
  return 0;
}

int RunLifecycleService(const std::string& name, const std::string& instance, const Parsed& p,
                        const services::LifecycleConfig& config, bool exactly_once) {
  auto kafka = KafkaFrom(p.common, true);
  const auto catalog = LoadCatalog(p.common);
  services::ServiceOptions so;
  so.name = name;
  so.instance = instance;
  so.kafka = kafka;
  so.data_dir = p.common.data_dir;
  so.exactly_once = exactly_once;
  auto runner = services::MakeLifecycleService(so, catalog, config);
  if (!runner.ok()) return Fail(runner.status());
  spdlog::info("{} {} running on {}, state in {}", name, instance, kafka.brokers, p.common.data_dir);
  Status s = (*runner)->Run(g_stop);
  if (!s.ok()) return Fail(s);
  spdlog::info("{} {} stopped after {} events", name, instance, (*runner)->stats().events.load());
  // Everything is durable once the runner is gone (consumers closed, producer
  // flushed, store closed). Exit here, without running static destructors
  // while client library threads may still be winding down: a clean stop
  // must never end in a crash (one SIGSEGV on SIGTERM was seen under load in CI).
  runner->reset();
  spdlog::default_logger()->flush();
  std::fflush(nullptr);
  _exit(0);
}

int CmdService(const std::vector<std::string>& args) {
  std::string name;
  std::string instance = "1";
  bool exit_when_caught_up = false;
  size_t batch_size = 5000;
  int64_t transit_ms = 500;
  int64_t max_payment = services::PaymentRules{}.max_amount_minor;
  std::vector<std::string> blocked = services::PaymentRules{}.blocked_customers;
  bool exactly_once = false;
  po::options_description d("service options");
  d.add_options()("name", po::value(&name)->value_name("NAME"),
                  "projector, payment, inventory, shipping, delivery or notification")(
      "instance", po::value(&instance)->default_value(instance), "instance id within the service's consumer group")(
      "exit-when-caught-up", po::bool_switch(&exit_when_caught_up),
      "projector: exit 0 once the end of the log (as when started) is applied")(
      "batch-size", po::value(&batch_size)->default_value(batch_size), "projector: events per batch")(
      "transit-ms", po::value(&transit_ms)->default_value(transit_ms), "delivery: simulated transit time")(
      "max-payment", po::value(&max_payment)->default_value(max_payment),
      "payment: decline orders above this total (minor units)")(
      "blocked-customer", po::value(&blocked)->composing()->value_name("ID"),
      "payment: a customer whose card is declined, repeatable (default cust-0013)")(
      "exactly-once", po::bool_switch(&exactly_once), "append each batch's outputs in a Kafka transaction");
  po::positional_options_description pos;
  pos.add("name", 1);
  Parsed p;
  if (!Parse(args, "orderflow service NAME --brokers LIST [--data-dir DIR] [--instance ID]\n\n"
                   "Runs one service as its own process until SIGINT/SIGTERM. Instances of a service share its\n"
                   "consumer group; give each its own --data-dir. Services: projector, payment, inventory,\n"
                   "shipping, delivery, notification (its outbox is DIR/outbox.log).",
             d, pos, p, "info")) {
    return 0;
  }
  if (name.empty()) throw UsageError{"service needs a NAME"};
  if (name != "projector") {
    const auto& names = services::LifecycleServiceNames();
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      throw UsageError{"unknown service '" + name +
                       "' (projector, payment, inventory, shipping, delivery, notification)"};
    }
    services::LifecycleConfig config;
    config.transit_delay = std::chrono::milliseconds(transit_ms);
    config.payment.max_amount_minor = max_payment;
    config.payment.blocked_customers = blocked;
    return RunLifecycleService(name, instance, p, config, exactly_once);
  }
  auto kafka = KafkaFrom(p.common, true);
  {
    replay::ReplayOptions rebuild;
    rebuild.kafka = kafka;
    auto rebuilt = replay::RebuildIfOutdated(rebuild, p.common.data_dir);
    if (!rebuilt.ok()) return Fail(rebuilt.status());
  }
  auto store = projections::ProjectionStore::Open(p.common.data_dir, {});
  if (!store.ok()) return Fail(store.status());
  auto reader = eventstore::Reader::Create(kafka, "orderflow-projector-" + instance);
  if (!reader.ok()) return Fail(reader.status());
  auto dlq_producer = eventstore::Producer::Create(kafka, "orderflow-projector-dlq-" + instance);
  if (!dlq_producer.ok()) return Fail(dlq_producer.status());
  projections::ProjectorOptions popts;
  popts.topics = {eventstore::kOrdersTopic};
  popts.batch_size = batch_size;
  popts.dead_letters = dlq_producer->get();
  popts.commit_for_operators = true;
  projections::Projector projector(**store, **reader, popts);
  Status started = projector.Start();
  if (!started.ok()) return Fail(started);
  spdlog::info("projector {} running on {}, data in {}", instance, kafka.brokers, p.common.data_dir);
  if (exit_when_caught_up) {
    auto end = projector.LogEnd();
    if (!end.ok()) return Fail(end.status());
    while (!g_stop.load()) {
      auto reached = projector.Reached(*end);
      if (!reached.ok()) return Fail(reached.status());
      if (*reached) break;
      auto n = projector.Step();
      if (!n.ok()) {
        if (!n.status().IsRetryable()) return Fail(n.status());
        // Resume from the committed offsets: the failed step may have dropped records.
        Status restarted = projector.Drain();
        if (restarted.ok() || restarted.IsRetryable()) restarted = projector.Start();
        if (!restarted.ok() && !restarted.IsRetryable()) return Fail(restarted);
      }
    }
  } else {
    Status s = projector.Run(g_stop);
    if (!s.ok()) return Fail(s);
  }
  Status drained = projector.Drain();
  if (!drained.ok()) return Fail(drained);
  spdlog::info("projector {} stopped: applied {} events", instance, projector.totals().applied);
  return 0;
}

int CmdStock(const std::vector<std::string>& args) {
  if (args.empty() || args[0] != "add") {
    if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
      std::cout << "Usage: orderflow stock add SKU QTY --brokers LIST\n\nAdds stock to a SKU (a StockAdded event on "
                   "inventory.events).\n";
      return 0;
    }
    throw UsageError{"usage: orderflow stock add SKU QTY"};
  }
  std::string sku;
  int32_t qty = 0;
  po::options_description d("stock add options");
  d.add_options()("sku", po::value(&sku), "SKU")("qty", po::value(&qty), "units to add (> 0)");
  po::positional_options_description pos;
  pos.add("sku", 1).add("qty", 1);
  Parsed p;
  if (!Parse(std::vector<std::string>(args.begin() + 1, args.end()),
             "orderflow stock add SKU QTY --brokers LIST\n\nAdds stock to a SKU (a StockAdded event on inventory.events).",
             d, pos, p)) {
    return 0;
  }
  if (sku.empty() || qty <= 0) throw UsageError{"stock add needs a SKU and a quantity > 0"};
  auto kafka = KafkaFrom(p.common, true);
  const auto catalog = LoadCatalog(p.common);
  if (catalog.Find(sku) == nullptr) return Fail(Status::InvalidArgument("unknown SKU '" + sku + "' (see `orderflow catalog`)"));
  auto producer = eventstore::Producer::Create(kafka, "orderflow-cli");
  if (!producer.ok()) return Fail(producer.status());
  domain::Event e;
  domain::UuidFromString(services::NewOrderId(), &e.id);
  e.order_id = sku;
  e.occurred_at_ms = services::NowMs();
  e.producer = "cli";
  e.payload = domain::StockAdded{sku, qty};
  Status appended = (*producer)->AppendEvent(eventstore::kInventoryTopic, e);
  if (appended.ok()) appended = (*producer)->Flush(std::chrono::seconds(30));
  if (!appended.ok()) return Fail(appended);
  if (p.common.json) {
    PrintJson({{"sku", sku}, {"added", qty}, {"event_id", domain::UuidToString(e.id)}});
  } else {
    std::cout << "added " << qty << " x " << sku << std::endl;
  }
  return 0;
}

int CmdSnapshot(const std::vector<std::string>& args) {
  const std::string usage =
      "orderflow snapshot create [--name NAME] | list | restore NAME | delete NAME  [--data-dir DIR] "
      "[--snapshots DIR]";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "Usage: " << usage << "\n\nSnapshots of the projection store (a RocksDB checkpoint plus a manifest);\n"
                 "`orderflow replay --from-snapshot NAME` restores one and replays only the tail.\n";
    if (args.empty()) throw UsageError{"snapshot needs a subcommand: create, list, restore or delete"};
    return 0;
  }
  const std::string sub = args[0];
  std::string name, snapshots_dir;
  po::options_description d("snapshot options");
  d.add_options()("name", po::value(&name)->value_name("NAME"), "snapshot name (create: default snap-<time>)")(
      "snapshots", po::value(&snapshots_dir)->value_name("DIR"), "where snapshots live (default <data-dir>-snapshots)");
  po::positional_options_description pos;
  pos.add("name", 1);
  Parsed p;
  if (!Parse(std::vector<std::string>(args.begin() + 1, args.end()), usage, d, pos, p)) return 0;
  if (snapshots_dir.empty()) snapshots_dir = p.common.data_dir + "-snapshots";
  auto manifest_json = [](const projections::SnapshotManifest& m) {
    json offsets = json::object();
    for (const auto& [tp, off] : m.offsets) offsets[tp.topic + "/" + std::to_string(tp.partition)] = off;
    return json{{"name", m.name},       {"created_at", FormatTime(m.created_at_ms)},
                {"orders", m.orders},   {"offsets", offsets},
                {"digest", m.digest},   {"schema_fingerprint", m.schema_fingerprint},
                {"method", m.method},   {"projection_version", m.projection_version}};
  };
  if (sub == "create") {
    const int64_t now = services::NowMs();
    if (name.empty()) name = "snap-" + std::to_string(now);
    auto m = projections::CreateSnapshot(p.common.data_dir, snapshots_dir, name, now);
    if (!m.ok()) return Fail(m.status());
    if (p.common.json) {
      PrintJson(manifest_json(*m));
    } else {
      std::printf("created snapshot %s in %s (%s, %llu orders, digest %s)\n", m->name.c_str(), snapshots_dir.c_str(),
                  m->method.c_str(), static_cast<unsigned long long>(m->orders), m->digest.c_str());
    }
    return 0;
  }
  if (sub == "list") {
    auto all = projections::ListSnapshots(snapshots_dir);
    if (!all.ok()) return Fail(all.status());
    if (p.common.json) {
      json out = json::array();
      for (const auto& m : *all) out.push_back(manifest_json(m));
      PrintJson(out);
    } else {
      if (all->empty()) std::cerr << "no snapshots in " << snapshots_dir << "\n";
      for (const auto& m : *all) {
        std::printf("%-28s %s  %8llu orders  %s\n", m.name.c_str(), FormatTime(m.created_at_ms).c_str(),
                    static_cast<unsigned long long>(m.orders), m.digest.substr(0, 16).c_str());
      }
    }
    return 0;
  }
  if (name.empty()) throw UsageError{"snapshot " + sub + " needs a NAME"};
  if (sub == "delete") {
    Status s = projections::DeleteSnapshot(snapshots_dir, name);
    if (!s.ok()) return Fail(s);
    if (!p.common.json) std::printf("deleted snapshot %s\n", name.c_str());
    return 0;
  }
  if (sub == "restore") {
    auto m = projections::RestoreSnapshot(snapshots_dir, name, p.common.data_dir);
    if (!m.ok()) return Fail(m.status());
    if (p.common.json) {
      PrintJson(manifest_json(*m));
    } else {
      std::printf("restored snapshot %s into %s; `orderflow service projector` or `orderflow up --brokers ...` "
                  "continues from its offsets\n",
                  name.c_str(), p.common.data_dir.c_str());
    }
    return 0;
  }
  throw UsageError{"unknown snapshot subcommand '" + sub + "' (create, list, restore or delete)"};
}

int CmdAnalytics(const std::vector<std::string>& args) {
  size_t top = 5;
  po::options_description d("analytics options");
  d.add_options()("top", po::value(&top)->default_value(top), "how many top SKUs to list");
  Parsed p;
  if (!Parse(args, "orderflow analytics [--data-dir DIR] [--json]\n\n"
                   "Revenue (gross, refunded, net), orders by status, top SKUs, orders per hour and the average\n"
                   "time from placed to delivered, from the local analytics projection.",
             d, {}, p)) {
    return 0;
  }
  auto store = OpenReadOnly(p.common);
  auto a = store->GetAnalytics(top);
  if (!a.ok()) return Fail(a.status());
  if (p.common.json) {
    PrintJson(AnalyticsJson(*a));
    return 0;
  }
  std::printf("revenue   gross %s, refunded %s, net %s\n", FormatMoney(a->gross_minor, "EUR").c_str(),
              FormatMoney(a->refunded_minor, "EUR").c_str(), FormatMoney(a->net_minor, "EUR").c_str());
  std::printf("orders   ");
  for (const auto& [status, n] : a->orders_by_status) std::printf(" %s=%llu", status.c_str(), static_cast<unsigned long long>(n));
  std::printf("\ntop SKUs by units:   ");
  for (const auto& s : a->top_by_units) std::printf(" %s (%lld)", s.sku.c_str(), static_cast<long long>(s.units));
  std::printf("\ntop SKUs by revenue: ");
  for (const auto& s : a->top_by_revenue) {
    std::printf(" %s (%s)", s.sku.c_str(), FormatMoney(s.revenue_minor, "EUR").c_str());
  }
  std::printf("\norders per hour:\n");
  for (const auto& [hour, n] : a->orders_per_hour) std::printf("  %s  %lld\n", FormatTime(hour).c_str(), static_cast<long long>(n));
  std::printf("delivered %lld, average placed to delivered %.1f s\n", static_cast<long long>(a->delivered),
              a->average_placed_to_delivered_ms / 1000.0);
  return 0;
}

int CmdDlq(const std::vector<std::string>& args) {
  const std::string usage =
      "orderflow dlq list [--json]\n"
      "       orderflow dlq show ID [--json]\n"
      "       orderflow dlq redrive [--id ID ...] [--force]";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "Usage: " << usage
              << "\n\nDead letters: records a service could not process, parked on orders.dlq with the error,\n"
                 "the source topic/partition/offset, the service and the attempts. `redrive` appends them to\n"
                 "their source topic again (after a fix or an upgrade); event ids keep them from being applied\n"
                 "twice. Run `orderflow dlq SUBCOMMAND --help` for its options.\n";
    if (args.empty()) throw UsageError{"dlq needs a subcommand: list, show or redrive"};
    return 0;
  }
  const std::string sub = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  Parsed p;
  auto letter_json = [](const eventstore::DeadLetter& d, bool full) {
    json j = {{"id", d.id},
              {"service", d.service},
              {"error", d.error},
              {"source", {{"topic", d.source_topic}, {"partition", d.source_partition}, {"offset", d.source_offset}}},
              {"attempts", d.attempts},
              {"failed_at", FormatTime(d.failed_at_ms)},
              {"state", d.redriven_at_ms ? "redriven" : "pending"}};
    if (d.redriven_at_ms) j["redriven_at"] = FormatTime(*d.redriven_at_ms);
    if (full) {
      json headers = json::object();
      for (const auto& h : d.headers) headers[h.name] = h.value;
      j["key"] = d.key;
      j["headers"] = headers;
      j["value_bytes"] = d.value.size();
      auto event = eventstore::DecodeEvent(d.value);
      j["decodes_now"] = event.ok();
      if (event.ok()) {
        j["event"] = {{"type", domain::EventTypeName(event->payload)}, {"summary", domain::Summarize(event->payload)}};
      } else {
        j["decode_error"] = event.status().ToString();
      }
    }
    return j;
  };
  const auto timeout = std::chrono::seconds(30);
  if (sub == "list") {
    if (!Parse(rest, "orderflow dlq list --brokers LIST [--json]\n\nLists the dead letters on orders.dlq.", {}, {},
               p)) {
      return 0;
    }
    auto letters = eventstore::ReadDeadLetters(KafkaFrom(p.common, true), timeout);
    if (!letters.ok()) return Fail(letters.status());
    if (p.common.json) {
      json out = json::array();
      for (const auto& d : *letters) out.push_back(letter_json(d, false));
      PrintJson(out);
      return 0;
    }
    std::printf("%-6s %-24s %-13s %-26s %-3s %-9s %s\n", "ID", "FAILED AT", "SERVICE", "SOURCE", "TRY", "STATE",
                "ERROR");
    for (const auto& d : *letters) {
      const std::string source = d.source_topic + "[" + std::to_string(d.source_partition) + "]@" +
                                 std::to_string(d.source_offset);
      std::printf("%-6lld %-24s %-13s %-26s %-3d %-9s %s\n", static_cast<long long>(d.id),
                  FormatTime(d.failed_at_ms).c_str(), d.service.c_str(), source.c_str(), d.attempts,
                  d.redriven_at_ms ? "redriven" : "pending", d.error.c_str());
    }
    if (letters->empty()) std::printf("(no dead letters)\n");
    return 0;
  }
  if (sub == "show") {
    int64_t id = -1;
    po::options_description d("dlq show options");
    d.add_options()("id", po::value(&id)->value_name("ID"), "dead letter id (from dlq list)");
    po::positional_options_description pos;
    pos.add("id", 1);
    if (!Parse(rest, "orderflow dlq show ID --brokers LIST [--json]\n\nShows one dead letter: error, source, "
                     "headers, and whether its record decodes with this build.",
               d, pos, p)) {
      return 0;
    }
    if (id < 0) throw UsageError{"dlq show needs a dead letter id (see `orderflow dlq list`)"};
    auto letters = eventstore::ReadDeadLetters(KafkaFrom(p.common, true), timeout);
    if (!letters.ok()) return Fail(letters.status());
    for (const auto& l : *letters) {
      if (l.id != id) continue;
      json j = letter_json(l, true);
      if (p.common.json) {
        PrintJson(j);
      } else {
        for (const auto& [k, v] : j.items()) std::cout << std::left << std::setw(12) << k << " " << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
      }
      return 0;
    }
    return Fail(Status::NotFound("no dead letter " + std::to_string(id) + " on orders.dlq (see `orderflow dlq list`)"));
  }
  if (sub == "redrive") {
    std::vector<int64_t> ids;
    bool force = false;
    po::options_description d("dlq redrive options");
    d.add_options()("id", po::value(&ids)->composing()->value_name("ID"), "a dead letter to redrive, repeatable "
                                                                          "(default: every pending one)")(
        "force", po::bool_switch(&force), "redrive ids already redriven");
    if (!Parse(rest, "orderflow dlq redrive [--id ID ...] [--force] --brokers LIST\n\n"
                     "Appends dead letters' records to their source topics again, once per source record, and marks\n"
                     "them redriven. Services decode them with this build (upcasters included) and handle them;\n"
                     "an event already applied is dropped by its id.",
               d, {}, p)) {
      return 0;
    }
    auto result = eventstore::Redrive(KafkaFrom(p.common, true), ids, force, timeout);
    if (!result.ok()) return Fail(result.status());
    if (p.common.json) {
      PrintJson({{"redriven", result->redriven}, {"records_appended", result->appended}});
    } else {
      std::printf("redrove %zu dead letters (%zu records appended to their source topics)\n",
                  result->redriven.size(), result->appended);
    }
    return 0;
  }
  throw UsageError{"unknown dlq subcommand '" + sub + "' (list, show or redrive)"};
}

int CmdLog(const std::vector<std::string>& args) {
  const std::string usage =
      "orderflow log export FILE --brokers LIST\n"
      "       orderflow log import FILE --brokers LIST";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "Usage: " << usage
              << "\n\nCopies every record of orderflow's topics to a file, or from a file into a cluster whose\n"
                 "topics are empty, each record at its original partition and offset (so every store's consumed\n"
                 "offsets stay valid): backups, and moving between clusters.\n";
    if (args.empty()) throw UsageError{"log needs a subcommand: export or import"};
    return 0;
  }
  const std::string sub = args[0];
  if (sub != "export" && sub != "import") throw UsageError{"unknown log subcommand '" + sub + "' (export or import)"};
  std::vector<std::string> rest(args.begin() + 1, args.end());
  std::string file;
  po::options_description d("log " + sub + " options");
  d.add_options()("file", po::value(&file)->value_name("FILE"), "the export file");
  po::positional_options_description pos;
  pos.add("file", 1);
  Parsed p;
  const std::string text =
      sub == "export" ? "orderflow log export FILE --brokers LIST\n\nWrites every record of orderflow's topics "
                        "(every partition from offset 0) to FILE."
                      : "orderflow log import FILE --brokers LIST\n\nAppends every record of FILE to its topic and "
                        "partition, which must be empty, and checks it lands at its original offset.";
  if (!Parse(rest, text, d, pos, p)) return 0;
  if (file.empty()) throw UsageError{"log " + sub + " needs a FILE"};
  auto kafka = KafkaFrom(p.common, true);
  const bool tty = isatty(STDERR_FILENO) && !p.common.json;
  auto progress = [tty](uint64_t n) {
    if (tty) std::fprintf(stderr, "\r%llu records", static_cast<unsigned long long>(n));
  };
  const auto started = std::chrono::steady_clock::now();
  Result<uint64_t> count = uint64_t{0};
  if (sub == "export") {
    std::vector<std::string> topics;
    for (const auto& t : eventstore::DefaultTopics()) topics.push_back(t.name);
    count = eventstore::ExportLog(kafka, topics, file, progress);
  } else {
    auto log = eventstore::OpenLogFile(file);
    if (!log.ok()) return Fail(log.status());
    std::vector<eventstore::TopicSpec> specs;
    std::map<std::string, int32_t> partitions;
    for (const auto& [tp, n] : log->records) partitions[tp.topic] = std::max(partitions[tp.topic], tp.partition + 1);
    for (const auto& [topic, n] : partitions) specs.push_back({topic, n});
    Status provisioned = eventstore::ProvisionTopics(kafka, specs, std::chrono::seconds(15));
    if (!provisioned.ok()) return Fail(provisioned);
    count = eventstore::Republish(kafka, log->source, progress);
  }
  if (tty) std::fprintf(stderr, "\n");
  if (!count.ok()) return Fail(count.status());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (p.common.json) {
    PrintJson({{sub == "export" ? "exported" : "imported", *count}, {"file", file}, {"seconds", seconds}});
  } else {
    std::printf("%s %llu records %s %s in %.2f s\n", sub == "export" ? "exported" : "imported",
                static_cast<unsigned long long>(*count), sub == "export" ? "to" : "from", file.c_str(), seconds);
  }
  return 0;
}

struct CommandInfo {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>&);
};

const CommandInfo kCommands[] = {
    {"up", "run the services and the projector (embedded broker unless --brokers)", CmdUp},
    {"broker", "run the embedded Kafka-protocol broker", CmdBroker},
    {"service", "run one service as its own process", CmdService},
    {"stock", "add stock to a SKU", CmdStock},
    {"snapshot", "create, list, restore or delete snapshots of the projections", CmdSnapshot},
    {"analytics", "revenue, orders by status, top SKUs, orders per hour", CmdAnalytics},
    {"order", "place, get, cancel or list orders", CmdOrder},
    {"history", "an order's event timeline from the local store", CmdHistory},
    {"dlq", "list, show or redrive dead letters (records services could not process)", CmdDlq},
    {"log", "export the log to a file, or import one into an empty cluster", CmdLog},
    {"catalog", "the demo catalog", CmdCatalog},
    {"replay", "rebuild the projections from offset zero", CmdReplay},
    {"digest", "the state digest of a data directory", CmdDigest},
    {"topics", "orderflow's topics on the cluster: partitions, leaders, ISR, offsets, retention", CmdTopics},
    {"lag", "committed offset, log end and lag per consumer group and partition", CmdLag},
    {"check", "check the log and outboxes: unfinished orders, oversold SKUs, double refunds, repeated notifications", CmdCheck},
};

void PrintUsage(std::ostream& out) {
  out << "Usage: orderflow COMMAND [options]\n\n"
         "An event-sourced order-processing system on Kafka, RocksDB and Cap'n Proto.\n\nCommands:\n";
  for (const auto& c : kCommands) {
    char line[160];
    std::snprintf(line, sizeof line, "  %-10s %s\n", c.name, c.summary);
    out << line;
  }
  out << "\nRun `orderflow COMMAND --help` for a command's options.\n";
}

int Main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("orderflow");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
  InstallSignalHandlers();

  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    PrintUsage(std::cerr);
    return 2;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    PrintUsage(std::cout);
    return 0;
  }
  if (args[0] == "--version") {
    std::cout << "orderflow 0.1.0 (schema version " << domain::kCurrentSchemaVersion << ")\n";
    return 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  for (const auto& c : kCommands) {
    if (command != c.name) continue;
    try {
      return c.run(args);
    } catch (const UsageError& e) {
      std::cerr << "orderflow " << command << ": " << e.message << " (see `orderflow " << command << " --help`)\n";
      return 2;
    } catch (const Status& s) {
      return Fail(s);
    }
  }
  std::cerr << "orderflow: unknown command '" << command << "' (see `orderflow --help`)\n";
  return 2;
}

}  // namespace
}  // namespace orderflow::cli

int main(int argc, char** argv) { return orderflow::cli::Main(argc, argv); }

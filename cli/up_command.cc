#include "cli/commands.h"

#include <spdlog/spdlog.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/common.h"
#include "projections/snapshot.h"
#include "projections/store.h"
#include "eventstore/topics.h"
#include "replay/replay.h"
#include "cli/app/up.h"

namespace po = boost::program_options;

namespace orderflow::cli {
namespace {

// up's own options; the values land in `o` (and, for those without a field
// there, in the variables map).
po::options_description UpOptionsDescription(services::UpOptions& o) {
  po::options_description d("up options");
  d.add_options()
      ("simulate", po::value(&o.simulate)->default_value(0)->value_name("N"), "place N random valid orders")
      ("rate", po::value(&o.rate)->default_value(0)->value_name("R"), "orders per second (0: as fast as possible)")
      ("exit-when-done", po::bool_switch(&o.exit_when_done),
       "exit 0 once every simulated order is projected and the projector reached the end of the log")
      ("seed", po::value(&o.seed)->default_value(1), "simulator random seed")
      ("partitions", po::value(&o.partitions)->value_name("N"),
       ("partitions of orders.events on a new cluster: up to N instances of a service share the work (default " +
        std::to_string(eventstore::kDefaultPartitions) + "; " + std::to_string(eventstore::kEmbeddedPartitions) +
        " on the embedded broker); inventory.events and notifications.*: a sixth, at least one per broker")
           .c_str())
      ("batch-size", po::value(&o.batch_size)->default_value(5000), "events per projection batch")
      ("transit-ms", po::value<int64_t>()->default_value(500), "simulated transit time from shipped to delivered")
      ("max-payment", po::value(&o.max_payment_minor)->default_value(o.max_payment_minor),
       "the payment gateway declines orders above this total (minor units)")
      ("projector-only", po::bool_switch(), "run the order service and projector only, no lifecycle services")
      ("separate-services", po::bool_switch(&o.separate_services),
       "run payment, inventory, shipping and delivery as four services (consumer groups orderflow-payment ...) "
       "instead of one, fulfillment: to run more instances of one of them in other processes")
      ("rebuild-corrupt", po::bool_switch(),
       "if the projection store is corrupt, move its files to DIR/corrupt-<time>/ and rebuild it from the log")
      ("snapshots", po::value<std::string>()->value_name("DIR"),
       "with --brokers, starting without a projection store: restore the newest snapshot here and replay the "
       "log after it (default <data-dir>-snapshots)")
      ("blocked-customer", po::value(&o.blocked_customers)->composing()->value_name("ID"),
       "a customer whose card the payment gateway declines, repeatable (default cust-0013)")
      ("services-nice", po::value(&o.services_nice)->default_value(0)->value_name("N"),
       "nice value (0-19) of the threads that process events (projector, services, Kafka consumers, embedded "
       "broker); the HTTP API and order service keep theirs, so queries are answered first on busy cores")
      ("exactly-once", po::bool_switch(&o.exactly_once),
       "append each service batch in a Kafka transaction (real brokers; the embedded one is not atomic)")
      ("http", po::value<std::string>()->default_value("127.0.0.1:8080")->value_name("HOST:PORT"),
       "serve the HTTP API and web page here (port 0: any free port; 'off': no HTTP)")
      ("api-token", po::value<std::string>()->value_name("TOKEN"),
       "require 'Authorization: Bearer TOKEN' on every endpoint but /healthz and /readyz (default: "
       "$ORDERFLOW_API_TOKEN, else none: everything open)")
      ("api-token-file", po::value<std::string>()->value_name("FILE"),
       "the API token from the first line of FILE (keeps it out of the process list)")
      ("api-read-token", po::value<std::string>()->value_name("TOKEN"),
       "a second token that reads but cannot place or cancel orders (default: $ORDERFLOW_API_READ_TOKEN)")
      ("api-read-token-file", po::value<std::string>()->value_name("FILE"), "the read token from the first line of FILE")
      ("tls-cert", po::value<std::string>()->value_name("FILE"),
       "serve HTTPS (TLS 1.2+) with this PEM certificate chain; needs --tls-key")
      ("tls-key", po::value<std::string>()->value_name("FILE"), "the PEM private key of --tls-cert")
      ("metrics-public", po::bool_switch(), "serve /metrics without a token")
      ("http-max-connections", po::value<size_t>()->default_value(10'000)->value_name("N"),
       "open connections at most; beyond, a new one gets 503")
      ("http-max-streams", po::value<size_t>()->default_value(1'000)->value_name("N"), "open event streams at most")
      ("http-idle-timeout", po::value<int64_t>()->default_value(60'000)->value_name("MS"),
       "close a connection that sends no request for this long")
      ("http-header-timeout", po::value<int64_t>()->default_value(10'000)->value_name("MS"),
       "close a connection whose request (or TLS handshake) does not arrive within this long of its first byte")
      ("web-dir", po::value<std::string>()->default_value(ORDERFLOW_WEB_DIR)->value_name("DIR"),
       "static files of the web page, served at /");
  return d;
}

// A token from --NAME, else from --NAME-file (its first line, trimmed), else
// from $ENV; "" when none. A Usage error for both flags, or a file that cannot
// be read or is empty.
Result<std::string> Secret(const po::variables_map& vm, const std::string& name, const char* env) {
  const std::string file_flag = name + "-file";
  if (vm.count(name) && vm.count(file_flag)) return Usage("give --" + name + " or --" + file_flag + ", not both");
  if (vm.count(name)) return std::string(vm[name].as<std::string>());
  if (vm.count(file_flag)) {
    const std::string path = vm[file_flag].as<std::string>();
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line)) {
      return Usage("cannot read --" + file_flag + " " + path + (in ? ": the file is empty" : ""));
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (line.empty()) return Usage("--" + file_flag + " " + path + ": the first line is empty");
    return line;
  }
  const char* value = std::getenv(env);
  return std::string(value == nullptr ? "" : value);
}

// The HTTP API's settings from --http and the flags after it; nullopt for
// --http off. A Usage error for flags that do not fit together.
Result<std::optional<services::HttpOptions>> HttpFrom(const po::variables_map& vm) {
  const std::string http = vm["http"].as<std::string>();
  if (http == "off") return std::optional<services::HttpOptions>();
  services::HttpOptions h;
  h.listen = http;
  ORDERFLOW_ASSIGN_OR_RETURN(h.api_token, Secret(vm, "api-token", "ORDERFLOW_API_TOKEN"));
  ORDERFLOW_ASSIGN_OR_RETURN(h.api_read_token, Secret(vm, "api-read-token", "ORDERFLOW_API_READ_TOKEN"));
  if (!h.api_read_token.empty() && h.api_read_token == h.api_token) {
    return Usage("--api-read-token must differ from --api-token");
  }
  h.metrics_public = vm["metrics-public"].as<bool>();
  h.max_connections = vm["http-max-connections"].as<size_t>();
  h.max_streams = vm["http-max-streams"].as<size_t>();
  h.idle_timeout = std::chrono::milliseconds(vm["http-idle-timeout"].as<int64_t>());
  h.header_timeout = std::chrono::milliseconds(vm["http-header-timeout"].as<int64_t>());
  if (h.max_connections == 0 || h.max_streams == 0) {
    return Usage("--http-max-connections and --http-max-streams must be > 0");
  }
  if (h.idle_timeout.count() <= 0 || h.header_timeout.count() <= 0) {
    return Usage("--http-idle-timeout and --http-header-timeout must be > 0");
  }
  if (vm.count("tls-cert") != vm.count("tls-key")) return Usage("give --tls-cert and --tls-key together");
  if (vm.count("tls-cert")) {
    h.tls_cert_file = vm["tls-cert"].as<std::string>();
    h.tls_key_file = vm["tls-key"].as<std::string>();
  }
  h.web_dir = vm["web-dir"].as<std::string>();
  return std::optional<services::HttpOptions>(std::move(h));
}

void PrintSummary(const services::UpSummary& s, bool as_json) {
  if (as_json) {
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
}

}  // namespace

Result<int> CmdUp(const std::vector<std::string>& args) {
  services::UpOptions o;
  Parsed p;
  ORDERFLOW_RETURN_IF_ERROR(Parse(args, "orderflow up [--brokers LIST] [--data-dir DIR] [--simulate N] [--rate R] [--exit-when-done]\n\n"
                   "Runs the order service, the lifecycle services and the projector. Without --brokers it starts\n"
                   "the embedded broker in this process; its log is archived in DIR/archive and put back into the\n"
                   "broker on the next start, so stopping loses nothing.",
             UpOptionsDescription(o), {}, p, "info"));
  if (p.common.help) return 0;
  if (p.vm.count("partitions") && (o.partitions < 1 || o.partitions > 1000)) {
    return Usage("--partitions must be from 1 to 1000");
  }
  if (o.rate < 0) return Usage("--rate must be >= 0");
  if (o.batch_size == 0) return Usage("--batch-size must be > 0");
  if (o.services_nice < 0 || o.services_nice > 19) return Usage("--services-nice must be from 0 to 19");
  ORDERFLOW_ASSIGN_OR_RETURN(o.kafka, KafkaFrom(p.common, false));
  o.data_dir = p.common.data_dir;
  o.transit_delay = std::chrono::milliseconds(p.vm["transit-ms"].as<int64_t>());
  o.lifecycle = !p.vm["projector-only"].as<bool>();
  if (o.transit_delay.count() < 0) return Usage("--transit-ms must be >= 0");
  ORDERFLOW_ASSIGN_OR_RETURN(o.http, HttpFrom(p.vm));
  const bool embedded = o.kafka.brokers.empty();
  ORDERFLOW_ASSIGN_OR_RETURN(const auto catalog, LoadCatalog(p.common));
  if (p.vm["rebuild-corrupt"].as<bool>()) {
    auto aside = projections::SetAsideIfCorrupt(o.data_dir);
    if (!aside.ok()) return Fail(aside.status());
  }
  if (!embedded) {
    replay::ReplayOptions rebuild;
    rebuild.kafka = o.kafka;
    auto rebuilt = replay::RebuildIfOutdated(rebuild, o.data_dir);
    if (!rebuilt.ok()) return Fail(rebuilt.status());
    const std::string snapshots =
        p.vm.count("snapshots") ? p.vm["snapshots"].as<std::string>() : projections::DefaultSnapshotsDir(o.data_dir);
    auto restored = replay::RestoreIfLost(rebuild, o.data_dir, snapshots);
    if (!restored.ok()) return Fail(restored.status());
  }
  auto summary = services::RunUp(o, catalog, g_stop.get_token(), [&](const services::UpEndpoints& e) {
    spdlog::info("orderflow up: brokers {}{}, data in {}; Ctrl-C to stop", e.brokers, embedded ? " (embedded)" : "",
                 o.data_dir);
    if (!e.http.empty()) {
      spdlog::info("HTTP API and web page on {}://{}/", o.http && !o.http->tls_cert_file.empty() ? "https" : "http",
                   e.http);
    }
  });
  if (!summary.ok()) return Fail(summary.status());
  PrintSummary(*summary, p.common.json);
  return 0;
}

}  // namespace orderflow::cli

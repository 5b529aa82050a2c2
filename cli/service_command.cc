#include "cli/commands.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "cli/common.h"
#include "projections/snapshot.h"
#include "projections/store.h"
#include "replay/replay.h"
#include "services/lifecycle/lifecycle.h"
#include "projections/pg/pg_projector.h"
#include "cli/app/projector_service.h"

namespace po = boost::program_options;

namespace orderflow::cli {
namespace {

Result<int> RunLifecycleService(const std::string& name, const std::string& instance, const Parsed& p,
                        const services::LifecycleConfig& config, bool exactly_once) {
  ORDERFLOW_ASSIGN_OR_RETURN(auto kafka, KafkaFrom(p.common, true));
  ORDERFLOW_ASSIGN_OR_RETURN(const auto catalog, LoadCatalog(p.common));
  services::ServiceOptions so;
  so.name = name;
  so.instance = instance;
  so.kafka = kafka;
  so.data_dir = p.common.data_dir;
  so.exactly_once = exactly_once;
  auto runner = services::MakeLifecycleService(so, catalog, config);
  if (!runner.ok()) return Fail(runner.status());
  spdlog::info("{} {} running on {}, state in {}", name, instance, kafka.brokers, p.common.data_dir);
  Status s = (*runner)->Run(g_stop.get_token());
  if (!s.ok()) return Fail(s);
  const services::ServiceStats& stats = (*runner)->stats();
  spdlog::info("{} {} stopped after {} events ({} of them skipped undecoded: nothing this service reads)", name,
               instance, stats.events.load(), stats.skipped.load());
  return 0;
}

// The projector: brings the store up to date (RebuildIfOutdated), then applies
// orders.events until stopped, or with `exit_when_caught_up` until the log end
// as it was when started.
Result<int> RunProjector(const std::string& instance, const Parsed& p, size_t batch_size, bool exit_when_caught_up,
                 bool rebuild_corrupt, std::string snapshots_dir) {
  ORDERFLOW_ASSIGN_OR_RETURN(auto kafka, KafkaFrom(p.common, true));
  if (rebuild_corrupt) {
    auto aside = projections::SetAsideIfCorrupt(p.common.data_dir);
    if (!aside.ok()) return Fail(aside.status());
  }
  {
    replay::ReplayOptions rebuild;
    rebuild.kafka = kafka;
    auto rebuilt = replay::RebuildIfOutdated(rebuild, p.common.data_dir);
    if (!rebuilt.ok()) return Fail(rebuilt.status());
    if (snapshots_dir.empty()) snapshots_dir = projections::DefaultSnapshotsDir(p.common.data_dir);
    auto restored = replay::RestoreIfLost(rebuild, p.common.data_dir, snapshots_dir);
    if (!restored.ok()) return Fail(restored.status());
  }
  auto service = services::ProjectorService::Start(
      {.kafka = kafka, .data_dir = p.common.data_dir, .instance = instance, .batch_size = batch_size});
  if (!service.ok()) return Fail(service.status());
  spdlog::info("projector {} running on {}, data in {}", instance, kafka.brokers, p.common.data_dir);
  Status s = exit_when_caught_up ? (*service)->RunUntilCaughtUp(g_stop.get_token()) : (*service)->Run(g_stop.get_token());
  if (!s.ok()) return Fail(s);
  spdlog::info("projector {} stopped: applied {} events", instance, (*service)->projector().totals().applied);
  return 0;
}

// The PostgreSQL read model's projector (projections/pg/pg_projector.h).
Result<int> RunPgProjector(const std::string& instance, const Parsed& p, const projections::PgOptions& pg, size_t batch_size,
                   bool exit_when_caught_up) {
  if (pg.url.empty()) {
    return Usage("pg-projector needs --postgres URL (or ORDERFLOW_POSTGRES), e.g. postgresql://user@127.0.0.1:5432/db");
  }
  projections::PgProjectorOptions options;
  ORDERFLOW_ASSIGN_OR_RETURN(options.kafka, KafkaFrom(p.common, true));
  options.pg = pg;
  ORDERFLOW_ASSIGN_OR_RETURN(options.catalog, LoadCatalog(p.common));
  options.instance = instance;
  options.batch_size = batch_size;
  auto projector = projections::PgProjector::Start(std::move(options));
  if (!projector.ok()) return Fail(projector.status());
  spdlog::info("pg-projector {} running on {}, read model in schema {}", instance, p.common.brokers, pg.schema);
  Status s = exit_when_caught_up ? (*projector)->RunUntilCaughtUp(g_stop.get_token()) : (*projector)->Run(g_stop.get_token());
  if (!s.ok()) return Fail(s);
  const auto& t = (*projector)->totals();
  spdlog::info("pg-projector {} stopped: applied {} events in {} batches ({} rejected, {} duplicates dropped)",
               instance, t.applied, t.batches, t.rejected, t.duplicates);
  return 0;
}

}  // namespace

Result<int> CmdService(const std::vector<std::string>& args) {
  std::string name;
  std::string instance = "1";
  bool exit_when_caught_up = false;
  size_t batch_size = 5000;
  int64_t transit_ms = 500;
  int64_t max_payment = services::PaymentRules{}.max_amount_minor;
  std::vector<std::string> blocked = services::PaymentRules{}.blocked_customers;
  bool exactly_once = false;
  bool send_only = false;
  bool rebuild_corrupt = false;
  std::string snapshots_dir;
  projections::PgOptions pg;
  if (const char* env = std::getenv("ORDERFLOW_POSTGRES")) pg.url = env;
  po::options_description d("service options");
  d.add_options()("name", po::value(&name)->value_name("NAME"),
                  "projector, pg-projector, payment, inventory, shipping, delivery, notification or fulfillment")(
      "instance", po::value(&instance)->default_value(instance), "instance id within the service's consumer group")(
      "exit-when-caught-up", po::bool_switch(&exit_when_caught_up),
      "projector, pg-projector: exit 0 once the end of the log (as when started) is applied")(
      "postgres", po::value(&pg.url)->value_name("URL"),
      "pg-projector: the PostgreSQL database (default $ORDERFLOW_POSTGRES)")(
      "pg-schema", po::value(&pg.schema)->default_value(pg.schema), "pg-projector: the schema holding its tables")(
      "rebuild-corrupt", po::bool_switch(&rebuild_corrupt),
      "projector: if the store is corrupt, move its files to DIR/corrupt-<time>/ and rebuild it from the log")(
      "snapshots", po::value(&snapshots_dir)->value_name("DIR"),
      "projector: starting without a store, restore the newest snapshot here and replay the log after it "
      "(default <data-dir>-snapshots)")(
      "batch-size", po::value(&batch_size)->default_value(batch_size), "projector, pg-projector: events per batch")(
      "transit-ms", po::value(&transit_ms)->default_value(transit_ms), "delivery, fulfillment: simulated transit time")(
      "max-payment", po::value(&max_payment)->default_value(max_payment),
      "payment, fulfillment: decline orders above this total (minor units)")(
      "blocked-customer", po::value(&blocked)->composing()->value_name("ID"),
      "payment, fulfillment: a customer whose card is declined, repeatable (default cust-0013)")(
      "exactly-once", po::bool_switch(&exactly_once), "append each batch's outputs in a Kafka transaction")(
      "send-only", po::bool_switch(&send_only),
      "notification: only send what notifications.high/low hold (beside fulfillment, which routes them)");
  po::positional_options_description pos;
  pos.add("name", 1);
  Parsed p;
  ORDERFLOW_RETURN_IF_ERROR(Parse(args, "orderflow service NAME --brokers LIST [--data-dir DIR] [--instance ID]\n\n"
                   "Runs one service as its own process until SIGINT/SIGTERM. Instances of a service share its\n"
                   "consumer group; give each its own --data-dir. Services: projector, payment, inventory,\n"
                   "shipping, delivery, notification (its outbox is DIR/outbox.log), pg-projector, which\n"
                   "keeps the PostgreSQL read model of --postgres URL (docs/sql.md), and fulfillment: payment,\n"
                   "inventory, shipping, delivery and the notification router in one consumer group, as\n"
                   "`orderflow up` runs them, beside `notification --send-only` (never beside separate instances\n"
                   "of those four or a routing notification: both would handle the same events).",
             d, pos, p, "info"));
  if (p.common.help) return 0;
  if (name.empty()) return Usage("service needs a NAME");
  if (name == "pg-projector") return RunPgProjector(instance, p, pg, batch_size, exit_when_caught_up);
  if (name != "projector") {
    const auto& names = services::LifecycleServiceNames();
    if (name != services::kFulfillment && std::find(names.begin(), names.end(), name) == names.end()) {
      return Usage("unknown service '" + name +
                   "' (projector, pg-projector, payment, inventory, shipping, delivery, notification, fulfillment)");
    }
    services::LifecycleConfig config;
    config.transit_delay = std::chrono::milliseconds(transit_ms);
    config.payment.max_amount_minor = max_payment;
    config.payment.blocked_customers = blocked;
    if (send_only && name != "notification") return Usage("--send-only is for the notification service");
    config.notification_sends_only = send_only;
    return RunLifecycleService(name, instance, p, config, exactly_once);
  }
  return RunProjector(instance, p, batch_size, exit_when_caught_up, rebuild_corrupt, snapshots_dir);
}

}  // namespace orderflow::cli

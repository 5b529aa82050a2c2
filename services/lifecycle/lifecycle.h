// The lifecycle services: payment, inventory, shipping, delivery and
// notification, each a Reactor run by a ServiceRunner (see runner.h).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "domain/catalog.h"
#include "services/lifecycle/runner.h"

namespace orderflow::services {

// The simulated payment gateway's deterministic rules.
struct PaymentRules {
  int64_t max_amount_minor = 50000;                          // decline orders above this total
  std::vector<std::string> blocked_customers = {"cust-0013"};  // their card token is blocked
};

std::unique_ptr<Reactor> MakePaymentReactor(PaymentRules rules);
// `catalog` gives each SKU's initial stock; it must outlive the reactor.
// A StockAdded for a SKU the catalog lacks is a handler failure (ctx.Fail):
// the runner retries it and then parks it on orders.dlq, to be redriven once
// the catalog has the SKU. A reservation for such a SKU is rejected (no stock).
std::unique_ptr<Reactor> MakeInventoryReactor(const domain::Catalog& catalog);
std::unique_ptr<Reactor> MakeShippingReactor();
std::unique_ptr<Reactor> MakeDeliveryReactor(std::chrono::milliseconds transit_delay);
// Appends one line per notification to `outbox_path`:
// recipient \t template \t order id \t notification id.
std::unique_ptr<Reactor> MakeNotificationReactor(std::string outbox_path);
// The notification service's router alone: lifecycle changes on orders.events
// -> NotificationRequested on notifications.high/low (fulfillment hosts it
// under the name "notification": the same ids). No outbox.
std::unique_ptr<Reactor> MakeNotificationRouter();

// The lifecycle services, each `orderflow service NAME` (`up --separate-services`
// runs the five; `up` runs fulfillment and notification --send-only).
inline const std::vector<std::string>& LifecycleServiceNames() {
  static const std::vector<std::string> names = {"payment", "inventory", "shipping", "delivery", "notification"};
  return names;
}

// `orderflow service fulfillment` (and `orderflow up`) runs payment,
// inventory, shipping and delivery, and the notification router, as one
// service: one consumer group (orderflow-fulfillment), one reader of
// orders.events, one producer and one store (host_reactor.h). Each keeps its
// outputs' ids and its own state. Its notifications are sent by notification
// with `notification_sends_only` (`service notification --send-only`). It must
// not run beside separate instances of those four, or a notification service
// that routes too (they would handle the same events in other groups).
inline constexpr char kFulfillment[] = "fulfillment";
inline const std::vector<std::string>& FulfillmentServices() {
  static const std::vector<std::string> names = {"payment", "inventory", "shipping", "delivery"};
  return names;
}

// Input topics of lifecycle service `name`, one list per priority class
// (empty for an unknown name).
std::vector<std::vector<std::string>> LifecycleServiceInputs(const std::string& name);

// Services with a side effect outside the log (payment's gateway call, the
// notification outbox) handle at most this many inputs per batch: a side
// effect done just before a SIGKILL whose event had not reached the log yet is
// done again by the next owner, so this bounds the repeats per kill.
// Fulfillment does not: its payment gateway is PaymentRules, decided in the
// process and kept in its state, with no call that a kill could repeat.
inline constexpr size_t kSideEffectBatch = 50;

// notification's consumers let the broker hold a fetch this long (ServiceOptions::
// fetch_wait): no order waits for a notification, and 10 times fewer fetches
// cost both sides less CPU.
inline constexpr std::chrono::milliseconds kNotificationFetchWait{100};

// Topics lifecycle service `name` appends to (its outputs index reads them).
std::vector<std::string> LifecycleServiceOutputs(const std::string& name);

// Every consumer group orderflow's services and the projector of `orderflow up`
// use (without the topic prefix), with the topics each reads: what `orderflow
// lag` shows.
std::vector<std::pair<std::string, std::vector<std::string>>> ConsumerGroups();

struct LifecycleConfig {
  PaymentRules payment;
  std::chrono::milliseconds transit_delay{0};
  // notification: only send what notifications.high/low hold, no orders.events
  // input (fulfillment routes): consumer groups orderflow-notification-0 and -1.
  bool notification_sends_only = false;
};

// Options (input topics) and reactor for service `name` (one of
// LifecycleServiceNames(), or kFulfillment); kInvalidArgument for
// an unknown name. `options` must have name, instance, kafka and data_dir set.
Result<std::unique_ptr<ServiceRunner>> MakeLifecycleService(ServiceOptions options, const domain::Catalog& catalog,
                                                            const LifecycleConfig& config);

}  // namespace orderflow::services

#include "services/lifecycle/lifecycle.h"

#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <deque>
#include <fstream>
#include <stdexcept>
#include <unordered_set>

#include "eventstore/topics.h"
#include "services/lifecycle/host_reactor.h"

namespace orderflow::services {
namespace {

using domain::OrderStatus;
using eventstore::kInventoryTopic;
using eventstore::kOrdersTopic;

bool Entered(OrderStatus before, const domain::OrderState& after, OrderStatus status) {
  return before != status && after.status == status;
}

// The last 8 characters of an order id, for the payment and reservation ids
// derived from it: a UUID's random end (a v7 id begins with its time, which
// orders placed in the same minute share).
std::string IdTail(const std::string& order_id) {
  return order_id.size() > 8 ? order_id.substr(order_id.size() - 8) : order_id;
}

// Whether `type` (an event-type header) names event T (domain::EventTypeName).
template <typename T>
bool Is(std::string_view type) {
  static const std::string_view name = domain::EventTypeName(T{});
  return type == name;
}
// Order events that move no order's status: each changes one field that
// only some reactors read (Reactor::Skips).
bool IsInventoryLineEvent(std::string_view type) {
  return Is<domain::InventoryLineReserved>(type) || Is<domain::InventoryLineRejected>(type) ||
         Is<domain::InventoryLineReleased>(type);
}
// For reactors that read only the status and what OrderPlaced, PaymentAuthorized
// and OrderShipped set.
bool ChangesNoStatus(std::string_view type) {
  return Is<domain::NotificationSent>(type) || Is<domain::PaymentRefunded>(type) || IsInventoryLineEvent(type);
}

int32_t LineQuantity(const domain::OrderState& order, const std::string& sku) {
  for (const auto& l : order.lines) {
    if (l.sku == sku) return l.quantity;
  }
  return 0;
}

// ---- payment ----------------------------------------------------------------

class PaymentReactor final : public Reactor {
 public:
  explicit PaymentReactor(PaymentRules rules) : rules_(std::move(rules)) {}

  // Refunds read paid and refunded amounts: PaymentRefunded is kept.
  bool Skips(std::string_view type) const override {
    return Is<domain::NotificationSent>(type) || IsInventoryLineEvent(type);
  }

  Status OnOrderEvent(const domain::Event& e, domain::OrderStatus before, const domain::OrderState& after,
                      BatchContext& ctx) override {
    const std::string& id = after.order_id;
    if (Entered(before, after, OrderStatus::kPlaced)) {
      // The gateway call is idempotent per order: a decision made once is kept.
      if (ctx.Get("charge/" + id)) return Status::Ok();
      std::string reason;
      if (std::find(rules_.blocked_customers.begin(), rules_.blocked_customers.end(), after.customer_id) !=
          rules_.blocked_customers.end()) {
        reason = "card blocked";
      } else if (after.total_minor > rules_.max_amount_minor) {
        reason = "amount over the limit of " + std::to_string(rules_.max_amount_minor / 100) + " " + after.currency;
      }
      if (reason.empty()) {
        ctx.Emit(kOrdersTopic, e, id, "authorize",
                 domain::PaymentAuthorized{"pay-" + IdTail(id), after.total_minor, "card"});
        ctx.Put("charge/" + id, "authorized");
      } else {
        ctx.Emit(kOrdersTopic, e, id, "decline", domain::PaymentDeclined{reason, after.total_minor});
        ctx.Emit(kOrdersTopic, e, id, "cancel", domain::OrderCancelled{"payment declined: " + reason,
                                                                        domain::CancelSource::kPayment});
        ctx.Put("charge/" + id, "declined");
      }
    } else if (Entered(before, after, OrderStatus::kInventoryRejected)) {
      Refund(e, after, "inventory rejected", ctx);
      const auto& rejected = std::get<domain::InventoryRejected>(e.payload);
      ctx.Emit(kOrdersTopic, e, id, "cancel",
               domain::OrderCancelled{"out of stock: " + rejected.sku, domain::CancelSource::kInventory});
    } else if (Entered(before, after, OrderStatus::kCancelled)) {
      Refund(e, after, "order cancelled", ctx);
    } else if (std::holds_alternative<domain::PaymentAuthorized>(e.payload) &&
               after.status == OrderStatus::kCancelled) {
      // The customer cancelled while the authorization was on its way: give it back.
      Refund(e, after, "order cancelled", ctx);
    }
    return Status::Ok();
  }

 private:
  // At most one refund per order, whatever path asks for it.
  void Refund(const domain::Event& e, const domain::OrderState& order, const std::string& reason, BatchContext& ctx) {
    int64_t due = order.paid_minor - order.refunded_minor;
    if (due <= 0 || ctx.Get("refund/" + order.order_id)) return;
    ctx.Emit(kOrdersTopic, e, order.order_id, "refund", domain::PaymentRefunded{order.payment_id, due, reason});
    ctx.Put("refund/" + order.order_id, std::to_string(due));
  }

  PaymentRules rules_;
};

// ---- inventory ----------------------------------------------------------------
//
// Two roles in one service. Order side (orders.events, by order): asks the
// SKU owners to reserve each line once payment is authorized, turns their
// per-line answers into InventoryReserved / InventoryRejected, and asks for
// releases when an order fails or is cancelled. SKU side (inventory.events,
// by SKU): the single owner of each SKU's stock decides every request in log
// order, so stock never goes below zero however many instances run.

class InventoryReactor final : public Reactor {
 public:
  explicit InventoryReactor(const domain::Catalog& catalog) : catalog_(catalog) {}

  // The per-line answers are its own business: it keeps those.
  bool Skips(std::string_view type) const override {
    return Is<domain::NotificationSent>(type) || Is<domain::PaymentRefunded>(type);
  }

  Status OnOrderEvent(const domain::Event& e, domain::OrderStatus before, const domain::OrderState& after,
                      BatchContext& ctx) override {
    const std::string& id = after.order_id;
    if (Entered(before, after, OrderStatus::kPaymentAuthorized)) {
      for (const auto& line : after.lines) {
        ctx.Emit(kInventoryTopic, e, line.sku, "reserve/" + line.sku,
                 domain::StockReservationRequested{line.sku, id, line.quantity});
      }
    } else if (const auto* reserved = std::get_if<domain::InventoryLineReserved>(&e.payload)) {
      if (after.status == OrderStatus::kPaymentAuthorized && after.AllLinesReserved()) {
        ctx.Emit(kOrdersTopic, e, id, "reserved", domain::InventoryReserved{"res-" + IdTail(id), after.lines});
      } else if (after.status == OrderStatus::kCancelled || after.status == OrderStatus::kInventoryRejected) {
        Release(e, after, reserved->sku, ctx);  // arrived after the order failed
      }
    } else if (const auto* rejected = std::get_if<domain::InventoryLineRejected>(&e.payload)) {
      if (after.status == OrderStatus::kPaymentAuthorized && !ctx.Get("rejected/" + id)) {
        ctx.Put("rejected/" + id, rejected->sku);
        ctx.Emit(kOrdersTopic, e, id, "rejected",
                 domain::InventoryRejected{rejected->sku, rejected->requested, rejected->available,
                                           "insufficient stock"});
        for (const auto& sku : after.reserved_skus) Release(e, after, sku, ctx);
      }
    } else if (Entered(before, after, OrderStatus::kCancelled)) {
      for (const auto& sku : after.reserved_skus) Release(e, after, sku, ctx);
    }
    return Status::Ok();
  }

  Status OnEvent(const std::string& topic, const domain::Event& e, BatchContext& ctx) override {
    if (topic != kInventoryTopic) return Status::Ok();
    if (const auto* added = std::get_if<domain::StockAdded>(&e.payload)) {
      const std::string marker = "added/" + domain::UuidToString(e.id);
      if (ctx.Get(marker)) return Status::Ok();  // the same addition delivered twice
      if (catalog_.Find(added->sku) == nullptr) {
        // Stock nobody can order: most likely a catalog this instance was not
        // given yet. Failing the record parks it on orders.dlq (after the
        // runner's retries) instead of applying or dropping it, so it can be
        // redriven once the catalog has the SKU.
        return Status::FailedPrecondition(
            "StockAdded for " + added->sku +
            ", which is not in the catalog: add it to the catalog file (--catalog) and restart, then redrive "
            "this dead letter");
      }
      ctx.Put(marker, "");
      SetStock(ctx, added->sku, Stock(ctx, added->sku) + added->quantity);
    } else if (const auto* req = std::get_if<domain::StockReservationRequested>(&e.payload)) {
      const std::string key = "res/" + req->sku + "/" + req->order_id;
      if (ctx.Get(key)) return Status::Ok();  // decided before: the answer is already in the log
      int64_t stock = Stock(ctx, req->sku);
      if (req->quantity > 0 && stock >= req->quantity) {
        SetStock(ctx, req->sku, stock - req->quantity);
        ctx.Put(key, "R" + std::to_string(req->quantity));
        ctx.Emit(kOrdersTopic, e, req->order_id, "line/" + req->sku,
                 domain::InventoryLineReserved{req->sku, req->quantity});
      } else {
        ctx.Put(key, "X");
        ctx.Emit(kOrdersTopic, e, req->order_id, "line/" + req->sku,
                 domain::InventoryLineRejected{req->sku, req->quantity, static_cast<int32_t>(std::max<int64_t>(stock, 0))});
      }
    } else if (const auto* rel = std::get_if<domain::StockReleaseRequested>(&e.payload)) {
      const std::string key = "res/" + rel->sku + "/" + rel->order_id;
      auto res = ctx.Get(key);
      if (!res || res->empty() || (*res)[0] != 'R') return Status::Ok();  // never reserved, or released already
      int32_t qty = 0;
      std::from_chars(res->data() + 1, res->data() + res->size(), qty);
      SetStock(ctx, rel->sku, Stock(ctx, rel->sku) + qty);
      ctx.Put(key, "released");
      ctx.Emit(kOrdersTopic, e, rel->order_id, "released/" + rel->sku, domain::InventoryLineReleased{rel->sku, qty});
    }
    return Status::Ok();
  }

 private:
  void Release(const domain::Event& cause, const domain::OrderState& order, const std::string& sku,
               BatchContext& ctx) {
    ctx.Emit(kInventoryTopic, cause, sku, "release/" + sku,
             domain::StockReleaseRequested{sku, order.order_id, LineQuantity(order, sku)});
  }

  int64_t Stock(BatchContext& ctx, const std::string& sku) {
    auto v = ctx.Get("stock/" + sku);
    if (v) {
      int64_t n = 0;
      std::from_chars(v->data(), v->data() + v->size(), n);
      return n;
    }
    const domain::CatalogItem* item = catalog_.Find(sku);
    return item ? item->initial_stock : 0;
  }
  void SetStock(BatchContext& ctx, const std::string& sku, int64_t n) { ctx.Put("stock/" + sku, std::to_string(n)); }

  const domain::Catalog& catalog_;
};

// ---- shipping -----------------------------------------------------------------

class ShippingReactor final : public Reactor {
 public:
  bool Skips(std::string_view type) const override { return ChangesNoStatus(type); }
  Status OnOrderEvent(const domain::Event& e, domain::OrderStatus before, const domain::OrderState& after,
                      BatchContext& ctx) override {
    if (!Entered(before, after, OrderStatus::kInventoryReserved)) return Status::Ok();
    static constexpr const char* kCarriers[] = {"DHL", "UPS", "PostNL"};
    domain::EventId tracking = domain::DeriveEventId(e.id, "tracking");
    std::string hex = domain::UuidToString(tracking).substr(0, 8);
    std::transform(hex.begin(), hex.end(), hex.begin(), ::toupper);
    ctx.Emit(kOrdersTopic, e, after.order_id, "ship",
             domain::OrderShipped{kCarriers[tracking[0] % 3], "TRK" + hex});
    return Status::Ok();
  }
};

// ---- delivery -----------------------------------------------------------------

class DeliveryReactor final : public Reactor {
 public:
  explicit DeliveryReactor(std::chrono::milliseconds transit) : transit_(transit) {}

  bool Skips(std::string_view type) const override { return ChangesNoStatus(type); }

  void Load(const std::map<std::string, std::string>& state) override {
    pending_.clear();
    for (const auto& [key, value] : state) {
      if (key.rfind("due/", 0) != 0) continue;
      // due_ms|cause uuid|correlation uuid|recipient
      auto bar = value.find('|');
      if (bar == std::string::npos || value.size() < bar + 75) continue;
      Pending p;
      std::from_chars(value.data(), value.data() + bar, p.due_ms);
      domain::UuidFromString(value.substr(bar + 1, 36), &p.cause);
      domain::UuidFromString(value.substr(bar + 38, 36), &p.correlation);
      p.recipient = value.substr(bar + 75);
      pending_[key.substr(4)] = p;
    }
  }

  Status OnOrderEvent(const domain::Event& e, domain::OrderStatus before, const domain::OrderState& after,
                      BatchContext& ctx) override {
    if (!Entered(before, after, OrderStatus::kShipped)) return Status::Ok();
    Pending p{ctx.now_ms() + transit_.count(), e.id, e.correlation_id, after.customer_id};
    pending_[after.order_id] = p;
    ctx.Put("due/" + after.order_id, std::to_string(p.due_ms) + "|" + domain::UuidToString(p.cause) + "|" +
                                         domain::UuidToString(p.correlation) + "|" + p.recipient);
    return Status::Ok();
  }

  void OnTick(BatchContext& ctx) override {
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.due_ms > ctx.now_ms()) {
        ++it;
        continue;
      }
      domain::Event cause;
      cause.id = it->second.cause;
      cause.correlation_id = it->second.correlation;
      ctx.Emit(kOrdersTopic, cause, it->first, "deliver", domain::OrderDelivered{it->second.recipient});
      ctx.Delete("due/" + it->first);
      it = pending_.erase(it);
    }
  }

 private:
  struct Pending {
    int64_t due_ms = 0;
    domain::EventId cause{};
    domain::EventId correlation{};
    std::string recipient;
  };
  std::chrono::milliseconds transit_;
  std::map<std::string, Pending> pending_;
};

// ---- notification -------------------------------------------------------------
//
// Router: lifecycle events -> NotificationRequested on notifications.high
// (declined, cancelled, delivered) or notifications.low (placed, shipped).
// Sender: drains high before low; "sends" by appending a line to the outbox
// and records NotificationSent. Sent already: a request whose NotificationSent
// the outputs index holds (any instance's, once its batch is stored), or whose
// line this instance wrote and has not yet seen confirmed that way. The
// service's state keeps where the outbox ended after its last stored batch,
// and the ids of earlier lines still unconfirmed (`carried/<id>`: lines of
// batches that were not stored, read at a start, whose requests were not
// handled again since). A (re)start reads those and the lines past that end
// only, so an instance never sends an id twice and neither its memory nor its
// start grows with the outbox. A store without that end (new, lost, or from a
// version before it) carries every line of the outbox read at its first start
// until its request comes back, as that version kept every id.
// Each instance has its own outbox: when a queue partition moves to another
// instance, that one may send again what the first sent (at-least-once
// across instances; run one sender per outbox for exactly-once).

// What a NotificationReactor does: both (the notification service on its
// own), route only (hosted by fulfillment), send only (beside fulfillment).
enum class NotificationRole { kRouteAndSend, kRoute, kSend };

class NotificationReactor final : public Reactor {
 public:
  NotificationReactor(std::string outbox, NotificationRole role) : outbox_path_(std::move(outbox)), role_(role) {}

  // Its own NotificationSent records included: the outputs index and the
  // outbox say what was sent, not the order.
  bool Skips(std::string_view type) const override { return role_ == NotificationRole::kSend || ChangesNoStatus(type); }

  void Load(const std::map<std::string, std::string>& state) override {
    if (role_ == NotificationRole::kRoute) return;  // no outbox
    sent_.clear();
    carried_.clear();
    to_carry_.clear();
    this_batch_.clear();
    unstored_.clear();
    pending_lines_.clear();
    outbox_end_ = 0;
    const std::string prefix = kCarriedPrefix;
    for (auto it = state.lower_bound(prefix); it != state.end() && it->first.starts_with(prefix); ++it) {
      carried_.insert(it->first.substr(prefix.size()));
    }
    uint64_t stored_end = 0;
    if (auto it = state.find(kOutboxEndKey); it != state.end()) {
      std::from_chars(it->second.data(), it->second.data() + it->second.size(), stored_end);
    }
    std::ifstream in(outbox_path_, std::ios::binary | std::ios::ate);
    if (in) outbox_end_ = static_cast<uint64_t>(in.tellg());
    if (stored_end > outbox_end_) {
      spdlog::warn("outbox {} is shorter ({} bytes) than when its last batch was stored ({}): reading all of it",
                   outbox_path_, outbox_end_, stored_end);
      stored_end = 0;
    }
    if (in) {
      // Lines of batches not stored (all of them when the state has no end:
      // a new or lost store): carried until their requests come back.
      in.seekg(static_cast<std::streamoff>(stored_end));
      std::string line;
      while (std::getline(in, line)) {
        auto last_tab = line.rfind('\t');
        if (last_tab == std::string::npos) continue;
        std::string id = line.substr(last_tab + 1);
        if (carried_.insert(id).second) to_carry_.push_back(std::move(id));
      }
    }
  }

  Status OnOrderEvent(const domain::Event& e, domain::OrderStatus before, const domain::OrderState& after,
                      BatchContext& ctx) override {
    if (role_ == NotificationRole::kSend) return Status::Ok();
    using P = domain::NotificationPriority;
    const char* template_name = nullptr;
    P priority = P::kLow;
    if (Entered(before, after, OrderStatus::kPlaced)) {
      template_name = "order.placed";
    } else if (Entered(before, after, OrderStatus::kShipped)) {
      template_name = "order.shipped";
    } else if (Entered(before, after, OrderStatus::kPaymentDeclined)) {
      template_name = "payment.declined", priority = P::kHigh;
    } else if (Entered(before, after, OrderStatus::kCancelled)) {
      template_name = "order.cancelled", priority = P::kHigh;
    } else if (Entered(before, after, OrderStatus::kDelivered)) {
      template_name = "order.delivered", priority = P::kHigh;
    }
    if (template_name == nullptr) return Status::Ok();
    std::string id = domain::UuidToString(domain::DeriveEventId(e.id, "notification"));
    ctx.Emit(priority == P::kHigh ? eventstore::kNotificationsHighTopic : eventstore::kNotificationsLowTopic, e,
             after.order_id, std::string("request/") + template_name,
             domain::NotificationRequested{id, template_name, after.customer_id, priority});
    return Status::Ok();
  }

  Status OnEvent(const std::string& topic, const domain::Event& e, BatchContext& ctx) override {
    const auto* req = std::get_if<domain::NotificationRequested>(&e.payload);
    if (req == nullptr || role_ == NotificationRole::kRoute) return Status::Ok();
    // Sent already when its NotificationSent is in the log (by any instance:
    // the runner's outputs index), or its line is in this instance's outbox
    // and not yet confirmed that way (carried_, sent_).
    const bool in_log = !ctx.Emit(kOrdersTopic, e, e.order_id, "sent",
                                  domain::NotificationSent{req->notification_id, req->template_name, req->recipient,
                                                           req->priority});
    if (carried_.erase(req->notification_id)) {
      // Confirmed once this batch is stored: its NotificationSent is then in
      // the outputs index (emitted now, or there already).
      ctx.Delete(kCarriedPrefix + req->notification_id);
      sent_.insert(req->notification_id);  // until then (a duplicate in this batch)
      this_batch_.push_back(req->notification_id);
    } else if (!in_log && sent_.insert(req->notification_id).second) {
      pending_lines_ += req->recipient + "\t" + req->template_name + "\t" + e.order_id + "\t" +
                        req->notification_id + "\n";
      this_batch_.push_back(req->notification_id);
    }
    return Status::Ok();
  }

  // After a batch that wrote lines or confirmed carried ids (not an idle
  // one, whose writes are dropped): where the outbox ends once its lines are
  // written, stored with the batch, and the ids read at Load that are still
  // unconfirmed, which the stored end no longer leads to.
  void OnTick(BatchContext& ctx) override {
    if (this_batch_.empty()) return;
    ctx.Put(kOutboxEndKey, std::to_string(outbox_end_ + pending_lines_.size()));
    for (const std::string& id : to_carry_) {
      if (carried_.count(id)) ctx.Put(kCarriedPrefix + id, "");
    }
    to_carry_.clear();
  }

  Status FlushSideEffects() override {
    if (role_ == NotificationRole::kRoute) return Status::Ok();
    Status written = WritePending();
    if (written.ok()) unstored_.push_back(std::move(this_batch_));
    this_batch_.clear();
    return written;
  }

  // The batch's NotificationSent records are in the outputs index now.
  void Stored() override {
    if (unstored_.empty()) return;
    for (const std::string& id : unstored_.front()) sent_.erase(id);
    unstored_.pop_front();
  }

 private:
  static constexpr char kOutboxEndKey[] = "outbox_end";
  static constexpr char kCarriedPrefix[] = "carried/";

  Status WritePending() {
    if (pending_lines_.empty()) return Status::Ok();
    int fd = ::open(outbox_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return Status::Unavailable("open outbox " + outbox_path_ + ": " + std::strerror(errno));
    const off_t size_before = ::lseek(fd, 0, SEEK_END);
    if (size_before < 0) {
      ::close(fd);
      return Status::Unavailable("outbox " + outbox_path_ + ": " + std::strerror(errno));
    }
    if (static_cast<uint64_t>(size_before) != outbox_end_) {
      // Changed by something else: the end stored with this batch would be
      // off. Handled again once Load has read the outbox anew.
      ::close(fd);
      return Status::Unavailable("outbox " + outbox_path_ + " is " + std::to_string(size_before) +
                                 " bytes, not the " + std::to_string(outbox_end_) + " this instance wrote");
    }
    ssize_t n = ::write(fd, pending_lines_.data(), pending_lines_.size());
    bool ok = n == static_cast<ssize_t>(pending_lines_.size()) && ::fdatasync(fd) == 0;
    if (!ok && ::ftruncate(fd, size_before) != 0) {
      spdlog::error("outbox {}: could not cut a partial write", outbox_path_);
    }
    ::close(fd);
    if (!ok) return Status::Unavailable("write outbox " + outbox_path_);
    outbox_end_ = static_cast<uint64_t>(size_before) + pending_lines_.size();
    pending_lines_.clear();
    return Status::Ok();
  }

  std::string outbox_path_;
  NotificationRole role_;
  // Ids written to the outbox whose NotificationSent the outputs index may
  // not hold: carried (below), or of batches not stored yet.
  std::unordered_set<std::string> sent_;
  // Ids read at Load (from the state, or past the stored end) whose requests
  // were not handled again since; to_carry_: those not in the state yet.
  std::unordered_set<std::string> carried_;
  std::vector<std::string> to_carry_;
  // Ids this batch wrote lines for or confirmed: forgotten once it is stored.
  std::vector<std::string> this_batch_;
  std::deque<std::vector<std::string>> unstored_;  // per flushed batch not yet stored, oldest first
  std::string pending_lines_;
  uint64_t outbox_end_ = 0;  // the outbox's size once what was flushed is written
};

}  // namespace

std::unique_ptr<Reactor> MakePaymentReactor(PaymentRules rules) {
  return std::make_unique<PaymentReactor>(std::move(rules));
}
std::unique_ptr<Reactor> MakeInventoryReactor(const domain::Catalog& catalog) {
  return std::make_unique<InventoryReactor>(catalog);
}
std::unique_ptr<Reactor> MakeShippingReactor() { return std::make_unique<ShippingReactor>(); }
std::unique_ptr<Reactor> MakeDeliveryReactor(std::chrono::milliseconds transit) {
  return std::make_unique<DeliveryReactor>(transit);
}
std::unique_ptr<Reactor> MakeNotificationReactor(std::string outbox_path) {
  return std::make_unique<NotificationReactor>(std::move(outbox_path), NotificationRole::kRouteAndSend);
}
std::unique_ptr<Reactor> MakeNotificationRouter() {
  return std::make_unique<NotificationReactor>(std::string(), NotificationRole::kRoute);
}

std::vector<std::vector<std::string>> LifecycleServiceInputs(const std::string& name) {
  using eventstore::kNotificationsHighTopic;
  using eventstore::kNotificationsLowTopic;
  if (name == "inventory" || name == kFulfillment) return {{kOrdersTopic, kInventoryTopic}};
  if (name == "notification") return {{kNotificationsHighTopic}, {kNotificationsLowTopic}, {kOrdersTopic}};
  if (name == "payment" || name == "shipping" || name == "delivery") return {{kOrdersTopic}};
  return {};
}

std::vector<std::string> LifecycleServiceOutputs(const std::string& name) {
  using eventstore::kNotificationsHighTopic;
  using eventstore::kNotificationsLowTopic;
  if (name == kFulfillment) return {kOrdersTopic, kInventoryTopic, kNotificationsHighTopic, kNotificationsLowTopic};
  if (name == "inventory") return {kOrdersTopic, kInventoryTopic};
  if (name == "notification") return {kOrdersTopic, kNotificationsHighTopic, kNotificationsLowTopic};
  if (name == "payment" || name == "shipping" || name == "delivery") return {kOrdersTopic};
  return {};
}

std::vector<std::pair<std::string, std::vector<std::string>>> ConsumerGroups() {
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;
  groups.emplace_back(ServiceGroupId(kFulfillment, 0, 1), LifecycleServiceInputs(kFulfillment)[0]);
  for (const std::string& name : LifecycleServiceNames()) {
    const auto inputs = LifecycleServiceInputs(name);
    for (size_t i = 0; i < inputs.size(); ++i) groups.emplace_back(ServiceGroupId(name, i, inputs.size()), inputs[i]);
  }
  groups.emplace_back("orderflow-projector", std::vector<std::string>{kOrdersTopic});
  return groups;
}

namespace {

// The reactor of lifecycle service `name` (not kFulfillment); null for an unknown name.
std::unique_ptr<Reactor> MakeReactor(const std::string& name, const std::string& data_dir,
                                     const domain::Catalog& catalog, const LifecycleConfig& config) {
  if (name == "payment") return MakePaymentReactor(config.payment);
  if (name == "inventory") return MakeInventoryReactor(catalog);
  if (name == "shipping") return MakeShippingReactor();
  if (name == "delivery") return MakeDeliveryReactor(config.transit_delay);
  if (name == "notification") {
    if (config.notification_sends_only) {
      return std::make_unique<NotificationReactor>(data_dir + "/outbox.log", NotificationRole::kSend);
    }
    return MakeNotificationReactor(data_dir + "/outbox.log");
  }
  return nullptr;
}

}  // namespace

Result<std::unique_ptr<ServiceRunner>> MakeLifecycleService(ServiceOptions options, const domain::Catalog& catalog,
                                                            const LifecycleConfig& config) {
  const std::string& name = options.name;
  options.inputs = LifecycleServiceInputs(name);
  options.outputs = LifecycleServiceOutputs(name);
  if (name == "notification" && config.notification_sends_only) {
    options.inputs.pop_back();  // orders.events: fulfillment routes
  }
  std::unique_ptr<Reactor> reactor;
  if (name == kFulfillment) {
    std::vector<HostedReactor> hosted;
    for (const std::string& member : FulfillmentServices()) {
      std::vector<std::string> topics;
      for (const auto& priority_class : LifecycleServiceInputs(member)) {
        for (const std::string& topic : priority_class) {
          if (topic != kOrdersTopic) topics.push_back(topic);
        }
      }
      hosted.push_back({member, MakeReactor(member, options.data_dir, catalog, config), std::move(topics)});
      options.producers.push_back(member);
    }
    // The notifications it asks for, as the notification service would have (same ids).
    hosted.push_back({"notification", MakeNotificationRouter(), {}});
    options.producers.push_back("notification");
    reactor = MakeHostReactor(std::move(hosted));
  } else {
    if (name == "payment" || name == "notification") options.batch_size = std::min(options.batch_size, kSideEffectBatch);
    // Nothing waits for a notification: its consumers fetch every 100 ms, not every 10 (CPU on both sides).
    if (name == "notification" && options.fetch_wait.count() == 0) options.fetch_wait = kNotificationFetchWait;
    reactor = MakeReactor(name, options.data_dir, catalog, config);
  }
  if (!reactor) {
    return Status::InvalidArgument("unknown service '" + name +
                                   "' (payment, inventory, shipping, delivery, notification, fulfillment, projector)");
  }
  return ServiceRunner::Create(std::move(options), std::move(reactor));
}

}  // namespace orderflow::services

#include "services/orders/order_service.h"

#include "domain/clock.h"

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid.hpp>
#include <chrono>
#include <mutex>

#include "eventstore/topics.h"

namespace orderflow::services {

std::string NewOrderId() {
  static std::mutex mu;  // random_generator is not thread-safe
  static boost::uuids::random_generator generator;
  boost::uuids::uuid u;
  {
    std::lock_guard lock(mu);
    u = generator();
  }
  domain::EventId id;
  std::copy(u.begin(), u.end(), id.begin());
  const auto ms = static_cast<uint64_t>(SystemClock().WallMs());
  for (int i = 0; i < 6; ++i) id[i] = static_cast<uint8_t>(ms >> (40 - 8 * i));  // big-endian: text order is time order
  id[6] = static_cast<uint8_t>(0x70 | (id[6] & 0x0f));  // version 7; the variant bits (byte 8) stay as generated
  return domain::UuidToString(id);
}

int64_t NowMs() { return SystemClock().WallMs(); }

Status RejectionStatus(const domain::Rejection& rejection) {
  using R = domain::RejectReason;
  switch (rejection.reason) {
    case R::kOrderNotFound: return Status::NotFound(rejection.message);
    case R::kOrderAlreadyExists: return Status::AlreadyExists(rejection.message);
    case R::kAlreadyCancelled:
    case R::kCannotCancelAfterShipping:
    case R::kInvalidTransition:
    case R::kNothingToRefund: return Status::FailedPrecondition(rejection.message);
    default: return Status::InvalidArgument(rejection.message);
  }
}

OrderService::OrderService(eventstore::Producer& producer, const domain::Catalog& catalog)
    : producer_(producer), catalog_(catalog) {}

Result<domain::Event> OrderService::Place(const domain::PlaceOrder& command, const std::string& order_id,
                                          int64_t now_ms, eventstore::DeliveryCallback on_delivery) {
  domain::OrderState empty;
  empty.order_id = order_id;
  auto events = Execute(empty, command, now_ms, std::move(on_delivery));
  if (!events.ok()) return events.status();
  return std::move(events->front());
}

Result<std::vector<domain::Event>> OrderService::Execute(const domain::OrderState& state,
                                                         const domain::Command& command, int64_t now_ms,
                                                         eventstore::DeliveryCallback on_delivery) {
  if (state.order_id.empty()) return Status::InvalidArgument("order id is required");
  domain::Decision decision = domain::Decide(state, command, catalog_);
  if (!decision.accepted()) return RejectionStatus(*decision.rejection);
  std::vector<domain::Event> out;
  for (auto& payload : decision.events) {
    domain::Event event;
    // Deterministic: the same command on the same state version yields the same id.
    event.id = domain::DeriveEventId(kOrderServiceNamespace,
                                     state.order_id + "/" + std::to_string(state.version + out.size()) + "/" +
                                         std::string(domain::EventTypeName(payload)));
    event.order_id = state.order_id;
    event.occurred_at_ms = now_ms;
    event.correlation_id = state.applied_event_ids.empty() ? event.id : state.applied_event_ids.front();
    event.producer = "order";
    event.payload = std::move(payload);
    out.push_back(std::move(event));
  }
  for (size_t i = 0; i < out.size(); ++i) {
    // Only the last event reports delivery: earlier ones share its partition and precede it.
    ORDERFLOW_RETURN_IF_ERROR(producer_.AppendEvent(eventstore::kOrdersTopic, out[i],
                                                    i + 1 == out.size() ? std::move(on_delivery) : nullptr));
  }
  return out;
}

}  // namespace orderflow::services

#include "services/lifecycle/stock.h"

#include <chrono>

#include "eventstore/topics.h"
#include "services/orders/order_service.h"

namespace orderflow::services {

Result<domain::EventId> AddStock(eventstore::Producer& producer, const domain::Catalog& catalog,
                                 const std::string& sku, int32_t qty) {
  if (catalog.Find(sku) == nullptr) {
    return Status::InvalidArgument("unknown SKU '" + sku + "' (see `orderflow catalog`)");
  }
  if (qty <= 0) return Status::InvalidArgument("stock to add must be > 0, got " + std::to_string(qty));
  domain::Event event;
  ORDERFLOW_CHECK(domain::UuidFromString(NewOrderId(), &event.id));  // a fresh id: unique (a UUIDv7)
  event.order_id = sku;  // the stock aggregate's id
  event.occurred_at_ms = NowMs();
  event.producer = "cli";
  event.payload = domain::StockAdded{sku, qty};
  ORDERFLOW_RETURN_IF_ERROR(producer.AppendEvent(eventstore::kInventoryTopic, event));
  ORDERFLOW_RETURN_IF_ERROR(producer.Flush(std::chrono::seconds(30)));
  return event.id;
}

}  // namespace orderflow::services

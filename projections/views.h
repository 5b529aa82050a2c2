// JSON views of orders, history, the catalog and analytics, shared by the
// CLI's --json output and the HTTP API so both speak the same shapes.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "domain/catalog.h"
#include "domain/order.h"
#include "projections/store.h"

namespace orderflow::projections {

// The order status named `name` ("placed" … "cancelled"), or nullopt.
std::optional<domain::OrderStatus> OrderStatusFromName(std::string_view name);
// "placed, payment_authorized, …, cancelled": the names a filter accepts.
std::string OrderStatusNames();

// "2026-11-21T19:42:05.123Z"
std::string FormatTime(int64_t epoch_ms);

nlohmann::json OrderJson(const domain::OrderState& order);
nlohmann::json HistoryJson(const projections::HistoryEntry& entry);
// The payload's fields, named as in the schema but in snake_case, as the current
// schema reads them (v1 events upcast); enums by name ("customer", "high").
nlohmann::json PayloadJson(const domain::EventPayload& payload);
nlohmann::json CatalogJson(const domain::Catalog& catalog);
nlohmann::json AnalyticsJson(const projections::Analytics& analytics);

}  // namespace orderflow::projections

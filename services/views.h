// JSON views of orders, history, the catalog and analytics, shared by the
// CLI's --json output and the HTTP API so both speak the same shapes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "domain/catalog.h"
#include "domain/order.h"
#include "projections/store.h"

namespace orderflow::services {

// "2026-11-21T19:42:05.123Z"
std::string FormatTime(int64_t epoch_ms);

nlohmann::json OrderJson(const domain::OrderState& order);
nlohmann::json HistoryJson(const projections::HistoryEntry& entry);
nlohmann::json CatalogJson(const domain::Catalog& catalog);
nlohmann::json AnalyticsJson(const projections::Analytics& analytics);

}  // namespace orderflow::services

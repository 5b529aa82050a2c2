// Formatting of orderflow's CLI output: human-readable text and JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "domain/catalog.h"
#include "domain/order.h"
#include "projections/store.h"

namespace orderflow::cli {

std::string FormatMoney(int64_t minor, const std::string& currency);
// "2026-11-21T19:42:05.123Z"
std::string FormatTime(int64_t epoch_ms);

nlohmann::json OrderJson(const domain::OrderState& order);
std::string OrderText(const domain::OrderState& order);

nlohmann::json HistoryJson(const projections::HistoryEntry& entry);
std::string HistoryLine(const projections::HistoryEntry& entry);

nlohmann::json CatalogJson(const domain::Catalog& catalog);
std::string CatalogText(const domain::Catalog& catalog);

}  // namespace orderflow::cli

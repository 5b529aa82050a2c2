// Formatting of orderflow's CLI output: human-readable text and JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "domain/catalog.h"
#include "domain/order.h"
#include "projections/store.h"
#include "projections/views.h"

namespace orderflow::cli {

using projections::AnalyticsJson;
using projections::CatalogJson;
using projections::FormatTime;
using projections::HistoryJson;
using projections::OrderJson;

std::string FormatMoney(int64_t minor, const std::string& currency);

std::string OrderText(const domain::OrderState& order);

std::string HistoryLine(const projections::HistoryEntry& entry);

std::string CatalogText(const domain::Catalog& catalog);

}  // namespace orderflow::cli

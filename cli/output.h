// Formatting of orderflow's CLI output: human-readable text and JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "domain/catalog.h"
#include "domain/order.h"
#include "projections/store.h"
#include "services/views.h"

namespace orderflow::cli {

using services::AnalyticsJson;
using services::CatalogJson;
using services::FormatTime;
using services::HistoryJson;
using services::OrderJson;

std::string FormatMoney(int64_t minor, const std::string& currency);

std::string OrderText(const domain::OrderState& order);

std::string HistoryLine(const projections::HistoryEntry& entry);

std::string CatalogText(const domain::Catalog& catalog);

}  // namespace orderflow::cli

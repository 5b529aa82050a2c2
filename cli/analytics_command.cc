#include "cli/commands.h"

#include <boost/program_options.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/output.h"
#include "projections/store.h"

namespace po = boost::program_options;

namespace orderflow::cli {

Result<int> CmdAnalytics(const std::vector<std::string>& args) {
  size_t top = 5;
  po::options_description d("analytics options");
  d.add_options()("top", po::value(&top)->default_value(top), "how many top SKUs to list");
  Parsed p;
  ORDERFLOW_RETURN_IF_ERROR(Parse(args, "orderflow analytics [--data-dir DIR] [--json]\n\n"
                   "Revenue (gross, refunded, net), orders by status, top SKUs, orders per hour and the average\n"
                   "time from placed to delivered, from the local analytics projection.",
             d, {}, p));
  if (p.common.help) return 0;
  ORDERFLOW_ASSIGN_OR_RETURN(auto store, OpenReadOnly(p.common));
  auto a = store->GetAnalytics(top);
  if (!a.ok()) return Fail(a.status());
  if (p.common.json) {
    PrintJson(projections::AnalyticsJson(*a));
    return 0;
  }
  std::printf("revenue   gross %s, refunded %s, net %s\n", FormatMoney(a->gross_minor, "EUR").c_str(),
              FormatMoney(a->refunded_minor, "EUR").c_str(), FormatMoney(a->net_minor, "EUR").c_str());
  std::printf("orders   ");
  for (const auto& [status, n] : a->orders_by_status) std::printf(" %s=%llu", status.c_str(), static_cast<unsigned long long>(n));
  std::printf("\ntop SKUs by units:   ");
  for (const auto& s : a->top_by_units) std::printf(" %s (%lld)", s.sku.c_str(), static_cast<long long>(s.units));
  std::printf("\ntop SKUs by revenue: ");
  for (const auto& s : a->top_by_revenue) {
    std::printf(" %s (%s)", s.sku.c_str(), FormatMoney(s.revenue_minor, "EUR").c_str());
  }
  std::printf("\norders per hour:\n");
  for (const auto& [hour, n] : a->orders_per_hour) std::printf("  %s  %lld\n", projections::FormatTime(hour).c_str(), static_cast<long long>(n));
  std::printf("delivered %lld, average placed to delivered %.1f s\n", static_cast<long long>(a->delivered),
              a->average_placed_to_delivered_ms / 1000.0);
  return 0;
}

}  // namespace orderflow::cli

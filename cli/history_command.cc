#include "cli/commands.h"

#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/output.h"
#include "projections/store.h"

namespace po = boost::program_options;
using nlohmann::json;

namespace orderflow::cli {

Result<int> CmdHistory(const std::vector<std::string>& args) {
  std::string id;
  po::options_description d("history options");
  d.add_options()("id", po::value(&id)->value_name("ID"), "order id");
  po::positional_options_description pos;
  pos.add("id", 1);
  Parsed p;
  ORDERFLOW_RETURN_IF_ERROR(Parse(args, "orderflow history ID [--data-dir DIR] [--json]\n\n"
                   "Prints the order's event timeline from the local store: offset, time, type, schema version,\n"
                   "summary. Works with the services stopped.",
             d, pos, p));
  if (p.common.help) return 0;
  if (id.empty()) return Usage("history needs an order id");
  ORDERFLOW_ASSIGN_OR_RETURN(auto store, OpenReadOnly(p.common));
  auto history = store->GetHistory(id);
  if (!history.ok()) return Fail(history.status());
  if (history->empty()) return Fail(Status::NotFound("order " + id + " has no history in " + p.common.data_dir));
  if (p.common.json) {
    json events = json::array();
    for (const auto& e : *history) events.push_back(projections::HistoryJson(e));
    PrintJson({{"order_id", id}, {"events", events}});
  } else {
    std::printf("%-8s %-24s %-22s %-4s %s\n", "OFFSET", "TIME", "TYPE", "VER", "SUMMARY");
    for (const auto& e : *history) std::cout << HistoryLine(e) << "\n";
  }
  return 0;
}

}  // namespace orderflow::cli

#include "cli/commands.h"

#include <boost/program_options.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "domain/events.h"
#include "services/lifecycle/stock.h"

namespace po = boost::program_options;

namespace orderflow::cli {

Result<int> CmdStock(const std::vector<std::string>& args) {
  if (args.empty() || args[0] != "add") {
    if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
      std::cout << "Usage: orderflow stock add SKU QTY --brokers LIST\n\nAdds stock to a SKU (a StockAdded event on "
                   "inventory.events).\n";
      return 0;
    }
    return Usage("usage: orderflow stock add SKU QTY");
  }
  std::string sku;
  int32_t qty = 0;
  po::options_description d("stock add options");
  d.add_options()("sku", po::value(&sku), "SKU")("qty", po::value(&qty), "units to add (> 0)");
  po::positional_options_description pos;
  pos.add("sku", 1).add("qty", 1);
  Parsed p;
  ORDERFLOW_RETURN_IF_ERROR(Parse(std::vector<std::string>(args.begin() + 1, args.end()),
             "orderflow stock add SKU QTY --brokers LIST\n\nAdds stock to a SKU (a StockAdded event on inventory.events).",
             d, pos, p));
  if (p.common.help) return 0;
  if (sku.empty() || qty <= 0) return Usage("stock add needs a SKU and a quantity > 0");
  ORDERFLOW_ASSIGN_OR_RETURN(auto kafka, KafkaFrom(p.common, true));
  ORDERFLOW_ASSIGN_OR_RETURN(const auto catalog, LoadCatalog(p.common));
  auto producer = eventstore::Producer::Create(kafka, "orderflow-cli");
  if (!producer.ok()) return Fail(producer.status());
  auto added = services::AddStock(**producer, catalog, sku, qty);
  if (!added.ok()) return Fail(added.status());
  if (p.common.json) {
    PrintJson({{"sku", sku}, {"added", qty}, {"event_id", domain::UuidToString(*added)}});
  } else {
    std::cout << "added " << qty << " x " << sku << std::endl;
  }
  return 0;
}

}  // namespace orderflow::cli

#include "cli/commands.h"

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/output.h"

namespace orderflow::cli {

Result<int> CmdCatalog(const std::vector<std::string>& args) {
  Parsed p;
  ORDERFLOW_RETURN_IF_ERROR(Parse(args, "orderflow catalog [--json]\n\nLists the demo catalog: SKU, name, price.", {}, {}, p));
  if (p.common.help) return 0;
  ORDERFLOW_ASSIGN_OR_RETURN(auto catalog, LoadCatalog(p.common));
  if (p.common.json) {
    PrintJson(projections::CatalogJson(catalog));
  } else {
    std::cout << CatalogText(catalog);
  }
  return 0;
}

}  // namespace orderflow::cli

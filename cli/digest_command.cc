#include "cli/commands.h"

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "projections/store.h"

using nlohmann::json;

namespace orderflow::cli {

int CmdDigest(const std::vector<std::string>& args) {
  Parsed p;
  if (!Parse(args, "orderflow digest [--data-dir DIR] [--json]\n\n"
                   "Prints the SHA-256 over the sorted contents of the local projections.",
             {}, {}, p)) {
    return 0;
  }
  auto store = OpenReadOnly(p.common);
  auto digest = store->Digest();
  if (!digest.ok()) return Fail(digest.status());
  if (p.common.json) {
    auto offsets = store->GetOffsets();
    if (!offsets.ok()) return Fail(offsets.status());
    json o = json::object();
    for (const auto& [tp, off] : *offsets) o[tp.topic + "/" + std::to_string(tp.partition)] = off;
    PrintJson({{"digest", *digest}, {"offsets", o}});
  } else {
    std::cout << *digest << std::endl;
  }
  return 0;
}

}  // namespace orderflow::cli

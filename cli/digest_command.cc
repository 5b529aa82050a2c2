#include "cli/commands.h"

#include <iostream>
#include <optional>
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "projections/store.h"

using nlohmann::json;

namespace orderflow::cli {

Result<int> CmdDigest(const std::vector<std::string>& args) {
  Parsed p;
  bool verify = false;
  boost::program_options::options_description d("digest options");
  d.add_options()("verify", boost::program_options::bool_switch(&verify),
                  "also compute the digest by reading every entry and exit 1 if it differs from the one the "
                  "store keeps");
  ORDERFLOW_RETURN_IF_ERROR(Parse(args, "orderflow digest [--data-dir DIR] [--verify] [--json]\n\n"
                   "Prints the state digest of the local projections: a SHA-256 over each family's entry count and\n"
                   "sum of entry hashes (docs/architecture.md). Equal digests mean equal state. The store keeps it\n"
                   "up to date as it writes; --verify reads the whole store to check it.",
             d, {}, p));
  if (p.common.help) return 0;
  ORDERFLOW_ASSIGN_OR_RETURN(auto store, OpenReadOnly(p.common));
  auto digest = store->Digest();
  if (!digest.ok()) return Fail(digest.status());
  std::optional<std::string> read;
  if (verify) {
    auto by_reading = store->DigestByReading();
    if (!by_reading.ok()) return Fail(by_reading.status());
    read = *by_reading;
  }
  if (p.common.json) {
    auto offsets = store->GetOffsets();
    if (!offsets.ok()) return Fail(offsets.status());
    json o = json::object();
    for (const auto& [tp, off] : *offsets) o[tp.topic + "/" + std::to_string(tp.partition)] = off;
    json out = {{"digest", *digest}, {"offsets", o}};
    if (read) {
      out["digest_by_reading"] = *read;
      out["verified"] = *read == *digest;
    }
    PrintJson(out);
  } else {
    std::cout << *digest << std::endl;
    if (read && *read != *digest) std::cerr << "the store's entries digest to " << *read << ", not to the kept digest\n";
  }
  if (read && *read != *digest) return 1;
  return 0;
}

}  // namespace orderflow::cli

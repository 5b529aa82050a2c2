#include "cli/commands.h"

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/output.h"
#include "eventstore/codec.h"
#include "eventstore/dead_letter.h"

namespace po = boost::program_options;
using nlohmann::json;

namespace orderflow::cli {
namespace {

constexpr auto kDeadLetterTimeout = std::chrono::seconds(30);

// A dead letter as JSON; `full` adds the key, headers and whether the record
// decodes with this build.
json LetterJson(const eventstore::DeadLetter& d, bool full) {
  json j = {{"id", d.id},
            {"service", d.service},
            {"error", d.error},
            {"source", {{"topic", d.source_topic}, {"partition", d.source_partition}, {"offset", d.source_offset}}},
            {"attempts", d.attempts},
            {"failed_at", projections::FormatTime(d.failed_at_ms)},
            {"state", d.redriven_at_ms ? "redriven" : "pending"}};
  if (d.redriven_at_ms) j["redriven_at"] = projections::FormatTime(*d.redriven_at_ms);
  if (full) {
    json headers = json::object();
    for (const auto& h : d.headers) headers[h.name] = h.value;
    j["key"] = d.key;
    j["headers"] = headers;
    j["value_bytes"] = d.value.size();
    auto event = eventstore::DecodeEvent(d.value);
    j["decodes_now"] = event.ok();
    if (event.ok()) {
      j["event"] = {{"type", domain::EventTypeName(event->payload)}, {"summary", domain::Summarize(event->payload)}};
    } else {
      j["decode_error"] = event.status().ToString();
    }
  }
  return j;
}

Result<int> DlqList(const std::vector<std::string>& rest) {
  Parsed p;
  ORDERFLOW_RETURN_IF_ERROR(Parse(rest, "orderflow dlq list --brokers LIST [--json]\n\nLists the dead letters on orders.dlq.", {}, {},
             p));
  if (p.common.help) return 0;
  ORDERFLOW_ASSIGN_OR_RETURN(const auto kafka, KafkaFrom(p.common, true));
  auto letters = eventstore::ReadDeadLetters(kafka, kDeadLetterTimeout);
  if (!letters.ok()) return Fail(letters.status());
  if (p.common.json) {
    json out = json::array();
    for (const auto& d : *letters) out.push_back(LetterJson(d, false));
    PrintJson(out);
    return 0;
  }
  std::printf("%-6s %-24s %-13s %-26s %-3s %-9s %s\n", "ID", "FAILED AT", "SERVICE", "SOURCE", "TRY", "STATE",
              "ERROR");
  for (const auto& d : *letters) {
    const std::string source = d.source_topic + "[" + std::to_string(d.source_partition) + "]@" +
                               std::to_string(d.source_offset);
    std::printf("%-6lld %-24s %-13s %-26s %-3d %-9s %s\n", static_cast<long long>(d.id),
                projections::FormatTime(d.failed_at_ms).c_str(), d.service.c_str(), source.c_str(), d.attempts,
                d.redriven_at_ms ? "redriven" : "pending", d.error.c_str());
  }
  if (letters->empty()) std::printf("(no dead letters)\n");
  return 0;
}

Result<int> DlqShow(const std::vector<std::string>& rest) {
  Parsed p;
  int64_t id = -1;
  po::options_description d("dlq show options");
  d.add_options()("id", po::value(&id)->value_name("ID"), "dead letter id (from dlq list)");
  po::positional_options_description pos;
  pos.add("id", 1);
  ORDERFLOW_RETURN_IF_ERROR(Parse(rest, "orderflow dlq show ID --brokers LIST [--json]\n\nShows one dead letter: error, source, "
                   "headers, and whether its record decodes with this build.",
             d, pos, p));
  if (p.common.help) return 0;
  if (id < 0) return Usage("dlq show needs a dead letter id (see `orderflow dlq list`)");
  ORDERFLOW_ASSIGN_OR_RETURN(const auto kafka, KafkaFrom(p.common, true));
  auto letters = eventstore::ReadDeadLetters(kafka, kDeadLetterTimeout);
  if (!letters.ok()) return Fail(letters.status());
  for (const auto& l : *letters) {
    if (l.id != id) continue;
    json j = LetterJson(l, true);
    if (p.common.json) {
      PrintJson(j);
    } else {
      for (const auto& [k, v] : j.items()) std::cout << std::left << std::setw(12) << k << " " << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
    }
    return 0;
  }
  return Fail(Status::NotFound("no dead letter " + std::to_string(id) + " on orders.dlq (see `orderflow dlq list`)"));
}

Result<int> DlqRedrive(const std::vector<std::string>& rest) {
  Parsed p;
  std::vector<int64_t> ids;
  bool force = false;
  po::options_description d("dlq redrive options");
  d.add_options()("id", po::value(&ids)->composing()->value_name("ID"), "a dead letter to redrive, repeatable "
                                                                        "(default: every pending one)")(
      "force", po::bool_switch(&force), "redrive ids already redriven");
  ORDERFLOW_RETURN_IF_ERROR(Parse(rest, "orderflow dlq redrive [--id ID ...] [--force] --brokers LIST\n\n"
                   "Appends dead letters' records to their source topics again, once per source record, and marks\n"
                   "them redriven. Services decode them with this build (upcasters included) and handle them;\n"
                   "an event already applied is dropped by its id.",
             d, {}, p));
  if (p.common.help) return 0;
  ORDERFLOW_ASSIGN_OR_RETURN(const auto kafka, KafkaFrom(p.common, true));
  auto result = eventstore::Redrive(kafka, ids, force, kDeadLetterTimeout);
  if (!result.ok()) return Fail(result.status());
  if (p.common.json) {
    PrintJson({{"redriven", result->redriven}, {"records_appended", result->appended}});
  } else {
    std::printf("redrove %zu dead letters (%zu records appended to their source topics)\n",
                result->redriven.size(), result->appended);
  }
  return 0;
}

}  // namespace

Result<int> CmdDlq(const std::vector<std::string>& args) {
  const std::string usage =
      "orderflow dlq list [--json]\n"
      "       orderflow dlq show ID [--json]\n"
      "       orderflow dlq redrive [--id ID ...] [--force]";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "Usage: " << usage
              << "\n\nDead letters: records a service could not process, parked on orders.dlq with the error,\n"
                 "the source topic/partition/offset, the service and the attempts. `redrive` appends them to\n"
                 "their source topic again (after a fix or an upgrade); event ids keep them from being applied\n"
                 "twice. Run `orderflow dlq SUBCOMMAND --help` for its options.\n";
    if (args.empty()) return Usage("dlq needs a subcommand: list, show or redrive");
    return 0;
  }
  const std::string sub = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub == "list") return DlqList(rest);
  if (sub == "show") return DlqShow(rest);
  if (sub == "redrive") return DlqRedrive(rest);
  return Usage("unknown dlq subcommand '" + sub + "' (list, show or redrive)");
}

}  // namespace orderflow::cli

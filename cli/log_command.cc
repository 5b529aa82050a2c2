#include "cli/commands.h"

#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "eventstore/log_archive.h"
#include "eventstore/topics.h"

namespace po = boost::program_options;

namespace orderflow::cli {

Result<int> CmdLog(const std::vector<std::string>& args) {
  const std::string usage =
      "orderflow log export FILE --brokers LIST\n"
      "       orderflow log import FILE --brokers LIST";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "Usage: " << usage
              << "\n\nCopies every record of orderflow's topics to a file, or from a file into a cluster whose\n"
                 "topics are empty, each record at its original partition and offset (so every store's consumed\n"
                 "offsets stay valid): backups, and moving between clusters.\n";
    if (args.empty()) return Usage("log needs a subcommand: export or import");
    return 0;
  }
  const std::string sub = args[0];
  if (sub != "export" && sub != "import") return Usage("unknown log subcommand '" + sub + "' (export or import)");
  std::vector<std::string> rest(args.begin() + 1, args.end());
  std::string file;
  po::options_description d("log " + sub + " options");
  d.add_options()("file", po::value(&file)->value_name("FILE"), "the export file");
  po::positional_options_description pos;
  pos.add("file", 1);
  Parsed p;
  const std::string text =
      sub == "export" ? "orderflow log export FILE --brokers LIST\n\nWrites every record of orderflow's topics "
                        "(every partition from offset 0) to FILE."
                      : "orderflow log import FILE --brokers LIST\n\nAppends every record of FILE to its topic and "
                        "partition, which must be empty, and checks it lands at its original offset.";
  ORDERFLOW_RETURN_IF_ERROR(Parse(rest, text, d, pos, p));
  if (p.common.help) return 0;
  if (file.empty()) return Usage("log " + sub + " needs a FILE");
  ORDERFLOW_ASSIGN_OR_RETURN(auto kafka, KafkaFrom(p.common, true));
  const bool tty = isatty(STDERR_FILENO) && !p.common.json;
  auto progress = [tty](uint64_t n) {
    if (tty) std::fprintf(stderr, "\r%llu records", static_cast<unsigned long long>(n));
  };
  const auto started = kafka.clock->Now();
  Result<uint64_t> count = uint64_t{0};
  if (sub == "export") {
    std::vector<std::string> topics;
    for (const auto& t : eventstore::DefaultTopics()) topics.push_back(t.name);
    count = eventstore::ExportLog(kafka, topics, file, progress);
  } else {
    auto log = eventstore::OpenLogFile(file);
    if (!log.ok()) return Fail(log.status());
    std::vector<eventstore::TopicSpec> specs;
    std::map<std::string, int32_t> partitions;
    for (const auto& [tp, n] : log->records) partitions[tp.topic] = std::max(partitions[tp.topic], tp.partition + 1);
    for (const auto& [topic, n] : partitions) specs.push_back({topic, n});
    Status provisioned = eventstore::ProvisionTopics(kafka, specs, std::chrono::seconds(15));
    if (!provisioned.ok()) return Fail(provisioned);
    count = eventstore::Republish(kafka, log->source, progress);
  }
  if (tty) std::fprintf(stderr, "\n");
  if (!count.ok()) return Fail(count.status());
  const double seconds = std::chrono::duration<double>(kafka.clock->Now() - started).count();
  if (p.common.json) {
    PrintJson({{sub == "export" ? "exported" : "imported", *count}, {"file", file}, {"seconds", seconds}});
  } else {
    std::printf("%s %llu records %s %s in %.2f s\n", sub == "export" ? "exported" : "imported",
                static_cast<unsigned long long>(*count), sub == "export" ? "to" : "from", file.c_str(), seconds);
  }
  return 0;
}

}  // namespace orderflow::cli

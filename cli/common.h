// What every orderflow command shares: the common options, parsing, the Kafka
// settings they give, the stop flag, the read-only store, and how errors and
// JSON are printed.
#pragma once

#include <boost/program_options.hpp>
#include <nlohmann/json_fwd.hpp>

#include <stop_token>
#include <memory>
#include <string>
#include <vector>

#include "domain/catalog.h"
#include "domain/status.h"
#include "eventstore/kafka.h"

namespace orderflow::projections {
class ProjectionStore;
}  // namespace orderflow::projections

namespace orderflow::cli {

// Requested on SIGINT/SIGTERM (main.cc's signal thread); long-running commands
// take its token, which also wakes them from their waits.
extern std::stop_source g_stop;

// A command line that cannot be run as given (an unknown flag, a missing or
// malformed value): main prints it with a pointer to --help and exits 2.
// Other errors a command returns exit 1.
inline Status Usage(std::string message) { return Status::Malformed(std::move(message)); }

struct Common {
  std::string brokers;
  std::string data_dir;
  std::vector<std::string> kafka;
  std::vector<std::string> kafka_config;  // librdkafka properties files
  std::string topic_prefix;
  std::string log_level;
  std::string catalog_file;
  bool json = false;
  bool help = false;
};

struct Parsed {
  Common common;
  boost::program_options::variables_map vm;
};

// Parses `args` (after the command name) against `specific` + the common
// options; a Usage error when they do not parse. With --help it prints the
// help and sets out.common.help: the command then returns 0.
Status Parse(const std::vector<std::string>& args, const std::string& usage,
           boost::program_options::options_description specific,
           const boost::program_options::positional_options_description& positional, Parsed& out,
           const char* default_level = "warn");

// The Kafka settings of the common options; a Usage error when
// `require_brokers` and --brokers is missing, or a --kafka is not PROP=VALUE.
Result<eventstore::KafkaConfig> KafkaFrom(const Common& c, bool require_brokers);

// The catalog of --catalog, or the demo catalog; an error when the file
// cannot be read or parsed.
Result<domain::Catalog> LoadCatalog(const Common& c);

// The projection store of --data-dir, opened read-only (it may be in use by a
// running `orderflow up`); its Status when it cannot be opened.
Result<std::unique_ptr<projections::ProjectionStore>> OpenReadOnly(const Common& c);

// Prints "orderflow: <message>" on stderr and returns 1.
int Fail(const Status& status);

// Prints `j` indented on stdout.
void PrintJson(const nlohmann::json& j);

}  // namespace orderflow::cli

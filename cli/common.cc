#include "cli/common.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "projections/store.h"

namespace po = boost::program_options;

namespace orderflow::cli {
namespace {

std::string DefaultTopicPrefix() {
  const char* env = std::getenv("ORDERFLOW_TOPIC_PREFIX");
  return env == nullptr ? "" : env;
}

po::options_description CommonOptions(Common& c, const char* default_level) {
  po::options_description desc("Common options");
  desc.add_options()
      ("help,h", po::bool_switch(&c.help), "show this help and exit")
      ("brokers", po::value(&c.brokers)->value_name("LIST"), "Kafka bootstrap servers, host:port[,host:port...]")
      ("data-dir", po::value(&c.data_dir)->default_value("orderflow-data")->value_name("DIR"),
       "local state directory (RocksDB)")
      ("kafka-config", po::value(&c.kafka_config)->composing()->value_name("FILE"),
       "librdkafka properties file (key=value lines, # comments, as Kafka's client.properties), repeatable;"
       " its bootstrap.servers stands in for --brokers. Keep passwords here, not on the command line")
      ("kafka", po::value(&c.kafka)->composing()->value_name("PROP=VALUE"),
       "librdkafka property, repeatable, over the files' (e.g. --kafka security.protocol=ssl)")
      ("topic-prefix", po::value(&c.topic_prefix)->default_value(DefaultTopicPrefix(), DefaultTopicPrefix())->value_name("PREFIX"),
       "prefix of orderflow's topic and consumer group names on the cluster, so several deployments share one"
       " (default: $ORDERFLOW_TOPIC_PREFIX, else none)")
      ("log-level", po::value(&c.log_level)->default_value(default_level)->value_name("LEVEL"),
       "trace, debug, info, warn, error or off")
      ("catalog", po::value(&c.catalog_file)->value_name("FILE"),
       "catalog file, lines of SKU,name,price_minor,stock (default: the built-in demo catalog)")
      ("json", po::bool_switch(&c.json), "machine-readable JSON output");
  return desc;
}

}  // namespace

std::stop_source g_stop;

Status Parse(const std::vector<std::string>& args, const std::string& usage, po::options_description specific,
             const po::positional_options_description& positional, Parsed& out, const char* default_level) {
  po::options_description all;
  all.add(specific).add(CommonOptions(out.common, default_level));
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), out.vm);
    po::notify(out.vm);
  } catch (const po::error& e) {  // Boost.Program_options reports by throwing
    return Usage(e.what());
  }
  if (out.common.help) {
    std::cout << "Usage: " << usage << "\n\n" << all << "\n";
    return Status::Ok();
  }
  auto level = spdlog::level::from_str(out.common.log_level);
  if (level == spdlog::level::off && out.common.log_level != "off") {
    return Usage("unknown --log-level '" + out.common.log_level + "'");
  }
  spdlog::set_level(level);
  return Status::Ok();
}

Result<eventstore::KafkaConfig> KafkaFrom(const Common& c, bool require_brokers) {
  eventstore::KafkaConfig config;
  // Files first, in order; --brokers and --kafka override single keys.
  for (const std::string& path : c.kafka_config) {
    if (Status s = eventstore::LoadClientProperties(path, &config); !s.ok()) return Usage("--kafka-config " + s.message());
  }
  if (!c.brokers.empty()) config.brokers = c.brokers;
  config.topic_prefix = c.topic_prefix;
  for (char ch : c.topic_prefix) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != '-') {
      return Usage("--topic-prefix may hold letters, digits, '.', '_' and '-' only (Kafka's topic name rules)");
    }
  }
  if (require_brokers && config.brokers.empty()) {
    return Usage("--brokers is required (the bootstrap list that `orderflow broker` or `orderflow up` prints),"
                 " or a --kafka-config file with bootstrap.servers");
  }
  for (const std::string& kv : c.kafka) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return Usage("--kafka expects PROP=VALUE, got '" + kv + "'");
    config.overrides.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return config;
}

// Prints "orderflow: <message>" and returns 1.
int Fail(const Status& status) {
  std::cerr << "orderflow: " << status.ToString() << "\n";
  return 1;
}

Result<domain::Catalog> LoadCatalog(const Common& c) {
  if (c.catalog_file.empty()) return domain::Catalog::Demo();
  std::ifstream in(c.catalog_file);
  if (!in) return Status::NotFound("cannot read catalog file " + c.catalog_file);
  std::stringstream text;
  text << in.rdbuf();
  auto catalog = domain::Catalog::Parse(text.str());
  if (!catalog.ok()) return Status(catalog.status().code(), c.catalog_file + ": " + catalog.status().message());
  return catalog;
}

Result<std::unique_ptr<projections::ProjectionStore>> OpenReadOnly(const Common& c) {
  return projections::ProjectionStore::Open(c.data_dir, {.read_only = true});
}

void PrintJson(const nlohmann::json& j) { std::cout << j.dump(2) << std::endl; }

}  // namespace orderflow::cli

// A Kafka client's configuration: orderflow's librdkafka defaults under the
// caller's and the user's settings (MakeConf, kafka_internal.h), and the
// properties file that holds a user's settings (LoadClientProperties, kafka.h).
#include <librdkafka/rdkafka.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eventstore/kafka.h"
#include "eventstore/kafka_internal.h"

namespace orderflow::eventstore {

namespace {
std::string Trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}
}  // namespace

Status LoadClientProperties(const std::string& path, KafkaConfig* config) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("cannot read " + path + ": " + std::strerror(errno));
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const std::string t = Trimmed(line);
    if (t.empty() || t[0] == '#' || t[0] == '!') continue;
    const size_t eq = t.find('=');
    std::string key = eq == std::string::npos ? std::string() : Trimmed(std::string_view(t).substr(0, eq));
    if (key.empty()) return Status::InvalidArgument(path + ":" + std::to_string(n) + ": expected key=value (a librdkafka property)");
    std::string value = Trimmed(std::string_view(t).substr(eq + 1));
    if (key == "bootstrap.servers") {
      config->brokers = std::move(value);
    } else {
      config->overrides.emplace_back(std::move(key), std::move(value));
    }
  }
  return Status::Ok();
}

namespace internal {

rd_kafka_conf_t* MakeConf(const KafkaConfig& config, const std::string& client_id,
                          const std::vector<std::pair<std::string, std::string>>& defaults, Status* status) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  auto set = [&](const std::string& k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      // A secret's value is never in an error (it would reach the log).
      const bool secret = k.find("password") != std::string::npos || k.find("secret") != std::string::npos ||
                          k.find("jaas") != std::string::npos || k == "ssl.key.pem";
      *status = Status::InvalidArgument("kafka property " + k + "=" + (secret ? "<hidden>" : v) + ": " + errstr);
      return false;
    }
    return true;
  };
  // log.connection.close: closes reach LogCallback, which keeps the routine
  // ones at debug level and turns the ones that mean a protocol mismatch into
  // a hint (librdkafka says nothing of them otherwise).
  bool ok = set("bootstrap.servers", config.brokers) && set("client.id", client_id) &&
            set("log.connection.close", "true") && set("topic.metadata.refresh.interval.ms", "10000") &&
            set("socket.nagle.disable", "true");  // small requests on loopback: Nagle adds tens of ms
  for (const auto& [k, v] : defaults) ok = ok && set(k, v);
  for (const auto& [k, v] : config.overrides) ok = ok && set(k, v);
  if (!ok) {
    rd_kafka_conf_destroy(conf);
    return nullptr;
  }
  rd_kafka_conf_set_log_cb(conf, LogCallback);
  return conf;
}

}  // namespace internal

}  // namespace orderflow::eventstore

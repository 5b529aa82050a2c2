#include "eventstore/kafka.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "eventstore/acknowledged.h"
#include "eventstore/codec.h"
#include "eventstore/kafka_internal.h"

namespace orderflow::eventstore {

void KafkaHandleDeleter::operator()(rd_kafka_s* rk) const {
  if (rk != nullptr) rd_kafka_destroy(rk);
}

namespace {
// Backing store of a Record built from copies.
struct OwnedRecord {
  std::string topic, key, value;
  std::vector<Header> headers;
};

// What to change when the cluster refuses this process's credentials or its
// TLS: said by the log line (RefusalIn) and by the error of the call that failed.
constexpr char kCredentialsHint[] = "check sasl.username and sasl.password in the --kafka-config file";
constexpr char kTlsHint[] = "check security.protocol and ssl.ca.location (the cluster's CA) in the --kafka-config file";
constexpr char kProtocolHint[] =
    "a secured cluster needs security.protocol=SASL_SSL, sasl.mechanism, sasl.username, sasl.password and "
    "ssl.ca.location in a --kafka-config file (kafka.sh writes one per user in DIR/clients)";

// The last refusal any client of this process met (RefusalIn), with when.
std::mutex& RefusalMu() {
  static auto* mu = new std::mutex;  // never destroyed: librdkafka threads log while the process exits
  return *mu;
}
std::pair<std::string, std::chrono::steady_clock::time_point>& LastRefusal() {
  static auto* last = new std::pair<std::string, std::chrono::steady_clock::time_point>;
  return *last;
}
// When a broker last closed a connection the way a TLS or SASL listener
// closes a client without them (librdkafka's guess: a broker going down can
// look the same, so it only adds a hint to what fails).
std::chrono::steady_clock::time_point& LastSuspicion() {
  static auto* last = new std::chrono::steady_clock::time_point;
  return *last;
}

}  // namespace

Record Record::Make(std::string topic, int32_t partition, int64_t offset, std::string key, std::string value,
                    std::vector<Header> headers, int64_t timestamp_ms) {
  auto* owned = new OwnedRecord{std::move(topic), std::move(key), std::move(value), std::move(headers)};
  Record r;
  r.owner_ = Owner(owned, [](void* p) { delete static_cast<OwnedRecord*>(p); });
  r.topic_ = owned->topic;
  r.key_ = owned->key;
  r.value_ = owned->value;
  r.partition_ = partition;
  r.offset_ = offset;
  r.timestamp_ms_ = timestamp_ms;
  return r;
}

std::string_view Record::HeaderValue(std::string_view name) const {
  if (!owner_) return {};
  if (owner_is_message_) {
    auto* m = static_cast<rd_kafka_message_t*>(owner_.get());
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) return {};
    const void* val = nullptr;
    size_t size = 0;
    std::string key(name);
    if (rd_kafka_header_get_last(hdrs, key.c_str(), &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR || !val) return {};
    return std::string_view(static_cast<const char*>(val), size);
  }
  const auto* owned = static_cast<const OwnedRecord*>(owner_.get());
  for (auto it = owned->headers.rbegin(); it != owned->headers.rend(); ++it) {
    if (it->name == name) return it->value;
  }
  return {};
}

std::vector<Header> Record::Headers() const {
  std::vector<Header> out;
  if (!owner_) return out;
  if (owner_is_message_) {
    auto* m = static_cast<rd_kafka_message_t*>(owner_.get());
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) return out;
    const char* name = nullptr;
    const void* val = nullptr;
    size_t size = 0;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
      out.push_back({name, val ? std::string(static_cast<const char*>(val), size) : std::string()});
    }
    return out;
  }
  return static_cast<const OwnedRecord*>(owner_.get())->headers;
}

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

Status UnavailableOrRefused(std::string_view context, std::string message) {
  // A broker that refused our credentials or CA looks unreachable to the
  // caller; say why, and stop retrying what cannot succeed.
  std::lock_guard lock(RefusalMu());
  const auto& [refusal, at] = LastRefusal();
  const auto now = std::chrono::steady_clock::now();
  if (!refusal.empty() && now - at < std::chrono::seconds(30)) {
    return Status::FailedPrecondition(std::string(context) + ": " + refusal);
  }
  if (LastSuspicion() != std::chrono::steady_clock::time_point() && now - LastSuspicion() < std::chrono::seconds(30)) {
    return Status::Unavailable(message + " (the broker closes connections as a TLS or SASL listener would: " +
                               kProtocolHint + ")");
  }
  return Status::Unavailable(std::move(message));
}

Status KafkaError(int code, std::string_view context) {
  auto err = static_cast<rd_kafka_resp_err_t>(code);
  std::string message = std::string(context) + ": " + rd_kafka_err2str(err);
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      return Status::Ok();
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
      return UnavailableOrRefused(context, std::move(message));
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
      // Not retryable: the cluster refuses this user until an ACL changes.
      return Status::FailedPrecondition(std::string(context) + ": not authorized (" + rd_kafka_err2name(err) +
                                        "): grant this user the right in deploy/kafka/acls (kafka.sh acls), or"
                                        " use the --kafka-config of a user that has it");
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
      return Status::FailedPrecondition(message + ": " + kCredentialsHint);
    case RD_KAFKA_RESP_ERR__SSL:
      return Status::FailedPrecondition(message + ": " + kTlsHint);
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      return Status::NotFound(message);
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
    case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
      return Status::OutOfRange(message);
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return Status::InvalidArgument(message);
    default:
      return Status::Internal(message);
  }
}

namespace internal {

namespace {
// librdkafka reports an unreachable broker on every reconnect attempt, from
// every client of the process (a dozen in `orderflow up`): while a broker is
// down that is thousands of lines saying one thing. Say it once per broker
// address and minute, as a warning (librdkafka retries on its own, and the
// services retry from their stored offsets), and the rest at debug level.
// The broker ("host:port") a connection failure is about, from librdkafka's
// FAIL / ERROR / REQTMOUT lines ("[thrd:...]: GroupCoordinator: 127.0.0.1:9094:
// Connect to ipv4#127.0.0.1:9094 failed: ..."); false for other lines.
bool IsUnreachableBroker(std::string_view fac, std::string_view text, std::string* address) {
  if (fac != "FAIL" && fac != "ERROR" && fac != "REQTMOUT") return false;
  if (auto thread = text.find("]: "); thread != std::string_view::npos) text.remove_prefix(thread + 3);
  if (text.find("brokers are down") != std::string_view::npos) {  // "3/3 brokers are down"
    *address = "(every broker)";
    return true;
  }
  // The first "host:port": a run of name characters, a colon, digits.
  auto is_name = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_'; };
  for (size_t colon = text.find(':'); colon != std::string_view::npos; colon = text.find(':', colon + 1)) {
    size_t begin = colon, end = colon + 1;
    while (begin > 0 && is_name(text[begin - 1])) --begin;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
    if (begin < colon && end > colon + 1) {
      *address = std::string(text.substr(begin, end - begin));
      return true;
    }
  }
  // "GroupCoordinator: 1 request(s) timed out: disconnect (after 5246ms in
  // state UP)": the coordinator went away mid-request; named by its role.
  if (text.find("request(s) timed out") != std::string_view::npos) {
    const auto colon = text.find(':');
    *address = colon != std::string_view::npos ? std::string(text.substr(0, colon)) : "(a broker)";
    return true;
  }
  return false;
}

// The cluster refusing this process's credentials or its CA: what librdkafka
// logs for it, and what to change. Empty when `text` is no such refusal.
std::string RefusalIn(std::string_view text) {
  if (text.find("SASL authentication error") != std::string_view::npos ||
      text.find("Authentication failed") != std::string_view::npos) {
    return std::string("the cluster refused the credentials: ") + kCredentialsHint;
  }
  if (text.find("SSL handshake failed") != std::string_view::npos ||
      text.find("certificate verify failed") != std::string_view::npos) {
    return std::string("the TLS handshake failed (the cluster's certificate is not trusted, or it speaks no TLS): ") +
           kTlsHint;
  }
  return {};
}

void LogCallback(const rd_kafka_t*, int level, const char* fac, const char* buf) {
  // syslog levels: 0..3 error, 4 warning, 5..6 info, 7 debug
  auto lvl = level <= 3 ? spdlog::level::err : level == 4 ? spdlog::level::warn
                                               : level <= 6 ? spdlog::level::info
                                                            : spdlog::level::debug;
  if (std::string_view(fac) == "COMMITFAIL") {
    // Offsets committed to Kafka are information only (CommitForOperators);
    // a failed one is replaced by the next.
    spdlog::debug("rdkafka {}: {}", fac, buf);
    return;
  }
  if (std::string refusal = RefusalIn(buf); !refusal.empty()) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(RefusalMu());
    auto& [last, at] = LastRefusal();
    if (last != refusal || now - at > std::chrono::minutes(1)) spdlog::error("Kafka: {} ({})", refusal, buf);
    last = refusal;
    at = now;
    return;
  }
  const std::string_view text(buf);
  // A connection closed: librdkafka reconnects. Said only where librdkafka
  // suspects the protocol (a plain client at a TLS or SASL listener looks
  // like a broker that is down, below); the rest is routine.
  const bool protocol_suspect = text.find("security.protocol") != std::string_view::npos;
  if (protocol_suspect) {
    std::lock_guard lock(RefusalMu());
    LastSuspicion() = std::chrono::steady_clock::now();
  }
  if (text.find("Disconnected") != std::string_view::npos && !protocol_suspect) {
    spdlog::debug("rdkafka {}: {}", fac, buf);
    return;
  }
  std::string address;
  if (lvl <= spdlog::level::err && lvl >= spdlog::level::warn && IsUnreachableBroker(fac, buf, &address)) {
    // Never destroyed: librdkafka threads may still log while the process exits.
    static auto* mu = new std::mutex;
    static auto* last_warned = new std::map<std::string, std::chrono::steady_clock::time_point>;
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(*mu);
    auto it = last_warned->find(address);
    if (it != last_warned->end() && now - it->second < std::chrono::minutes(1)) {
      spdlog::debug("rdkafka {}: {}", fac, buf);
      return;
    }
    (*last_warned)[address] = now;
    spdlog::warn("Kafka broker {} unreachable or not answering ({}); clients keep retrying and nothing is lost "
                 "(said at most once a minute per broker){}",
                 address, buf, protocol_suspect ? std::string(". If it is up: ") + kProtocolHint : "");
    return;
  }
  spdlog::log(lvl, "rdkafka {}: {}", fac, buf);
}
}  // namespace

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

// ---- Producer -----------------------------------------------------------------

}  // namespace orderflow::eventstore

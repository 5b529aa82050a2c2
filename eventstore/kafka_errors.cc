// What librdkafka says, in orderflow's terms: its error codes as Status
// values (KafkaError, kafka.h), each saying whether a retry can help, and its
// log lines on spdlog (LogCallback, kafka_internal.h), with an unreachable
// broker said once a minute and a refused login or TLS handshake said with
// what to change. A refusal the log saw also turns the next "unreachable"
// error of any client into a refusal that retrying cannot cure.
#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "eventstore/kafka.h"
#include "eventstore/kafka_internal.h"

namespace orderflow::eventstore {

namespace {

// What to change when the cluster refuses this process's credentials or its
// TLS: said by the log line (RejectionIn) and by the error of the call that failed.
constexpr char kCredentialsHint[] = "check sasl.username and sasl.password in the --kafka-config file";
constexpr char kTlsHint[] = "check security.protocol and ssl.ca.location (the cluster's CA) in the --kafka-config file";
constexpr char kProtocolHint[] =
    "a secured cluster needs security.protocol=SASL_SSL, sasl.mechanism, sasl.username, sasl.password and "
    "ssl.ca.location in a --kafka-config file (kafka.sh writes one per user in DIR/clients)";

// The last refusal any client of this process met (RejectionIn), with when.
std::mutex& RejectionMu() {
  static auto* mu = new std::mutex;  // never destroyed: librdkafka threads log while the process exits
  return *mu;
}
std::pair<std::string, std::chrono::steady_clock::time_point>& LastRejection() {
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

Status UnavailableOrRefused(std::string_view context, std::string message) {
  // A broker that refused our credentials or CA looks unreachable to the
  // caller; say why, and stop retrying what cannot succeed.
  std::lock_guard lock(RejectionMu());
  const auto& [refusal, at] = LastRejection();
  const auto now = SystemClock().Now();
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
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
      // No answer: a broker away, or one that refused this process's
      // credentials, CA or protocol.
      return UnavailableOrRefused(context, std::move(message));
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
      // A broker answered (leadership moving, replicas away): it speaks this
      // process's protocol, so no hint about TLS or SASL.
      return Status::Unavailable(std::move(message));
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
  // "<client>: GroupCoordinator: Disconnected while requesting ApiVersion:
  // might be caused by incorrect security.protocol ...": a coordinator
  // restarting closes connections so (LogCallback keeps only such
  // disconnects); named by the role before ": Disconnected".
  if (const auto at = text.find(": Disconnected"); at != std::string_view::npos) {
    const auto from = text.rfind(": ", at == 0 ? 0 : at - 1);
    *address = std::string(text.substr(from == std::string_view::npos ? 0 : from + 2,
                                       at - (from == std::string_view::npos ? 0 : from + 2)));
    return true;
  }
  return false;
}

// The cluster refusing this process's credentials or its CA: what librdkafka
// logs for it, and what to change. Empty when `text` is no such refusal.
std::string RejectionIn(std::string_view text) {
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

}  // namespace

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
  if (std::string refusal = RejectionIn(buf); !refusal.empty()) {
    const auto now = SystemClock().Now();
    std::lock_guard lock(RejectionMu());
    auto& [last, at] = LastRejection();
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
    std::lock_guard lock(RejectionMu());
    LastSuspicion() = SystemClock().Now();
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
    const auto now = SystemClock().Now();
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

}  // namespace internal

}  // namespace orderflow::eventstore

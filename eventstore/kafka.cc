#include "eventstore/kafka.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
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

// The last refusal any client of this process met (RefusalIn), with when.
std::mutex& RefusalMu() {
  static auto* mu = new std::mutex;  // never destroyed: librdkafka threads log while the process exits
  return *mu;
}
std::pair<std::string, std::chrono::steady_clock::time_point>& LastRefusal() {
  static auto* last = new std::pair<std::string, std::chrono::steady_clock::time_point>;
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
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR: {
      // A broker that refused our credentials or CA looks unreachable to the
      // caller; say why, and stop retrying what cannot succeed.
      std::lock_guard lock(RefusalMu());
      const auto& [refusal, at] = LastRefusal();
      if (!refusal.empty() && std::chrono::steady_clock::now() - at < std::chrono::seconds(30)) {
        return Status::FailedPrecondition(std::string(context) + ": " + refusal);
      }
      return Status::Unavailable(message);
    }
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
      return Status::FailedPrecondition(message + ": check sasl.username and sasl.password in the --kafka-config file");
    case RD_KAFKA_RESP_ERR__SSL:
      return Status::FailedPrecondition(message + ": check ssl.ca.location (the cluster's CA) in the --kafka-config file");
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
    return "the cluster refused the credentials: check sasl.username and sasl.password in the --kafka-config file";
  }
  if (text.find("SSL handshake failed") != std::string_view::npos ||
      text.find("certificate verify failed") != std::string_view::npos) {
    return "the TLS handshake failed (the cluster's certificate is not trusted, or it speaks no TLS): check"
           " security.protocol and ssl.ca.location in the --kafka-config file";
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
                 "(said at most once a minute per broker)",
                 address, buf);
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
  bool ok = set("bootstrap.servers", config.brokers) && set("client.id", client_id) &&
            set("log.connection.close", "false") && set("topic.metadata.refresh.interval.ms", "10000") &&
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

struct Producer::State {
  std::string topic_prefix;  // KafkaConfig::topic_prefix
  std::string cluster;       // AcknowledgedKey of the config
  std::mutex mu;
  Status first_error;  // first delivery failure since the last Flush
};

namespace {

// TrackAcknowledged's tally: cluster (AcknowledgedKey) -> partition -> the
// offset after the highest acknowledged one.
std::atomic<bool> g_track_acknowledged{false};
struct AcknowledgedTally {
  std::mutex mu;
  std::map<std::string, std::map<TopicPartition, int64_t>> ends;
};
AcknowledgedTally& Acknowledged() {
  static AcknowledgedTally tally;
  return tally;
}
std::string AcknowledgedKey(const KafkaConfig& config) { return config.brokers + "/" + config.topic_prefix; }

void DeliveryReport(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  auto* state = static_cast<Producer::State*>(opaque);
  std::unique_ptr<DeliveryCallback> callback(static_cast<DeliveryCallback*>(msg->_private));
  Status status = msg->err ? KafkaError(msg->err, "delivery to " + std::string(rd_kafka_topic_name(msg->rkt)))
                           : Status::Ok();
  if (!status.ok()) {
    std::lock_guard lock(state->mu);
    if (state->first_error.ok()) state->first_error = status;
  }
  if (status.ok() && msg->offset >= 0 && g_track_acknowledged.load(std::memory_order_relaxed)) {
    std::string_view topic = rd_kafka_topic_name(msg->rkt);
    topic.remove_prefix(std::min(state->topic_prefix.size(), topic.size()));
    AcknowledgedTally& tally = Acknowledged();
    std::lock_guard lock(tally.mu);
    if (auto cluster = tally.ends.find(state->cluster); cluster != tally.ends.end()) {
      int64_t& end = cluster->second[TopicPartition{std::string(topic), msg->partition}];
      end = std::max(end, msg->offset + 1);
    }
  }
  if (callback && *callback) (*callback)(status, Position{msg->partition, msg->offset});
}

}  // namespace

void TrackAcknowledged(const KafkaConfig& config) {
  AcknowledgedTally& tally = Acknowledged();
  std::lock_guard lock(tally.mu);
  tally.ends[AcknowledgedKey(config)].clear();
  g_track_acknowledged.store(true);
}

std::map<TopicPartition, int64_t> AcknowledgedEnds(const KafkaConfig& config) {
  AcknowledgedTally& tally = Acknowledged();
  std::lock_guard lock(tally.mu);
  auto it = tally.ends.find(AcknowledgedKey(config));
  return it == tally.ends.end() ? std::map<TopicPartition, int64_t>{} : it->second;
}

Producer::Producer(KafkaHandle rk, std::unique_ptr<State> state) : rk_(std::move(rk)), state_(std::move(state)) {}

Producer::~Producer() {
  if (rk_) {
    rd_kafka_flush(rk_.get(), 10000);
    rk_.reset();
  }
}

Result<std::unique_ptr<Producer>> Producer::Create(const KafkaConfig& config, const std::string& client_id,
                                                   const std::string& transactional_id) {
  Status status;
  std::vector<std::pair<std::string, std::string>> defaults = {{"enable.idempotence", "true"},
                                              {"acks", "all"},
                                              {"compression.type", "lz4"},
                                              {"linger.ms", "5"},
                                              {"batch.num.messages", "10000"},
                                              {"queue.buffering.max.messages", "200000"},
                                              {"message.timeout.ms", "120000"},
                                              // One produce request in flight per broker: with more, the embedded
                                              // broker (librdkafka 2.0.2's mock) acknowledged and then lost a
                                              // record when a partition's leader moved (the LeaderMoves fault test
                                              // stalled an order in about one run in four; none in 8 runs since).
                                              {"max.in.flight.requests.per.connection", "1"}};
  if (!transactional_id.empty()) {
    defaults.emplace_back("transactional.id", ClusterName(config, transactional_id));
    defaults.emplace_back("transaction.timeout.ms", "120000");  // >= message.timeout.ms
  }
  rd_kafka_conf_t* conf = internal::MakeConf(config, client_id, defaults, &status);
  if (conf == nullptr) return status;
  auto state = std::make_unique<State>();
  state->topic_prefix = config.topic_prefix;
  state->cluster = AcknowledgedKey(config);
  rd_kafka_conf_set_opaque(conf, state.get());
  rd_kafka_conf_set_dr_msg_cb(conf, DeliveryReport);
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return Status::InvalidArgument(std::string("cannot create Kafka producer: ") + errstr);
  }
  KafkaHandle handle(rk);
  if (!transactional_id.empty()) {
    rd_kafka_error_t* error = rd_kafka_init_transactions(rk, 30000);
    if (error != nullptr) {
      Status s = Status::Unavailable(std::string("init transactions: ") + rd_kafka_error_string(error));
      rd_kafka_error_destroy(error);
      return s;
    }
  }
  return std::unique_ptr<Producer>(new Producer(std::move(handle), std::move(state)));
}

namespace {
Status TxnStatus(rd_kafka_error_t* error, const char* what) {
  if (error == nullptr) return Status::Ok();
  Status s = rd_kafka_error_is_fatal(error)
                 ? Status::Internal(std::string(what) + ": " + rd_kafka_error_string(error))
                 : Status::Unavailable(std::string(what) + ": " + rd_kafka_error_string(error));
  rd_kafka_error_destroy(error);
  return s;
}
}  // namespace

Status Producer::BeginTransaction() { return TxnStatus(rd_kafka_begin_transaction(rk_.get()), "begin transaction"); }

Status Producer::CommitTransaction(std::chrono::milliseconds timeout) {
  Status s = TxnStatus(rd_kafka_commit_transaction(rk_.get(), static_cast<int>(timeout.count())), "commit transaction");
  rd_kafka_poll(rk_.get(), 0);  // serve delivery reports
  std::lock_guard lock(state_->mu);
  Status first = std::move(state_->first_error);
  state_->first_error = Status::Ok();
  return s.ok() ? first : s;
}

Status Producer::AbortTransaction(std::chrono::milliseconds timeout) {
  return TxnStatus(rd_kafka_abort_transaction(rk_.get(), static_cast<int>(timeout.count())), "abort transaction");
}

Status Producer::Append(std::string_view topic, std::string_view key, std::string_view value,
                        const std::vector<Header>& headers, DeliveryCallback on_delivery) {
  return AppendTo(topic, RD_KAFKA_PARTITION_UA, key, value, headers, 0, std::move(on_delivery));
}

Status Producer::AppendTo(std::string_view topic, int32_t partition, std::string_view key, std::string_view value,
                          const std::vector<Header>& headers, int64_t timestamp_ms, DeliveryCallback on_delivery) {
  auto callback = on_delivery ? std::make_unique<DeliveryCallback>(std::move(on_delivery)) : nullptr;
  for (int attempt = 0;; ++attempt) {
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(headers.size());
    for (const Header& h : headers) {
      rd_kafka_header_add(hdrs, h.name.data(), h.name.size(), h.value.data(), h.value.size());
    }
    std::string topic_name = state_->topic_prefix + std::string(topic);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk_.get(), RD_KAFKA_V_TOPIC(topic_name.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_OPAQUE(callback.get()),
        RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      callback.release();  // owned by the delivery report now
      rd_kafka_poll(rk_.get(), 0);
      return Status::Ok();
    }
    rd_kafka_headers_destroy(hdrs);  // only freed by librdkafka on success
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || attempt >= 600) {
      return KafkaError(err, "append to " + topic_name);
    }
    rd_kafka_poll(rk_.get(), 100);  // queue full: serve delivery reports to make room
  }
}

Status Producer::AppendEvent(std::string_view topic, const domain::Event& event, DeliveryCallback on_delivery) {
  std::string value = EncodeEvent(event);
  std::vector<Header> headers = {
      {std::string(kHeaderEventType), std::string(domain::EventTypeName(event.payload))},
      {std::string(kHeaderSchemaVersion), std::to_string(event.schema_version)},
      {std::string(kHeaderContentType), std::string(kContentType)},
  };
  return Append(topic, event.order_id, value, headers, std::move(on_delivery));
}

void Producer::Poll(std::chrono::milliseconds timeout) { rd_kafka_poll(rk_.get(), static_cast<int>(timeout.count())); }

Status Producer::WarmUp(const std::vector<std::string>& topics, std::chrono::milliseconds timeout) {
  // One deadline for all topics: a service calls this while starting, before
  // it looks at its stop flag, so four topics must not take four timeouts.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (const std::string& topic : topics) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Status::Unavailable("metadata for " + topic + ": timed out warming up");
    const std::string name = state_->topic_prefix + topic;
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_.get(), name.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk_.get(), 0, rkt, &md, static_cast<int>(left.count()));
    if (md != nullptr) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(err, "metadata for " + topic);
  }
  return Status::Ok();
}

Status Producer::Flush(std::chrono::milliseconds timeout) {
  rd_kafka_resp_err_t err = rd_kafka_flush(rk_.get(), static_cast<int>(timeout.count()));
  std::lock_guard lock(state_->mu);
  Status first = std::move(state_->first_error);
  state_->first_error = Status::Ok();
  if (!first.ok()) return first;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Status::Unavailable("flush: " + std::to_string(rd_kafka_outq_len(rk_.get())) +
                               " record(s) still unacknowledged after " + std::to_string(timeout.count()) + " ms");
  }
  return Status::Ok();
}

// ---- Reader -------------------------------------------------------------------

struct Reader::State {
  std::string topic_prefix;  // KafkaConfig::topic_prefix
  rd_kafka_queue_t* queue = nullptr;
  std::vector<rd_kafka_message_t*> buffer;
  ~State() {
    if (queue != nullptr) rd_kafka_queue_destroy(queue);
  }
};

Reader::Reader(KafkaHandle rk, std::unique_ptr<State> state) : rk_(std::move(rk)), state_(std::move(state)) {}

Reader::~Reader() {
  if (rk_) {
    rd_kafka_assign(rk_.get(), nullptr);
    state_.reset();  // the queue must go before the handle
    rd_kafka_consumer_close(rk_.get());
    rk_.reset();
  }
}

Result<std::unique_ptr<Reader>> Reader::Create(const KafkaConfig& config, const std::string& client_id) {
  Status status;
  rd_kafka_conf_t* conf = internal::MakeConf(config, client_id,
                                             {{"group.id", ClusterName(config, client_id)},
                                              {"enable.auto.commit", "false"},
                                              {"enable.auto.offset.store", "false"},
                                              {"auto.offset.reset", "error"},
                                              {"enable.partition.eof", "false"},
                                              {"fetch.wait.max.ms", "10"},
                                              {"fetch.min.bytes", "65536"},  // as GroupReader
                                              {"queued.min.messages", "200000"},
                                              {"queued.max.messages.kbytes", "131072"},
                                              {"fetch.message.max.bytes", "4194304"}},
                                             &status);
  if (conf == nullptr) return status;
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return Status::InvalidArgument(std::string("cannot create Kafka consumer: ") + errstr);
  }
  rd_kafka_poll_set_consumer(rk);
  auto state = std::make_unique<State>();
  state->topic_prefix = config.topic_prefix;
  state->queue = rd_kafka_queue_get_consumer(rk);
  return std::unique_ptr<Reader>(new Reader(KafkaHandle(rk), std::move(state)));
}

int Reader::BrokerCount(std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk_.get(), 0, nullptr, &md, static_cast<int>(timeout.count())) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return 0;
  }
  const int n = md->broker_cnt;
  rd_kafka_metadata_destroy(md);
  return n;
}

Result<int32_t> Reader::PartitionCount(const std::string& topic, std::chrono::milliseconds timeout) {
  const std::string name = state_->topic_prefix + topic;
  // A topic created a moment ago may not be known yet to the broker this
  // request goes to (each broker learns new topics from the controller on
  // its own): look again for up to 3 s before calling it missing.
  const auto deadline = std::chrono::steady_clock::now() + std::min<std::chrono::milliseconds>(timeout, std::chrono::seconds(3));
  for (;;) {
    // Ask for all topics: a request naming the topic may auto-create it on brokers that allow that.
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk_.get(), 1, nullptr, &md, static_cast<int>(timeout.count()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(err, "metadata for " + topic);
    std::unique_ptr<const rd_kafka_metadata_t, void (*)(const rd_kafka_metadata_t*)> guard(md, rd_kafka_metadata_destroy);
    for (int i = 0; i < md->topic_cnt; ++i) {
      const rd_kafka_metadata_topic_t& t = md->topics[i];
      if (name != t.topic) continue;
      if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(t.err, "topic " + topic);
      if (t.partition_cnt <= 0) return Status::NotFound("topic " + topic + " has no partitions");
      return static_cast<int32_t>(t.partition_cnt);
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status::NotFound("topic " + name +
                          " does not exist on the cluster; `orderflow up --brokers ...` creates orderflow's topics");
}

Result<Watermarks> Reader::QueryWatermarks(const TopicPartition& logical, std::chrono::milliseconds timeout) {
  Watermarks w;
  const TopicPartition tp{state_->topic_prefix + logical.topic, logical.partition};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk_.get(), tp.topic.c_str(), tp.partition, &w.low,
                                                             &w.high, static_cast<int>(timeout.count()));
  while ((err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION || err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
          err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) &&
         std::chrono::steady_clock::now() < deadline) {
    // The leader moved, or a new partition's leader is not serving yet: the
    // query went to the broker the cached metadata names, which stays stale
    // until the next periodic refresh. Refresh the topic's metadata and ask again.
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_.get(), tp.topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk_.get(), 0, rkt, &md, static_cast<int>(timeout.count())) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    err = rd_kafka_query_watermark_offsets(rk_.get(), tp.topic.c_str(), tp.partition, &w.low, &w.high,
                                           static_cast<int>(timeout.count()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaError(err, "watermarks of " + tp.topic + "[" + std::to_string(tp.partition) + "]");
  }
  return w;
}

Status CheckLogCovers(const TopicPartition& tp, int64_t next, const Watermarks& w, const std::string& store_dir,
                      const std::string& remedy) {
  const std::string where = tp.topic + "[" + std::to_string(tp.partition) + "]";
  if (w.low > next) {
    return Status::OutOfRange(where + ": the log now starts at offset " + std::to_string(w.low) + " but the store in " +
                              store_dir + " needs offset " + std::to_string(next) + "; events " + std::to_string(next) +
                              ".." + std::to_string(w.low - 1) +
                              " are gone (retention, or the embedded broker's per-partition size limit). " + remedy);
  }
  if (w.high < next) {
    return Status::OutOfRange(where + ": the log ends at offset " + std::to_string(w.high) + " but the store in " +
                              store_dir + " has consumed up to offset " + std::to_string(next) +
                              "; the topic was recreated or this store belongs to another cluster. " + remedy);
  }
  return Status::Ok();
}

int64_t Reader::CachedHighWatermark(const TopicPartition& tp) const {
  int64_t low = -1, high = -1;
  const std::string name = state_->topic_prefix + tp.topic;
  if (rd_kafka_get_watermark_offsets(rk_.get(), name.c_str(), tp.partition, &low, &high) !=
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    return -1;
  }
  return high;
}

Status Reader::Assign(const std::vector<std::pair<TopicPartition, int64_t>>& positions) {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(positions.size()));
  for (const auto& [tp, offset] : positions) {
    const std::string name = state_->topic_prefix + tp.topic;
    rd_kafka_topic_partition_list_add(list, name.c_str(), tp.partition)->offset = offset;
  }
  rd_kafka_resp_err_t err = rd_kafka_assign(rk_.get(), list);
  rd_kafka_topic_partition_list_destroy(list);
  return KafkaError(err, "assign partitions");
}

namespace {

// Waits up to `timeout` for the first message, then takes whatever else is
// already queued, up to `max`, without waiting: batches under load, no added
// latency when idle (rd_kafka_consume_batch_queue alone waits for a full batch).
ssize_t PollQueue(rd_kafka_queue_t* queue, std::vector<rd_kafka_message_t*>& buffer, size_t max,
                  std::chrono::milliseconds timeout) {
  buffer.resize(std::max<size_t>(max, 1));
  rd_kafka_message_t* first = rd_kafka_consume_queue(queue, static_cast<int>(timeout.count()));
  if (first == nullptr) return 0;
  buffer[0] = first;
  if (max <= 1) return 1;
  ssize_t more = rd_kafka_consume_batch_queue(queue, 0, buffer.data() + 1, max - 1);
  return more < 0 ? 1 : 1 + more;
}

// Converts a batch of librdkafka messages into Records (taking ownership).
// Consumer errors: out-of-range / not-found are returned; others are logged.
Result<std::vector<Record>> ToRecords(rd_kafka_message_t** msgs, ssize_t n, size_t topic_prefix_size);

}  // namespace

Result<std::vector<Record>> Reader::Poll(size_t max, std::chrono::milliseconds timeout, bool fill) {
  ssize_t n = 0;
  if (fill) {
    state_->buffer.resize(max);
    n = rd_kafka_consume_batch_queue(state_->queue, static_cast<int>(timeout.count()), state_->buffer.data(), max);
  } else {
    n = PollQueue(state_->queue, state_->buffer, max, timeout);
  }
  if (n < 0) return KafkaError(rd_kafka_last_error(), "consume");
  return ToRecords(state_->buffer.data(), n, state_->topic_prefix.size());
}




namespace {

Result<std::vector<Record>> ToRecords(rd_kafka_message_t** msgs, ssize_t n, size_t topic_prefix_size) {
  std::vector<Record> records;
  records.reserve(static_cast<size_t>(n));
  Status fatal;
  for (ssize_t i = 0; i < n; ++i) {
    rd_kafka_message_t* m = msgs[i];
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::string where = m->rkt ? std::string(rd_kafka_topic_name(m->rkt)) + "[" + std::to_string(m->partition) +
                                       "] at offset " + std::to_string(m->offset)
                                 : std::string("consumer");
      Status st = KafkaError(m->err, where);
      if (st.code() == StatusCode::kOutOfRange || st.code() == StatusCode::kNotFound) {
        if (fatal.ok()) fatal = st;
      } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        spdlog::warn("consumer: {} (will retry)", st.ToString());
      }
      rd_kafka_message_destroy(m);
      continue;
    }
    records.push_back(Record::FromMessage(m, topic_prefix_size));
  }
  if (!fatal.ok()) return fatal;
  return records;
}

}  // namespace

Record Record::FromMessage(rd_kafka_message_s* m, size_t topic_prefix_size) {
  Record r;
  r.owner_ = Owner(m, [](void* p) { rd_kafka_message_destroy(static_cast<rd_kafka_message_t*>(p)); });
  r.owner_is_message_ = true;
  r.topic_ = rd_kafka_topic_name(m->rkt);
  r.topic_.remove_prefix(std::min(topic_prefix_size, r.topic_.size()));
  r.partition_ = m->partition;
  r.offset_ = m->offset;
  rd_kafka_timestamp_type_t tstype;
  r.timestamp_ms_ = rd_kafka_message_timestamp(m, &tstype);
  if (m->key != nullptr) r.key_ = std::string_view(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr) r.value_ = std::string_view(static_cast<const char*>(m->payload), m->len);
  return r;
}

// ---- GroupReader --------------------------------------------------------------

struct GroupReader::State {
  std::string topic_prefix;  // KafkaConfig::topic_prefix
  OffsetLookup next_offset;
  rd_kafka_queue_t* queue = nullptr;
  std::vector<rd_kafka_message_t*> buffer;
  std::vector<TopicPartition> assignment;
  bool cooperative = false;  // the group's rebalance protocol, from partition.assignment.strategy
  ~State() {
    if (queue != nullptr) rd_kafka_queue_destroy(queue);
  }
};

namespace {

TopicPartition LogicalPartition(const GroupReader::State& state, const rd_kafka_topic_partition_t& p) {
  std::string_view name = p.topic;
  name.remove_prefix(std::min(state.topic_prefix.size(), name.size()));
  return TopicPartition{std::string(name), p.partition};
}

// Eager protocols (range, roundrobin) revoke everything and assign the new set;
// cooperative-sticky adds and removes partitions incrementally. Either way each
// newly assigned partition starts at the member's own stored offset.
//
// The protocol comes from the configuration, never from
// rd_kafka_rebalance_protocol(): in librdkafka 2.0.2 that call waits, with no
// timeout, for the group's thread to answer, and during rd_kafka_consumer_close
// (whose final revoke calls this callback) that thread may never answer: a
// notification service then hung 30 s after "stopped" and exited 1 (ASan CI,
// Dec 2026; librdkafka issue #4041).
void Rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* state = static_cast<GroupReader::State*>(opaque);
  const bool cooperative = state->cooperative;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (!cooperative) state->assignment.clear();
    for (int i = 0; i < partitions->cnt; ++i) {
      TopicPartition tp = LogicalPartition(*state, partitions->elems[i]);
      partitions->elems[i].offset = state->next_offset(tp);
      state->assignment.push_back(tp);
    }
    spdlog::info("consumer group: assigned {} partition(s)", partitions->cnt);
    if (cooperative) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, partitions)) {
        spdlog::error("consumer group: incremental assign: {}", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
      }
    } else {
      rd_kafka_assign(rk, partitions);
    }
  } else if (cooperative) {
    for (int i = 0; i < partitions->cnt; ++i) {
      TopicPartition tp = LogicalPartition(*state, partitions->elems[i]);
      std::erase(state->assignment, tp);
    }
    spdlog::info("consumer group: revoked {} partition(s)", partitions->cnt);
    if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, partitions)) {
      spdlog::error("consumer group: incremental unassign: {}", rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
    }
  } else {
    state->assignment.clear();
    rd_kafka_assign(rk, nullptr);
  }
}

}  // namespace

GroupReader::GroupReader(KafkaHandle rk, std::unique_ptr<State> state) : rk_(std::move(rk)), state_(std::move(state)) {}

GroupReader::~GroupReader() {
  if (rk_) {
    rd_kafka_consumer_close(rk_.get());
    if (state_->queue != nullptr) {
      rd_kafka_queue_destroy(state_->queue);
      state_->queue = nullptr;
    }
    rk_.reset();
  }
}

Result<std::unique_ptr<GroupReader>> GroupReader::Create(const KafkaConfig& config, const std::string& group_id,
                                                         const std::string& client_id,
                                                         const std::vector<std::string>& topics,
                                                         OffsetLookup next_offset) {
  Status status;
  rd_kafka_conf_t* conf = internal::MakeConf(config, client_id,
                                             {{"group.id", ClusterName(config, group_id)},
                                              {"enable.auto.commit", "false"},
                                              {"enable.auto.offset.store", "false"},
                                              {"auto.offset.reset", "error"},
                                              {"enable.partition.eof", "false"},
                                              // A fetch is answered at 64 KiB or after 10 ms: under load,
                                              // fewer and larger fetches (docs/benchmarks.md: a quarter less
                                              // CPU per order for orderflow, 40 % less for the broker, and
                                              // lower latency on two cores than answering every record).
                                              {"fetch.wait.max.ms", "10"},
                                              {"fetch.min.bytes", "65536"},
                                              {"session.timeout.ms", "6000"},
                                              {"heartbeat.interval.ms", "500"}},
                                             &status);
  if (conf == nullptr) return status;
  auto state = std::make_unique<State>();
  state->topic_prefix = config.topic_prefix;
  state->next_offset = std::move(next_offset);
  // librdkafka refuses to mix eager and cooperative assignors, so one
  // cooperative assignor (cooperative-sticky is the only one) makes the
  // group's protocol COOPERATIVE.
  char strategy[512];
  size_t strategy_size = sizeof strategy;
  if (rd_kafka_conf_get(conf, "partition.assignment.strategy", strategy, &strategy_size) == RD_KAFKA_CONF_OK) {
    state->cooperative = std::string_view(strategy).find("cooperative-sticky") != std::string_view::npos;
  }
  rd_kafka_conf_set_opaque(conf, state.get());
  rd_kafka_conf_set_rebalance_cb(conf, Rebalance);
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return Status::InvalidArgument(std::string("cannot create Kafka consumer: ") + errstr);
  }
  KafkaHandle handle(rk);
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(topics.size()));
  for (const auto& t : topics) {
    rd_kafka_topic_partition_list_add(list, ClusterName(config, t).c_str(), RD_KAFKA_PARTITION_UA);
  }
  rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(err, "subscribe");
  state->queue = rd_kafka_queue_get_consumer(rk);
  return std::unique_ptr<GroupReader>(new GroupReader(std::move(handle), std::move(state)));
}

Result<std::vector<Record>> GroupReader::Poll(size_t max, std::chrono::milliseconds timeout) {
  ssize_t n = PollQueue(state_->queue, state_->buffer, max, timeout);
  if (n < 0) return KafkaError(rd_kafka_last_error(), "consume");
  return ToRecords(state_->buffer.data(), n, state_->topic_prefix.size());
}

std::vector<TopicPartition> GroupReader::Assignment() const { return state_->assignment; }

namespace {
void CommitAsync(rd_kafka_t* rk, const std::string& topic_prefix,
                 const std::vector<std::pair<TopicPartition, int64_t>>& next_offsets) {
  if (next_offsets.empty()) return;
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(next_offsets.size()));
  for (const auto& [tp, offset] : next_offsets) {
    const std::string name = topic_prefix + tp.topic;
    rd_kafka_topic_partition_list_add(list, name.c_str(), tp.partition)->offset = offset;
  }
  // Asynchronous, result ignored: these offsets only inform tools; the local
  // store stays the truth, and a failed or stale commit is replaced by the next.
  (void)rd_kafka_commit(rk, list, /*async=*/1);
  rd_kafka_topic_partition_list_destroy(list);
}

std::map<TopicPartition, int64_t> PositionsOf(rd_kafka_t* rk, const std::string& topic_prefix,
                                             const std::vector<TopicPartition>& partitions) {
  std::map<TopicPartition, int64_t> out;
  if (partitions.empty()) return out;
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size()));
  for (const auto& tp : partitions) {
    rd_kafka_topic_partition_list_add(list, (topic_prefix + tp.topic).c_str(), tp.partition);
  }
  if (rd_kafka_position(rk, list) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int i = 0; i < list->cnt; ++i) {
      out[partitions[static_cast<size_t>(i)]] = list->elems[i].offset >= 0 ? list->elems[i].offset : -1;
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
  return out;
}
}  // namespace

void GroupReader::CommitForOperators(const std::vector<std::pair<TopicPartition, int64_t>>& next_offsets) {
  CommitAsync(rk_.get(), state_->topic_prefix, next_offsets);
}

std::map<TopicPartition, int64_t> GroupReader::Positions() const {
  return PositionsOf(rk_.get(), state_->topic_prefix, state_->assignment);
}

std::map<TopicPartition, int64_t> Reader::Positions(const std::vector<TopicPartition>& partitions) const {
  return PositionsOf(rk_.get(), state_->topic_prefix, partitions);
}

void Reader::CommitForOperators(const std::vector<std::pair<TopicPartition, int64_t>>& next_offsets) {
  CommitAsync(rk_.get(), state_->topic_prefix, next_offsets);
}

}  // namespace orderflow::eventstore

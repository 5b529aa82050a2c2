// Producer (kafka.h): appends, transactions, delivery reports, acknowledged ends.
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

struct Producer::State {
  std::string topic_prefix;  // KafkaConfig::topic_prefix
  const Clock* clock = nullptr;  // KafkaConfig::clock
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
                                              // snappy, not lz4: librdkafka 2.0.2 sets up an lz4 frame
                                              // (contexts, a 64 KiB buffer) per batch, which cost the
                                              // services' small batches ~10 % of orderflow's CPU per order;
                                              // the log is 2-4 % larger (docs/benchmarks.md, session 17).
                                              {"compression.type", "snappy"},
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
  state->clock = config.clock;
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
  const Clock& clock = *state_->clock;
  const auto deadline = clock.Now() + timeout;
  for (const std::string& topic : topics) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock.Now());
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
    return UnavailableOrRefused("flush", "flush: " + std::to_string(rd_kafka_outq_len(rk_.get())) +
                                             " record(s) still unacknowledged after " +
                                             std::to_string(timeout.count()) + " ms");
  }
  return Status::Ok();
}

Status Producer::WaitForDeliveries(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool met = done();
  while (!met) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    // Returns as soon as a report is served: `done` is looked at after each.
    rd_kafka_poll(rk_.get(), static_cast<int>(std::min<int64_t>(left.count(), 10)));
    met = done();
  }
  std::lock_guard lock(state_->mu);
  Status first = std::move(state_->first_error);
  state_->first_error = Status::Ok();
  if (!first.ok()) return first;
  if (!met) {
    return Status::Unavailable("delivery reports: records still unacknowledged after " +
                               std::to_string(timeout.count()) + " ms");
  }
  return Status::Ok();
}

// ---- Reader -------------------------------------------------------------------

}  // namespace orderflow::eventstore

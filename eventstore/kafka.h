// Thin, owning wrappers over librdkafka: a producer that appends records and an
// assign-based reader that consumes from explicit offsets.
//
// A consumer's position lives in its own RocksDB store, written in the same
// batch as its state; that is where it resumes from. What is committed to
// Kafka (CommitForOperators) is a copy, sent only after the state and outputs
// are durable: operators' tools read it, and so does `up` to tell when every
// instance of a group (in any process) has finished; no consumer resumes from it.
// librdkafka errors are converted to Status at this boundary; transient ones
// (broker down, timeouts) are kUnavailable.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/clock.h"
#include "domain/events.h"
#include "domain/status.h"

struct rd_kafka_s;
struct rd_kafka_conf_s;
struct rd_kafka_message_s;

namespace orderflow::eventstore {

// Connection settings shared by every client of one process.
struct KafkaConfig {
  std::string brokers;  // bootstrap list, "host:port,host:port"
  // Extra librdkafka properties (from --kafka PROP=VALUE), applied last, so
  // they override orderflow's defaults.
  std::vector<std::pair<std::string, std::string>> overrides;
  // Prepended to every topic name, consumer group id and transactional id on
  // the cluster (--topic-prefix): several orderflow deployments, or test runs,
  // share one cluster without seeing each other. The rest of orderflow only
  // sees the names without it (Record::topic(), TopicPartition, stored offsets).
  std::string topic_prefix;
  // The time of the clients' bounded waits and retries; must outlive them.
  const Clock* clock = &SystemClock();
};

// Reads a librdkafka properties file into `config` (key=value lines, as Kafka's
// client.properties without escapes; blank lines and lines starting with # or
// ! are skipped): bootstrap.servers sets `brokers`, every other key is
// appended to `overrides`. kInvalidArgument naming the file (and line) for an
// unreadable file or a line without '='.
Status LoadClientProperties(const std::string& path, KafkaConfig* config);

// The name of `topic` (or a group id) on the cluster: `config.topic_prefix` + `topic`.
inline std::string ClusterName(const KafkaConfig& config, std::string_view topic) {
  return config.topic_prefix + std::string(topic);
}

struct Header {
  std::string name;
  std::string value;
};

// One consumed record. Move-only; its views point into the bytes it owns (the
// librdkafka message, or a copy for records built with Record::Make), so they
// stay valid for the Record's lifetime. Records from a Reader must be destroyed
// before the Reader.
class Record {
 public:
  Record() = default;
  Record(Record&&) = default;
  Record& operator=(Record&&) = default;

  // A record that owns copies of the given bytes (tests, archives, tools).
  static Record Make(std::string topic, int32_t partition, int64_t offset, std::string key, std::string value,
                     std::vector<Header> headers = {}, int64_t timestamp_ms = 0);

  std::string_view topic() const { return topic_; }
  int32_t partition() const { return partition_; }
  int64_t offset() const { return offset_; }
  int64_t timestamp_ms() const { return timestamp_ms_; }
  std::string_view key() const { return key_; }
  std::string_view value() const { return value_; }
  // Value of the last header named `name`, or "" if absent.
  std::string_view HeaderValue(std::string_view name) const;
  // Every header, in order.
  std::vector<Header> Headers() const;

  // Wraps a consumed librdkafka message, taking ownership (used by the readers);
  // the first `topic_prefix_size` bytes of its topic name are the cluster's
  // prefix (KafkaConfig::topic_prefix), not part of topic().
  static Record FromMessage(::rd_kafka_message_s* message, size_t topic_prefix_size = 0);

 private:
  using Owner = std::unique_ptr<void, void (*)(void*)>;
  Owner owner_{nullptr, [](void*) {}};
  bool owner_is_message_ = false;
  std::string_view topic_, key_, value_;
  int32_t partition_ = 0;
  int64_t offset_ = 0;
  int64_t timestamp_ms_ = 0;
};

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  bool operator<(const TopicPartition& o) const {
    return topic != o.topic ? topic < o.topic : partition < o.partition;
  }
  bool operator==(const TopicPartition&) const = default;
};

struct Watermarks {
  int64_t low = 0;   // first offset still in the log
  int64_t high = 0;  // offset the next record will get (end of log)
};

// Where a delivered record landed.
struct Position {
  int32_t partition = -1;
  int64_t offset = -1;
};

using DeliveryCallback = std::function<void(const Status&, Position)>;

// Deleters for the librdkafka handles, so unique_ptr can own them.
struct KafkaHandleDeleter {
  void operator()(rd_kafka_s* rk) const;
};
using KafkaHandle = std::unique_ptr<rd_kafka_s, KafkaHandleDeleter>;

// Appends records. Idempotent producer, acks=all, snappy compression.
// Thread-safe: Append and Flush may be called from several threads.
class Producer {
 public:
  // `client_id` names this producer in broker logs ("orderflow-order").
  // A non-empty `transactional_id` makes it transactional (Kafka exactly-once
  // v2): call BeginTransaction/CommitTransaction around appends instead of Flush.
  static Result<std::unique_ptr<Producer>> Create(const KafkaConfig& config, const std::string& client_id,
                                                  const std::string& transactional_id = "");
  ~Producer();

  // Enqueues one record; returns once librdkafka owns a copy. Blocks (serving
  // delivery reports) while the local queue is full. `on_delivery`, if set, runs
  // on a thread inside Poll/Flush once the broker acknowledged or the record
  // finally failed. Errors: kInvalidArgument for an unknown topic or oversized
  // record, kUnavailable when the queue stays full.
  Status Append(std::string_view topic, std::string_view key, std::string_view value,
                const std::vector<Header>& headers, DeliveryCallback on_delivery = nullptr);
  // The same into partition `partition` (not chosen by key), with the record
  // timestamp `timestamp_ms` (0: now): for republishing a log as it was.
  Status AppendTo(std::string_view topic, int32_t partition, std::string_view key, std::string_view value,
                  const std::vector<Header>& headers, int64_t timestamp_ms, DeliveryCallback on_delivery = nullptr);

  // Encodes `event` and appends it keyed by its order id with the standard headers.
  Status AppendEvent(std::string_view topic, const domain::Event& event, DeliveryCallback on_delivery = nullptr);

  // Serves pending delivery reports, waiting up to `timeout` for one.
  void Poll(std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

  // Connects to the cluster and learns the leaders of `topics` now, so the
  // first append does not pay for it. Errors: kUnavailable on timeout.
  Status WarmUp(const std::vector<std::string>& topics, std::chrono::milliseconds timeout);

  // Waits until every record appended so far is acknowledged. Returns the first
  // delivery error since the previous Flush (and clears it), or kUnavailable on timeout.
  Status Flush(std::chrono::milliseconds timeout);

  // Serves delivery reports (their callbacks run here) until `done()` holds,
  // without waiting for what was appended after: the records a caller counts.
  // Returns the first delivery error since the previous Flush or wait (and
  // clears it), or kUnavailable when `timeout` passes first. Sends nothing
  // sooner than linger.ms would.
  Status WaitForDeliveries(const std::function<bool()>& done, std::chrono::milliseconds timeout);

  // Transactions (transactional producers only). Commit flushes; after an
  // error the caller aborts and retries from its stored offsets.
  Status BeginTransaction();
  Status CommitTransaction(std::chrono::milliseconds timeout);
  Status AbortTransaction(std::chrono::milliseconds timeout);

  rd_kafka_s* handle() const { return rk_.get(); }

  struct State;  // delivery bookkeeping, shared with the delivery-report callback

 private:
  Producer(KafkaHandle rk, std::unique_ptr<State> state);
  KafkaHandle rk_;
  std::unique_ptr<State> state_;
};

// Whether the log of `tp` (watermarks `w`) still holds `next`, the next offset
// the store in `store_dir` needs: kOutOfRange naming topic, partition and
// offsets when retention moved the log start past it or the log ends before
// it (topic recreated); `remedy` is appended to the message.
Status CheckLogCovers(const TopicPartition& tp, int64_t next, const Watermarks& w, const std::string& store_dir,
                      const std::string& remedy);

// Reads records from explicitly assigned partitions and offsets. Not thread-safe:
// one thread polls a Reader.
class Reader {
 public:
  static Result<std::unique_ptr<Reader>> Create(const KafkaConfig& config, const std::string& client_id);
  ~Reader();

  // Number of brokers the cluster's metadata lists now; 0 when it cannot be asked.
  int BrokerCount(std::chrono::milliseconds timeout);

  // Number of partitions of `topic`; kNotFound if it does not exist.
  Result<int32_t> PartitionCount(const std::string& topic, std::chrono::milliseconds timeout);
  // Every partition of `topics`, topic by topic in their order (PartitionCount of each).
  Result<std::vector<TopicPartition>> Partitions(const std::vector<std::string>& topics,
                                                 std::chrono::milliseconds timeout);

  // Low and high watermark of one partition, asked of the broker.
  Result<Watermarks> QueryWatermarks(const TopicPartition& tp, std::chrono::milliseconds timeout);
  // The same for several partitions, in their order, within one `timeout`:
  // asked of all their leaders at once (two ListOffsets requests per broker
  // instead of a round trip per partition). When any answer is an error (a
  // leader moved, a topic just created), librdkafka fails the whole request and
  // every partition is asked alone. Errors as the one-partition form.
  Result<std::vector<Watermarks>> QueryWatermarks(const std::vector<TopicPartition>& tps,
                                                  std::chrono::milliseconds timeout);

  // The high watermark last seen in fetch responses for an assigned partition,
  // without asking the broker; -1 when none is known yet. Thread-safe (for
  // metrics while another thread polls).
  int64_t CachedHighWatermark(const TopicPartition& tp) const;

  // Starts consuming each partition at the given offset (replacing any earlier assignment).
  // `tickers` (see Tickers) are read from their end on queues of their own and
  // dropped: each keeps a fetch in flight on its broker.
  Status Assign(const std::vector<std::pair<TopicPartition, int64_t>>& positions,
                const std::vector<TopicPartition>& tickers = {});

  // One partition of `candidates` (topics not read) led by each broker that
  // leads one of `partitions`, or kNotFound naming a broker none of them is on.
  // librdkafka 2.0.2 stops fetching every partition of a broker while the
  // consumer's queue is over queued.min.messages or queued.max.messages.kbytes,
  // and looks again only when that broker's thread wakes: on a fetch response,
  // or after up to a second. A ticker, assigned at its end, is a fetch that
  // answers every fetch.wait.max.ms, so a shallow queue refills at once
  // (2.1.0's fetch.queue.backoff.ms does this inside librdkafka).
  Result<std::vector<TopicPartition>> Tickers(const std::vector<TopicPartition>& partitions,
                                              const std::vector<std::string>& candidates,
                                              std::chrono::milliseconds timeout);

  // Waits up to `timeout` for records and returns at most `max` of them, in
  // offset order within each partition. An empty vector means nothing arrived.
  // Returns as soon as any record is there, unless `fill`: then it waits for
  // `max` records or the timeout (throughput over latency, for replay).
  // Errors: kOutOfRange when an assigned offset no longer exists in the log
  // (retention, a recreated topic); kUnavailable is transient.
  Result<std::vector<Record>> Poll(size_t max, std::chrono::milliseconds timeout, bool fill = false);

  // The consumer's position in each of `partitions`: the offset after the
  // last record it returned, past any transaction markers it stepped over; -1
  // where it has returned nothing yet.
  std::map<TopicPartition, int64_t> Positions(const std::vector<TopicPartition>& partitions) const;

  // How many records the tickers have read (and Poll dropped) so far.
  uint64_t TickerRecords() const;

  // Commits `next_offsets` to this reader's consumer group (its client id,
  // prefixed), asynchronously and only as information for operators' tools;
  // errors are ignored. As GroupReader::CommitForOperators.
  void CommitForOperators(const std::vector<std::pair<TopicPartition, int64_t>>& next_offsets);

 private:
  struct State;
  Reader(KafkaHandle rk, std::unique_ptr<State> state);
  KafkaHandle rk_;
  std::unique_ptr<State> state_;
};

// Reads the partitions a consumer group assigns to this member, starting each
// at the offset `next_offset` returns for it (the member's own stored offset;
// 0 when it has none): the member resumes from its local store, never from the
// group's committed offsets, which are only the copy CommitForOperators sends.
// Not thread-safe: one thread polls a GroupReader.
class GroupReader {
 public:
  using OffsetLookup = std::function<int64_t(const TopicPartition&)>;

  // `before_revoke`, if given, runs inside Poll when partitions are about to
  // be taken away (revoked, or all of them under an eager protocol), before
  // they go: the member settles what it has in flight for them.
  static Result<std::unique_ptr<GroupReader>> Create(const KafkaConfig& config, const std::string& group_id,
                                                     const std::string& client_id,
                                                     const std::vector<std::string>& topics, OffsetLookup next_offset,
                                                     std::function<void()> before_revoke = nullptr);
  ~GroupReader();

  // As Reader::Poll. Rebalances happen inside Poll.
  Result<std::vector<Record>> Poll(size_t max, std::chrono::milliseconds timeout);

  // Partitions currently assigned to this member.
  std::vector<TopicPartition> Assignment() const;

  // As Reader::Positions, for the partitions assigned now.
  std::map<TopicPartition, int64_t> Positions() const;

  // Commits `next_offsets` (the next offset to read, per partition) to the
  // consumer group, asynchronously, as information for operators' tools
  // (`orderflow lag`, kafka-consumer-groups) and for `up`'s check that the
  // whole group has finished: call it only once what those records caused is
  // durable. The member's local store stays the truth and is where it resumes
  // from. Errors are ignored.
  void CommitForOperators(const std::vector<std::pair<TopicPartition, int64_t>>& next_offsets);

  // How long the destructor waits for the group to let this member leave
  // (6 s unless set).
  void SetCloseTimeoutForTesting(std::chrono::milliseconds timeout);

  struct State;  // shared with the rebalance callback

 private:
  GroupReader(KafkaHandle rk, std::unique_ptr<State> state);
  KafkaHandle rk_;
  std::unique_ptr<State> state_;
};

// Group consumers (GroupReader) whose coordinator did not answer their close
// in time finish closing on threads of their own. A process about to exit
// waits here up to `timeout` for them; false when some are left (then exit with
// _exit: everything of value is in the local stores already).
bool FinishClosingClients(std::chrono::milliseconds timeout);

// Converts a librdkafka error code to a Status, choosing kUnavailable for the
// transient ones.
Status KafkaError(int err, std::string_view context);

// kUnavailable with `message`; kFailedPrecondition when the cluster refused
// this process's credentials or CA in the last 30 s (retrying cannot help),
// and a hint when a broker closed connections as a TLS or SASL listener
// closes a client that speaks neither.
Status UnavailableOrRefused(std::string_view context, std::string message);

}  // namespace orderflow::eventstore

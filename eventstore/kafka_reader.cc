// Reader and GroupReader (kafka.h): assigned and group consumption, positions, watermarks.
#include "eventstore/kafka.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "eventstore/acknowledged.h"
#include "eventstore/backoff.h"
#include "eventstore/codec.h"
#include "eventstore/kafka_internal.h"

namespace orderflow::eventstore {

namespace {

// Consumers whose destroy outlasted its bound (DestroyInBackground): they finish
// on threads of their own (FinishClosingClients). Joined at exit if nobody waited for them.
struct Closing {
  struct Client {
    std::thread thread;
    std::future<void> done;
  };
  std::mutex mu;
  std::vector<Client> clients;
  ~Closing() {
    for (Client& c : clients) c.thread.join();
  }
};

Closing& ClosingClients() {
  static Closing closing;
  return closing;
}

// Joins the clients of `clients` that have finished (or finish by `until`) and
// drops them from it.
void JoinFinished(std::vector<Closing::Client>& clients, std::chrono::steady_clock::time_point until) {
  std::erase_if(clients, [until](Closing::Client& c) {
    if (c.done.wait_until(until) != std::future_status::ready) return false;
    c.thread.join();
    return true;
  });
}

// Destroys a consumer whose close was given up on (GroupReader's destructor),
// without consumer_close; with `unassign_first` the close's revoke may not
// have been served, and an unassign lets the group's termination go on.
// librdkafka's destroy still waits for requests in flight to the group
// coordinator (an offset commit: up to socket.timeout.ms), so it runs on a
// thread of its own: past 100 ms it goes on there, and this returns. `keep`
// (the conf's opaque) lives until the destroy is done.
void DestroyInBackground(KafkaHandle handle, std::shared_ptr<void> keep, bool unassign_first) {
  constexpr std::chrono::milliseconds bound{100};
  std::promise<void> destroyed;
  std::future<void> done = destroyed.get_future();
  std::thread thread([rk = handle.release(), keep = std::move(keep), unassign_first,
                      destroyed = std::move(destroyed)]() mutable {
    if (unassign_first) (void)rd_kafka_assign(rk, nullptr);  // waits for librdkafka's main thread
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    keep.reset();
    destroyed.set_value();
  });
  if (done.wait_for(bound) == std::future_status::ready) {
    thread.join();
    return;
  }
  spdlog::warn("consumer: still closing after {} ms (the group coordinator is not answering); it finishes in the "
               "background",
               bound.count());
  Closing& closing = ClosingClients();
  std::lock_guard lock(closing.mu);
  JoinFinished(closing.clients, std::chrono::steady_clock::time_point{});  // those done by now
  closing.clients.push_back({std::move(thread), std::move(done)});
}

}  // namespace

bool FinishClosingClients(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Closing& closing = ClosingClients();
  std::vector<Closing::Client> waiting;
  {
    std::lock_guard lock(closing.mu);
    waiting.swap(closing.clients);
  }
  JoinFinished(waiting, deadline);  // without the lock: a consumer may be parked meanwhile
  std::lock_guard lock(closing.mu);
  for (Closing::Client& c : waiting) closing.clients.push_back(std::move(c));
  return closing.clients.empty();
}

struct Reader::State {
  std::string topic_prefix;  // KafkaConfig::topic_prefix
  const Clock* clock = nullptr;  // KafkaConfig::clock
  rd_kafka_queue_t* queue = nullptr;
  std::vector<rd_kafka_queue_t*> tickers;  // Reader::Tickers' partitions' own queues
  uint64_t ticker_records = 0;             // what they read (and Poll dropped)
  std::vector<rd_kafka_message_t*> buffer;
  // Whether this client has had the cluster's metadata (PartitionCount,
  // Tickers, Assign): see Assign.
  bool has_metadata = false;
  void DropTickers() {
    for (rd_kafka_queue_t* q : tickers) rd_kafka_queue_destroy(q);
    tickers.clear();
  }
  ~State() {
    DropTickers();
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
  state->clock = config.clock;
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

Result<std::vector<TopicPartition>> Reader::Partitions(const std::vector<std::string>& topics,
                                                       std::chrono::milliseconds timeout) {
  std::vector<TopicPartition> partitions;
  for (const std::string& topic : topics) {
    auto count = PartitionCount(topic, timeout);
    if (!count.ok()) return count.status();
    for (int32_t p = 0; p < *count; ++p) partitions.push_back({topic, p});
  }
  return partitions;
}

Result<int32_t> Reader::PartitionCount(const std::string& topic, std::chrono::milliseconds timeout) {
  const std::string name = state_->topic_prefix + topic;
  // A topic created a moment ago may not be known yet to the broker this
  // request goes to (each broker learns new topics from the controller on
  // its own): look again for up to 3 s before calling it missing.
  std::optional<Result<int32_t>> answer;  // once the metadata said anything about the topic
  RetryFor(*state_->clock, std::min<std::chrono::milliseconds>(timeout, std::chrono::seconds(3)),
           std::chrono::milliseconds(100), [&] {
             // Ask for all topics: a request naming the topic may auto-create it on brokers that allow that.
             const rd_kafka_metadata_t* md = nullptr;
             rd_kafka_resp_err_t err = rd_kafka_metadata(rk_.get(), 1, nullptr, &md, static_cast<int>(timeout.count()));
             if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
               answer = KafkaError(err, "metadata for " + topic);
               return true;
             }
             std::unique_ptr<const rd_kafka_metadata_t, void (*)(const rd_kafka_metadata_t*)> guard(
                 md, rd_kafka_metadata_destroy);
             state_->has_metadata = true;
             for (int i = 0; i < md->topic_cnt; ++i) {
               const rd_kafka_metadata_topic_t& t = md->topics[i];
               if (name != t.topic) continue;
               if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                 answer = KafkaError(t.err, "topic " + topic);
               } else if (t.partition_cnt <= 0) {
                 answer = Status::NotFound("topic " + topic + " has no partitions");
               } else {
                 answer = static_cast<int32_t>(t.partition_cnt);
               }
               return true;
             }
             return false;
           });
  if (answer.has_value()) return *answer;
  return Status::NotFound("topic " + name +
                          " does not exist on the cluster; `orderflow up --brokers ...` creates orderflow's topics");
}

Result<Watermarks> Reader::QueryWatermarks(const TopicPartition& logical, std::chrono::milliseconds timeout) {
  Watermarks w;
  const TopicPartition tp{state_->topic_prefix + logical.topic, logical.partition};
  const Clock& clock = *state_->clock;
  const auto deadline = clock.Now() + timeout;
  rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk_.get(), tp.topic.c_str(), tp.partition, &w.low,
                                                             &w.high, static_cast<int>(timeout.count()));
  while ((err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION || err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
          err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
          err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) &&
         clock.Now() < deadline) {
    // The leader moved, or a new partition's leader is not serving yet: the
    // query went to the broker the cached metadata names, which stays stale
    // until the next periodic refresh. Or the topic was created a moment ago
    // and the broker that answered the metadata request had not learnt its
    // partitions yet (Local: Unknown partition). Refresh the topic's metadata
    // and ask again.
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_.get(), tp.topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk_.get(), 0, rkt, &md, static_cast<int>(timeout.count())) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    err = rd_kafka_query_watermark_offsets(rk_.get(), tp.topic.c_str(), tp.partition, &w.low, &w.high,
                                           static_cast<int>(timeout.count()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) clock.SleepFor(std::chrono::milliseconds(100));
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaError(err, "watermarks of " + tp.topic + "[" + std::to_string(tp.partition) + "]");
  }
  return w;
}

Result<std::vector<Watermarks>> Reader::QueryWatermarks(const std::vector<TopicPartition>& tps,
                                                        std::chrono::milliseconds timeout) {
  std::vector<Watermarks> marks(tps.size());
  if (tps.empty()) return marks;
  std::vector<bool> answered(tps.size(), true);
  // One deadline for the whole question, as for one partition.
  const Clock& clock = *state_->clock;
  const auto deadline = clock.Now() + timeout;
  auto left = [&] {
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock.Now()));
  };
  // Every partition's first offset (BEGINNING), then every partition's end (END).
  for (const int64_t which : {RD_KAFKA_OFFSET_BEGINNING, RD_KAFKA_OFFSET_END}) {
    std::unique_ptr<rd_kafka_topic_partition_list_t, decltype(&rd_kafka_topic_partition_list_destroy)> list(
        rd_kafka_topic_partition_list_new(static_cast<int>(tps.size())), &rd_kafka_topic_partition_list_destroy);
    for (const TopicPartition& tp : tps) {
      const std::string name = state_->topic_prefix + tp.topic;
      rd_kafka_topic_partition_list_add(list.get(), name.c_str(), tp.partition)->offset = which;
    }
    const rd_kafka_resp_err_t err =
        rd_kafka_offsets_for_times(rk_.get(), list.get(), static_cast<int>(left().count()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // librdkafka fails the whole call when any partition's answer is an
      // error (a leader moved, a partition it does not know): each is asked alone.
      answered.assign(tps.size(), false);
      break;
    }
    for (size_t i = 0; i < tps.size(); ++i) {
      const rd_kafka_topic_partition_t& answer = list->elems[i];
      if (answer.err != RD_KAFKA_RESP_ERR_NO_ERROR || answer.offset < 0) {
        answered[i] = false;
      } else {
        (which == RD_KAFKA_OFFSET_END ? marks[i].high : marks[i].low) = answer.offset;
      }
    }
  }
  for (size_t i = 0; i < tps.size(); ++i) {
    if (answered[i]) continue;
    auto one = QueryWatermarks(tps[i], left());
    if (!one.ok()) return one.status();
    marks[i] = *one;
  }
  return marks;
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

Status Reader::Assign(const std::vector<std::pair<TopicPartition, int64_t>>& positions,
                      const std::vector<TopicPartition>& tickers) {
  state_->DropTickers();
  if (!state_->has_metadata && !positions.empty()) {
    // A client assigned partitions before it knows their leaders (librdkafka
    // 2.0.2) can leave them unfetched until its broker thread next wakes, up to
    // a second: a snapshot's tail waited 1 s for its first record in 3 of 24
    // replays on the embedded broker (0 of 30 with this). Asked once, best
    // effort: a cluster that does not answer in time leaves it to librdkafka.
    state_->has_metadata = true;
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk_.get(), 1, nullptr, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_metadata_destroy(md);
    }
  }
  // Tickers start at their log's end as a concrete offset. Assigned at
  // OFFSET_END, a ticker first asks the broker for that offset, and librdkafka
  // 2.0.2 retries such a query only 500 ms later if the partition changes
  // broker meanwhile; the other partitions fill the queue within that time and
  // nothing keeps the fetcher awake. That fits the replays (1 in 3 to 6 of
  // 400k events) that got no record for 0.4-0.5 s after their first 15,000.
  // Best effort: OFFSET_END if the cluster cannot say within 10 s (it answers
  // in milliseconds; KafkaTest.TickersCoverEveryLeader... counts on the ends).
  std::vector<int64_t> ticker_offsets(tickers.size(), RD_KAFKA_OFFSET_END);
  if (!tickers.empty()) {
    auto ends = QueryWatermarks(tickers, std::chrono::seconds(10));
    if (ends.ok()) {
      for (size_t i = 0; i < tickers.size(); ++i) ticker_offsets[i] = (*ends)[i].high;
    }
  }
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(positions.size() + tickers.size()));
  for (const auto& [tp, offset] : positions) {
    const std::string name = state_->topic_prefix + tp.topic;
    rd_kafka_topic_partition_list_add(list, name.c_str(), tp.partition)->offset = offset;
  }
  for (size_t i = 0; i < tickers.size(); ++i) {
    const TopicPartition& tp = tickers[i];
    const std::string name = state_->topic_prefix + tp.topic;
    // Its own queue, not forwarded to the consumer's (set before the
    // assignment starts the fetch, which forwards only queues the
    // application left alone): only this queue's length holds it back.
    rd_kafka_queue_t* q = rd_kafka_queue_get_partition(rk_.get(), name.c_str(), tp.partition);
    if (q == nullptr) continue;
    rd_kafka_queue_forward(q, nullptr);
    state_->tickers.push_back(q);
    rd_kafka_topic_partition_list_add(list, name.c_str(), tp.partition)->offset = ticker_offsets[i];
  }
  rd_kafka_resp_err_t err = rd_kafka_assign(rk_.get(), list);
  rd_kafka_topic_partition_list_destroy(list);
  return KafkaError(err, "assign partitions");
}

Result<std::vector<TopicPartition>> Reader::Tickers(const std::vector<TopicPartition>& partitions,
                                                    const std::vector<std::string>& candidates,
                                                    std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk_.get(), 1, nullptr, &md, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(err, "metadata");
  std::unique_ptr<const rd_kafka_metadata_t, void (*)(const rd_kafka_metadata_t*)> guard(md, rd_kafka_metadata_destroy);
  state_->has_metadata = true;
  std::map<std::pair<std::string, int32_t>, int32_t> leaders;  // cluster topic name, partition -> broker
  for (int i = 0; i < md->topic_cnt; ++i) {
    const rd_kafka_metadata_topic_t& t = md->topics[i];
    for (int j = 0; j < t.partition_cnt; ++j) leaders[{t.topic, t.partitions[j].id}] = t.partitions[j].leader;
  }
  std::map<int32_t, std::optional<TopicPartition>> by_broker;
  for (const TopicPartition& tp : partitions) {
    auto it = leaders.find({state_->topic_prefix + tp.topic, tp.partition});
    if (it == leaders.end() || it->second < 0) {
      return Status::NotFound(tp.topic + "[" + std::to_string(tp.partition) + "] has no leader now");
    }
    by_broker[it->second];
  }
  for (const std::string& topic : candidates) {
    for (const auto& [key, leader] : leaders) {
      if (key.first != state_->topic_prefix + topic) continue;
      auto b = by_broker.find(leader);
      if (b != by_broker.end() && !b->second) b->second = TopicPartition{topic, key.second};
    }
  }
  std::vector<TopicPartition> tickers;
  for (const auto& [broker, ticker] : by_broker) {
    if (!ticker) return Status::NotFound("no partition to keep broker " + std::to_string(broker) + "'s fetches going");
    tickers.push_back(*ticker);
  }
  return tickers;
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
  for (rd_kafka_queue_t* q : state_->tickers) {  // whatever a ticker read is not wanted
    rd_kafka_message_t* dropped[64];
    for (ssize_t d; (d = rd_kafka_consume_batch_queue(q, 0, dropped, 64)) > 0;) {
      for (ssize_t i = 0; i < d; ++i) {
        if (dropped[i]->err == RD_KAFKA_RESP_ERR_NO_ERROR) ++state_->ticker_records;
        rd_kafka_message_destroy(dropped[i]);
      }
    }
  }
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
  std::function<void()> before_revoke;
  rd_kafka_queue_t* queue = nullptr;
  std::vector<rd_kafka_message_t*> buffer;
  std::vector<TopicPartition> assignment;
  bool cooperative = false;  // the group's rebalance protocol, from partition.assignment.strategy
  std::chrono::milliseconds close_timeout{6'000};
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
    if (state->before_revoke) state->before_revoke();
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
    if (state->before_revoke) state->before_revoke();
    state->assignment.clear();
    rd_kafka_assign(rk, nullptr);
  }
}

}  // namespace

GroupReader::GroupReader(KafkaHandle rk, std::unique_ptr<State> state) : rk_(std::move(rk)), state_(std::move(state)) {}

GroupReader::~GroupReader() {
  if (!rk_) return;
  rd_kafka_t* rk = rk_.get();
  if (state_->queue != nullptr) {
    rd_kafka_queue_destroy(state_->queue);
    state_->queue = nullptr;
  }
  // The close revokes what this member holds (Rebalance, so before_revoke
  // still runs) and leaves the group, so that the others take its partitions
  // at once. It waits for the group coordinator, and a coordinator busy with a
  // rebalance can hold it for long: past close_timeout the member goes without
  // leaving (the group drops it after session.timeout.ms). Nothing is lost
  // either way: its offsets live in its own store.
  rd_kafka_queue_t* close_queue = rd_kafka_queue_new(rk);
  bool cut_short = false, revoked = false;
  auto serve = [&](int timeout_ms) {  // false when the queue had nothing
    rd_kafka_event_t* event = rd_kafka_queue_poll(close_queue, timeout_ms);
    if (event == nullptr) return false;
    if (rd_kafka_event_type(event) == RD_KAFKA_EVENT_REBALANCE) {
      const rd_kafka_resp_err_t err = rd_kafka_event_error(event);
      revoked = revoked || err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
      Rebalance(rk, err, rd_kafka_event_topic_partition_list(event), state_.get());
    }
    rd_kafka_event_destroy(event);
    return true;
  };
  if (rd_kafka_error_t* error = rd_kafka_consumer_close_queue(rk, close_queue)) {
    spdlog::warn("consumer group: close: {}", rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
  } else {
    const auto deadline = std::chrono::steady_clock::now() + state_->close_timeout;
    while (!rd_kafka_consumer_closed(rk)) {
      if (std::chrono::steady_clock::now() >= deadline) {
        cut_short = true;
        break;
      }
      serve(100);
    }
  }
  if (cut_short) {
    while (serve(0)) {
    }
    spdlog::warn("consumer group: the group coordinator did not let this member leave within {} ms; it goes "
                 "without leaving (the group drops it after its session timeout; nothing is lost)",
                 state_->close_timeout.count());
  }
  rd_kafka_queue_destroy(close_queue);  // a revoke posted from now on is dropped: librdkafka unassigns itself
  // A revoke posted before the queue went but not served would hold the
  // group's termination (and so the destroy) forever: the unassign stands in
  // for it, as the revoke the member never saw.
  const bool unassign = cut_short && !revoked;
  if (unassign && !state_->assignment.empty() && state_->before_revoke) state_->before_revoke();
  if (!cut_short) {
    rk_.reset();  // closed: the destroy has nothing left to wait for
    return;
  }
  DestroyInBackground(std::move(rk_), std::shared_ptr<void>(std::move(state_)), unassign);
}

void GroupReader::SetCloseTimeoutForTesting(std::chrono::milliseconds timeout) { state_->close_timeout = timeout; }

Result<std::unique_ptr<GroupReader>> GroupReader::Create(const KafkaConfig& config, const std::string& group_id,
                                                         const std::string& client_id,
                                                         const std::vector<std::string>& topics,
                                                         OffsetLookup next_offset,
                                                         std::function<void()> before_revoke) {
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
  state->before_revoke = std::move(before_revoke);
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

uint64_t Reader::TickerRecords() const { return state_->ticker_records; }

std::map<TopicPartition, int64_t> Reader::Positions(const std::vector<TopicPartition>& partitions) const {
  return PositionsOf(rk_.get(), state_->topic_prefix, partitions);
}

void Reader::CommitForOperators(const std::vector<std::pair<TopicPartition, int64_t>>& next_offsets) {
  CommitAsync(rk_.get(), state_->topic_prefix, next_offsets);
}

}  // namespace orderflow::eventstore

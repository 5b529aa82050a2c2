#include "tests/util/broker.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "eventstore/acknowledged.h"
#include "eventstore/embedded_broker.h"
#include "eventstore/topics.h"

namespace orderflow::testing {
namespace {

// A topic prefix no other test of this run (or an earlier run on the same broker) uses.
std::string UniquePrefix() {
  static std::atomic<int> counter{0};
  std::string name = "t";
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info()) {
    name = std::string(info->test_suite_name()) + "." + info->name();
  }
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '_';
  }
  if (name.size() > 150) name.resize(150);
  return name + "-" + std::to_string(getpid()) + "-" + std::to_string(counter.fetch_add(1)) + ".";
}

}  // namespace

void DeleteTopics(const eventstore::KafkaConfig& config) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[256];
  rd_kafka_conf_set(conf, "bootstrap.servers", config.brokers.c_str(), errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == nullptr) return;
  std::vector<rd_kafka_DeleteTopic_t*> topics;
  for (const auto& spec : eventstore::DefaultTopics()) {
    topics.push_back(rd_kafka_DeleteTopic_new((config.topic_prefix + spec.name).c_str()));
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_DeleteTopics(rk, topics.data(), topics.size(), nullptr, queue);
  if (rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, 10000)) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(queue);
  rd_kafka_DeleteTopic_destroy_array(topics.data(), topics.size());
  rd_kafka_destroy(rk);
}

TestBroker::~TestBroker() {
  if (real() && std::getenv("ORDERFLOW_TEST_KEEP_TOPICS") == nullptr) DeleteTopics(config_);
}

std::vector<std::string> TestBroker::CliArgs() const {
  std::vector<std::string> args = {"--brokers", config_.brokers};
  if (!config_.topic_prefix.empty()) args.insert(args.end(), {"--topic-prefix", config_.topic_prefix});
  return args;
}

rd_kafka_mock_cluster_s* TestBroker::mock_cluster() const {
  return embedded_ ? embedded_->mock_cluster() : nullptr;
}

std::vector<std::string> LostAcknowledged(const eventstore::KafkaConfig& config) {
  return LostAcknowledged(eventstore::AcknowledgedEnds(config), config);
}

std::vector<std::string> LostAcknowledged(const std::map<eventstore::TopicPartition, int64_t>& acknowledged,
                                          const eventstore::KafkaConfig& log) {
  std::vector<std::string> lost;
  if (acknowledged.empty()) return lost;
  auto reader = eventstore::Reader::Create(log, "orderflow-test-lost-check");
  if (!reader.ok()) return lost;
  for (const auto& [tp, end] : acknowledged) {
    auto w = (*reader)->QueryWatermarks(tp, std::chrono::seconds(2));
    if (!w.ok() || w->high >= end) continue;
    lost.push_back(tp.topic + "[" + std::to_string(tp.partition) + "]: offsets " + std::to_string(w->high) + ".." +
                   std::to_string(end - 1) + " were acknowledged, the log ends at " + std::to_string(w->high));
  }
  return lost;
}

struct LostRecordWatch::State {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::string lost;
  std::thread thread;
};

LostRecordWatch::LostRecordWatch(const eventstore::KafkaConfig& config, std::stop_source& stop)
    : LostRecordWatch([config] { return LostAcknowledged(config); }, stop) {}

LostRecordWatch::LostRecordWatch(std::function<std::vector<std::string>()> check, std::stop_source& stop)
    : state_(std::make_unique<State>()) {
  state_->thread = std::thread([check = std::move(check), &stop, state = state_.get()] {
    int in_a_row = 0;
    std::unique_lock lock(state->mu);
    while (!state->cv.wait_for(lock, std::chrono::seconds(1), [&] { return state->done; })) {
      lock.unlock();
      const auto lost = check();
      lock.lock();
      in_a_row = lost.empty() ? 0 : in_a_row + 1;
      if (in_a_row < 2) continue;
      for (const auto& line : lost) state->lost += (state->lost.empty() ? "" : "; ") + line;
      stop.request_stop();
      return;
    }
  });
}

LostRecordWatch::~LostRecordWatch() {
  {
    std::lock_guard lock(state_->mu);
    state_->done = true;
  }
  state_->cv.notify_all();
  state_->thread.join();
}

std::string LostRecordWatch::Lost() const {
  std::lock_guard lock(state_->mu);
  return state_->lost;
}

std::string RealKafka() {
  const char* mode = std::getenv("ORDERFLOW_TEST_BROKER");
  if (mode == nullptr || std::string(mode) != "kafka") return "";
  const char* env = std::getenv("ORDERFLOW_TEST_KAFKA");
  if (env == nullptr || *env == '\0') {
    ADD_FAILURE() << "ORDERFLOW_TEST_BROKER=kafka but ORDERFLOW_TEST_KAFKA is not set: start a broker with "
                     "`bash scripts/kafka.sh start` and export ORDERFLOW_TEST_KAFKA=<its bootstrap list>";
    return "127.0.0.1:1";
  }
  return env;
}

std::unique_ptr<TestBroker> StartEmbeddedBroker(int partitions) {
  auto started = eventstore::EmbeddedBroker::Start(3);
  EXPECT_TRUE(started.ok()) << started.status().ToString();
  if (!started.ok()) return nullptr;
  std::unique_ptr<TestBroker> broker(new TestBroker());
  broker->embedded_ = std::move(started).value();
  broker->config_.brokers = broker->embedded_->bootstraps();
  eventstore::TrackAcknowledged(broker->config_);
  Status created = broker->embedded_->CreateTopics(eventstore::DefaultTopics(partitions));
  EXPECT_TRUE(created.ok()) << created.ToString();
  return broker;
}

std::unique_ptr<TestBroker> StartBroker(int partitions) {
  const std::string real = RealKafka();
  if (real.empty()) return StartEmbeddedBroker(partitions);
  std::unique_ptr<TestBroker> broker(new TestBroker());
  broker->config_.brokers = real;
  broker->config_.topic_prefix = UniquePrefix();
  eventstore::TrackAcknowledged(broker->config_);
  Status created =
      eventstore::ProvisionTopics(broker->config_, eventstore::DefaultTopics(partitions), std::chrono::seconds(30));
  EXPECT_TRUE(created.ok()) << "real Kafka at " << real << ": " << created.ToString();
  if (!created.ok()) return nullptr;
  return broker;
}

std::vector<std::string> UpBrokerArgs() {
  const std::string real = RealKafka();
  if (real.empty()) return {};
  return {"--brokers", real, "--topic-prefix", UniquePrefix()};
}

}  // namespace orderflow::testing

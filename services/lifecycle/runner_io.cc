// The runner's inputs and outputs on Kafka (runner_io.h).
#include "services/lifecycle/runner_io.h"

#include <spdlog/spdlog.h>

#include "eventstore/topics.h"

namespace orderflow::services {
namespace {

class KafkaInput final : public InputConsumer {
 public:
  explicit KafkaInput(std::unique_ptr<eventstore::GroupReader> reader) : reader_(std::move(reader)) {}
  Result<std::vector<eventstore::Record>> Poll(size_t max, std::chrono::milliseconds timeout) override {
    return reader_->Poll(max, timeout);
  }
  std::vector<eventstore::TopicPartition> Assignment() const override { return reader_->Assignment(); }
  std::map<eventstore::TopicPartition, int64_t> Positions() const override { return reader_->Positions(); }
  void CommitForOperators(const std::vector<std::pair<eventstore::TopicPartition, int64_t>>& next) override {
    reader_->CommitForOperators(next);
  }

 private:
  std::unique_ptr<eventstore::GroupReader> reader_;
};

class KafkaOutput final : public OutputLog {
 public:
  explicit KafkaOutput(std::unique_ptr<eventstore::Producer> producer) : producer_(std::move(producer)) {}
  Status AppendEvent(std::string_view topic, const domain::Event& event,
                     eventstore::DeliveryCallback on_delivery) override {
    return producer_->AppendEvent(topic, event, std::move(on_delivery));
  }
  Status Append(std::string_view topic, std::string_view key, std::string_view value,
                const std::vector<eventstore::Header>& headers, eventstore::DeliveryCallback on_delivery) override {
    return producer_->Append(topic, key, value, headers, std::move(on_delivery));
  }
  Status Flush(std::chrono::milliseconds timeout) override { return producer_->Flush(timeout); }
  Status WaitForDeliveries(const std::function<bool()>& done, std::chrono::milliseconds timeout) override {
    return producer_->WaitForDeliveries(done, timeout);
  }
  Status BeginTransaction() override { return producer_->BeginTransaction(); }
  Status CommitTransaction(std::chrono::milliseconds timeout) override {
    return producer_->CommitTransaction(timeout);
  }
  Status AbortTransaction(std::chrono::milliseconds timeout) override { return producer_->AbortTransaction(timeout); }

 private:
  std::unique_ptr<eventstore::Producer> producer_;
};

}  // namespace

Result<RunnerIo> MakeKafkaRunnerIo(const ServiceOptions& options) {
  RunnerIo io;
  // Latency over batching: a batch's outputs go at once (the loop does not
  // wait for them before handling the next batch).
  eventstore::KafkaConfig producer_config = options.kafka;
  producer_config.overrides.insert(producer_config.overrides.begin(), {"linger.ms", "0"});
  producer_config.overrides.insert(producer_config.overrides.begin(), {"retry.backoff.ms", "10"});
  const std::string client = "orderflow-" + options.name + "-" + options.instance;
  auto producer = eventstore::Producer::Create(producer_config, client, options.exactly_once ? client : "");
  if (!producer.ok()) return producer.status();
  Status warm = (*producer)->WarmUp({eventstore::kOrdersTopic, eventstore::kInventoryTopic,
                                     eventstore::kNotificationsHighTopic, eventstore::kNotificationsLowTopic},
                                    std::chrono::seconds(10));
  // The cluster refusing this user (credentials, CA, ACLs) does not pass by
  // retrying: the service stops with that one line. A broker not up yet does.
  if (warm.code() == StatusCode::kFailedPrecondition) return warm;
  if (!warm.ok()) spdlog::warn("{}: {}", options.name, warm.ToString());
  io.output = std::make_unique<KafkaOutput>(std::move(producer).value());
  eventstore::KafkaConfig consumer_config = options.kafka;
  if (options.fetch_wait.count() > 0) {  // before the user's own settings, which win
    consumer_config.overrides.insert(consumer_config.overrides.begin(),
                                     {"fetch.wait.max.ms", std::to_string(options.fetch_wait.count())});
  }
  io.open_input = [kafka = std::move(consumer_config), client, inputs = options.inputs](
                      size_t index, const std::string& group,
                      eventstore::GroupReader::OffsetLookup start,
                      std::function<void()> before_revoke) -> Result<std::unique_ptr<InputConsumer>> {
    auto reader = eventstore::GroupReader::Create(kafka, group, client, inputs.at(index), std::move(start),
                                                  std::move(before_revoke));
    if (!reader.ok()) return reader.status();
    return std::unique_ptr<InputConsumer>(std::make_unique<KafkaInput>(std::move(reader).value()));
  };
  io.log_end = StallWatchdog::ReaderLogEnd(options);
  return io;
}

}  // namespace orderflow::services
